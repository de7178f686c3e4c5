/*
 * routeshow.h — where statements would run and why, for people
 * (routeshow.c).
 */
#ifndef PGSHARD_PROXY_ROUTESHOW_H
#define PGSHARD_PROXY_ROUTESHOW_H

#include <stdio.h>

#include "config/config.h"

/*
 * Print the router's decision for each of sqls to f, one "label: text" line
 * each. 0; 3 when one would be refused; 1 when routing could not run (the
 * reason is printed as an "error:" line).
 */
int routeshow_print(FILE *f, const cfg_t *cfg, char *const *sqls, int n);

#endif
