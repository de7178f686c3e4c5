/*
 * inscols.h — an INSERT ... VALUES into a sharded table without a column
 * list gets one (inscols.c), over the simple and the extended protocol
 * alike. The router cannot route it by its key without knowing which value
 * is the key (plan.needs_columns); the table's columns come from the
 * worker's cache (colcache.c), or from the default shard's catalog, asked
 * on the client's behalf while its message waits at the head of its input.
 */
#ifndef PGSHARD_PROXY_INSCOLS_H
#define PGSHARD_PROXY_INSCOLS_H

#include "proxy/proxy.h"
#include "proxy/wire.h"

/*
 * sql, which p (its plan) refused with needs_columns, with its column list
 * written in: 1, *out malloc'd. 0: wait (the catalog is asked and its
 * answer resumes the client, or a server is awaited). -1: refuse it as
 * planned: p keeps the router's 0A000 (the columns could not be had), or
 * holds PostgreSQL's own 42601 when its rows have more values than the
 * table has columns.
 */
int inscols_write(client_t *c, const char *sql, route_plan_t *p, char **out);

/* What inscols_parse did with the Parse at the head of the input. */
enum {
	INSCOLS_FAILED = -1, /* out of memory: the session fails */
	INSCOLS_NONE = 0,    /* nothing to write in: the Parse goes on as it is */
	INSCOLS_REWRITTEN,   /* the head is now the Parse with its column list */
	INSCOLS_WAIT,        /* the catalog is asked, or a server awaited */
	INSCOLS_TOO_MANY,    /* 42601 in c->plan: the caller answers it */
};

/*
 * The Parse m at the head of `in` (*total bytes): when it is an INSERT ...
 * VALUES into a sharded table without a column list, it is replaced by the
 * same Parse (name, parameter types) of the INSERT with its column list,
 * so that what is remembered, prepared on shards and routed at each Bind is
 * the rewritten statement. When the columns cannot be had, the Parse goes
 * on as it is and its Bind is refused as before (INSCOLS_NONE).
 */
int inscols_parse(client_t *c, pbuf_t *in, size_t *total, const wire_parse_msg_t *m);

#endif
