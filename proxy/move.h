/*
 * move.h — an UPDATE that sets the shard key to values of other shards
 * (plan step ROUTE_STEP_MOVE), run in steps on the client's links
 * (move.c; the statements are router/route_move.c's).
 */
#ifndef PGSHARD_PROXY_MOVE_H
#define PGSHARD_PROXY_MOVE_H

#include "proxy/fanout.h"
#include "proxy/proxy.h"

/*
 * Start the UPDATE `sql` on the links of c (held for every shard of the
 * plan's step and of plan.move_to; idle but for what joining the
 * transaction sent). The client's transaction is open: the caller opened an
 * implicit one for an autocommit statement. The answer ends with
 * ReadyForQuery (a simple Query). 0, or -1 when memory runs out.
 */
int move_start(client_t *c, const char *sql);
/* The same at the client's Execute of a portal the proxy answered the Bind of:
 * the UPDATE runs with its parameters; the answer ends without ReadyForQuery. */
int move_execute(client_t *c, const char *sql, const fanout_bind_t *bind);
/* The refusal of such an UPDATE outside a transaction (after "pgshard: "). */
extern const char move_needs_tx[];

bool move_has(const move_t *mv, const server_t *s);
void move_reply(client_t *c, server_t *s); /* a member has data */
void move_member_lost(client_t *c, server_t *s);
void move_resume_members(client_t *c); /* the client drained its output */
void move_free(client_t *c);

#endif
