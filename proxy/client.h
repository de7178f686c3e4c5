/*
 * client.h — the client's message loop, the top of a session (client.c).
 */
#ifndef PGSHARD_PROXY_CLIENT_H
#define PGSHARD_PROXY_CLIENT_H

#include "proxy/proxy.h"

void client_accept(worker_t *w, int fd);

#endif
