/*
 * verify_sql.c — the SQL of the consistency checks (see verify_sql.h).
 *
 * Only names that come from the catalog (already quoted by quote_ident) or
 * from the config (quoted here), integers and quoted literals are pasted
 * into the statements.
 */
#define _GNU_SOURCE
#include "router/verify_sql.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"

const char verify_sql_session[] =
    "SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'; SET statement_timeout = 0; "
    "SET client_encoding = 'UTF8'";

const char verify_sql_begin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const char verify_sql_end[] = "ROLLBACK";
const char verify_sql_pin_path[] = "SET search_path = pg_catalog, pg_temp";

/* the cursor both cursor statements declare */
#define CURSOR "pgshard_verify"
const char verify_sql_fetch[] = "FETCH 10000 FROM " CURSOR;
const char verify_sql_close[] = "CLOSE " CURSOR;

/* What open_memstream wrote into *buf (set by fclose), or NULL when memory ran out. */
static char *finish(FILE *f, char **buf)
{
	bool bad = ferror(f) != 0;

	if (fclose(f) != 0 || bad) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

char *verify_sql_table(const char *cfg_name)
{
	char *copy = strdup(cfg_name), *dot, *quoted = NULL, *lit = NULL, *buf = NULL;
	size_t len;
	FILE *f;

	if (copy == NULL)
		return NULL;
	/* config names join their parts with '.', which no part holds: schema.rel, or db.schema.rel
	 */
	dot = strrchr(copy, '.');
	if (dot != NULL) {
		char *schema;

		*dot = '\0';
		schema = strrchr(copy, '.');
		quoted = route_quote_relation(schema != NULL ? schema + 1 : copy, dot + 1);
	} else {
		quoted = route_quote_relation(NULL, copy);
	}
	if (quoted != NULL)
		lit = route_quote_literal(quoted);
	f = lit != NULL ? open_memstream(&buf, &len) : NULL;
	if (f != NULL) {
		fprintf(f,
		        "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
		        "OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), "
		        "(SELECT pg_catalog.string_agg('t.' OPERATOR(pg_catalog.||) "
		        "pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord) "
		        "FROM pg_catalog.pg_index AS i CROSS JOIN LATERAL "
		        "pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
		        "JOIN pg_catalog.pg_attribute AS a ON a.attrelid OPERATOR(pg_catalog.=) "
		        "i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum "
		        "WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary), "
		        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_index AS i CROSS JOIN "
		        "LATERAL pg_catalog.unnest(i.indkey) AS k(attnum) "
		        "WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisprimary) "
		        "FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n "
		        "ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
		        "WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s)",
		        lit);
		buf = finish(f, &buf);
	}
	free(copy);
	free(quoted);
	free(lit);
	return buf;
}

char *verify_sql_key_expr(const char *pk, int n_pk)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	if (n_pk <= 0 || pk == NULL)
		fputs("t::text", f);
	else if (n_pk == 1)
		fprintf(f, "(%s)::text", pk);
	else
		fprintf(f, "ROW(%s)::text", pk);
	return finish(f, &buf);
}

/*
 * The rows of rel as (hk: the key hash, k: the key text, r: the row text).
 * The key text is hashed with COLLATE "C": its bytes, whatever the
 * database's collation.
 */
static void rows_of(FILE *f, const char *rel, const char *key_expr)
{
	fprintf(f,
	        "(SELECT hashtextextended(%s COLLATE \"C\", 0) >> 32 AS hk, %s AS k, "
	        "t::text COLLATE \"C\" AS r FROM %s AS t) AS s",
	        key_expr, key_expr, rel);
}

/* " WHERE the key hash's range of `level` is one of ranges" (nothing at level 0). */
static void in_ranges(FILE *f, int level, const int64_t *ranges, int n)
{
	if (level <= 0)
		return;
	fprintf(f, " WHERE (hk >> %d) = ANY ('{", 32 - 8 * level);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%" PRId64, i > 0 ? "," : "", ranges[i]);
	fputs("}'::bigint[])", f);
}

