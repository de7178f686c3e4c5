/*
 * forward.h — a client's messages on their way to the one server that runs
 * them (forward.c): which shard's server, each message as the server must
 * get it, and the session state a statement changes.
 */
#ifndef PGSHARD_PROXY_FORWARD_H
#define PGSHARD_PROXY_FORWARD_H

#include "proxy/proxy.h"

/* Session state a statement changes. */
void forward_apply_effects(client_t *c, const char *sql, size_t len);
int forward_remember_unnamed(client_t *c, const uint8_t *msg, size_t total);
int forward_remember_named(client_t *c, const wire_parse_msg_t *m, ps_entry_t **e);

/* Where a statement runs. */
/* The same, on node (one of the shard's replicas, replica.c); NULL: its primary. */
int forward_use_node(client_t *c, int shard, const node_t *node);
int forward_use_shard(client_t *c, int shard); /* 1 now, 0 wait, -1 failed */
int forward_message(client_t *c, uint8_t type, pbuf_t *in, size_t total);
int forward_gather_links(client_t *c, const shard_set_t *want);

#endif
