/*
 * deadlock.h — distributed deadlock detection on the control thread
 * (deadlock.c): transactions that wait for each other across shards, which
 * no single PostgreSQL can see, end with 40P01 for one of them.
 */
#ifndef PGSHARD_DEADLOCK_H
#define PGSHARD_DEADLOCK_H

#include "proxy/proxy.h"

/*
 * On the control thread's base, before its thread starts (and after the
 * workers started: it reads their boxes): detect every deadlock_interval
 * (never when it is 0). 0, or -1 when out of memory.
 */
int deadlock_start(struct event_base *base, cfg_ref_t *cfg);
/* On the control thread: a reload (a round under way is dropped). */
void deadlock_set_config(cfg_ref_t *cfg);
/* Once the control thread's loop has stopped: close everything. */
void deadlock_stop(void);

#endif
