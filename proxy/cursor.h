/*
 * cursor.h — the SQL cursors of a session (cursor.c): where each was
 * declared, so that FETCH, MOVE and CLOSE follow it; and a cursor over
 * several shards, whose fetches page a scatter-gather merge.
 */
#ifndef PGSHARD_PROXY_CURSOR_H
#define PGSHARD_PROXY_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/fanout_state.h"
#include "proxy/proxy.h"
#include "router/gather.h"
#include "router/shardmap.h"

typedef struct cursor_at {
	char name[64];
	int shard;   /* the shard it was declared on; -1: on several (below) */
	bool hold;   /* WITH HOLD: it outlives its transaction */
	bool portal; /* pgshard's own, behind a portal the client executes in parts
	                (extended.c); held when declared outside a transaction block, closed
	                at the client's Sync then */

	/* over several shards: each has a SCROLL cursor of this name over its shard query */
	gather_plan_t *gp;  /* how their rows merge (a reference) */
	shard_set_t shards; /* where it was declared */
	shard_set_t done;   /* those with no rows left */
	int64_t skip;       /* OFFSET rows still to skip */
	int64_t left;       /* LIMIT rows still to send, -1: all */
} cursor_at_t;

/* The refusal of a backward or absolute fetch from a cursor over several shards (%s: it). */
#define CURSOR_FORWARD_ONLY                                                                        \
	"pgshard: cursor \"%s\" reads several shards, so it is read forward only (FETCH n, NEXT, " \
	"FORWARD n, ALL, and MOVE likewise); for other directions declare it with a condition "    \
	"on the shard key"

cursor_at_t *cursor_find(const client_t *c, const char *name); /* NULL: not known */
/* A cursor declared on one shard. 0, or -1 out of memory. */
int cursor_note(client_t *c, const char *name, int shard, bool hold);
/* The DECLARE of f->gp (gather_plan_t.cursor) ran on the members of f: a cursor over their
 * shards (a portal's declared over a final query: over the first member's). 0, or -1 out
 * of memory. */
int cursor_note_several(client_t *c, const fanout_t *f);
/* Cursors WITH HOLD keep the session's links to their shards. */
bool cursor_keeps_links(const client_t *c);
/*
 * At the client's Sync outside a transaction block, the portals' own cursors
 * go: *sql (malloc'd) closes them on the shards in *on, and they are
 * forgotten. 1 when there are some, 0 none, -1 out of memory.
 */
int cursor_close_portals(client_t *c, shard_set_t *on, char **sql);
void cursor_forget(client_t *c, const char *name); /* NULL: every one */
void cursor_tx_end(client_t *c);                   /* its cursors but those WITH HOLD go */
/*
 * Where a statement on a SQL cursor (p->cursor_op) runs. On one shard: the
 * shard (DECLARE notes it there; FETCH, MOVE and CLOSE go where their
 * cursor was declared, or to `shard` when it is not known, whose server
 * then says it does not exist), or -1 when memory ran out. On several (a
 * cursor over several shards; CLOSE ALL when the cursors are on several):
 * -2, with p's step made an EACH on those shards; the caller runs it (a
 * FETCH or MOVE by fanout_fetch). Once the statement is sent, cursor_ran
 * (CLOSE forgets its cursor).
 */
int cursor_route(client_t *c, route_plan_t *p, int shard);
void cursor_ran(client_t *c, const route_plan_t *p);

/* The shards a forward FETCH asks: those with rows left, or one to describe the rows. */
void cursor_fetch_shards(const cursor_at_t *cur, shard_set_t *out);

/*
 * A forward FETCH or MOVE of `count` rows (-1: ALL) from a cursor over
 * several shards: the shards to ask (those with rows left, or one to
 * describe the rows when none has), and the fan-out's part: each asked
 * shard fetches as many rows as the merge may need, and the merge sends
 * (FETCH) or counts (MOVE) `count` of them, OFFSET and LIMIT kept across
 * fetches.
 */
int cursor_fetch_setup(fanout_t *f, cursor_at_t *cur, int64_t count, bool move);
/*
 * The shards answered the fetch: each gives back the rows it sent that the
 * merge did not use (MOVE BACKWARD). 1 when it waits for that, 0 when the
 * fetch is over.
 */
int cursor_fetch_end(client_t *c, fanout_t *f);

#endif
