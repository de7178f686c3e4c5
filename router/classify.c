/*
 * classify.c — session effects of a query string (see classify.h).
 *
 * The lexical pass splits the string at top-level semicolons, skipping
 * string literals, quoted identifiers, dollar quotes and comments, and looks
 * at each statement's first word. Only when a first word can start a
 * statement with a session effect is the whole string parsed with
 * libpg_query, and then the typed tree decides. The lexer never decides
 * alone: a false positive costs one parse, a false negative would lose a
 * SET, so it errs towards parsing.
 */
#include "router/classify.h"
#include "router/route.h"
#include "router/sqlchars.h"
#include "router/tree_int.h"

#include <ctype.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	HEAD_NONE = 0,
	HEAD_PARSE = 1, /* first word can have a session effect */
};

static bool is_ident_char(char c)
{
	return sql_is((unsigned char)c, SQLCH_IDENT);
}

/* Skip to just after the next top-level ';' (or to the end). */
static size_t skip_statement(const char *s, size_t len, size_t i)
{
	while (i < len) {
		char c;

		/* most bytes are none of those below */
		while (i < len && !sql_is((unsigned char)s[i], SQLCH_STMT))
			i++;
		if (i == len)
			break;
		c = s[i];
		if (c == ';')
			return i + 1;
		if (c == '\'') {
			/* E'...' strings allow backslash escapes */
			bool esc = i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
			           (i < 2 || !is_ident_char(s[i - 2]));

			i++;
			while (i < len) {
				if (esc && s[i] == '\\' && i + 1 < len) {
					i += 2;
				} else if (s[i] == '\'') {
					if (i + 1 < len && s[i + 1] == '\'') {
						i += 2;
					} else {
						i++;
						break;
					}
				} else {
					i++;
				}
			}
		} else if (c == '"') {
			i++;
			while (i < len && s[i] != '"')
				i++;
			i++;
		} else if (c == '$' && (i == 0 || !is_ident_char(s[i - 1]))) {
			/* $tag$ ... $tag$; a bare $1 parameter is not a quote */
			size_t t = i + 1;

			if (t < len && sql_is((unsigned char)s[t], SQLCH_DIGIT)) {
				i++;
				continue;
			}
			/* tag characters are those of an identifier, bytes >= 0x80 included */
			while (t < len && sql_is((unsigned char)s[t], SQLCH_START | SQLCH_DIGIT))
				t++;
			if (t < len && s[t] == '$') {
				size_t taglen = t - i + 1;
				const char *end;

				end = NULL;
				for (size_t k = t + 1; k + taglen <= len; k++) {
					if (s[k] == '$' && memcmp(s + k, s + i, taglen) == 0) {
						end = s + k;
						break;
					}
				}
				i = end ? (size_t)(end - s) + taglen : len;
			} else {
				i++;
			}
		} else if ((c == '-' && i + 1 < len && s[i + 1] == '-') ||
		           (c == '/' && i + 1 < len && s[i + 1] == '*')) {
			i = route_skip_blank(s, len, i);
		} else {
			i++;
		}
	}
	return len;
}

static bool word_is(const char *w, size_t n, const char *kw)
{
	return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

static int classify_head(const char *w, size_t n)
{
	static const struct {
		const char *word;
		size_t len;
	} heads[] = {{"set", 3},    {"reset", 5},   {"discard", 7}, {"listen", 6},
	             {"create", 6}, {"prepare", 7}, {"declare", 7}, {"deallocate", 10}};

	for (size_t k = 0; k < sizeof(heads) / sizeof(heads[0]); k++)
		if (heads[k].len == n && strncasecmp(w, heads[k].word, n) == 0)
			return HEAD_PARSE;
	return HEAD_NONE;
}

/*
 * Case-insensitive substring test; needle is lower case ASCII and starts
 * with a letter (which c | 0x20 matches in either case, and nothing else).
 */
static bool contains_ci(const char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle), k;
	unsigned char first = (unsigned char)needle[0];

	for (size_t i = 0; i + n <= len; i++) {
		if (((unsigned char)s[i] | 0x20) != first)
			continue;
		for (k = 1;
		     k < n && sql_lower((unsigned char)s[i + k]) == (unsigned char)needle[k];)
			k++;
		if (k == n)
			return true;
	}
	return false;
}

