/*
 * classify.h — what a statement does to session state.
 *
 * Under transaction pooling a client's server connection changes between
 * transactions, so anything a statement leaves behind in the *session* must
 * either be replayed on the next server connection (SET, RESET) or keep the
 * client on its connection (LISTEN, temporary tables, session advisory locks,
 * SQL-level PREPARE, cursors WITH HOLD). This module answers, for a query
 * string, which of those it contains.
 *
 * Most statements contain none, and they must cost almost nothing: a lexical
 * pass looks only at the first word of each statement in the string (and
 * for the word "advisory"), and only a statement whose first word can have a
 * session effect is parsed with PostgreSQL's grammar (libpg_query).
 *
 * Pure: strings in, a heap-allocated description out.
 */
#ifndef PGSHARD_ROUTER_CLASSIFY_H
#define PGSHARD_ROUTER_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

typedef enum route_set_kind {
	ROUTE_SET_VALUE, /* SET name ...: replay `stmt` */
	ROUTE_RESET,     /* RESET name / SET name TO DEFAULT: forget name */
	ROUTE_RESET_ALL, /* RESET ALL, DISCARD ALL: forget everything */
} route_set_kind_t;

typedef struct route_set {
	route_set_kind_t kind;
	char *name; /* lower-case parameter name; NULL for ROUTE_RESET_ALL */
	char *stmt; /* ROUTE_SET_VALUE: the statement text to replay, without ';' */
} route_set_t;

typedef struct route_effects {
	route_set_t *sets; /* session-level SET/RESET in statement order */
	int n_sets;
	bool drop_statements; /* DISCARD ALL / DEALLOCATE ALL: every prepared statement is gone */
	bool pin;             /* the session now holds state tied to its server connection */
	const char *pin_why;  /* static text naming what pinned it */
} route_effects_t;

/*
 * Scan a query string (one or several statements). Returns 0 and fills *out
 * (which the caller frees with route_effects_free) — out->n_sets == 0 and
 * !out->pin for the common case, without allocating. Returns -1 only when
 * memory runs out. Statements the grammar rejects have no effect: the server
 * will reject them too.
 */
int route_scan_effects(const char *sql, size_t len, route_effects_t *out);
void route_effects_free(route_effects_t *e);
/* Free an array of route_set_t (and the strings in it). */
void route_sets_free(route_set_t *sets, int n);

/* Quote a string as an SQL literal ('...' with '' doubling, E'' when it has a
 * backslash) into a new heap string. */
char *route_quote_literal(const char *s);

/* rel, or schema.rel when schema is given, as quoted identifiers ("..." with " doubled: the
 * names exactly, whatever their case), into a new heap string. */
char *route_quote_relation(const char *schema, const char *rel);

/*
 * The catalog query for the columns of `relation` (quoted, as route_quote_relation writes
 * it), in order, dropped ones left out: attname, and atttypid when with_types; only those an
 * INSERT can set (not generated) when insertable. When there is no such table: an error when
 * must_exist, else no rows. A new heap string, NULL when memory runs out.
 */
char *route_columns_sql(const char *relation, bool with_types, bool insertable, bool must_exist);

#endif
