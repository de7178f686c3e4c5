/*
 * route_hint.c — routing comments: /\* pgshard: shard=N *\/, key=VALUE and
 * all, read from the text before the statement, and applied to the plan
 * the router made (they may choose shards, never widen what would be
 * wrong).
 */
#include "router/route.h"

#include <ctype.h>
#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/route_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- overrides: /\* pgshard: shard=N *\/, key=VALUE, all ---- */

static void parse_override_body(const char *s, size_t len, override_t *o)
{
	size_t i = 0, vlen;
	const char *v;

	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	while (i < len && isspace((unsigned char)s[i]))
		i++;
	snprintf(o->text, sizeof o->text, "%.*s", (int)(len - i > 200 ? 200 : len - i), s + i);
	if (len - i == 3 && strncasecmp(s + i, "all", 3) == 0) {
		o->kind = OVERRIDE_ALL;
		return;
	}
	o->kind = OVERRIDE_BAD;
	if (len - i > 5 && strncasecmp(s + i, "shard", 5) == 0) {
		i += 5;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len || s[i] != '=')
			return;
		i++;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len)
			return;
		o->shard = 0;
		for (; i < len; i++) {
			if (!isdigit((unsigned char)s[i]) || o->shard > 100000)
				return;
			o->shard = o->shard * 10 + (s[i] - '0');
		}
		o->kind = OVERRIDE_SHARD;
		return;
	}
	if (len - i > 3 && strncasecmp(s + i, "key", 3) == 0) {
		i += 3;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		if (i >= len || s[i] != '=')
			return;
		i++;
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		v = s + i;
		vlen = len - i;
		if (vlen >= 2 && v[0] == '\'' && v[vlen - 1] == '\'') {
			/* a quoted value: '' stands for ' */
			size_t n = 0;

			for (size_t k = 1; k + 1 < vlen && n + 1 < sizeof o->value; k++) {
				o->value[n++] = v[k];
				if (v[k] == '\'' && k + 2 < vlen && v[k + 1] == '\'')
					k++;
			}
			o->value[n] = '\0';
		} else {
			if (vlen == 0 || vlen >= sizeof o->value)
				return;
			memcpy(o->value, v, vlen);
			o->value[vlen] = '\0';
		}
		o->kind = OVERRIDE_KEY;
	}
}

/* The first leading comment that starts with "pgshard:" decides. */
void hint_parse(const char *sql, override_t *o)
{
	const char *p = sql;

	memset(o, 0, sizeof *o);
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				p++;
			continue;
		}
		if (p[0] == '/' && p[1] == '*') {
			const char *body = p + 2, *end = strstr(body, "*/");

			if (end == NULL)
				return;
			while (body < end && isspace((unsigned char)*body))
				body++;
			if ((size_t)(end - body) >= 8 && strncasecmp(body, "pgshard:", 8) == 0) {
				parse_override_body(body + 8, (size_t)(end - body - 8), o);
				return;
			}
			p = end + 2;
			continue;
		}
		return;
	}
}

/*
 * A comment chooses where a statement runs, but never where a row lives: an
 * INSERT whose rows' keys the router read (rows_known) may only be sent
 * where those keys belong, or the rows would sit on a shard their map does
 * not assign them to, found by no later lookup by key. true when refused.
 */
static bool hint_misplaces_rows(const cfg_t *cfg, const override_t *o, bool rows_known,
                                const shard_set_t *rows, int target, route_plan_t *p)
{
	char where[64];

	if (!rows_known)
		return false;
	if (target >= 0 && shard_set_count(rows) == 1 && shard_set_has(rows, target))
		return false;
	if (target < 0 && cfg->n_shards == 1)
		return false;
	if (shard_set_count(rows) == 1)
		snprintf(where, sizeof where, "shard %d", shard_set_first(rows));
	else
		snprintf(where, sizeof where, "%d shards", shard_set_count(rows));
	route_plan_refuse(p, "0A000",
	                  "the routing comment /* pgshard: %.200s */ would put rows where their "
	                  "shard key does not belong (their keys belong to %s); remove the "
	                  "comment: pgshard routes each row by its key",
	                  o->text, where);
	return true;
}

/*
 * Whether a string sent to every shard with /\* pgshard: all *\/ may write:
 * any statement but SHOW, SET/RESET and transaction control (a SELECT can
 * call setval() or a function that writes; CREATE FUNCTION, CREATE TYPE,
 * CREATE SCHEMA, DO, GRANT ... change every shard). A write on every shard
 * commits in two phases (route_plan_commit), so it lands on all or none.
 */
