/*
 * relay.h — one server's replies on their way to the client (relay.c).
 */
#ifndef PGSHARD_PROXY_RELAY_H
#define PGSHARD_PROXY_RELAY_H

#include "proxy/proxy.h"

void relay_reply(client_t *c, server_t *s); /* the one server's replies, relayed */

#endif
