/*
 * commit.h — the COMMIT of a transaction that wrote on two or more shards,
 * in two phases (commit.c; the protocol is router/twophase.h's). The
 * client's links are its participants; the proxy runs the steps on them
 * and answers the client once the outcome is decided and applied.
 */
#ifndef PGSHARD_PROXY_COMMIT_H
#define PGSHARD_PROXY_COMMIT_H

#include "proxy/proxy.h"

/*
 * Start it on every link of c (all held, nothing outstanding). With !ready
 * the answer ends without ReadyForQuery (an Execute; the client's Sync gets
 * it). 0, or -1 when memory runs out.
 */
int commit_start(client_t *c, bool ready);
bool commit_has(const commit_t *k, const server_t *s);
void commit_reply(client_t *c, server_t *s); /* a participant has data */
/* A participant left: commit_member_lost marks it (from the client's unlinked op);
 * commit_server_lost also unlinks it and lets the steps go on without it. */
void commit_member_lost(client_t *c, server_t *s);
void commit_server_lost(client_t *c, server_t *s);
void commit_free(client_t *c);

#endif
