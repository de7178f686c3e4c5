/*
 * pool.h — server connection pools, one per (node, database, user) and
 * worker (pool.c).
 */
#ifndef PGSHARD_PROXY_POOL_H
#define PGSHARD_PROXY_POOL_H

#include "proxy/proxy.h"

/* The pool of a node: shard's primary, or (NODE_REPLICA) a replica not known to be down. */
pool_t *pool_get_role(worker_t *w, int shard, node_role_t role, const char *dbname,
                      const char *user);
pool_t *pool_get(worker_t *w, int shard, const char *dbname, const char *user); /* primary */
/* The pool of node (of the worker's config's node table); NULL: no node, or out of memory. */
pool_t *pool_get_node(worker_t *w, const node_t *node, const char *dbname, const char *user);
/* Give the client a server now (returns 1), or queue it (returns 0). -1: cannot. */
int pool_acquire(pool_t *p, client_t *c);
/* The client is done with its server (idle, no transaction). */
void pool_release(server_t *s);
/* How many are on a pool's list (the console's SHOW POOLS too). */
int pool_count_servers(const struct server_list *l);
int pool_count_clients(const struct client_list *l);
/* A server connection finished its login, or came back: hand it to a waiting client. */
void pool_server_ready(server_t *s);
/* A server connection is gone (or never came up): forget it; error for waiting clients. */
void pool_server_gone(server_t *s, const char *why, const uint8_t *error_body, size_t error_len);
void pool_remove_waiting(client_t *c);
void pool_close_idle(worker_t *w, time_t older_than);
void pool_close_all(worker_t *w); /* at shutdown: every server closed */
void pool_free_all(worker_t *w);  /* then the pools, once the reaper freed the servers */

#endif
