/*
 * gather_sql.h — the SQL text the proxy sends to run a gather plan
 * (router/gather.h): the final query over the held partial rows, and the
 * small catalog queries around it (the database's collation, the session's
 * extra_float_digits, the names of types that are not built in).
 *
 * The proxy holds the shards' partial rows with gather_rows_add, as the
 * text of a VALUES list, and asks gather_final_sql for the final query
 * once every shard is done: the plan's parts joined, the held rows written
 * as a relation of the shards' column types.
 *
 * Queries the proxy injects run in a client's session, under its
 * search_path: every function, operator and type in them is named with its
 * schema (pg_catalog.x, OPERATOR(pg_catalog.=)), so that no user's own
 * objects can change their answers.
 *
 * Pure: strings and values in, strings out.
 */
#ifndef PGSHARD_ROUTER_GATHER_SQL_H
#define PGSHARD_ROUTER_GATHER_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/gather.h"
#include "router/rowcmp.h"

/* The database's collation: one row, pg_database.datcollate. */
extern const char gather_collation_sql[];
/* The session's extra_float_digits: one row. */
extern const char gather_float_digits_sql[];

/* Partial rows held as SQL text: "(v, v, ...),(v, ...)". */
typedef struct gather_rows {
	char *p;
	size_t len, cap;
	uint64_t n;  /* rows held */
	bool failed; /* out of memory: the text is incomplete */
} gather_rows_t;

/*
 * Hold one row of n values (a field with len < 0 is NULL). Each value is a
 * dollar-quoted literal, $pgs$...$pgs$ (a longer tag when the value holds
 * that one), so that nothing inside needs escaping and nothing depends on
 * the session's standard_conforming_strings or client encoding. 0, or -1
 * when memory runs out (failed is set, and stays).
 */
int gather_rows_add(gather_rows_t *r, const rowcmp_field_t *values, int n);
void gather_rows_free(gather_rows_t *r);

/* The name of a built-in type ("int8", "\"char\"", "text[]"), NULL for any other OID. */
const char *gather_type_name(uint32_t oid);

/*
 * The first of n columns whose type is neither built in nor named in
 * names (names may be NULL, and names[i] NULL), or -1 when all are named.
 */
int gather_unnamed_type(const uint32_t *types, const char *const *names, int n);

/*
 * The catalog query that names the types of n columns that are not built
 * in: rows of (oid::int8, format_type(oid, NULL)). malloc'd; NULL when
 * memory runs out.
 */
char *gather_types_sql(const uint32_t *types, int n);

/*
 * The final query of a finalizing plan: its parts, with the held rows as
 * (SELECT v.c0::type, ... FROM (VALUES ...) AS v(c0, ...)) AS alias (no
 * rows: NULL::type, ... WHERE false) and the held columns' types (types[i]
 * built in, else names[i]). 0 with *out malloc'd; -1 with a SQLSTATE and a
 * message: "XX000" when a part names a column past n, "0A000" when a type
 * has no name, "53200" when memory runs out.
 */
int gather_final_sql(const gather_plan_t *plan, const uint32_t *types, const char *const *names,
                     int n, const gather_rows_t *rows, char **out, char sqlstate[6], char *err,
                     size_t errlen);

#endif