bool hint_all_writes(const PgQuery__ParseResult *tree)
{
	for (size_t i = 0; tree != NULL && i < tree->n_stmts; i++) {
		const PgQuery__Node *n = tree->stmts[i]->stmt;

		if (n == NULL)
			continue;
		switch (n->node_case) {
		case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
		case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
		case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
			continue;
		default:
			return true;
		}
	}
	return false;
}

void hint_apply(walk_t *w, const override_t *o, route_plan_t *p)
{
	const cfg_t *cfg = w->cfg;
	/* an INSERT whose keys were read, or a COPY FROM STDIN, which pgshard splits by key */
	bool rows_known = p->is_write && (p->key_column >= 0 || p->split_insert) &&
	                  !p->params_missing && p->kind == ROUTE_SHARDS;
	shard_set_t rows = p->shards;

	if (o->kind != OVERRIDE_NONE)
		p->sqlstate[0] = '\0'; /* the comment decides now; a refusal below is 0A000 */
	switch (o->kind) {
	case OVERRIDE_NONE:
		return;
	case OVERRIDE_BAD:
		route_plan_refuse(p, "0A000",
		                  "cannot read the routing comment /* pgshard: %s */ (expected "
		                  "shard=N, key=VALUE or all)",
		                  o->text);
		return;
	case OVERRIDE_ALL:
		if (hint_misplaces_rows(cfg, o, rows_known, &rows, -1, p))
			return;
		p->kind = ROUTE_ALL;
		plan_all_shards(cfg, &p->shards);
		p->split_insert = false;
		p->key_value[0] = '\0';
		p->n_insert_keys = 0;
		p->error[0] = '\0';
		plan_reason(p, "override /* pgshard: all */ -> all %d shards", cfg->n_shards);
		return;
	case OVERRIDE_SHARD:
		p->split_insert = false;
		if (o->shard >= cfg->n_shards) {
			route_plan_refuse(p, "0A000",
			                  "/* pgshard: shard=%ld */ names a shard the config does "
			                  "not have (it has shards 0 to %d)",
			                  o->shard, cfg->n_shards - 1);
			return;
		}
		if (hint_misplaces_rows(cfg, o, rows_known, &rows, (int)o->shard, p))
			return;
		p->kind = ROUTE_SHARDS;
		shard_set_clear(&p->shards);
		shard_set_add(&p->shards, (int)o->shard);
		p->key_value[0] = '\0'; /* a key of the statement may live elsewhere */
		for (int i = 0; i < p->n_insert_keys; i++)
			p->insert_keys[i].shard = (int)o->shard; /* rows_known: they live there */
		p->error[0] = '\0';
		plan_reason(p, "override /* pgshard: shard=%ld */ -> shard %ld", o->shard,
		            o->shard);
		return;
	case OVERRIDE_KEY: {
		const shard_map_t *m;
		shard_key_t k;
		int s;

		p->split_insert = false;
		if (w->any_map < 0 || w->maps_differ) {
			route_plan_refuse(p, "0A000",
			                  "/* pgshard: key=%.100s */ needs a statement on the "
			                  "sharded tables of one map (this one names %s); use /* "
			                  "pgshard: shard=N */",
			                  o->value,
			                  w->any_map < 0 ? "none" : "tables of several maps");
			return;
		}
		m = &w->ctx->maps[w->any_map];
		if (shard_key_from_text(m->cfg->key, o->value, strlen(o->value), &k) != 0) {
			route_plan_refuse(
			    p, "0A000",
			    "/* pgshard: key=%.100s */: '%.100s' is not a valid %s key "
			    "of map %.100s",
			    o->value, o->value, shard_key_type_name(m->cfg->key), m->cfg->name);
			return;
		}
		s = shard_map_lookup(m, &k);
		p->key_encoded = p->key_encoded || shard_key_encoded(&k);
		if (s < 0) {
			route_plan_refuse(p, "0A000",
			                  "/* pgshard: key=%.100s */: no range of map %.100s holds "
			                  "that key",
			                  o->value, m->cfg->name);
			return;
		}
		if (hint_misplaces_rows(cfg, o, rows_known, &rows, s, p))
			return;
		p->kind = ROUTE_SHARDS;
		shard_set_clear(&p->shards);
		shard_set_add(&p->shards, s);
		p->map = m->cfg->name;
		/* the comment's key is the statement's one key (hot keys) */
		shard_key_text(&k, p->key_value, sizeof p->key_value);
		p->n_insert_keys = 0;
		p->error[0] = '\0';
		plan_reason(p, "override /* pgshard: key=%.100s */ -> shard %d (%s map %.100s)",
		            o->value, s, walk_map_kind_name(m->cfg), m->cfg->name);
		return;
	}
	}
}