static int add_set(route_effects_t *out, route_set_kind_t kind, const char *name, const char *stmt,
                   size_t stmt_len)
{
	route_set_t *sets, *s;

	sets = realloc(out->sets, sizeof(*sets) * (size_t)(out->n_sets + 1));
	if (sets == NULL)
		return -1;
	out->sets = sets;
	s = &sets[out->n_sets];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	if (name != NULL) {
		s->name = strdup(name);
		if (s->name == NULL)
			return -1;
		for (char *p = s->name; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	if (stmt != NULL) {
		s->stmt = strndup(stmt, stmt_len);
		if (s->stmt == NULL) {
			free(s->name);
			return -1;
		}
	}
	out->n_sets++;
	return 0;
}

/* Temporary by TEMP, or by being created in pg_temp (which PostgreSQL also makes temporary). */
static bool is_temp(const PgQuery__RangeVar *rv)
{
	if (rv == NULL)
		return false;
	if (rv->relpersistence != NULL && rv->relpersistence[0] == 't')
		return true;
	return rv->schemaname != NULL && strncasecmp(rv->schemaname, "pg_temp", 7) == 0;
}

static void set_pin(route_effects_t *out, const char *why)
{
	if (!out->pin) {
		out->pin = true;
		out->pin_why = why;
	}
}

/* CURSOR_OPT_HOLD in PostgreSQL's parsenodes.h */
#define PG_CURSOR_OPT_HOLD 0x0020

static int effects_of_stmt(route_effects_t *out, const PgQuery__Node *n, const char *text,
                           size_t text_len)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT: {
		const PgQuery__VariableSetStmt *v = n->variable_set_stmt;

		/* SET LOCAL and SET TRANSACTION end with the transaction */
		if (v->is_local)
			return 0;
		switch (v->kind) {
		case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
		case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_CURRENT:
			return add_set(out, ROUTE_SET_VALUE, v->name, text, text_len);
		case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
			if (strcasecmp(v->name, "SESSION CHARACTERISTICS") == 0)
				return add_set(out, ROUTE_SET_VALUE, v->name, text, text_len);
			return 0; /* SET TRANSACTION ... */
		case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
		case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
			return add_set(out, ROUTE_RESET, v->name, NULL, 0);
		case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
			return add_set(out, ROUTE_RESET_ALL, NULL, NULL, 0);
		default:
			return 0;
		}
	}
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		if (n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL) {
			out->drop_statements = true;
			return add_set(out, ROUTE_RESET_ALL, NULL, NULL, 0);
		}
		return 0;
	case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
		if (n->deallocate_stmt->name == NULL || n->deallocate_stmt->name[0] == '\0')
			out->drop_statements = true;
		return 0;
	case PG_QUERY__NODE__NODE_LISTEN_STMT:
		set_pin(out, "LISTEN");
		return 0;
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
		set_pin(out, "PREPARE");
		return 0;
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		if (n->declare_cursor_stmt->options & PG_CURSOR_OPT_HOLD)
			set_pin(out, "DECLARE ... WITH HOLD");
		return 0;
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		if (is_temp(n->create_stmt->relation))
			set_pin(out, "a temporary table");
		return 0;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		if (n->create_table_as_stmt->into && is_temp(n->create_table_as_stmt->into->rel))
			set_pin(out, "a temporary table");
		return 0;
	case PG_QUERY__NODE__NODE_VIEW_STMT:
		if (is_temp(n->view_stmt->view))
			set_pin(out, "a temporary view");
		return 0;
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		if (n->select_stmt->into_clause && is_temp(n->select_stmt->into_clause->rel))
			set_pin(out, "a temporary table");
		return 0;
	case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
		if (is_temp(n->create_seq_stmt->sequence))
			set_pin(out, "a temporary sequence");
		return 0;
	default:
		return 0;
	}
}

/*
 * libpg_query recurses once per nesting level of an expression and has no
 * stack depth check: "SET x = 1+1+...+1" with some 23,000 operators
 * overflows an 8 MB thread stack and would take the whole proxy down.
 * Statements that are long, or nested deeper than the router's lexical
 * estimate allows (route_sql_depth_estimate), are not parsed; keeping the
 * client on its server connection is the answer that is always correct.
 */
#define CLASSIFY_MAX_PARSE_LEN (64 * 1024)

