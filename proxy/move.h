/*
 * move.h — statements whose rows are written on the shards their keys map
 * to, run in steps on the client's links (move.c): an UPDATE that sets the
 * shard key to values of other shards (plan step ROUTE_STEP_MOVE, the
 * statements router/route_move.c's), and an INSERT ... SELECT whose rows go
 * to the shards of their keys (ROUTE_STEP_INSERT_SELECT, router/route_insel.c).
 */
#ifndef PGSHARD_PROXY_MOVE_H
#define PGSHARD_PROXY_MOVE_H

#include "proxy/fanout.h"
#include "proxy/proxy.h"

/* Whether the plan's step is one of move.c's. */
bool move_runs(const route_plan_t *p);
/*
 * Start the UPDATE or INSERT `sql` of c->plan on the links of c (held for
 * every shard of the plan's step and of plan.move_to; idle but for what
 * joining the transaction sent). The client's transaction is open: the caller opened an
 * implicit one for an autocommit statement. The answer ends with
 * ReadyForQuery (a simple Query). 0, or -1 when memory runs out.
 */
int move_start(client_t *c, const char *sql);
/* The same at the client's Execute of a portal the proxy answered the Bind of:
 * the UPDATE runs with its parameters; the answer ends without ReadyForQuery. */
int move_execute(client_t *c, const char *sql, const fanout_bind_t *bind);
/* The refusal of such a statement outside a transaction (after "pgshard: "). */
const char *move_needs_tx(const route_plan_t *p);

bool move_has(const move_t *mv, const server_t *s);
void move_reply(client_t *c, server_t *s); /* a member has data */
void move_member_lost(client_t *c, server_t *s);
void move_resume_members(client_t *c); /* the client drained its output */
void move_free(client_t *c);

#endif