char *verify_sql_level(const char *rel, const char *key_expr, int level, const int64_t *parents,
                       int n_parents)
{
	char *buf = NULL;
	size_t len;
	FILE *f;

	if (level < 1 || level > VERIFY_LEVELS)
		return NULL;
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	fprintf(f,
	        "SELECT hk >> %d AS range, count(*), sum(hashtextextended(r, 0)), "
	        "sum(hashtextextended(r, 1)) FROM ",
	        32 - 8 * level);
	rows_of(f, rel, key_expr);
	in_ranges(f, level - 1, parents, n_parents);
	fputs(" GROUP BY 1 ORDER BY 1", f);
	return finish(f, &buf);
}

char *verify_sql_rows_cursor(const char *rel, const char *key_expr, bool has_pk, int level,
                             const int64_t *ranges, int n_ranges)
{
	char *buf = NULL;
	size_t len;
	FILE *f;

	if (level < 1 || level > VERIFY_LEVELS)
		return NULL;
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	fputs("DECLARE " CURSOR " NO SCROLL CURSOR FOR ", f);
	fputs(has_pk ? "SELECT hk, k, md5(r), 1 FROM " : "SELECT hk, k, '', count(*) FROM ", f);
	rows_of(f, rel, key_expr);
	in_ranges(f, level, ranges, n_ranges);
	if (!has_pk)
		fputs(" GROUP BY hk, k", f);
	fputs(" ORDER BY hk, k COLLATE \"C\"", f);
	return finish(f, &buf);
}

/* A column name of the config as a quoted identifier. */
static void put_ident(FILE *f, const char *name)
{
	fputc('"', f);
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
}

/* A range bound of the config as a constant of the map's key type. */
static bool put_bound(FILE *f, cfg_key_type_t type, const char *value)
{
	char *lit = route_quote_literal(value);

	if (lit == NULL)
		return false;
	if (type == CFG_KEY_TEXT)
		fprintf(f, "%s COLLATE \"C\"", lit);
	else
		fprintf(f, "%s::pg_catalog.%s", lit, type == CFG_KEY_BIGINT ? "int8" : "uuid");
	free(lit);
	return true;
}

char *verify_sql_placement_cursor(const char *rel, const char *key, const cfg_map_t *map, int shard)
{
	static const char *const types[] = {"int8", "text", "uuid"};
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	bool ok = true;

	if (f == NULL)
		return NULL;
	fputs("DECLARE " CURSOR " NO SCROLL CURSOR FOR SELECT k FROM (SELECT (t.", f);
	put_ident(f, key);
	fprintf(f, ")::pg_catalog.%s AS k FROM %s AS t) AS s", types[map->key], rel);
	if (map->kind == CFG_MAP_RANGE) {
		const char *k = map->key == CFG_KEY_TEXT ? "k COLLATE \"C\"" : "k";

		/* a NULL key has no range: it is never where the map puts it */
		fputs(" WHERE k IS NULL OR NOT (false", f);
		for (int i = 0; i < map->n_ranges && ok; i++) {
			const cfg_range_t *r = &map->ranges[i];

			if (r->shard != shard)
				continue;
			fputs(" OR (true", f);
			if (r->lo != NULL) {
				fprintf(f, " AND %s OPERATOR(pg_catalog.>=) ", k);
				ok = put_bound(f, map->key, r->lo);
			}
			if (r->hi != NULL && ok) {
				fprintf(f, " AND %s OPERATOR(pg_catalog.<) ", k);
				ok = put_bound(f, map->key, r->hi);
			}
			fputc(')', f);
		}
		fputc(')', f);
	}
	buf = finish(f, &buf);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *verify_sql_count(const char *rel)
{
	char *buf = NULL;
	size_t len;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "SELECT count(*) FROM %s", rel);
	return finish(f, &buf);
}
