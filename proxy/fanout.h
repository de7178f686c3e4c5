/*
 * fanout.h — a statement on several shards (fanout.c): the members run it
 * at once and their replies are merged into one answer. The state of one
 * is in fanout_state.h.
 */
#ifndef PGSHARD_PROXY_FANOUT_H
#define PGSHARD_PROXY_FANOUT_H

#include "proxy/proxy.h"

/* Run a simple Query on the client's links to every shard of c->plan (all are
 * held and idle): `sql` as is, or per shard for a split INSERT. Consumes
 * nothing from the client; the caller drains the Query. With !ready the
 * merged answer ends without ReadyForQuery (an Execute the proxy runs this
 * way; the client's Sync gets it). 0, or -1. */
int fanout_query(client_t *c, const char *sql, bool ready);

/* A Bind the proxy answered for a statement on several shards, run at its Execute. */
typedef struct fanout_bind {
	const uint8_t *params; /* from the parameter format codes to the last value, as sent */
	size_t params_len;
	const uint8_t *results; /* result format codes: int16 count, codes */
	size_t results_len;
	const uint8_t *types; /* the statement's parameter types: int32 OIDs */
	int16_t n_types;
	const route_param_t *values; /* the parameters, decoded, for the router */
	int n_values;
	bool describe;      /* the client sent Describe for the portal */
	bool describe_only; /* and no Execute: Parse/Bind/Describe only */
} fanout_bind_t;

/* The extended protocol's fan-out: every member runs Parse/Bind/Execute/Sync of sql
 * with the client's parameters; ends without ReadyForQuery. 0, or -1. */
int fanout_execute(client_t *c, const char *sql, const fanout_bind_t *bind);
/* How a statement the proxy runs for a cursor over several shards differs (cursor.c). */
struct cursor_at;
typedef struct fanout_opts {
	struct cursor_at *cur; /* a FETCH or MOVE of `count` rows (-1: ALL) from this cursor */
	int64_t count;
	bool move;
	bool portal; /* for an Execute of a portal (portal_rows its row limit, 0 none):
	                the rows end with PortalSuspended when the limit is reached,
	                else with "SELECT n" */
	int32_t portal_rows;
	bool portal_declare; /* the DECLARE behind such a portal */
	bool quiet;          /* the client gets no tag, NoData or RowDescription of it (errors
	                        go out) */
} fanout_opts_t;
/* fanout_query or fanout_execute (bind not NULL), with those differences. 0, or -1. */
int fanout_run(client_t *c, const char *sql, bool ready, const fanout_bind_t *bind,
               const fanout_opts_t *o);
void fanout_reply(client_t *c, server_t *s); /* a member has data */
bool fanout_has(const fanout_t *f, const server_t *s);
/* CopyData, CopyDone, CopyFail from the client during a fan-out COPY. */
int fanout_copy_message(client_t *c, uint8_t type, const uint8_t *msg, size_t total);
/* Where a fan-out's COPY FROM STDIN is. */
typedef enum fanout_copy {
	FANOUT_NOT_COPY,
	FANOUT_COPY_STARTING, /* CopyInResponse not sent yet: the client's rows wait */
	FANOUT_COPY_OPEN,     /* the client copies in */
	FANOUT_COPY_DONE,     /* CopyDone or CopyFail came, or the copy failed */
} fanout_copy_t;
fanout_copy_t fanout_copy_state(const fanout_t *f);
/* Any other message meanwhile (the caller consumes it). */
void fanout_copy_unexpected(client_t *c, uint8_t type);
void fanout_member_lost(client_t *c, server_t *s);
void fanout_free(client_t *c);
void fanout_resume_members(client_t *c); /* the client drained its output */

#endif