static int parse_effects(const char *sql, size_t len, route_effects_t *out)
{
	PgQueryProtobufParseResult res;
	PgQuery__ParseResult *tree;
	char *copy;
	int rc = 0;

	/* libpg_query wants a NUL-terminated string */
	copy = strndup(sql, len);
	if (copy == NULL)
		return -1;
	route_parse_counted();
	res = pg_query_parse_protobuf(copy);
	if (res.error != NULL) {
		/* the server rejects it too, and then nothing took effect */
		pg_query_free_protobuf_parse_result(res);
		free(copy);
		return 0;
	}
	tree = pg_query__parse_result__unpack(NULL, res.parse_tree.len,
	                                      (const uint8_t *)res.parse_tree.data);
	if (tree == NULL) {
		pg_query_free_protobuf_parse_result(res);
		free(copy);
		return -1;
	}
	for (size_t i = 0; i < tree->n_stmts && rc == 0; i++) {
		const PgQuery__RawStmt *raw = tree->stmts[i];
		size_t at = (size_t)raw->stmt_location;
		size_t n = raw->stmt_len > 0 ? (size_t)raw->stmt_len : len - at;

		if (raw->stmt == NULL || at > len || n > len - at)
			continue;
		rc = effects_of_stmt(out, raw->stmt, copy + at, n);
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(res);
	free(copy);
	return rc;
}

int route_scan_effects(const char *sql, size_t len, route_effects_t *out)
{
	bool need_parse = false;
	size_t i = 0, wend;

	memset(out, 0, sizeof(*out));
	while (i < len && !need_parse) {
		size_t w;

		i = route_skip_blank(sql, len, i);
		w = i;
		while (i < len && is_ident_char(sql[i]))
			i++;
		wend = i;
		if (i > w && classify_head(sql + w, i - w) == HEAD_PARSE)
			need_parse = true;
		i = skip_statement(sql, len, i);
		/* SELECT ... INTO TEMP t creates a table: worth a parse only then */
		if (!need_parse &&
		    (word_is(sql + w, wend - w, "select") || word_is(sql + w, wend - w, "with")) &&
		    contains_ci(sql + wend, i - wend, "temp"))
			need_parse = true;
	}
	if (contains_ci(sql, len, "advisory_lock"))
		set_pin(out, "a session advisory lock");
	if (!need_parse)
		return 0;
	if (len > CLASSIFY_MAX_PARSE_LEN) {
		set_pin(out, "a statement too long to inspect");
		return 0;
	}
	if (route_sql_depth_estimate(sql, len) > ROUTE_MAX_SQL_DEPTH) {
		set_pin(out, "a statement nested too deeply to inspect");
		return 0;
	}
	if (parse_effects(sql, len, out) < 0) {
		route_effects_free(out);
		return -1;
	}
	return 0;
}

void route_sets_free(route_set_t *sets, int n)
{
	for (int i = 0; i < n; i++) {
		free(sets[i].name);
		free(sets[i].stmt);
	}
	free(sets);
}

void route_effects_free(route_effects_t *e)
{
	route_sets_free(e->sets, e->n_sets);
	e->sets = NULL;
	e->n_sets = 0;
}

char *route_quote_literal(const char *s)
{
	size_t n = 3, k = 0;
	bool backslash = strchr(s, '\\') != NULL;
	char *out;

	for (const char *p = s; *p; p++)
		n += (*p == '\'' || *p == '\\') ? 2 : 1;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	if (backslash)
		out[k++] = 'E';
	out[k++] = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'' || (backslash && *p == '\\'))
			out[k++] = *p;
		out[k++] = *p;
	}
	out[k++] = '\'';
	out[k] = '\0';
	return out;
}

char *route_quote_relation(const char *schema, const char *rel)
{
	size_t n = 2 * strlen(rel) + 4 + (schema != NULL ? 2 * strlen(schema) + 3 : 0), k = 0;
	char *out = malloc(n);

	if (out == NULL)
		return NULL;
	for (int part = schema != NULL && schema[0] != '\0' ? 0 : 1; part < 2; part++) {
		const char *name = part == 0 ? schema : rel;

		if (part == 1 && k > 0)
			out[k++] = '.';
		out[k++] = '"';
		for (; *name != '\0'; name++) {
			if (*name == '"')
				out[k++] = '"';
			out[k++] = *name;
		}
		out[k++] = '"';
	}
	out[k] = '\0';
	return out;
}

char *route_columns_sql(const char *relation, bool with_types, bool insertable, bool must_exist)
{
	char *lit = route_quote_literal(relation), *sql;
	size_t n;

	if (lit == NULL)
		return NULL;
	n = strlen(lit) + 400;
	sql = malloc(n);
	if (sql != NULL)
		snprintf(sql, n,
		         "SELECT attname%s FROM pg_catalog.pg_attribute WHERE attrelid "
		         "OPERATOR(pg_catalog.=) %s%s%s AND attnum OPERATOR(pg_catalog.>) "
		         "0::pg_catalog.int2 AND NOT attisdropped%s ORDER BY attnum",
		         with_types ? ", atttypid" : "",
		         must_exist ? "" : "pg_catalog.to_regclass(", lit,
		         must_exist ? "::pg_catalog.regclass" : ")::pg_catalog.oid",
		         insertable ? " AND attgenerated OPERATOR(pg_catalog.=) ''" : "");
	free(lit);
	return sql;
}
