/*
 * gather_sql.c — the SQL text that runs a gather plan (see gather_sql.h):
 * held partial rows as literals, the final query, and the catalog queries.
 */
#define _GNU_SOURCE /* memmem */
#include "router/gather_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char gather_collation_sql[] =
    "SELECT datcollate FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) "
    "pg_catalog.current_database()";

/*
 * Partial results travel as text. With extra_float_digits 1 (the default)
 * or more, a float's text reads back as the same float; below 1 it is
 * rounded, and the proxy refuses to combine floats then.
 */
const char gather_float_digits_sql[] = "SHOW extra_float_digits";

/* ---- text ---- */

typedef struct text {
	char *p;
	size_t len, cap;
	bool failed;
} text_t;

static void put(text_t *b, const void *data, size_t len)
{
	if (b->failed)
		return;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void put_str(text_t *b, const char *s)
{
	put(b, s, strlen(s));
}

/* ---- held rows ---- */

/*
 * A value as a dollar-quoted literal, $pgs$...$pgs$ (with a longer tag when
 * the value contains that one). Nothing inside is escaped, so nothing
 * depends on the session: not standard_conforming_strings, not
 * backslash_quote, and not a client encoding such as SJIS whose multibyte
 * characters may end in the byte of a backslash (escaping bytes one by one
 * would cut such a character in two). The server converts the query to its
 * own encoding before it reads the quotes, and no multibyte character of
 * a client encoding PostgreSQL accepts has '$' as one of its bytes.
 */
static void put_literal(text_t *b, const uint8_t *data, size_t len)
{
	char tag[32];
	int n = 0;

	snprintf(tag, sizeof tag, "$pgs$");
	while (len > 0 && memmem(data, len, tag, strlen(tag)) != NULL)
		snprintf(tag, sizeof tag, "$pgs%d$", ++n);
	put_str(b, tag);
	put(b, data, len);
	put_str(b, tag);
}

int gather_rows_add(gather_rows_t *r, const rowcmp_field_t *values, int n)
{
	text_t b = {r->p, r->len, r->cap, r->failed};

	put_str(&b, r->n > 0 ? ",(" : "(");
	for (int i = 0; i < n; i++) {
		if (i > 0)
			put_str(&b, ", ");
		if (values[i].len < 0)
			put_str(&b, "NULL");
		else
			put_literal(&b, values[i].data, (size_t)values[i].len);
	}
	put_str(&b, ")");
	r->p = b.p;
	r->len = b.len;
	r->cap = b.cap;
	r->failed = b.failed;
	if (r->failed)
		return -1;
	r->n++;
	return 0;
}

void gather_rows_free(gather_rows_t *r)
{
	free(r->p);
	memset(r, 0, sizeof *r);
}

/* ---- types ---- */

static const struct {
	uint32_t oid;
	const char *name;
} type_names[] = {
    {16, "bool"},         {17, "bytea"},       {18, "\"char\""},      {19, "name"},
    {20, "int8"},         {21, "int2"},        {23, "int4"},          {25, "text"},
    {26, "oid"},          {114, "json"},       {142, "xml"},          {650, "cidr"},
    {700, "float4"},      {701, "float8"},     {790, "money"},        {829, "macaddr"},
    {869, "inet"},        {1042, "bpchar"},    {1043, "varchar"},     {1082, "date"},
    {1083, "time"},       {1114, "timestamp"}, {1184, "timestamptz"}, {1186, "interval"},
    {1266, "timetz"},     {1560, "bit"},       {1562, "varbit"},      {1700, "numeric"},
    {2950, "uuid"},       {3802, "jsonb"},     {1000, "bool[]"},      {1001, "bytea[]"},
    {1005, "int2[]"},     {1007, "int4[]"},    {1016, "int8[]"},      {1009, "text[]"},
    {1015, "varchar[]"},  {1014, "bpchar[]"},  {1021, "float4[]"},    {1022, "float8[]"},
    {1231, "numeric[]"},  {1182, "date[]"},    {1115, "timestamp[]"}, {1185, "timestamptz[]"},
    {1187, "interval[]"}, {2951, "uuid[]"},    {3807, "jsonb[]"},     {199, "json[]"},
};

const char *gather_type_name(uint32_t oid)
{
	for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (type_names[i].oid == oid)
			return type_names[i].name;
	return NULL;
}

int gather_unnamed_type(const uint32_t *types, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (gather_type_name(types[i]) == NULL && (names == NULL || names[i] == NULL))
			return i;
	return -1;
}

char *gather_types_sql(const uint32_t *types, int n)
{
	text_t sql = {NULL, 0, 0, false};
	char oid[24];
	int k = 0;

	put_str(&sql, "SELECT t.oid::pg_catalog.int8, pg_catalog.format_type(t.oid, NULL) FROM "
	              "pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) ANY ('{");
	for (int i = 0; i < n; i++) {
		if (gather_type_name(types[i]) != NULL)
			continue;
		snprintf(oid, sizeof oid, "%s%u", k++ > 0 ? "," : "", types[i]);
		put_str(&sql, oid);
	}
	put_str(&sql, "}'::pg_catalog.oid[])");
	if (sql.failed) {
		free(sql.p);
		return NULL;
	}
	return sql.p;
}

/* A held column's type as SQL: a built-in one, or the name the catalog gave (format_type). */
static void put_type(text_t *b, const uint32_t *types, const char *const *names, int col)
{
	const char *name = gather_type_name(types[col]);

	if (name != NULL) {
		put_str(b, "pg_catalog.");
		put_str(b, name);
	} else {
		put_str(b, names[col]);
	}
}

/* The type avg() divides a held sum in: PostgreSQL's avg result type for that sum. */
static const char *avg_type(uint32_t oid)
{
	switch (oid) {
	case 700:
	case 701:
		return "float8";
	case 1186:
		return "interval";
	default:
		return "numeric";
	}
}

/*
 * The held rows as a relation with columns c0, c1, ... of the shards' types:
 * (SELECT v.c0::type, ... FROM (VALUES ($pgs$..$pgs$, ...), ...) AS v(c0, ...)) AS alias.
 * The values are text literals cast by the types' input functions, as the
 * shards' text output of them was made to be read back; no rows: NULLs WHERE false.
 */
static void put_rows(text_t *sql, const uint32_t *types, const char *const *names, int n,
                     const gather_rows_t *rows, const char *alias)
{
	bool any = rows != NULL && rows->n > 0;
	char col[48];

	put_str(sql, "(SELECT ");
	for (int i = 0; i < n; i++) {
		if (any)
			snprintf(col, sizeof col, "%sv.c%d::", i > 0 ? ", " : "", i);
		else
			snprintf(col, sizeof col, "%sNULL::", i > 0 ? ", " : "");
		put_str(sql, col);
		put_type(sql, types, names, i);
		snprintf(col, sizeof col, " AS c%d", i);
		put_str(sql, col);
	}
	if (any) {
		put_str(sql, " FROM (VALUES ");
		put(sql, rows->p, rows->len);
		put_str(sql, ") AS v");
		for (int i = 0; i < n; i++) {
			snprintf(col, sizeof col, "%sc%d", i > 0 ? ", " : "(", i);
			put_str(sql, col);
		}
		put_str(sql, ")");
	} else {
		put_str(sql, " WHERE false");
	}
	put_str(sql, ") AS ");
	put_str(sql, alias);
}

static int fail(char sqlstate[6], const char *code, char *err, size_t errlen, const char *msg)
{
	memcpy(sqlstate, code, 6);
	snprintf(err, errlen, "%s", msg);
	return -1;
}

int gather_final_sql(const gather_plan_t *plan, const uint32_t *types, const char *const *names,
                     int n, const gather_rows_t *rows, char **out, char sqlstate[6], char *err,
                     size_t errlen)
{
	text_t sql = {NULL, 0, 0, false};
	int unnamed = gather_unnamed_type(types, names, n);

	*out = NULL;
	sqlstate[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	if (unnamed >= 0) {
		memcpy(sqlstate, "0A000", 6);
		snprintf(err, errlen,
		         "the shards' partial results have a column of type oid %u (column %d) "
		         "that the catalog does not name; add a condition on the shard key",
		         types[unnamed], unnamed + 1);
		return -1;
	}
	if (rows != NULL && rows->failed)
		return fail(sqlstate, "53200", err, errlen, "out of memory");
	for (int i = 0; i < plan->n_parts; i++) {
		const gather_part_t *p = &plan->parts[i];

		switch (p->kind) {
		case GATHER_PART_TEXT:
			put_str(&sql, p->text);
			break;
		case GATHER_PART_ROWS:
			put_rows(&sql, types, names, n, rows, p->text);
			break;
		case GATHER_PART_TYPE:
		case GATHER_PART_AVG:
			if (p->column < 0 || p->column >= n) {
				free(sql.p);
				return fail(
				    sqlstate, "XX000", err, errlen,
				    "the final query names a partial result that the shards "
				    "did not return");
			}
			if (p->kind == GATHER_PART_AVG) {
				put_str(&sql, "pg_catalog.");
				put_str(&sql, avg_type(types[p->column]));
			} else {
				put_type(&sql, types, names, p->column);
			}
			break;
		}
	}
	if (sql.failed || sql.p == NULL) {
		free(sql.p);
		return fail(sqlstate, "53200", err, errlen, "out of memory");
	}
	*out = sql.p;
	return 0;
}
