/*
 * join.h — a SELECT joining two sharded tables across shards, run in steps
 * on the client's links (join.c; plan step ROUTE_STEP_JOIN, its steps
 * router/join_plan.h's).
 */
#ifndef PGSHARD_PROXY_JOIN_H
#define PGSHARD_PROXY_JOIN_H

#include "proxy/fanout.h"
#include "proxy/proxy.h"

/* Whether the plan's step is a join across shards. */
bool join_runs(const route_plan_t *p);
/*
 * Start the join `sql` of c->plan on the links of c (held for every shard of
 * the plan's step, idle but for what joining the transaction sent). The
 * answer ends with ReadyForQuery (a simple Query). 0, or -1 when memory runs
 * out.
 */
int join_start(client_t *c, const char *sql);
/* The same at the client's Execute of a portal the proxy answered the Bind of:
 * the client's result formats; the answer ends without ReadyForQuery. */
int join_execute(client_t *c, const char *sql, const fanout_bind_t *bind);

bool join_has(const join_t *j, const server_t *s);
void join_reply(client_t *c, server_t *s); /* a member has data */
void join_member_lost(client_t *c, server_t *s);
void join_resume_members(client_t *c); /* the client drained its output */
void join_free(client_t *c);

#endif
