/*
 * replica.h — reads on replicas that never go back in time (replica.c).
 *
 * A statement the router marked replica_ok (one SELECT that cannot write or
 * lock), of one shard, outside any transaction, in a session that is not
 * pinned to its server, may run on one of the shard's replicas when
 * replica_reads is on (in the config, or for the session with SET
 * pgshard.replica_reads). The replica must be up, in recovery, within
 * max_replica_lag and max_replica_lag_time of its primary, and have
 * replayed what the session has written and read on that shard and what a
 * causal token it presented says (causal.h). A session stays on the
 * replica it read from while that one qualifies; a new one is chosen by
 * replica_policy among those that qualify (with the primary among them
 * when replica_reads = with_primary). Otherwise the primary serves it.
 *
 * A session's own commands: SET/RESET/SHOW pgshard.replica_reads and
 * pgshard.causal_token, answered by the proxy (the token is also taken
 * from a startup parameter of that name).
 */
#ifndef PGSHARD_PROXY_REPLICA_H
#define PGSHARD_PROXY_REPLICA_H

#include "proxy/proxy.h"

/*
 * Where the session's read of `shard` (plan p, a ONE step) may go: a
 * replica's node in the worker's config, or NULL for the primary.
 */
const node_t *replica_for_read(client_t *c, const route_plan_t *p, int shard);

/* A statement of c's ended on s (its ReadyForQuery): note what it saw or wrote. */
void replica_statement_ended(client_t *c, server_t *s);

/*
 * A Query of c's that is a pgshard.* session command: answered (STEP_NEXT),
 * STEP_WAIT (a causal token is not known yet: c is resumed), STEP_FAIL;
 * -2 when sql is not one (it goes on to routing).
 */
int replica_command(client_t *c, const char *sql, pbuf_t *in, size_t total);

/*
 * A startup parameter the proxy takes for itself (pgshard.causal_token,
 * pgshard.replica_reads): true when it was one (it is not passed on to the
 * servers); a bad value sets *error (static text).
 */
bool replica_startup_param(client_t *c, const char *name, const char *value, const char **error);

/*
 * A connection to replica pool p failed while c waited for it: the replica
 * serves this worker no reads until a check sent after now finds it up,
 * and c's statement is routed again (to the primary or another replica).
 */
void replica_connect_failed(client_t *c, const pool_t *p);

/*
 * A read goes to replica server c->server as the Query at the head of in
 * (total bytes): a copy is kept until the first reply reaches the client
 * (replica_reply_message), so that a replica lost before that costs the client
 * nothing (replica_read_lost). -1: out of memory.
 */
int replica_keep_read(client_t *c, pbuf_t *in, size_t total);

/*
 * A message of the reply to c's kept read (c->read_again_len > 0), at the head
 * of in: 1 when it was kept back (a RowDescription, which goes out with the
 * next message) or dropped (a notice that the server is going away), 0 when
 * it goes to the client: the read is the client's from then on (what was
 * kept back went to the client first, the copy is dropped); -1 out of memory.
 */
int replica_reply_message(client_t *c, uint8_t type, pbuf_t *in, size_t total);

/* The kept copy and what was kept back go (the session's end). */
void replica_drop_read(client_t *c);

/*
 * Replica server s broke while running c's read: when nothing of its reply
 * reached the client and it was all s owed (no statement pipelined behind
 * it), the Query goes back to the head of c's input and is
 * routed again (the replica serves this worker no reads until a check sent
 * after now finds it up) and true is returned; false: the loss is c's.
 */
bool replica_read_lost(client_t *c, server_t *s);

/*
 * A statement of c's on primary server s ended with ReadyForQuery status:
 * with replica reads on, the primary's position is asked on s right away
 * (swallowed, pending message 'w'), which bounds what the statement wrote
 * or read without waiting for the checks. 1 asked, 0 not, -1 failed.
 */
int replica_ask_position(client_t *c, server_t *s, char status);

/* The DataRow (body of len bytes) that answers replica_ask_position's question. */
void replica_position_row(client_t *c, server_t *s, const uint8_t *body, size_t len);

/* The session ends: its positions go. */
void replica_client_free(client_t *c);

#endif
