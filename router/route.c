/*
 * route.c — statement routing (see route.h).
 *
 * Each statement of a query string is planned in two passes over the tree
 * libpg_query builds for it.
 *
 * 1. collect() walks the whole tree generically, through protobuf-c's
 *    descriptors, so that no node type can hide a table from it: every
 *    RangeVar is looked up in the config (CTE names shadow tables, as in
 *    PostgreSQL), and the tables that INSERT, UPDATE, DELETE, MERGE, COPY
 *    FROM and SELECT INTO write are marked. That alone decides most
 *    statements: no configured table -> the default shard; only reference
 *    tables -> one shard for reads, every shard for writes; sharded tables
 *    of two maps -> refused.
 *
 * 2. For a statement on sharded tables, a structured pass finds the shards
 *    that can hold the rows the statement needs. Every part of the query
 *    (a FROM item, a subquery, a CTE, a WHERE predicate) yields a part_t:
 *
 *      NONE   the part reads no sharded table; it does not care where it runs
 *      ALL    its rows may be on any shard of the map
 *      SET    its rows are only on these shards
 *
 *    Parts combine in two ways, and which one is used is the reasoning that
 *    keeps results right:
 *
 *    - AND (intersection) where a result row needs rows of both sides: the
 *      conjuncts of a WHERE, inner-joined FROM items, a subquery in a
 *      top-level conjunct. Tables of one map are co-located (equal keys live
 *      on one shard), so when they are joined on their keys a joined row
 *      exists only where both of its halves do, and a predicate on the key
 *      of any table of a query block constrains the whole block. Sharded
 *      tables of one level joined any other way are refused: their matching
 *      rows can be on different shards. A FROM subquery or CTE over sharded
 *      tables counts as a table whose keys are the key columns it selects
 *      unmodified (none when it combines rows of several keys).
 *    - OR (union) where a result row needs rows of either side: OR, UNION,
 *      and data-modifying CTEs, which must run wherever their own rows are
 *      whatever the rest of the statement reads.
 *
 *    Running on more shards than needed is always correct (the other shards
 *    contribute no rows), so anything not understood widens to ALL: the
 *    ON clause of an outer join and the nullable side's subqueries, NOT, a
 *    comparison with an expression, an unknown parameter. Narrowing is only
 *    ever done from a predicate that PostgreSQL will apply to the rows.
 *
 * Writes add checks: an INSERT must name its key column and give each row a
 * constant or parameter key (rows on several shards set split_insert for
 * the proxy, and route_split_insert writes each shard's INSERT), and an
 * UPDATE may only set the key to a value on the shard the rows already live
 * on.
 *
 * A plan on several shards then says how the proxy makes one answer of
 * theirs (merge): see "merging the answers of several shards" below. Each
 * shard also answers the statement's subqueries from its own rows alone,
 * on one shard as on several, so a subquery that needs rows of other
 * shards is refused: see "subqueries, which each shard answers alone".
 *
 * Before any of this, the text is measured (route_sql_depth_estimate): the
 * parser libpg_query brings has no stack depth check, and a statement that
 * would nest too deeply is refused unparsed. Parsing and planning are
 * separate steps (route_parse, route_analyze) so that router/plancache.c
 * can keep parsed statements and plan them again with new parameters, or
 * with the literals it masked out of the text as parameters.
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

#include "router/gather_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

#define DESC_MAX     192
#define NAME_MAX_LEN 200

/* ---- small text helpers ---- */

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static bool streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* A bounded string builder: appends what fits and remembers that it cut. */
typedef struct sb {
	char *buf;
	size_t size;
	size_t len;
	bool cut;
} sb_t;

static void sb_init(sb_t *s, char *buf, size_t size)
{
	s->buf = buf;
	s->size = size;
	s->len = 0;
	s->cut = false;
	buf[0] = '\0';
}

static void sb_printf(sb_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sb_t *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->len + 1 >= s->size) {
		s->cut = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, s->size - s->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= s->size - s->len) {
		s->len = s->size - 1;
		s->cut = true;
	} else {
		s->len += (size_t)n;
	}
}

/* A cut text ends in "..." so that nobody reads it as complete. */
static void sb_finish(sb_t *s)
{
	if (s->cut && s->size >= 4)
		memcpy(s->buf + s->size - 4, "...", 4);
}

static void sb_shards(sb_t *s, const shard_set_t *set)
{
	int n = shard_set_count(set), k = 0;

	if (n == 0) {
		sb_printf(s, "no shard");
		return;
	}
	sb_printf(s, n == 1 ? "shard " : "shards ");
	for (int i = 0; i < SHARD_MAX; i++) {
		if (!shard_set_has(set, i))
			continue;
		sb_printf(s, k++ ? ", %d" : "%d", i);
	}
}

/* ---- parts: where the rows a piece of a statement needs can be ---- */

typedef enum part_kind {
	PART_NONE, /* reads no sharded table */
	PART_ALL,  /* any shard of the map */
	PART_SET,  /* only these shards */
} part_kind_t;

typedef struct part {
	part_kind_t kind;
	shard_set_t set;
	char desc[DESC_MAX]; /* the predicates that narrowed it, for people */
} part_t;

static part_t part_make(part_kind_t kind)
{
	part_t p;

	memset(&p, 0, sizeof p);
	p.kind = kind;
	return p;
}

static void join_desc(char *out, const char *a, const char *op, const char *b, bool paren)
{
	char tmp[DESC_MAX];
	sb_t s;
	bool pa = paren && strstr(a, " OR ") != NULL;
	bool pb = paren && strstr(b, " OR ") != NULL;

	sb_init(&s, tmp, sizeof tmp);
	if (a[0] != '\0' && b[0] != '\0')
		sb_printf(&s, "%s%s%s %s %s%s%s", pa ? "(" : "", a, pa ? ")" : "", op,
		          pb ? "(" : "", b, pb ? ")" : "");
	else
		sb_printf(&s, "%s", a[0] != '\0' ? a : b);
	sb_finish(&s);
	memcpy(out, tmp, sizeof tmp);
}

/* Rows that need both: intersection. NONE and ALL do not narrow. */
static part_t part_and(part_t a, part_t b)
{
	if (a.kind == PART_NONE)
		return b;
	if (b.kind == PART_NONE)
		return a;
	if (a.kind == PART_ALL)
		return b;
	if (b.kind == PART_ALL)
		return a;
	shard_set_intersect(&a.set, &b.set);
	if (strcmp(a.desc, b.desc) != 0)
		join_desc(a.desc, a.desc, "AND", b.desc, true);
	return a;
}

/* Rows that need either: union. ALL absorbs. */
static part_t part_or(part_t a, part_t b)
{
	if (a.kind == PART_NONE)
		return b;
	if (b.kind == PART_NONE)
		return a;
	if (a.kind == PART_ALL || b.kind == PART_ALL)
		return part_make(PART_ALL);
	shard_set_union(&a.set, &b.set);
	if (strcmp(a.desc, b.desc) != 0)
		join_desc(a.desc, a.desc, "OR", b.desc, false);
	return a;
}

/* What a part means on the nullable side of an outer join: never narrower. */
static part_t part_weaken(part_t p)
{
	return part_make(p.kind == PART_NONE ? PART_NONE : PART_ALL);
}

/* ---- the state of one routing call ---- */

/*
 * The output columns of a derived table (a FROM subquery, a CTE, a write's
 * RETURNING) that are the shard key of the rows it reads, unmodified: a
 * plain reference to a key column, or `*` / `x.*` over one, in a query that
 * does not combine rows of several keys (see derived_keys). A row of such a
 * derived table lives on the shard its key says, as a table's row does.
 */
#define KEYOUT_MAX 8

typedef struct keyout {
	const char *names[KEYOUT_MAX];
	int pos[KEYOUT_MAX]; /* position in the select list; -1 at or after a `*` */
	int n;
	const cfg_table_t *table; /* a sharded table it reads, for messages; NULL */
	int corr;     /* LATERAL: the rel of the enclosing block its WHERE equates a key with, -1 */
	char why[96]; /* when it combines rows of several keys: how ("has LIMIT/OFFSET") */
} keyout_t;

/* A CTE in scope; the chain through `up` is what a query level can see. */
typedef struct scope {
	const char *name;
	const PgQuery__CommonTableExpr *cte;
	struct scope *inner; /* the scope the CTE's own query sees */
	struct scope *up;
	bool recursive;  /* of WITH RECURSIVE */
	bool busy, done; /* analysis: computing / computed `part` and `keys` */
	part_t part;
	keyout_t keys;
} scope_t;

enum {
	SEEN_READ = 1,
	SEEN_WRITE = 2,
};

typedef struct walk {
	const route_ctx_t *ctx;
	const cfg_t *cfg;
	const route_param_t *params;
	int n_params;
	const route_literals_t *lits; /* the plan cache's masked literals, or NULL */

	/* collect(): per statement */
	uint8_t *seen; /* per cfg table: SEEN_* */
	int *order;    /* config tables in order of first appearance */
	int n_order;
	char other_write[NAME_MAX_LEN]; /* first written table that is not in the config */
	bool writes;                    /* INSERT/UPDATE/DELETE/MERGE/INTO/COPY FROM anywhere */
	int map;                        /* map of the first sharded table, -1 */
	int map_table;                  /* that table */
	int clash;                      /* first sharded table on another map, -1 */
	int depth;

	/* analysis: per statement */
	const shard_map_t *smap;
	shard_set_t mentioned; /* every shard a key predicate named, for the empty case */
	bool ins_split;        /* the top-level INSERT's rows go to several shards */
	int key_column;
	const struct block *lateral_up; /* for the LATERAL subquery about to be analysed: the
	                                   block it may correlate with */
	int one_shard; /* subqueries_local: the one shard the statement runs on, or -1 */

	/* outcome */
	bool refused;
	char error[512];
	bool nomem;
	bool params_missing;

	/* across the statements of the string, for /\* pgshard: key=... *\/ */
	int any_map;
	bool maps_differ;
} walk_t;

static void refuse(walk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void refuse(walk_t *w, const char *fmt, ...)
{
	va_list ap;

	if (w->refused)
		return;
	w->refused = true;
	va_start(ap, fmt);
	vsnprintf(w->error, sizeof w->error, fmt, ap);
	va_end(ap);
}

static bool stopped(const walk_t *w)
{
	return w->refused || w->nomem;
}

static const char *map_kind_name(const cfg_map_t *m)
{
	return m->kind == CFG_MAP_HASH ? "hash" : "range";
}

/* ---- tables: config names against the names a statement uses ---- */

static bool is_system_schema(const char *s)
{
	return strcmp(s, "pg_catalog") == 0 || strcmp(s, "information_schema") == 0 ||
	       strncmp(s, "pg_temp", 7) == 0 || strncmp(s, "pg_toast", 8) == 0;
}

static int table_index(const cfg_t *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_tables; i++)
		if (strcmp(cfg->tables[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The config table a (catalog, schema, relation) name means, or -1. The
 * parser has already folded unquoted names to lower case, as the config
 * loader does. A qualified name matches the config's qualified or bare
 * name (public.users finds [table.users]); a bare name also finds
 * [table.public.users]. System schemas are never configured tables.
 */
static int find_table(const cfg_t *cfg, const char *catalog, const char *schema, const char *rel)
{
	char name[3 * NAME_MAX_LEN];
	int i, n;

	if (empty(rel))
		return -1;
	if (!empty(schema)) {
		if (is_system_schema(schema))
			return -1;
		if (!empty(catalog)) {
			n = snprintf(name, sizeof name, "%s.%s.%s", catalog, schema, rel);
			if (n > 0 && (size_t)n < sizeof name && (i = table_index(cfg, name)) >= 0)
				return i;
		}
		n = snprintf(name, sizeof name, "%s.%s", schema, rel);
		if (n > 0 && (size_t)n < sizeof name && (i = table_index(cfg, name)) >= 0)
			return i;
	}
	if ((i = table_index(cfg, rel)) >= 0)
		return i;
	if (empty(schema)) {
		n = snprintf(name, sizeof name, "public.%s", rel);
		if (n > 0 && (size_t)n < sizeof name && (i = table_index(cfg, name)) >= 0)
			return i;
	}
	return -1;
}

/* A name given as a list of String nodes (DROP TABLE, COMMENT ON ...). */
static int find_table_list(const cfg_t *cfg, const PgQuery__Node *const *items, size_t n)
{
	const char *part[3] = {NULL, NULL, NULL};

	if (n < 1 || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		part[3 - n + i] = tree_str_of(items[i]);
		if (part[3 - n + i] == NULL)
			return -1;
	}
	return find_table(cfg, part[0], part[1], part[2]);
}

static bool is_sharded(const cfg_table_t *t)
{
	return !t->reference && t->map >= 0;
}

static const cfg_table_t *table_at(const walk_t *w, int i)
{
	return &w->cfg->tables[i];
}

static void note_table(walk_t *w, int i, bool write)
{
	const cfg_table_t *t = table_at(w, i);

	if (w->seen[i] == 0)
		w->order[w->n_order++] = i;
	w->seen[i] |= write ? SEEN_WRITE : SEEN_READ;
	if (!is_sharded(t))
		return;
	if (w->map < 0) {
		w->map = t->map;
		w->map_table = i;
	} else if (t->map != w->map && w->clash < 0) {
		w->clash = i;
	}
	if (w->any_map < 0)
		w->any_map = t->map;
	else if (w->any_map != t->map)
		w->maps_differ = true;
}

static scope_t *find_cte(scope_t *sc, const char *name)
{
	for (; sc != NULL; sc = sc->up)
		if (streq(sc->name, name))
			return sc;
	return NULL;
}

static void note_rangevar(walk_t *w, const PgQuery__RangeVar *rv, scope_t *sc, bool write)
{
	int i;

	/* the target of a write is always a table; a read may name a CTE */
	if (!write && empty(rv->schemaname) && find_cte(sc, rv->relname) != NULL)
		return;
	/* CREATE TEMP TABLE: a session's own table, whatever its name */
	i = rv->relpersistence != NULL && rv->relpersistence[0] == 't'
	        ? -1
	        : find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
	if (i >= 0) {
		note_table(w, i, write);
		return;
	}
	if (write && w->other_write[0] == '\0')
		snprintf(w->other_write, sizeof w->other_write, "%s%s%s",
		         empty(rv->schemaname) ? "" : rv->schemaname,
		         empty(rv->schemaname) ? "" : ".", rv->relname ? rv->relname : "?");
}

/*
 * Open a WITH clause: one scope node per CTE, chained so that CTE i sees
 * CTEs 0..i-1 (all of them under WITH RECURSIVE) and the body sees all.
 * Returns the body's scope; *nodes is to be freed by the caller.
 */
static scope_t *with_open(walk_t *w, const PgQuery__WithClause *with, scope_t *sc, scope_t **nodes)
{
	scope_t *s;
	size_t n;

	*nodes = NULL;
	if (with == NULL || with->n_ctes == 0)
		return sc;
	n = with->n_ctes;
	s = calloc(n, sizeof *s);
	if (s == NULL) {
		w->nomem = true;
		return sc;
	}
	for (size_t i = 0; i < n; i++) {
		const PgQuery__Node *c = with->ctes[i];

		if (c != NULL && c->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR) {
			s[i].cte = c->common_table_expr;
			s[i].name = s[i].cte->ctename;
		}
		s[i].up = i > 0 ? &s[i - 1] : sc;
		s[i].recursive = with->recursive;
	}
	for (size_t i = 0; i < n; i++)
		s[i].inner = with->recursive ? &s[n - 1] : s[i].up;
	*nodes = s;
	return &s[n - 1];
}

/* ---- pass 1: every table the statement names ---- */

static void collect(walk_t *w, const ProtobufCMessage *m, scope_t *sc);

typedef void (*child_fn)(walk_t *w, const ProtobufCMessage *child, void *arg);

/*
 * Call fn on every message-typed field of m that is set (of a oneof, only
 * the member that is set), in field order, except skip1 and skip2; stop
 * once the walk has stopped (refused or out of memory).
 */
static void each_child(walk_t *w, const ProtobufCMessage *m, const void *skip1, const void *skip2,
                       child_fn fn, void *arg)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;

	/*
	 * A Node is a oneof of some 250 message fields: go straight to the one
	 * that is set (a oneof case is its field's number) instead of asking
	 * each. Most messages of a tree are Nodes.
	 */
	if (d == &pg_query__node__descriptor) {
		const ProtobufCMessage *sub = tree_inner((const PgQuery__Node *)m);

		if (sub != NULL && !stopped(w) && (const void *)sub != skip1 &&
		    (const void *)sub != skip2)
			fn(w, sub, arg);
		return;
	}
	for (unsigned i = 0; i < d->n_fields && !stopped(w); i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const ProtobufCMessage *sub;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			const ProtobufCMessage *const *arr;
			size_t n;

			memcpy(&n, base + f->quantifier_offset, sizeof n);
			memcpy(&arr, base + f->offset, sizeof arr);
			for (size_t j = 0; j < n && arr != NULL && !stopped(w); j++)
				if (arr[j] != NULL)
					fn(w, arr[j], arg);
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c;

			memcpy(&c, base + f->quantifier_offset, sizeof c);
			if (c != f->id)
				continue;
		}
		memcpy(&sub, base + f->offset, sizeof sub);
		if (sub != NULL && (const void *)sub != skip1 && (const void *)sub != skip2)
			fn(w, sub, arg);
	}
}

static void collect_child(walk_t *w, const ProtobufCMessage *child, void *sc)
{
	collect(w, child, sc);
}

/* Walk every message-typed field of m (set oneof members only). */
static void collect_fields(walk_t *w, const ProtobufCMessage *m, scope_t *sc, const void *skip1,
                           const void *skip2)
{
	each_child(w, m, skip1, skip2, collect_child, sc);
}

/* SELECT, INSERT, UPDATE, DELETE, MERGE: WITH scoping and the write target. */
static void collect_query(walk_t *w, const ProtobufCMessage *m, scope_t *sc)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const PgQuery__WithClause *with = NULL;
	const PgQuery__RangeVar *target = NULL;
	scope_t *nodes, *body;

	if (d == &pg_query__select_stmt__descriptor) {
		with = ((const PgQuery__SelectStmt *)m)->with_clause;
	} else if (d == &pg_query__insert_stmt__descriptor) {
		with = ((const PgQuery__InsertStmt *)m)->with_clause;
		target = ((const PgQuery__InsertStmt *)m)->relation;
	} else if (d == &pg_query__update_stmt__descriptor) {
		with = ((const PgQuery__UpdateStmt *)m)->with_clause;
		target = ((const PgQuery__UpdateStmt *)m)->relation;
	} else if (d == &pg_query__delete_stmt__descriptor) {
		with = ((const PgQuery__DeleteStmt *)m)->with_clause;
		target = ((const PgQuery__DeleteStmt *)m)->relation;
	} else {
		with = ((const PgQuery__MergeStmt *)m)->with_clause;
		target = ((const PgQuery__MergeStmt *)m)->relation;
	}
	if (d != &pg_query__select_stmt__descriptor)
		w->writes = true;
	if (target != NULL)
		note_rangevar(w, target, NULL, true);
	body = with_open(w, with, sc, &nodes);
	if (nodes != NULL) {
		for (size_t i = 0; i < with->n_ctes; i++)
			if (nodes[i].cte != NULL && nodes[i].cte->ctequery != NULL)
				collect(w, &nodes[i].cte->ctequery->base, nodes[i].inner);
	}
	collect_fields(w, m, body, with, target);
	free(nodes);
}

static void collect(walk_t *w, const ProtobufCMessage *m, scope_t *sc)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (stopped(w))
		return;
	if (++w->depth > MAX_DEPTH) {
		refuse(
		    w,
		    "the statement is nested too deeply for pgshard's router (more than %d levels)",
		    MAX_DEPTH);
		w->depth--;
		return;
	}
	if (d == &pg_query__range_var__descriptor) {
		note_rangevar(w, (const PgQuery__RangeVar *)m, sc, false);
	} else if (d == &pg_query__into_clause__descriptor) {
		const PgQuery__IntoClause *into = (const PgQuery__IntoClause *)m;

		w->writes = true;
		if (into->rel != NULL)
			note_rangevar(w, into->rel, NULL, true);
		collect_fields(w, m, sc, into->rel, NULL);
	} else if (d == &pg_query__copy_stmt__descriptor) {
		const PgQuery__CopyStmt *c = (const PgQuery__CopyStmt *)m;

		if (c->is_from)
			w->writes = true;
		if (c->relation != NULL)
			note_rangevar(w, c->relation, NULL, c->is_from);
		collect_fields(w, m, sc, c->relation, NULL);
	} else if (d == &pg_query__select_stmt__descriptor ||
	           d == &pg_query__insert_stmt__descriptor ||
	           d == &pg_query__update_stmt__descriptor ||
	           d == &pg_query__delete_stmt__descriptor ||
	           d == &pg_query__merge_stmt__descriptor) {
		collect_query(w, m, sc);
	} else {
		collect_fields(w, m, sc, NULL, NULL);
	}
	w->depth--;
}

/* ---- key values: constants, parameters, casts, arrays ---- */

enum {
	KV_OK,
	KV_NULL,    /* SQL NULL: matches no row */
	KV_UNKNOWN, /* a parameter that was not given */
	KV_INVALID, /* not a valid key of the map's type */
	KV_EXPR,    /* not a constant or a parameter */
};

typedef struct keyval {
	shard_key_t key; /* text keys may point into buf */
	char buf[32];
} keyval_t;

/*
 * The type a cast names, when casting a key value to it cannot turn one
 * key into another (integers, text, varchar without a length, uuid); 0 for
 * any other cast, whose result the router does not try to predict
 * ('42.7'::int8 is 43, 'abcd'::varchar(2) is 'ab').
 */
static uint32_t cast_oid(const PgQuery__TypeName *tn, bool *array)
{
	static const struct {
		const char *name;
		uint32_t oid;
	} casts[] = {
	    {"int8", SHARD_OID_INT8}, {"int4", SHARD_OID_INT4},       {"int2", SHARD_OID_INT2},
	    {"text", SHARD_OID_TEXT}, {"varchar", SHARD_OID_VARCHAR}, {"uuid", SHARD_OID_UUID},
	};
	const char *name;

	if (tn == NULL || tn->setof || tn->pct_type || tn->n_typmods > 0 || tn->n_names == 0 ||
	    tn->n_names > 2)
		return 0;
	if (tn->n_names == 2 && !streq(tree_str_of(tn->names[0]), "pg_catalog"))
		return 0;
	name = tree_str_of(tn->names[tn->n_names - 1]);
	*array = tn->n_array_bounds > 0;
	for (size_t i = 0; i < sizeof casts / sizeof casts[0]; i++)
		if (streq(name, casts[i].name))
			return casts[i].oid;
	return 0;
}

/* Parameter `number`: the caller's, a masked literal's, or NULL when not given. */
static const route_param_t *param_at(const walk_t *w, int number)
{
	const route_literals_t *l = w->lits;

	if (l != NULL && number >= l->first && number - l->first < l->n)
		return &l->values[number - l->first];
	if (w->params != NULL && number >= 1 && number <= w->n_params)
		return &w->params[number - 1];
	return NULL;
}

/* The kind of literal a parameter stands for ('i', 'f', 's'), or 0 for a real parameter. */
static char literal_kind(const walk_t *w, int number)
{
	const route_literals_t *l = w->lits;

	if (l != NULL && number >= l->first && number - l->first < l->n)
		return l->kinds[number - l->first];
	return 0;
}

static int param_value(walk_t *w, int number, uint32_t oid, keyval_t *kv)
{
	const route_param_t *p = param_at(w, number);
	cfg_key_type_t type = w->smap->cfg->key;
	int rc;

	if (p == NULL) {
		w->params_missing = true;
		return KV_UNKNOWN;
	}
	if (p->data == NULL || p->len < 0)
		return KV_NULL;
	if (p->format == 0)
		rc = shard_key_from_text(type, (const char *)p->data, (size_t)p->len, &kv->key);
	else
		rc = shard_key_from_binary(type, p->type_oid != 0 ? p->type_oid : oid, p->data,
		                           (size_t)p->len, &kv->key);
	return rc == 0 ? KV_OK : KV_INVALID;
}

/* The key a node stands for. `oid`: the type a surrounding cast names. */
static int key_value(walk_t *w, const PgQuery__Node *n, uint32_t oid, keyval_t *kv)
{
	cfg_key_type_t type = w->smap->cfg->key;

	if (n == NULL)
		return KV_EXPR;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_A_CONST: {
		const PgQuery__AConst *c = n->a_const;
		const char *text = NULL;

		if (c->isnull)
			return KV_NULL;
		switch (c->val_case) {
		case PG_QUERY__A__CONST__VAL_IVAL:
			snprintf(kv->buf, sizeof kv->buf, "%d",
			         c->ival != NULL ? (int)c->ival->ival : 0);
			text = kv->buf;
			break;
		case PG_QUERY__A__CONST__VAL_FVAL:
			text = c->fval != NULL ? c->fval->fval : NULL;
			break;
		case PG_QUERY__A__CONST__VAL_SVAL:
			text = c->sval != NULL ? c->sval->sval : NULL;
			break;
		default:
			return KV_INVALID;
		}
		if (text == NULL)
			return KV_INVALID;
		return shard_key_from_text(type, text, strlen(text), &kv->key) == 0 ? KV_OK
		                                                                    : KV_INVALID;
	}
	case PG_QUERY__NODE__NODE_PARAM_REF:
		return param_value(w, n->param_ref->number, oid, kv);
	case PG_QUERY__NODE__NODE_TYPE_CAST: {
		bool array = false;
		uint32_t o = cast_oid(n->type_cast->type_name, &array);

		if (o == 0 || array)
			return KV_EXPR;
		return key_value(w, n->type_cast->arg, o, kv);
	}
	default:
		return KV_EXPR;
	}
}

/*
 * How a value reads in a reason: 42, 'abc', $1, ARRAY[1, 2]. A literal the
 * plan cache masked reads as the literal, as it would unmasked.
 */
static void value_desc(const walk_t *w, sb_t *s, const PgQuery__Node *n)
{
	if (n == NULL) {
		sb_printf(s, "?");
		return;
	}
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_A_CONST: {
		const PgQuery__AConst *c = n->a_const;

		if (c->isnull)
			sb_printf(s, "NULL");
		else if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL)
			sb_printf(s, "%d", c->ival != NULL ? (int)c->ival->ival : 0);
		else if (c->val_case == PG_QUERY__A__CONST__VAL_FVAL && c->fval != NULL)
			sb_printf(s, "%s", c->fval->fval);
		else if (c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval != NULL)
			sb_printf(s, "'%.40s%s'", c->sval->sval,
			          strlen(c->sval->sval) > 40 ? "..." : "");
		else
			sb_printf(s, "(constant)");
		return;
	}
	case PG_QUERY__NODE__NODE_PARAM_REF: {
		int number = n->param_ref->number;
		const route_param_t *p = param_at(w, number);
		char kind = literal_kind(w, number);

		if (kind == 0 || p == NULL || p->data == NULL || p->len < 0)
			sb_printf(s, "$%d", number);
		else if (kind == 's')
			sb_printf(s, "'%.*s%s'", p->len > 40 ? 40 : (int)p->len,
			          (const char *)p->data, p->len > 40 ? "..." : "");
		else
			sb_printf(s, "%.*s", (int)p->len, (const char *)p->data);
		return;
	}
	case PG_QUERY__NODE__NODE_TYPE_CAST:
		value_desc(w, s, n->type_cast->arg);
		return;
	case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
		sb_printf(s, "ARRAY[");
		for (size_t i = 0; i < n->a_array_expr->n_elements; i++) {
			if (i > 0)
				sb_printf(s, ", ");
			value_desc(w, s, n->a_array_expr->elements[i]);
		}
		sb_printf(s, "]");
		return;
	default:
		sb_printf(s, "(expression)");
		return;
	}
}

static void add_shard(walk_t *w, shard_set_t *set, const shard_key_t *k)
{
	int s = shard_map_lookup(w->smap, k);

	if (s >= 0)
		shard_set_add(set, s);
}

/*
 * The elements of an array in PostgreSQL's text form ({1,2,"x y",NULL},
 * nested braces flattened, as = ANY flattens them), each added to *set.
 * false when the text is not understood or an element is not a key.
 */
static bool text_array_shards(walk_t *w, const char *s, size_t len, shard_set_t *set)
{
	cfg_key_type_t type = w->smap->cfg->key;
	char *tmp;
	size_t i = 0;
	int depth = 0;
	bool ok = false;

	while (i < len && isspace((unsigned char)s[i]))
		i++;
	if (i >= len || s[i] != '{')
		return false; /* also dimension decorations like [1:2]={...} */
	tmp = malloc(len + 1);
	if (tmp == NULL) {
		w->nomem = true;
		return false;
	}
	while (i < len) {
		char c = s[i];
		size_t n = 0;
		bool quoted = false, escaped = false;
		shard_key_t k;

		if (isspace((unsigned char)c) || c == ',') {
			i++;
			continue;
		}
		if (c == '{') {
			depth++;
			i++;
			continue;
		}
		if (c == '}') {
			if (--depth < 0)
				goto out;
			i++;
			if (depth == 0) {
				while (i < len && isspace((unsigned char)s[i]))
					i++;
				ok = i == len;
				goto out;
			}
			continue;
		}
		if (depth == 0)
			goto out;
		if (c == '"') {
			quoted = true;
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				tmp[n++] = s[i];
			}
			if (i >= len)
				goto out;
			i++;
		} else {
			size_t keep =
			    0; /* length up to the last character that is not trailing space */

			for (; i < len && s[i] != ',' && s[i] != '}' && s[i] != '{'; i++) {
				if (s[i] == '\\' && i + 1 < len) {
					i++;
					escaped = true;
					tmp[n++] = s[i];
					keep = n;
					continue;
				}
				tmp[n++] = s[i];
				if (!isspace((unsigned char)s[i]))
					keep = n;
			}
			n = keep;
		}
		if (!quoted && !escaped && n == 4 && strncasecmp(tmp, "null", 4) == 0)
			continue; /* a NULL element matches nothing */
		if (shard_key_from_text(type, tmp, n, &k) != 0)
			goto out;
		add_shard(w, set, &k);
	}
out:
	free(tmp);
	return ok;
}

static bool get_be32(const uint8_t *d, size_t len, size_t *pos, int32_t *out)
{
	uint32_t v;

	if (len - *pos < 4)
		return false;
	v = (uint32_t)d[*pos] << 24 | (uint32_t)d[*pos + 1] << 16 | (uint32_t)d[*pos + 2] << 8 |
	    (uint32_t)d[*pos + 3];
	*pos += 4;
	memcpy(out, &v, sizeof v);
	return true;
}

/* An array parameter in binary format (array_send): header, dimensions, elements. */
static bool binary_array_shards(walk_t *w, const uint8_t *d, size_t len, shard_set_t *set)
{
	cfg_key_type_t type = w->smap->cfg->key;
	int32_t ndim, flags, elemtype, dim, lbound, elen;
	size_t pos = 0;
	int64_t total = 1;

	if (!get_be32(d, len, &pos, &ndim) || !get_be32(d, len, &pos, &flags) ||
	    !get_be32(d, len, &pos, &elemtype))
		return false;
	if (ndim == 0)
		return true;
	if (ndim < 0 || ndim > 6)
		return false;
	for (int32_t i = 0; i < ndim; i++) {
		if (!get_be32(d, len, &pos, &dim) || !get_be32(d, len, &pos, &lbound) || dim < 0)
			return false;
		total *= dim;
		if (total > (int64_t)len)
			return false; /* every element takes at least four bytes */
	}
	for (int64_t i = 0; i < total; i++) {
		shard_key_t k;

		if (!get_be32(d, len, &pos, &elen))
			return false;
		if (elen == -1)
			continue;
		if (elen < 0 || (size_t)elen > len - pos)
			return false;
		if (shard_key_from_binary(type, (uint32_t)elemtype, d + pos, (size_t)elen, &k) != 0)
			return false;
		add_shard(w, set, &k);
		pos += (size_t)elen;
	}
	return pos == len;
}

/* The shards of every element of the array in key = ANY(array). */
static bool array_shards(walk_t *w, const PgQuery__Node *n, uint32_t oid, shard_set_t *set)
{
	if (n == NULL)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
		for (size_t i = 0; i < n->a_array_expr->n_elements; i++) {
			const PgQuery__Node *e = n->a_array_expr->elements[i];
			keyval_t kv;
			int st;

			if (e != NULL && e->node_case == PG_QUERY__NODE__NODE_A_ARRAY_EXPR) {
				if (!array_shards(w, e, oid, set))
					return false;
				continue;
			}
			st = key_value(w, e, oid, &kv);
			if (st == KV_NULL)
				continue;
			if (st != KV_OK)
				return false;
			add_shard(w, set, &kv.key);
		}
		return true;
	case PG_QUERY__NODE__NODE_TYPE_CAST: {
		bool array = false;
		uint32_t o = cast_oid(n->type_cast->type_name, &array);

		if (o == 0 || !array)
			return false;
		return array_shards(w, n->type_cast->arg, o, set);
	}
	case PG_QUERY__NODE__NODE_A_CONST: {
		const PgQuery__AConst *c = n->a_const;

		if (c->isnull || c->val_case != PG_QUERY__A__CONST__VAL_SVAL || c->sval == NULL)
			return false;
		return text_array_shards(w, c->sval->sval, strlen(c->sval->sval), set);
	}
	case PG_QUERY__NODE__NODE_PARAM_REF: {
		const route_param_t *p = param_at(w, n->param_ref->number);

		if (p == NULL) {
			w->params_missing = true;
			return false;
		}
		if (p->data == NULL || p->len < 0)
			return false;
		if (p->format == 0)
			return text_array_shards(w, (const char *)p->data, (size_t)p->len, set);
		return binary_array_shards(w, p->data, (size_t)p->len, set);
	}
	default:
		return false;
	}
}

/* ---- query blocks: the tables of one FROM and the predicates on them ---- */

/*
 * A sharded table of a block, or a derived table that reads sharded tables
 * (rv NULL): its rows are joined like a table's, and only on its key
 * columns is it co-located with the others.
 */
typedef struct rel {
	const cfg_table_t *table; /* sharded; for a derived table, one it reads */
	const PgQuery__RangeVar *rv;
	const char *name; /* a derived table's name in its level (alias, CTE name) */
	const char *what; /* "subquery", "CTE" */
	keyout_t keys;    /* a derived table's key columns */
	int group;        /* tables joined on equal keys share a group */
} rel_t;

typedef struct nodes {
	const PgQuery__Node **v;
	int n, cap;
} nodes_t;

typedef struct block {
	rel_t *rels; /* the sharded tables named directly in this FROM */
	int n_rels, cap_rels;
	nodes_t quals; /* inner-join conditions: filters like WHERE */
	nodes_t joins; /* every join condition, outer ones too: what is joined to what */
	part_t items;  /* what the FROM's subqueries and CTE references need */
} block_t;

static void nodes_push(walk_t *w, nodes_t *l, const PgQuery__Node *n)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 4;
		const PgQuery__Node **v = realloc(l->v, sizeof *v * (size_t)cap);

		if (v == NULL) {
			w->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = n;
}

static void block_init(block_t *b)
{
	memset(b, 0, sizeof *b);
	b->items = part_make(PART_NONE);
}

static void block_free(block_t *b)
{
	free(b->rels);
	free(b->quals.v);
	free(b->joins.v);
}

static void block_add_rel(walk_t *w, block_t *b, const cfg_table_t *t, const PgQuery__RangeVar *rv)
{
	if (b->n_rels == b->cap_rels) {
		int cap = b->cap_rels ? b->cap_rels * 2 : 4;
		rel_t *r = realloc(b->rels, sizeof *r * (size_t)cap);

		if (r == NULL) {
			w->nomem = true;
			return;
		}
		b->rels = r;
		b->cap_rels = cap;
	}
	memset(&b->rels[b->n_rels], 0, sizeof b->rels[b->n_rels]);
	b->rels[b->n_rels].table = t;
	b->rels[b->n_rels].rv = rv;
	b->rels[b->n_rels].group = b->n_rels;
	b->n_rels++;
}

static void block_add_derived(walk_t *w, block_t *b, const char *name, const char *what,
                              const keyout_t *ko)
{
	const cfg_table_t *t = ko->table != NULL ? ko->table : table_at(w, w->map_table);
	int i = b->n_rels;

	block_add_rel(w, b, t, NULL);
	if (b->n_rels == i)
		return; /* out of memory */
	b->rels[i].name = name != NULL ? name : "(unnamed)";
	b->rels[i].what = what;
	b->rels[i].keys = *ko;
}

/* The names of a rel's key columns: a table's one, a derived table's any number. */
static int rel_n_keys(const rel_t *r)
{
	return r->rv != NULL ? 1 : r->keys.n;
}

static const char *rel_key(const rel_t *r, int k)
{
	return r->rv != NULL ? r->table->key : r->keys.names[k];
}

static bool rel_has_key(const rel_t *r, const char *col)
{
	for (int k = 0; k < rel_n_keys(r); k++)
		if (streq(rel_key(r, k), col))
			return true;
	return false;
}

static void rel_join(block_t *b, int x, int y)
{
	int gx = b->rels[x].group, gy = b->rels[y].group;

	for (int i = 0; i < b->n_rels && gx != gy; i++)
		if (b->rels[i].group == gy)
			b->rels[i].group = gx;
}

static const char *alias_of(const PgQuery__RangeVar *rv)
{
	if (rv->alias != NULL && !empty(rv->alias->aliasname))
		return rv->alias->aliasname;
	return NULL;
}

/*
 * Which sharded table (or derived table) of the block a column reference
 * names as its key column (its index in b->rels), or -1. An alias hides the table's own
 * name, as in PostgreSQL. An unqualified name is the key of the table
 * whose key it is: had another table of the block a column of that name,
 * PostgreSQL would reject the reference as ambiguous.
 */
static int key_rel(const block_t *b, const PgQuery__Node *n)
{
	const PgQuery__ColumnRef *c;
	const char *col, *qual, *schema;
	size_t nf;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return -1;
	c = n->column_ref;
	nf = c->n_fields;
	if (nf < 1 || nf > 4)
		return -1;
	for (size_t i = 0; i < nf; i++)
		if (tree_str_of(c->fields[i]) == NULL)
			return -1;
	col = tree_str_of(c->fields[nf - 1]);
	qual = nf >= 2 ? tree_str_of(c->fields[nf - 2]) : NULL;
	schema = nf >= 3 ? tree_str_of(c->fields[nf - 3]) : NULL;
	for (int i = 0; i < b->n_rels; i++) {
		const rel_t *r = &b->rels[i];
		const char *alias;

		if (!rel_has_key(r, col))
			continue;
		if (nf == 1)
			return i;
		if (r->rv == NULL) {
			if (nf == 2 && streq(r->name, qual))
				return i;
			continue;
		}
		alias = alias_of(r->rv);
		if (alias != NULL) {
			if (nf == 2 && streq(alias, qual))
				return i;
			continue;
		}
		if (!streq(r->rv->relname, qual))
			continue;
		if (nf == 2 || empty(r->rv->schemaname) || streq(r->rv->schemaname, schema))
			return i;
	}
	return -1;
}

static void key_desc(sb_t *s, const rel_t *r)
{
	sb_printf(s, "%s.%s", r->table->name, r->table->key);
}

/* ---- predicates ---- */

static part_t set_part(walk_t *w, const shard_set_t *set, const char *desc)
{
	part_t p = part_make(PART_SET);

	p.set = *set;
	shard_set_union(&w->mentioned, set);
	snprintf(p.desc, sizeof p.desc, "%s", desc);
	return p;
}

static part_t eq_part(walk_t *w, const rel_t *r, const PgQuery__Node *val)
{
	char d[DESC_MAX];
	shard_set_t set;
	keyval_t kv;
	sb_t s;

	if (key_value(w, val, 0, &kv) != KV_OK)
		return part_make(PART_ALL);
	shard_set_clear(&set);
	add_shard(w, &set, &kv.key);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " = ");
	value_desc(w, &s, val);
	sb_finish(&s);
	return set_part(w, &set, d);
}

/* key < v, key <= v, key > v, key >= v: range maps only; a hash says nothing. */
static part_t range_part(walk_t *w, const rel_t *r, const char *op, const PgQuery__Node *val)
{
	char d[DESC_MAX];
	shard_set_t set;
	keyval_t kv;
	sb_t s;

	if (w->smap->cfg->kind != CFG_MAP_RANGE || key_value(w, val, 0, &kv) != KV_OK)
		return part_make(PART_ALL);
	shard_set_clear(&set);
	if (op[0] == '<')
		shard_map_lookup_range(w->smap, NULL, false, &kv.key, op[1] == '=', &set);
	else
		shard_map_lookup_range(w->smap, &kv.key, op[1] == '=', NULL, false, &set);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " %s ", op);
	value_desc(w, &s, val);
	sb_finish(&s);
	return set_part(w, &set, d);
}

static part_t between_part(walk_t *w, const rel_t *r, const PgQuery__Node *list, bool symmetric)
{
	const PgQuery__Node *lo, *hi;
	char d[DESC_MAX];
	shard_set_t set;
	keyval_t klo, khi;
	sb_t s;

	if (w->smap->cfg->kind != CFG_MAP_RANGE || list == NULL ||
	    list->node_case != PG_QUERY__NODE__NODE_LIST || list->list->n_items != 2)
		return part_make(PART_ALL);
	lo = list->list->items[0];
	hi = list->list->items[1];
	if (key_value(w, lo, 0, &klo) != KV_OK || key_value(w, hi, 0, &khi) != KV_OK)
		return part_make(PART_ALL);
	shard_set_clear(&set);
	if (symmetric && shard_key_compare(&klo.key, &khi.key) > 0)
		shard_map_lookup_range(w->smap, &khi.key, true, &klo.key, true, &set);
	else
		shard_map_lookup_range(w->smap, &klo.key, true, &khi.key, true, &set);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " BETWEEN%s ", symmetric ? " SYMMETRIC" : "");
	value_desc(w, &s, lo);
	sb_printf(&s, " AND ");
	value_desc(w, &s, hi);
	sb_finish(&s);
	return set_part(w, &set, d);
}

static part_t in_part(walk_t *w, const rel_t *r, const PgQuery__Node *list)
{
	char d[DESC_MAX];
	shard_set_t set;
	sb_t s;

	if (list == NULL || list->node_case != PG_QUERY__NODE__NODE_LIST)
		return part_make(PART_ALL);
	shard_set_clear(&set);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " IN (");
	for (size_t i = 0; i < list->list->n_items; i++) {
		keyval_t kv;
		int st = key_value(w, list->list->items[i], 0, &kv);

		if (st == KV_NULL)
			continue; /* x IN (NULL) is never true */
		if (st != KV_OK)
			return part_make(PART_ALL);
		add_shard(w, &set, &kv.key);
		if (i > 0)
			sb_printf(&s, ", ");
		value_desc(w, &s, list->list->items[i]);
	}
	sb_printf(&s, ")");
	sb_finish(&s);
	return set_part(w, &set, d);
}

static part_t any_part(walk_t *w, const rel_t *r, const PgQuery__Node *arr)
{
	char d[DESC_MAX];
	shard_set_t set;
	sb_t s;

	shard_set_clear(&set);
	if (!array_shards(w, arr, 0, &set))
		return part_make(PART_ALL);
	sb_init(&s, d, sizeof d);
	key_desc(&s, r);
	sb_printf(&s, " = ANY(");
	value_desc(w, &s, arr);
	sb_printf(&s, ")");
	sb_finish(&s);
	return set_part(w, &set, d);
}

/* The operator of an A_Expr: "=", "<", ... (pg_catalog's or unqualified only). */
static const char *op_name(const PgQuery__AExpr *e)
{
	if (e->n_name == 1)
		return tree_str_of(e->name[0]);
	if (e->n_name == 2 && streq(tree_str_of(e->name[0]), "pg_catalog"))
		return tree_str_of(e->name[1]);
	return NULL;
}

static const char *op_mirror(const char *op)
{
	if (strcmp(op, "<") == 0)
		return ">";
	if (strcmp(op, "<=") == 0)
		return ">=";
	if (strcmp(op, ">") == 0)
		return "<";
	if (strcmp(op, ">=") == 0)
		return "<=";
	return op;
}

static part_t aexpr_part(walk_t *w, const block_t *b, const PgQuery__AExpr *e)
{
	const char *op = op_name(e);
	int r;

	if (op == NULL)
		return part_make(PART_ALL);
	switch (e->kind) {
	case PG_QUERY__A__EXPR__KIND__AEXPR_OP: {
		const PgQuery__Node *val = e->rexpr;
		bool flip = false;

		if (strcmp(op, "=") != 0 && strcmp(op, "<") != 0 && strcmp(op, "<=") != 0 &&
		    strcmp(op, ">") != 0 && strcmp(op, ">=") != 0)
			return part_make(PART_ALL);
		r = key_rel(b, e->lexpr);
		if (r < 0) {
			r = key_rel(b, e->rexpr);
			val = e->lexpr;
			flip = true;
		}
		if (r < 0)
			return part_make(PART_ALL);
		if (strcmp(op, "=") == 0)
			return eq_part(w, &b->rels[r], val);
		return range_part(w, &b->rels[r], flip ? op_mirror(op) : op, val);
	}
	case PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY:
		r = key_rel(b, e->lexpr);
		if (r < 0 || strcmp(op, "=") != 0)
			return part_make(PART_ALL);
		return any_part(w, &b->rels[r], e->rexpr);
	case PG_QUERY__A__EXPR__KIND__AEXPR_IN:
		r = key_rel(b, e->lexpr);
		if (r < 0 || strcmp(op, "=") != 0) /* NOT IN is "<>" */
			return part_make(PART_ALL);
		return in_part(w, &b->rels[r], e->rexpr);
	case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN:
	case PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM:
		r = key_rel(b, e->lexpr);
		if (r < 0)
			return part_make(PART_ALL);
		return between_part(w, &b->rels[r], e->rexpr,
		                    e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM);
	default:
		return part_make(PART_ALL);
	}
}

/* What one boolean expression says about the block's keys. */
static part_t pred_part(walk_t *w, const block_t *b, const PgQuery__Node *n)
{
	part_t p;

	if (n == NULL)
		return part_make(PART_ALL);
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_BOOL_EXPR: {
		const PgQuery__BoolExpr *e = n->bool_expr;

		if (e->n_args == 0 || e->boolop == PG_QUERY__BOOL_EXPR_TYPE__NOT_EXPR)
			return part_make(PART_ALL);
		p = pred_part(w, b, e->args[0]);
		for (size_t i = 1; i < e->n_args; i++) {
			part_t q = pred_part(w, b, e->args[i]);

			if (e->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR)
				p = part_and(p, q);
			else
				p = part_or(p, q);
		}
		return p;
	}
	case PG_QUERY__NODE__NODE_A_EXPR:
		return aexpr_part(w, b, n->a_expr);
	default:
		return part_make(PART_ALL);
	}
}

/* ---- pass 2: the structured analysis ---- */

enum {
	KS_BAD,
	KS_COLOCATED, /* INSERT ... SELECT takes the key from a co-located table's key */
	KS_VALUE,     /* ... from a constant or parameter */
	KS_UNKNOWN,   /* ... from a parameter that was not given */
};

/* INSERT ... SELECT: where the selected value for the key column comes from. */
typedef struct keysrc {
	int pos; /* position in the select list */
	int kind;
	int shard;
} keysrc_t;

static part_t an_query(walk_t *w, const PgQuery__Node *n, scope_t *sc, bool top, keyout_t *ko);
static part_t an_select(walk_t *w, const PgQuery__SelectStmt *s, scope_t *sc, keysrc_t *ks,
                        keyout_t *ko);
static const char *level_combines(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b,
                                  bool as_set, char *buf, size_t len);
static bool item_named(const PgQuery__Node *n, const char *q, int depth);

static void keyout_init(keyout_t *ko)
{
	memset(ko, 0, sizeof *ko);
	ko->corr = -1;
}

static void keyout_add(keyout_t *ko, const char *name, int pos)
{
	if (name != NULL && ko->n < KEYOUT_MAX) {
		ko->names[ko->n] = name;
		ko->pos[ko->n] = pos;
		ko->n++;
	}
}

/* `AS s(a, b, ...)` renames the first columns: keys past a `*` are no longer known. */
static void keyout_rename(keyout_t *ko, const PgQuery__Alias *alias)
{
	keyout_t in = *ko;

	if (alias == NULL || alias->n_colnames == 0)
		return;
	ko->n = 0;
	for (int k = 0; k < in.n; k++) {
		if (in.pos[k] < 0)
			continue;
		if ((size_t)in.pos[k] < alias->n_colnames)
			keyout_add(ko, tree_str_of(alias->colnames[in.pos[k]]), in.pos[k]);
		else
			keyout_add(ko, in.names[k], in.pos[k]);
	}
}

/* Whether a rel is what the qualifier q names (an alias hides the table's own name). */
static bool rel_named(const rel_t *r, const char *q)
{
	if (r->rv == NULL)
		return streq(r->name, q);
	return alias_of(r->rv) != NULL ? streq(alias_of(r->rv), q) : streq(r->rv->relname, q);
}

/* The key columns a select list (or RETURNING list) passes on unmodified from block b. */
static void targets_keyout(const block_t *b, PgQuery__Node *const *targets, size_t n, keyout_t *ko)
{
	bool star = false;

	for (size_t i = 0; i < n; i++) {
		const PgQuery__ResTarget *rt;
		const PgQuery__ColumnRef *c;

		if (targets[i] == NULL || targets[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = targets[i]->res_target;
		if (tree_is_star(rt->val)) {
			const char *q;

			c = rt->val->column_ref;
			q = c->n_fields >= 2 ? tree_str_of(c->fields[c->n_fields - 2]) : NULL;
			for (int r = 0; r < b->n_rels; r++)
				if (c->n_fields == 1 || rel_named(&b->rels[r], q))
					for (int k = 0; k < rel_n_keys(&b->rels[r]); k++)
						keyout_add(ko, rel_key(&b->rels[r], k), -1);
			star = true;
			continue;
		}
		if (key_rel(b, rt->val) < 0)
			continue;
		c = rt->val->column_ref;
		keyout_add(ko,
		           !empty(rt->name) ? rt->name : tree_str_of(c->fields[c->n_fields - 1]),
		           star ? -1 : (int)i);
	}
}

/* DISTINCT keeps each row's key; DISTINCT ON picks among keys unless it is on one. */
static bool distinct_by_key(const PgQuery__SelectStmt *s, const block_t *b)
{
	if (s->n_distinct_clause == 0 ||
	    (s->n_distinct_clause == 1 &&
	     s->distinct_clause[0]->node_case == PG_QUERY__NODE__NODE__NOT_SET))
		return true;
	for (size_t i = 0; i < s->n_distinct_clause; i++)
		if (key_rel(b, s->distinct_clause[i]) >= 0)
			return true;
	return false;
}

/*
 * The key columns of one SELECT level (no set operation) whose block is b.
 * Its rows keep the shard their key says only if it combines no rows of
 * several keys: no window functions, LIMIT/OFFSET or DISTINCT ON other
 * columns, and aggregates only per group of a GROUP BY on the key.
 */
static void select_keyout(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b, keyout_t *ko)
{
	char buf[96];
	const char *why;

	if (b->n_rels == 0)
		return;
	ko->table = b->rels[0].table;
	why = level_combines(w, s, b, true, buf, sizeof buf);
	if (why == NULL && !distinct_by_key(s, b))
		why = "DISTINCT ON other columns than the shard key";
	if (why != NULL)
		snprintf(ko->why, sizeof ko->why, "has %s", why);
	else
		targets_keyout(b, s->target_list, s->n_target_list, ko);
}

/* UNION, INTERSECT, EXCEPT: a column is a key where it is one in both arms. */
static void setop_keyout(const keyout_t *l, const keyout_t *r, keyout_t *ko)
{
	ko->table = l->table != NULL ? l->table : r->table;
	memcpy(ko->why, l->why[0] != '\0' ? l->why : r->why, sizeof ko->why);
	for (int i = 0; i < l->n; i++)
		for (int k = 0; k < r->n && l->pos[i] >= 0; k++)
			if (r->pos[k] == l->pos[i]) {
				keyout_add(ko, l->names[i], l->pos[i]);
				break;
			}
}

/* INSERT, UPDATE, DELETE ... RETURNING: the key columns of the target it returns. */
static void returning_keyout(walk_t *w, const PgQuery__RangeVar *rel, PgQuery__Node *const *targets,
                             size_t n, keyout_t *ko)
{
	int i = rel ? find_table(w->cfg, rel->catalogname, rel->schemaname, rel->relname) : -1;
	block_t b;

	if (i < 0 || !is_sharded(table_at(w, i)))
		return;
	block_init(&b);
	block_add_rel(w, &b, table_at(w, i), rel);
	ko->table = table_at(w, i);
	if (b.n_rels == 1)
		targets_keyout(&b, targets, n, ko);
	block_free(&b);
}

/*
 * A LATERAL subquery whose block is b, correlated by a top-level conjunct of
 * its WHERE (or of an inner join's ON) that equates one of its keys with the
 * key of a table of the enclosing block up, named qualified: its rows then
 * live with that table's. The index of that table in up, or -1.
 */
static int lateral_corr(const PgQuery__SelectStmt *s, const block_t *b, const block_t *up,
                        const PgQuery__Node *n)
{
	const PgQuery__AExpr *e;

	if (n == NULL)
		return -1;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++) {
			int r = lateral_corr(s, b, up, n->bool_expr->args[i]);

			if (r >= 0)
				return r;
		}
		return -1;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return -1;
	e = n->a_expr;
	if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !streq(op_name(e), "="))
		return -1;
	for (int side = 0; side < 2; side++) {
		const PgQuery__Node *in = side ? e->rexpr : e->lexpr,
		                    *out = side ? e->lexpr : e->rexpr;
		const PgQuery__ColumnRef *c;
		const char *q;
		bool own = false;

		if (key_rel(b, in) < 0 || out == NULL ||
		    out->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
			continue;
		c = out->column_ref;
		q = c->n_fields >= 2 ? tree_str_of(c->fields[c->n_fields - 2]) : NULL;
		for (size_t i = 0; i < s->n_from_clause && q != NULL && !own; i++)
			own = item_named(s->from_clause[i], q, 0);
		if (q != NULL && !own && key_rel(up, out) >= 0)
			return key_rel(up, out);
	}
	return -1;
}

static part_t cte_part(walk_t *w, scope_t *node)
{
	if (node->done)
		return node->part;
	if (node->busy || node->cte == NULL)
		return part_make(PART_NONE); /* a recursive reference adds no table */
	node->busy = true;
	keyout_init(&node->keys);
	node->part = an_query(w, node->cte->ctequery, node->inner, false, &node->keys);
	if (node->recursive) {
		/* its rows grow from rows of other keys */
		node->keys.n = 0;
		snprintf(node->keys.why, sizeof node->keys.why, "is a recursive CTE");
	}
	node->busy = false;
	node->done = true;
	return node->part;
}

static bool is_write_query(const PgQuery__Node *n)
{
	return n != NULL && (n->node_case == PG_QUERY__NODE__NODE_INSERT_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_DELETE_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_MERGE_STMT);
}

/* Data-modifying CTEs run whether or not they are referenced: union them in. */
static part_t with_writes(walk_t *w, const PgQuery__WithClause *with, scope_t *nodes)
{
	part_t p = part_make(PART_NONE);

	if (nodes == NULL)
		return p;
	for (size_t i = 0; i < with->n_ctes; i++)
		if (nodes[i].cte != NULL && is_write_query(nodes[i].cte->ctequery))
			p = part_or(p, cte_part(w, &nodes[i]));
	return p;
}

static bool in_string_list(PgQuery__Node *const *items, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (streq(tree_str_of(items[i]), s))
			return true;
	return false;
}

/*
 * USING (key), NATURAL: the keys of both sides of join j are equal. The
 * rels of its left side are l0 .. l1 - 1 of b, those of its right side
 * l1 and after.
 */
static void join_using(block_t *b, const PgQuery__JoinExpr *j, int l0, int l1)
{
	for (int x = l0; x < l1 && (j->is_natural || j->n_using_clause > 0); x++)
		for (int y = l1; y < b->n_rels; y++)
			for (int k = 0; k < rel_n_keys(&b->rels[x]); k++) {
				const char *key = rel_key(&b->rels[x], k);

				if (rel_has_key(&b->rels[y], key) &&
				    (j->is_natural ||
				     in_string_list(j->using_clause, j->n_using_clause, key)))
					rel_join(b, x, y);
			}
}

static void an_from_item(walk_t *w, const PgQuery__Node *n, scope_t *sc, block_t *b, bool nullable)
{
	if (n == NULL || stopped(w))
		return;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		scope_t *cte = empty(rv->schemaname) ? find_cte(sc, rv->relname) : NULL;
		int i;

		if (cte != NULL) {
			part_t p = cte_part(w, cte);
			keyout_t ko = cte->keys;

			b->items = part_and(b->items, nullable ? part_weaken(p) : p);
			if (p.kind != PART_NONE && cte->done) {
				keyout_rename(&ko, rv->alias);
				block_add_derived(w, b, alias_of(rv) ? alias_of(rv) : rv->relname,
				                  "CTE", &ko);
			}
			return;
		}
		i = find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		if (i >= 0 && is_sharded(table_at(w, i)))
			block_add_rel(w, b, table_at(w, i), rv);
		return;
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		const PgQuery__JoinExpr *j = n->join_expr;
		bool inner = j->jointype == PG_QUERY__JOIN_TYPE__JOIN_INNER;
		int l0, l1;
		bool lnull = nullable || j->jointype == PG_QUERY__JOIN_TYPE__JOIN_RIGHT ||
		             j->jointype == PG_QUERY__JOIN_TYPE__JOIN_FULL;
		bool rnull = nullable || j->jointype == PG_QUERY__JOIN_TYPE__JOIN_LEFT ||
		             j->jointype == PG_QUERY__JOIN_TYPE__JOIN_FULL;

		if (!inner && j->jointype != PG_QUERY__JOIN_TYPE__JOIN_LEFT &&
		    j->jointype != PG_QUERY__JOIN_TYPE__JOIN_RIGHT &&
		    j->jointype != PG_QUERY__JOIN_TYPE__JOIN_FULL)
			lnull = rnull = true; /* semi/anti joins do not come from the grammar */
		l0 = b->n_rels;
		an_from_item(w, j->larg, sc, b, lnull);
		l1 = b->n_rels;
		an_from_item(w, j->rarg, sc, b, rnull);
		join_using(b, j, l0, l1);
		if (j->quals != NULL) {
			nodes_push(w, &b->joins, j->quals);
			/* an outer join's ON keeps the rows it does not match: no filter */
			if (inner && !nullable)
				nodes_push(w, &b->quals, j->quals);
		}
		return;
	}
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
		const PgQuery__RangeSubselect *rs = n->range_subselect;
		const PgQuery__Alias *alias = rs->alias;
		keyout_t ko;
		part_t p;

		keyout_init(&ko);
		w->lateral_up = rs->lateral ? b : NULL;
		p = an_query(w, rs->subquery, sc, false, &ko);
		w->lateral_up = NULL;
		b->items = part_and(b->items, nullable ? part_weaken(p) : p);
		if (p.kind != PART_NONE) {
			int i = b->n_rels;

			keyout_rename(&ko, alias);
			block_add_derived(w, b, alias != NULL ? alias->aliasname : NULL, "subquery",
			                  &ko);
			if (ko.corr >= 0 && ko.corr < i && b->n_rels > i)
				rel_join(b, ko.corr, i);
		}
		return;
	}
	default:
		return; /* functions, VALUES in FROM, ...: no table of their own */
	}
}

/* Split a WHERE into its top-level conjuncts. */
static void block_conjuncts(walk_t *w, const block_t *b, const PgQuery__Node *n, scope_t *sc,
                            part_t *cons, part_t *subs)
{
	if (n == NULL || stopped(w))
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			block_conjuncts(w, b, n->bool_expr->args[i], sc, cons, subs);
		return;
	}
	if (n->node_case == PG_QUERY__NODE__NODE_SUB_LINK) {
		part_t inner = an_query(w, n->sub_link->subselect, sc, false, NULL);

		/*
		 * key IN (SELECT ...), EXISTS (...): true only where a row of the
		 * subquery is. x <> ALL (SELECT ...) is true where there is none.
		 */
		if (n->sub_link->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK)
			inner = part_weaken(inner);
		*subs = part_and(*subs, inner);
		return;
	}
	*cons = part_and(*cons, pred_part(w, b, n));
}

/* Join the groups of the tables that an `a.key = b.key` conjunct equates. */
static void join_keys(block_t *b, const PgQuery__Node *n)
{
	const PgQuery__AExpr *e;
	int x, y;

	if (n == NULL)
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			join_keys(b, n->bool_expr->args[i]);
		return;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return;
	e = n->a_expr;
	if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !streq(op_name(e), "="))
		return;
	x = key_rel(b, e->lexpr);
	y = key_rel(b, e->rexpr);
	if (x >= 0 && y >= 0)
		rel_join(b, x, y);
}

/* A rel for people: "table users", "subquery s over orders". */
static void rel_words(const rel_t *r, char *out, size_t len)
{
	if (r->rv != NULL)
		snprintf(out, len, "table %s", r->table->name);
	else
		snprintf(out, len, "%s %s over %s", r->what, r->name, r->table->name);
}

/* How a join on a rel's key names it: u.id, s.user_id. */
static void rel_keyref(const rel_t *r, char *out, size_t len)
{
	if (r->rv != NULL)
		snprintf(out, len, "%s.%s", alias_of(r->rv) ? alias_of(r->rv) : r->table->name,
		         r->table->key);
	else
		snprintf(out, len, "%s.%s", r->name,
		         r->keys.n > 0 ? r->keys.names[0] : r->table->key);
}

/*
 * Sharded tables of one query level must be joined on their keys: only
 * then does each shard hold all the rows that join with its own (that is
 * what co-location buys). Any other join of them needs rows from several
 * shards at once, which one statement on each shard cannot see. A derived
 * table over sharded tables (FROM subquery, CTE) is one of them: its rows
 * are co-located with a table's only through a key column it selects
 * unmodified (see keyout_t), or a LATERAL correlation on the key. Like a
 * direct join, this is refused whatever the statement's predicates, even
 * those that would route it to one shard: a join on other columns would
 * still need rows of the other shards.
 */
static void check_joined_on_keys(walk_t *w, block_t *b, const PgQuery__Node *where)
{
	if (b->n_rels < 2 || shard_set_count(&w->smap->all) <= 1)
		return;
	join_keys(b, where);
	for (int i = 0; i < b->joins.n; i++)
		join_keys(b, b->joins.v[i]);
	for (int i = 1; i < b->n_rels; i++) {
		const rel_t *r0 = &b->rels[0], *r = &b->rels[i];
		const rel_t *d = r0->rv == NULL ? r0 : r;
		const cfg_table_t *t0 = r0->table, *t = r->table;
		char k0[2 * NAME_MAX_LEN], k[2 * NAME_MAX_LEN];
		char w0[3 * NAME_MAX_LEN], wi[3 * NAME_MAX_LEN];

		if (r->group == r0->group)
			continue;
		if (r0->rv != NULL && r->rv != NULL) {
			refuse(
			    w,
			    "tables %s and %s are joined without equal keys, so matching rows may "
			    "be on different shards; join them on %s.%s = %s.%s (or query them "
			    "separately)",
			    t0->name, t->name, alias_of(r0->rv) ? alias_of(r0->rv) : t0->name,
			    t0->key, alias_of(r->rv) ? alias_of(r->rv) : t->name, t->key);
			return;
		}
		/* a derived table: its rows are where the key it selects says */
		if (r->rv == NULL && (r->keys.why[0] != '\0' || r0->rv != NULL))
			d = r;
		rel_words(r0, w0, sizeof w0);
		rel_words(r, wi, sizeof wi);
		rel_keyref(r0, k0, sizeof k0);
		rel_keyref(r, k, sizeof k);
		if (d->keys.why[0] != '\0')
			refuse(w,
			       "%s %s, so its rows are not each on the shard of their key, and it "
			       "is joined to %s: that is not supported yet (each shard would join "
			       "only its own rows); keep %s.%s in it unmodified, with aggregates "
			       "only grouped by it and no LIMIT/OFFSET, window functions or "
			       "recursion, and join on %s = %s, or /* pgshard: shard=N */",
			       d == r ? wi : w0, d->keys.why, d == r ? w0 : wi, d->table->name,
			       d->table->key, k0, k);
		else
			refuse(
			    w,
			    "%s and %s are joined without equal keys, so matching rows may be on "
			    "different shards; join them on %s = %s, with %s %s selecting %s.%s "
			    "unmodified (and grouping by it if it aggregates), or query them "
			    "separately",
			    w0, wi, k0, k, d->what, d->name, d->table->name, d->table->key);
		return;
	}
}

static part_t an_block(walk_t *w, block_t *b, const PgQuery__Node *where, scope_t *sc)
{
	part_t cons = part_make(PART_ALL), subs = part_make(PART_NONE), direct;

	check_joined_on_keys(w, b, where);

	block_conjuncts(w, b, where, sc, &cons, &subs);
	for (int i = 0; i < b->quals.n; i++)
		block_conjuncts(w, b, b->quals.v[i], sc, &cons, &subs);
	if (b->n_rels == 0)
		direct = part_make(PART_NONE);
	else
		direct = cons.kind == PART_SET ? cons : part_make(PART_ALL);
	return part_and(part_and(direct, b->items), subs);
}

/*
 * Every subquery in an expression, ANDed: for a query level that reads no
 * sharded table itself, each subquery's value is right on a shard that holds
 * all of the subquery's rows.
 */
static void expr_sublinks(walk_t *w, const ProtobufCMessage *m, scope_t *sc, part_t *acc);

typedef struct sublinks_arg {
	scope_t *sc;
	part_t *acc;
} sublinks_arg_t;

static void sublinks_child(walk_t *w, const ProtobufCMessage *child, void *arg)
{
	sublinks_arg_t *a = arg;

	expr_sublinks(w, child, a->sc, a->acc);
}

static void expr_sublinks(walk_t *w, const ProtobufCMessage *m, scope_t *sc, part_t *acc)
{
	sublinks_arg_t a = {sc, acc};

	if (stopped(w))
		return;
	if (m->descriptor == &pg_query__sub_link__descriptor) {
		const PgQuery__SubLink *l = (const PgQuery__SubLink *)m;

		*acc = part_and(*acc, an_query(w, l->subselect, sc, false, NULL));
		return;
	}
	each_child(w, m, NULL, NULL, sublinks_child, &a);
}

/* INSERT ... SELECT: what the select list gives the key column. */
static void select_keysrc(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b, keysrc_t *ks)
{
	const PgQuery__Node *val;
	keyval_t kv;

	ks->kind = KS_BAD;
	if (ks->pos < 0 || (size_t)ks->pos >= s->n_target_list)
		return;
	for (int i = 0; i <= ks->pos; i++) {
		const PgQuery__Node *t = s->target_list[i];

		if (t == NULL || t->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			return;
		val = t->res_target->val;
		/* SELECT * : the key's position is the table's column order, unknown here */
		if (val != NULL && val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
		    val->column_ref->n_fields > 0 &&
		    val->column_ref->fields[val->column_ref->n_fields - 1]->node_case ==
		        PG_QUERY__NODE__NODE_A_STAR)
			return;
	}
	val = s->target_list[ks->pos]->res_target->val;
	if (key_rel(b, val) >= 0) {
		ks->kind = KS_COLOCATED;
		return;
	}
	switch (key_value(w, val, 0, &kv)) {
	case KV_OK:
		ks->shard = shard_map_lookup(w->smap, &kv.key);
		if (ks->shard >= 0)
			ks->kind = KS_VALUE;
		break;
	case KV_UNKNOWN:
		ks->kind = KS_UNKNOWN;
		break;
	default:
		break;
	}
}

static part_t an_select(walk_t *w, const PgQuery__SelectStmt *s, scope_t *sc, keysrc_t *ks,
                        keyout_t *ko)
{
	const block_t *lateral_up = w->lateral_up;
	scope_t *nodes, *body;
	part_t p, writes;

	w->lateral_up = NULL; /* for this level only, not the subqueries in it */
	if (s == NULL || stopped(w))
		return part_make(PART_NONE);
	if (++w->depth > MAX_DEPTH) {
		refuse(
		    w,
		    "the statement is nested too deeply for pgshard's router (more than %d levels)",
		    MAX_DEPTH);
		w->depth--;
		return part_make(PART_ALL);
	}
	body = with_open(w, s->with_clause, sc, &nodes);
	writes = with_writes(w, s->with_clause, nodes);
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
		keysrc_t kl, kr;
		keyout_t ol, orr;

		if (ks != NULL) {
			kl = *ks;
			kr = *ks;
		}
		keyout_init(&ol);
		keyout_init(&orr);
		/* UNION, INTERSECT, EXCEPT: either side's rows may matter */
		p = part_or(an_select(w, s->larg, body, ks ? &kl : NULL, ko ? &ol : NULL),
		            an_select(w, s->rarg, body, ks ? &kr : NULL, ko ? &orr : NULL));
		if (ks != NULL)
			ks->kind = kl.kind == KS_COLOCATED && kr.kind == KS_COLOCATED ? KS_COLOCATED
			                                                              : KS_BAD;
		/* a LIMIT of the whole picks among the rows of all shards */
		if (ko != NULL && (s->limit_count != NULL || s->limit_offset != NULL))
			snprintf(ko->why, sizeof ko->why, "has LIMIT/OFFSET");
		else if (ko != NULL)
			setop_keyout(&ol, &orr, ko);
	} else if (s->n_values_lists > 0) {
		p = part_make(PART_NONE);
		if (ks != NULL)
			ks->kind = KS_BAD;
	} else {
		part_t subs = part_make(PART_NONE);
		block_t b;

		block_init(&b);
		for (size_t i = 0; i < s->n_from_clause; i++)
			an_from_item(w, s->from_clause[i], body, &b, false);
		p = an_block(w, &b, s->where_clause, body);
		/*
		 * SELECT (SELECT ... FROM users WHERE id = 1), SELECT ... FROM
		 * countries WHERE NOT EXISTS (...): no sharded table of this level
		 * joins the subqueries' rows, so the level is answered where they are.
		 */
		if (p.kind == PART_NONE && b.n_rels == 0 && b.items.kind == PART_NONE) {
			for (size_t i = 0; i < s->n_target_list; i++)
				expr_sublinks(w, &s->target_list[i]->base, body, &subs);
			if (s->where_clause != NULL)
				expr_sublinks(w, &s->where_clause->base, body, &subs);
			if (s->having_clause != NULL)
				expr_sublinks(w, &s->having_clause->base, body, &subs);
			p = subs;
		}
		if (ks != NULL)
			select_keysrc(w, s, &b, ks);
		if (ko != NULL) {
			select_keyout(w, s, &b, ko);
			if (lateral_up != NULL) {
				ko->corr = lateral_corr(s, &b, lateral_up, s->where_clause);
				for (int i = 0; i < b.quals.n && ko->corr < 0; i++)
					ko->corr = lateral_corr(s, &b, lateral_up, b.quals.v[i]);
			}
		}
		block_free(&b);
	}
	p = part_or(p, writes);
	free(nodes);
	w->depth--;
	return p;
}

enum {
	STAYS_NO,
	STAYS_YES,
	STAYS_UNKNOWN, /* a parameter that was not given: decided when it is */
};

/*
 * SET key = val keeps every row on its shard when val is the key itself, or
 * a value whose shard is the one shard all the rows can be on.
 */
static int key_stays(walk_t *w, const block_t *b, int target, const PgQuery__Node *val,
                     const part_t *rows)
{
	const shard_set_t *where = rows->kind == PART_SET ? &rows->set : &w->smap->all;
	keyval_t kv;
	int s;

	if (val != NULL && val->node_case == PG_QUERY__NODE__NODE_MULTI_ASSIGN_REF) {
		const PgQuery__MultiAssignRef *m = val->multi_assign_ref;

		if (m->source == NULL || m->source->node_case != PG_QUERY__NODE__NODE_ROW_EXPR ||
		    m->colno < 1 || (size_t)m->colno > m->source->row_expr->n_args)
			return STAYS_NO;
		val = m->source->row_expr->args[m->colno - 1];
	}
	if (val != NULL && val->node_case == PG_QUERY__NODE__NODE_COLUMN_REF)
		return key_rel(b, val) == target ? STAYS_YES : STAYS_NO;
	switch (key_value(w, val, 0, &kv)) {
	case KV_OK:
		s = shard_map_lookup(w->smap, &kv.key);
		return s >= 0 && shard_set_count(where) == 1 && shard_set_has(where, s) ? STAYS_YES
		                                                                        : STAYS_NO;
	case KV_UNKNOWN:
		return STAYS_UNKNOWN;
	default:
		return STAYS_NO;
	}
}

/* Refuse SET key = ... that could move rows (UPDATE, MERGE ... UPDATE). */
static void check_key_sets(walk_t *w, const block_t *b, int target, PgQuery__Node *const *targets,
                           size_t n, const part_t *rows, const char *what)
{
	const cfg_table_t *t = b->rels[target].table;

	for (size_t i = 0; i < n && !stopped(w); i++) {
		const PgQuery__ResTarget *rt;

		if (targets[i] == NULL || targets[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = targets[i]->res_target;
		if (!streq(rt->name, t->key))
			continue;
		if (rt->n_indirection == 0 && key_stays(w, b, target, rt->val, rows) != STAYS_NO)
			continue;
		refuse(w,
		       "%s of the key column %s of %s could move rows to another shard; pgshard "
		       "does not move rows between shards: DELETE the rows and INSERT them with "
		       "the new key (in one transaction), or set the key only to a value on the "
		       "same shard with WHERE %s = that value",
		       what, t->key, t->name, t->key);
	}
}

/*
 * The relations an UPDATE or DELETE works on: its target (first, when it is
 * sharded) and those of its FROM / USING list. Returns the target's config
 * table index, or -1.
 */
static int target_block(walk_t *w, const PgQuery__RangeVar *rel, PgQuery__Node **from,
                        size_t n_from, scope_t *body, block_t *b)
{
	int i = rel ? find_table(w->cfg, rel->catalogname, rel->schemaname, rel->relname) : -1;

	block_init(b);
	if (i >= 0 && is_sharded(table_at(w, i)))
		block_add_rel(w, b, table_at(w, i), rel);
	for (size_t k = 0; k < n_from; k++)
		an_from_item(w, from[k], body, b, false);
	return i;
}

static part_t an_update(walk_t *w, const PgQuery__UpdateStmt *u, scope_t *sc)
{
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;
	int i;

	body = with_open(w, u->with_clause, sc, &nodes);
	writes = with_writes(w, u->with_clause, nodes);
	i = target_block(w, u->relation, u->from_clause, u->n_from_clause, body, &b);
	p = an_block(w, &b, u->where_clause, body);
	if (!stopped(w) && i >= 0 && b.n_rels > 0 && b.rels[0].rv == u->relation)
		check_key_sets(w, &b, 0, u->target_list, u->n_target_list, &p, "UPDATE");
	block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

static part_t an_delete(walk_t *w, const PgQuery__DeleteStmt *d, scope_t *sc)
{
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;

	body = with_open(w, d->with_clause, sc, &nodes);
	writes = with_writes(w, d->with_clause, nodes);
	target_block(w, d->relation, d->using_clause, d->n_using_clause, body, &b);
	p = an_block(w, &b, d->where_clause, body);
	block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

/*
 * Position of column `key` in a column list (INSERT's ResTargets, COPY's
 * Strings), -1 if absent.
 */
static int column_pos(PgQuery__Node *const *cols, size_t n, const char *key, bool *indirect)
{
	*indirect = false;
	for (size_t i = 0; i < n; i++) {
		if (cols[i] == NULL)
			continue;
		if (streq(tree_str_of(cols[i]), key))
			return (int)i;
		if (cols[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		if (streq(cols[i]->res_target->name, key)) {
			*indirect = cols[i]->res_target->n_indirection > 0;
			return (int)i;
		}
	}
	return -1;
}

/* The shard one row's key value goes to; -1 (refused) when it cannot be routed. */
static int row_shard(walk_t *w, const cfg_table_t *t, const PgQuery__Node *val, size_t row,
                     bool *unknown)
{
	char v[64];
	keyval_t kv;
	sb_t s;
	int st, shard;

	*unknown = false;
	st = key_value(w, val, 0, &kv);
	switch (st) {
	case KV_OK:
		shard = shard_map_lookup(w->smap, &kv.key);
		if (shard >= 0)
			return shard;
		sb_init(&s, v, sizeof v);
		value_desc(w, &s, val);
		sb_finish(&s);
		refuse(w,
		       "no range of map %s holds the key value %s of row %zu of the INSERT into %s",
		       w->smap->cfg->name, v, row, t->name);
		return -1;
	case KV_NULL:
		refuse(
		    w,
		    "the key column %s of sharded table %s cannot be NULL (row %zu of the INSERT)",
		    t->key, t->name, row);
		return -1;
	case KV_UNKNOWN:
		*unknown = true;
		return -1;
	case KV_INVALID:
		sb_init(&s, v, sizeof v);
		value_desc(w, &s, val);
		sb_finish(&s);
		refuse(w, "the key value %s of row %zu of the INSERT into %s is not a valid %s key",
		       v, row, t->name, shard_key_type_name(w->smap->cfg->key));
		return -1;
	default:
		refuse(w,
		       "the value of key column %s must be a constant or a parameter (row %zu of "
		       "the INSERT into %s has %s): pgshard routes each row by its key",
		       t->key, row, t->name,
		       val != NULL && val->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT
		           ? "DEFAULT"
		           : "an expression");
		return -1;
	}
}

static void refuse_no_key_column(walk_t *w, const cfg_table_t *t, const char *stmt)
{
	refuse(w,
	       "%s into sharded table %s must give the key column %s: pgshard routes each row by "
	       "it (a default would be computed on whichever shard runs the %s)",
	       stmt, t->name, t->key, stmt);
}

static void refuse_no_column_list(walk_t *w, const cfg_table_t *t, const char *stmt)
{
	refuse(w,
	       "%s into sharded table %s needs an explicit column list: pgshard does not know the "
	       "table's column order, so it cannot find the key column %s (write %s %s (%s, ...))",
	       stmt, t->name, t->key, strcmp(stmt, "INSERT") == 0 ? "INSERT INTO" : "INSERT",
	       strcmp(stmt, "INSERT") == 0 ? t->name : "", t->key);
}

/* ON CONFLICT DO UPDATE SET key = ...: only EXCLUDED.key, the key itself, or the same shard. */
static void check_on_conflict(walk_t *w, const PgQuery__InsertStmt *ins, const block_t *b,
                              const part_t *rows)
{
	const PgQuery__OnConflictClause *oc = ins->on_conflict_clause;
	const cfg_table_t *t = b->rels[0].table;

	if (oc == NULL || oc->action != PG_QUERY__ON_CONFLICT_ACTION__ONCONFLICT_UPDATE)
		return;
	for (size_t i = 0; i < oc->n_target_list && !stopped(w); i++) {
		const PgQuery__ResTarget *rt;
		const PgQuery__Node *v;

		if (oc->target_list[i]->node_case != PG_QUERY__NODE__NODE_RES_TARGET)
			continue;
		rt = oc->target_list[i]->res_target;
		if (!streq(rt->name, t->key))
			continue;
		v = rt->val;
		if (rt->n_indirection == 0 && v != NULL &&
		    v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF &&
		    v->column_ref->n_fields == 2 &&
		    streq(tree_str_of(v->column_ref->fields[0]), "excluded") &&
		    streq(tree_str_of(v->column_ref->fields[1]), t->key))
			continue;
		if (rt->n_indirection == 0 && key_stays(w, b, 0, v, rows) != STAYS_NO)
			continue;
		refuse(w,
		       "ON CONFLICT DO UPDATE SET %s = ... could move the row to another shard; "
		       "set the key column only to EXCLUDED.%s",
		       t->key, t->key);
	}
}

static part_t an_insert(walk_t *w, const PgQuery__InsertStmt *ins, scope_t *sc, bool top)
{
	const PgQuery__SelectStmt *sel = NULL;
	const cfg_table_t *t;
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;
	bool indirect;
	int i, k;

	i = ins->relation ? find_table(w->cfg, ins->relation->catalogname,
	                               ins->relation->schemaname, ins->relation->relname)
	                  : -1;
	if (i < 0 || !is_sharded(table_at(w, i)))
		return part_make(PART_NONE); /* unreachable: such writes are decided before */
	t = table_at(w, i);
	if (ins->n_cols == 0) {
		refuse_no_column_list(w, t, "INSERT");
		return part_make(PART_ALL);
	}
	k = column_pos(ins->cols, ins->n_cols, t->key, &indirect);
	if (k < 0) {
		refuse_no_key_column(w, t, "INSERT");
		return part_make(PART_ALL);
	}
	if (indirect) {
		refuse(w,
		       "INSERT into %s assigns to a part of the key column %s; give the whole key",
		       t->name, t->key);
		return part_make(PART_ALL);
	}
	if (ins->select_stmt != NULL &&
	    ins->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
		sel = ins->select_stmt->select_stmt;
	if (sel == NULL) {
		refuse_no_key_column(w, t, "INSERT");
		return part_make(PART_ALL);
	}

	body = with_open(w, ins->with_clause, sc, &nodes);
	writes = with_writes(w, ins->with_clause, nodes);
	block_init(&b);
	block_add_rel(w, &b, t, ins->relation);

	if (sel->n_values_lists > 0 && sel->n_from_clause == 0 && sel->with_clause == NULL) {
		/* INSERT ... VALUES: each row by its own key */
		shard_set_t set;
		bool unknown_any = false;
		char d[DESC_MAX];
		sb_t s;

		shard_set_clear(&set);
		for (size_t r = 0; r < sel->n_values_lists && !stopped(w); r++) {
			const PgQuery__Node *row = sel->values_lists[r];
			bool unknown;
			int shard;

			if (row == NULL || row->node_case != PG_QUERY__NODE__NODE_LIST ||
			    (size_t)k >= row->list->n_items) {
				refuse(w,
				       "row %zu of the INSERT into %s has no value for the key "
				       "column %s",
				       r + 1, t->name, t->key);
				break;
			}
			shard = row_shard(w, t, row->list->items[k], r + 1, &unknown);
			if (shard >= 0)
				shard_set_add(&set, shard);
			unknown_any |= unknown;
		}
		sb_init(&s, d, sizeof d);
		if (stopped(w)) {
			/* refused: no reason to write */
		} else if (sel->n_values_lists == 1) {
			sb_printf(&s, "%s.%s = ", t->name, t->key);
			value_desc(w, &s,
			           sel->values_lists[0]->list->n_items > (size_t)k
			               ? sel->values_lists[0]->list->items[k]
			               : NULL);
		} else {
			sb_printf(&s, "%zu rows by %s.%s", sel->n_values_lists, t->name, t->key);
		}
		sb_finish(&s);
		p = unknown_any ? part_make(PART_ALL) : set_part(w, &set, d);
		if (p.kind == PART_SET && shard_set_count(&p.set) > 1) {
			if (!top || ins->with_clause != NULL)
				refuse(w,
				       "the rows of this INSERT into %s go to several shards, "
				       "which pgshard can only split for a plain INSERT ... VALUES "
				       "(without WITH, not inside another statement); send one "
				       "INSERT per shard",
				       t->name);
			else if (sel->limit_count != NULL || sel->limit_offset != NULL)
				/* each shard would apply the LIMIT to its own rows only */
				refuse(w,
				       "the rows of this INSERT into %s go to several shards, but "
				       "LIMIT/OFFSET picks among all of them; send only the rows "
				       "to insert",
				       t->name);
			else
				w->ins_split = true;
		}
		if (top)
			w->key_column = k;
	} else {
		/* INSERT ... SELECT: rows are inserted on the shard they are read on */
		keysrc_t ks = {.pos = k, .kind = KS_BAD, .shard = -1};

		p = an_select(w, sel, body, &ks, NULL);
		if (!stopped(w) && ks.kind == KS_VALUE) {
			shard_set_t one;

			shard_set_clear(&one);
			shard_set_add(&one, ks.shard);
			if (p.kind == PART_NONE)
				p = set_part(w, &one, "INSERT ... SELECT of a constant key");
			else if (p.kind != PART_SET || shard_set_count(&p.set) != 1 ||
			         !shard_set_has(&p.set, ks.shard))
				ks.kind = KS_BAD;
		}
		if (ks.kind == KS_UNKNOWN)
			p = part_make(PART_ALL); /* decided again when the parameter is given */
		if (!stopped(w) && ks.kind == KS_BAD)
			refuse(w,
			       "INSERT ... SELECT into sharded table %s must select its key column "
			       "%s from the key of a table on the same map (or a constant on the "
			       "shards the SELECT reads): otherwise rows would be inserted on the "
			       "wrong shard",
			       t->name, t->key);
	}
	if (!stopped(w))
		check_on_conflict(w, ins, &b, &p);
	block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

static part_t an_merge(walk_t *w, const PgQuery__MergeStmt *m, scope_t *sc)
{
	scope_t *nodes, *body;
	part_t p, writes;
	block_t b;
	bool inserts = false;
	int i;

	body = with_open(w, m->with_clause, sc, &nodes);
	writes = with_writes(w, m->with_clause, nodes);
	block_init(&b);
	i = m->relation ? find_table(w->cfg, m->relation->catalogname, m->relation->schemaname,
	                             m->relation->relname)
	                : -1;
	if (i >= 0 && is_sharded(table_at(w, i)))
		block_add_rel(w, &b, table_at(w, i), m->relation);
	an_from_item(w, m->source_relation, body, &b, false);
	for (size_t k = 0; k < m->n_merge_when_clauses; k++) {
		const PgQuery__Node *c = m->merge_when_clauses[k];

		if (c->node_case == PG_QUERY__NODE__NODE_MERGE_WHEN_CLAUSE &&
		    !c->merge_when_clause->matched &&
		    c->merge_when_clause->command_type == PG_QUERY__CMD_TYPE__CMD_INSERT)
			inserts = true;
	}
	/*
	 * WHEN NOT MATCHED acts on the source rows the ON condition rejects, so
	 * the ON condition narrows nothing then.
	 */
	if (m->join_condition != NULL)
		nodes_push(w, &b.joins, m->join_condition);
	p = an_block(w, &b, inserts ? NULL : m->join_condition, body);
	for (size_t k = 0; k < m->n_merge_when_clauses && !stopped(w) && b.n_rels > 0 &&
	                   b.rels[0].rv == m->relation;
	     k++) {
		const PgQuery__MergeWhenClause *c;
		const cfg_table_t *t = b.rels[0].table;
		bool indirect;
		int pos, r;

		if (m->merge_when_clauses[k]->node_case != PG_QUERY__NODE__NODE_MERGE_WHEN_CLAUSE)
			continue;
		c = m->merge_when_clauses[k]->merge_when_clause;
		if (c->matched && c->command_type == PG_QUERY__CMD_TYPE__CMD_UPDATE) {
			check_key_sets(w, &b, 0, c->target_list, c->n_target_list, &p,
			               "MERGE ... UPDATE");
			continue;
		}
		if (c->matched || c->command_type != PG_QUERY__CMD_TYPE__CMD_INSERT)
			continue;
		if (c->n_target_list == 0) {
			refuse_no_column_list(w, t, "MERGE ... INSERT");
			break;
		}
		pos = column_pos(c->target_list, c->n_target_list, t->key, &indirect);
		if (pos < 0 || indirect || (size_t)pos >= c->n_values) {
			refuse_no_key_column(w, t, "MERGE ... INSERT");
			break;
		}
		r = key_rel(&b, c->values[pos]);
		if (r > 0)
			continue; /* the source's own co-located key */
		if (r < 0 && key_stays(w, &b, 0, c->values[pos], &p) != STAYS_NO)
			continue;
		refuse(w,
		       "MERGE ... INSERT into sharded table %s must take the key column %s from "
		       "the key of a source table on the same map (or a constant when the MERGE "
		       "runs on that key's shard only)",
		       t->name, t->key);
	}
	block_free(&b);
	free(nodes);
	return part_or(p, writes);
}

/* ko, when not NULL: the key columns of the query's rows, as a derived table (see keyout_t). */
static part_t an_query(walk_t *w, const PgQuery__Node *n, scope_t *sc, bool top, keyout_t *ko)
{
	const PgQuery__RangeVar *rel;
	PgQuery__Node *const *ret;
	size_t n_ret;
	part_t p;

	if (n == NULL || stopped(w))
		return part_make(PART_NONE);
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		return an_select(w, n->select_stmt, sc, NULL, ko);
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		p = an_insert(w, n->insert_stmt, sc, top);
		rel = n->insert_stmt->relation;
		ret = n->insert_stmt->returning_list;
		n_ret = n->insert_stmt->n_returning_list;
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		p = an_update(w, n->update_stmt, sc);
		rel = n->update_stmt->relation;
		ret = n->update_stmt->returning_list;
		n_ret = n->update_stmt->n_returning_list;
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		p = an_delete(w, n->delete_stmt, sc);
		rel = n->delete_stmt->relation;
		ret = n->delete_stmt->returning_list;
		n_ret = n->delete_stmt->n_returning_list;
		break;
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		return an_merge(w, n->merge_stmt, sc);
	default:
		return part_make(PART_NONE);
	}
	if (ko != NULL)
		returning_keyout(w, rel, ret, n_ret, ko);
	return p;
}

/* ---- plans ---- */

static void all_shards(const cfg_t *cfg, shard_set_t *set)
{
	shard_set_clear(set);
	for (int i = 0; i < cfg->n_shards && i < SHARD_MAX; i++)
		shard_set_add(set, i);
}

static void plan_reason(route_plan_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void plan_reason(route_plan_t *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof p->reason, fmt, ap);
	va_end(ap);
}

static void plan_refused(walk_t *w, route_plan_t *p)
{
	p->kind = ROUTE_REFUSE;
	shard_set_clear(&p->shards);
	p->split_insert = false;
	p->map = NULL;
	p->merge = ROUTE_MERGE_NONE;
	snprintf(p->error, sizeof p->error, "%s", w->error);
	plan_reason(p, "refused: %s", w->error);
}

static void plan_default(walk_t *w, route_plan_t *p, const char *why)
{
	p->kind = ROUTE_DEFAULT;
	shard_set_clear(&p->shards);
	shard_set_add(&p->shards, w->cfg->default_shard);
	plan_reason(p, "%s -> default shard %d", why, w->cfg->default_shard);
}

static void plan_all(walk_t *w, route_plan_t *p, const char *what, const char *table)
{
	p->kind = ROUTE_ALL;
	all_shards(w->cfg, &p->shards);
	plan_reason(p, "%s %s -> all %d shard%s", what, table, w->cfg->n_shards,
	            w->cfg->n_shards == 1 ? "" : "s");
}

static const char *first_table(const walk_t *w, bool reference)
{
	for (int k = 0; k < w->n_order; k++)
		if (table_at(w, w->order[k])->reference == reference)
			return table_at(w, w->order[k])->name;
	return w->n_order > 0 ? table_at(w, w->order[0])->name : "?";
}

static void refuse_clash(walk_t *w)
{
	const cfg_table_t *a = table_at(w, w->map_table), *b = table_at(w, w->clash);

	refuse(w,
	       "tables %s (map %s) and %s (map %s) are not co-located: one statement can only "
	       "combine sharded tables of one map (and reference tables); query them separately",
	       a->name, w->cfg->maps[a->map].name, b->name, w->cfg->maps[b->map].name);
}

/* Statements that name no sharded table. */
static void plan_unsharded(walk_t *w, route_plan_t *p)
{
	const char *ref_written = NULL;

	for (int k = 0; k < w->n_order; k++)
		if (w->seen[w->order[k]] & SEEN_WRITE)
			ref_written = table_at(w, w->order[k])->name;
	if (w->n_order == 0) {
		plan_default(w, p, "no sharded table");
		return;
	}
	if (ref_written != NULL && w->other_write[0] != '\0') {
		refuse(w,
		       "the statement writes reference table %s (a copy on every shard) and table "
		       "%s (not in the config, so only on the default shard); write them in "
		       "separate statements",
		       ref_written, w->other_write);
		return;
	}
	if (ref_written != NULL) {
		plan_all(w, p, "reference table", ref_written);
		plan_reason(p, "reference table %s, write -> all %d shards", ref_written,
		            w->cfg->n_shards);
		return;
	}
	if (w->other_write[0] != '\0') {
		plan_default(w, p, "writes a table not in the config");
		return;
	}
	p->kind = ROUTE_ANY;
	shard_set_clear(&p->shards);
	shard_set_add(&p->shards, w->cfg->default_shard);
	plan_reason(p, "reference table %s, read -> shard %d", first_table(w, true),
	            w->cfg->default_shard);
}

static void plan_shards(walk_t *w, part_t part, route_plan_t *p)
{
	const shard_map_t *m = w->smap;
	const cfg_table_t *t = table_at(w, w->map_table);
	shard_set_t set;
	sb_t s;

	p->kind = ROUTE_SHARDS;
	p->map = m->cfg->name;
	sb_init(&s, p->reason, sizeof p->reason);
	if (part.kind != PART_SET) {
		int n = shard_set_count(&m->all);

		p->shards = m->all;
		sb_printf(&s, "%s on %s -> all %d shard%s of map %s",
		          w->params_missing ? "key parameter not given" : "no key predicate",
		          t->name, n, n == 1 ? "" : "s", m->cfg->name);
		sb_finish(&s);
		return;
	}
	set = part.set;
	if (shard_set_count(&set) == 0) {
		/* contradicting predicates or a key no range holds: PostgreSQL returns no row */
		set = w->mentioned;
		if (shard_set_count(&set) == 0)
			shard_set_add(&set, shard_set_first(&m->all));
	}
	p->shards = set;
	sb_printf(&s, "%s -> ", part.desc[0] ? part.desc : "key predicates");
	sb_shards(&s, &set);
	sb_printf(&s, " (%s map %s)", map_kind_name(m->cfg), m->cfg->name);
	if (shard_set_count(&part.set) == 0)
		sb_printf(&s, ", no shard can hold matching rows");
	if (w->ins_split)
		sb_printf(&s, ", rows split per shard");
	sb_finish(&s);
}

/* SELECT, INSERT, UPDATE, DELETE, MERGE. */
static void plan_dml(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	const char *ref_written = NULL;
	part_t part;

	collect(w, &n->base, NULL);
	p->is_write = p->is_write || w->writes;
	if (stopped(w))
		return;
	if (w->clash >= 0) {
		refuse_clash(w);
		return;
	}
	if (w->map < 0) {
		plan_unsharded(w, p);
		return;
	}
	for (int k = 0; k < w->n_order; k++)
		if ((w->seen[w->order[k]] & SEEN_WRITE) && table_at(w, w->order[k])->reference)
			ref_written = table_at(w, w->order[k])->name;
	if (ref_written != NULL) {
		refuse(
		    w,
		    "a write to reference table %s cannot read sharded table %s: each shard would "
		    "write different rows into its copy; read the values first, then write them",
		    ref_written, table_at(w, w->map_table)->name);
		return;
	}
	if (w->other_write[0] != '\0') {
		refuse(w,
		       "table %s is not in the config (it lives on the default shard only), but "
		       "the statement that writes it reads sharded table %s; add [table.%s] to the "
		       "config or read the rows first",
		       w->other_write, table_at(w, w->map_table)->name, w->other_write);
		return;
	}
	w->smap = &w->ctx->maps[w->map];
	part = an_query(w, n, NULL, true, NULL);
	if (stopped(w))
		return;
	plan_shards(w, part, p);
	if (w->ins_split)
		p->split_insert = true;
	p->key_column = w->key_column;
}

static void plan_stmt(walk_t *w, const PgQuery__Node *n, route_plan_t *p);

/* CREATE TABLE AS, SELECT INTO, CREATE MATERIALIZED VIEW. */
static void plan_create_as(walk_t *w, const PgQuery__Node *query, const PgQuery__IntoClause *into,
                           route_plan_t *p)
{
	const PgQuery__RangeVar *rv = into ? into->rel : NULL;
	int target = rv ? find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname) : -1;

	p->is_ddl = true;
	p->is_write = true;
	if (query != NULL)
		collect(w, &query->base, NULL);
	if (stopped(w))
		return;
	if (target >= 0) {
		const cfg_table_t *t = table_at(w, target);

		note_table(w, target, true);
		if (into->skip_data || (t->reference && w->map < 0)) {
			plan_all(w, p, "CREATE TABLE AS", t->name);
			return;
		}
		refuse(w,
		       "CREATE TABLE %s AS cannot fill a %s table on every shard; create it with "
		       "CREATE TABLE, then fill it with INSERT ... SELECT",
		       t->name, t->reference ? "reference" : "sharded");
		return;
	}
	if (w->map >= 0) {
		refuse(w,
		       "CREATE TABLE AS / SELECT INTO reads sharded table %s, but the new table is "
		       "not in the config and would hold only the default shard's rows; add it to "
		       "the config, create it with CREATE TABLE and fill it with INSERT ... SELECT",
		       table_at(w, w->map_table)->name);
		return;
	}
	plan_default(w, p, "creates a table not in the config");
}

static void plan_view(walk_t *w, const PgQuery__ViewStmt *v, route_plan_t *p)
{
	const PgQuery__RangeVar *rv = v->view;
	int target = rv ? find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname) : -1;

	p->is_ddl = true;
	p->is_write = true;
	if (target >= 0) {
		note_table(w, target, true);
		plan_all(w, p, "DDL on", table_at(w, target)->name);
		return;
	}
	if (v->query != NULL)
		collect(w, &v->query->base, NULL);
	if (stopped(w))
		return;
	if (w->map >= 0) {
		refuse(w,
		       "view %s reads sharded table %s but is not in the config, so it would exist "
		       "on the default shard only; add [table.%s] with the key and map of %s to "
		       "the config and create it again (pgshard then creates it on every shard)",
		       rv ? rv->relname : "?", table_at(w, w->map_table)->name,
		       rv ? rv->relname : "?", table_at(w, w->map_table)->name);
		return;
	}
	plan_default(w, p, "DDL on a view not in the config");
}

static void plan_copy(walk_t *w, const PgQuery__CopyStmt *c, route_plan_t *p)
{
	bool file = !empty(c->filename) || c->is_program;
	const cfg_table_t *t;
	int i;

	if (c->query != NULL) {
		plan_dml(w, c->query, p);
		if (!stopped(w) && file && p->kind != ROUTE_DEFAULT && p->kind != ROUTE_ANY)
			refuse(w, "COPY (query) TO a server file or program would write one file "
			          "on each shard's server; use COPY (query) TO STDOUT");
		return;
	}
	p->is_write = c->is_from;
	i = c->relation ? find_table(w->cfg, c->relation->catalogname, c->relation->schemaname,
	                             c->relation->relname)
	                : -1;
	if (i < 0) {
		plan_default(w, p, "COPY of a table not in the config");
		return;
	}
	t = table_at(w, i);
	note_table(w, i, c->is_from);
	if (file && (c->is_from || is_sharded(t))) {
		refuse(w,
		       "COPY %s %s a server file or program would run on every shard's server; use "
		       "COPY %s %s through pgshard",
		       t->name, c->is_from ? "FROM" : "TO", c->is_from ? "FROM" : "TO",
		       c->is_from ? "STDIN" : "STDOUT");
		return;
	}
	if (t->reference) {
		if (c->is_from) {
			plan_all(w, p, "reference table", t->name);
			plan_reason(p, "COPY FROM STDIN into reference table %s -> all %d shards",
			            t->name, w->cfg->n_shards);
			return;
		}
		p->kind = ROUTE_ANY;
		shard_set_clear(&p->shards);
		shard_set_add(&p->shards, w->cfg->default_shard);
		plan_reason(p, "reference table %s, COPY TO -> shard %d", t->name,
		            w->cfg->default_shard);
		return;
	}
	w->smap = &w->ctx->maps[t->map];
	p->kind = ROUTE_SHARDS;
	p->map = w->smap->cfg->name;
	p->shards = w->smap->all;
	if (c->is_from) {
		bool indirect;
		int k = column_pos(c->attlist, c->n_attlist, t->key, &indirect);

		if (c->n_attlist > 0 && k < 0) {
			refuse(w,
			       "COPY into sharded table %s must include the key column %s: pgshard "
			       "splits the rows by it",
			       t->name, t->key);
			return;
		}
		p->split_insert = true;
		p->key_column = k;
		plan_reason(
		    p, "COPY FROM STDIN into %s: rows split by %s over the %d shards of map %s",
		    t->name, t->key, shard_set_count(&p->shards), w->smap->cfg->name);
		return;
	}
	plan_reason(p, "COPY %s TO STDOUT -> all %d shards of map %s", t->name,
	            shard_set_count(&p->shards), w->smap->cfg->name);
}

static bool explain_analyzes(const PgQuery__ExplainStmt *e)
{
	for (size_t i = 0; i < e->n_options; i++) {
		const PgQuery__Node *o = e->options[i];
		const PgQuery__DefElem *d;

		if (o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
			continue;
		d = o->def_elem;
		if (!streq(d->defname, "analyze"))
			continue;
		if (d->arg == NULL)
			return true;
		if (tree_str_of(d->arg) != NULL)
			return strcasecmp(tree_str_of(d->arg), "false") != 0 &&
			       strcasecmp(tree_str_of(d->arg), "off") != 0;
		if (d->arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN)
			return d->arg->boolean->boolval;
		if (d->arg->node_case == PG_QUERY__NODE__NODE_INTEGER)
			return d->arg->integer->ival != 0;
		return true;
	}
	return false;
}

static void prefix_reason(route_plan_t *p, const char *prefix)
{
	char tmp[sizeof p->reason];

	snprintf(tmp, sizeof tmp, "%s%s", prefix, p->reason);
	memcpy(p->reason, tmp, sizeof tmp);
}

/* DDL: every shard when it names a configured table. */
static void plan_ddl(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	PgQuery__Node *const *objs = NULL;
	size_t n_objs = 0;
	bool drop_last = false;

	p->is_ddl = true;
	p->is_write = true;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		/* what it creates (and a partition's parent), not what it references */
		if (n->create_stmt->relation != NULL)
			note_rangevar(w, n->create_stmt->relation, NULL, true);
		for (size_t i = 0; i < n->create_stmt->n_inh_relations; i++)
			if (n->create_stmt->inh_relations[i]->node_case ==
			    PG_QUERY__NODE__NODE_RANGE_VAR)
				note_rangevar(w, n->create_stmt->inh_relations[i]->range_var, NULL,
				              true);
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		if (n->alter_table_stmt->relation != NULL)
			note_rangevar(w, n->alter_table_stmt->relation, NULL, true);
		break;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		if (n->index_stmt->relation != NULL)
			note_rangevar(w, n->index_stmt->relation, NULL, true);
		break;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		switch (n->drop_stmt->remove_type) {
		case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
		case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
		case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
		case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
			break;
		case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
		case PG_QUERY__OBJECT_TYPE__OBJECT_RULE:
		case PG_QUERY__OBJECT_TYPE__OBJECT_POLICY:
			drop_last = true; /* table name, then the object's own name */
			break;
		default:
			n_objs = 0;
			goto decide;
		}
		objs = n->drop_stmt->objects;
		n_objs = n->drop_stmt->n_objects;
		break;
	case PG_QUERY__NODE__NODE_COMMENT_STMT:
	case PG_QUERY__NODE__NODE_SEC_LABEL_STMT: {
		PgQuery__ObjectType type = n->node_case == PG_QUERY__NODE__NODE_COMMENT_STMT
		                               ? n->comment_stmt->objtype
		                               : n->sec_label_stmt->objtype;
		PgQuery__Node *obj = n->node_case == PG_QUERY__NODE__NODE_COMMENT_STMT
		                         ? n->comment_stmt->object
		                         : n->sec_label_stmt->object;

		if (type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_RULE ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_POLICY ||
		    type == PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT)
			drop_last = true;
		else if (type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE &&
		         type != PG_QUERY__OBJECT_TYPE__OBJECT_VIEW &&
		         type != PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW &&
		         type != PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE)
			goto decide;
		if (obj != NULL) {
			objs = n->node_case == PG_QUERY__NODE__NODE_COMMENT_STMT
			           ? &n->comment_stmt->object
			           : &n->sec_label_stmt->object;
			n_objs = 1;
		}
		break;
	}
	case PG_QUERY__NODE__NODE_GRANT_STMT:
		if (n->grant_stmt->targtype ==
		        PG_QUERY__GRANT_TARGET_TYPE__ACL_TARGET_ALL_IN_SCHEMA &&
		    n->grant_stmt->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
			/* every shard has tables in the schema */
			plan_all(w, p, "GRANT ... ON ALL TABLES IN SCHEMA", "");
			plan_reason(p, "GRANT on all tables in a schema -> all %d shards",
			            w->cfg->n_shards);
			return;
		}
		collect(w, &n->base, NULL);
		break;
	default:
		collect(w, &n->base, NULL);
		break;
	}
	for (size_t i = 0; i < n_objs; i++) {
		const PgQuery__Node *o = objs[i];
		size_t len;
		int t;

		if (o == NULL || o->node_case != PG_QUERY__NODE__NODE_LIST)
			continue;
		len = o->list->n_items;
		if (drop_last) {
			if (len < 2)
				continue;
			len--;
		}
		t = find_table_list(w->cfg, (const PgQuery__Node *const *)o->list->items, len);
		if (t >= 0)
			note_table(w, t, true);
	}
decide:
	if (stopped(w))
		return;
	if (w->n_order > 0) {
		plan_all(w, p, "DDL on", table_at(w, w->order[0])->name);
		return;
	}
	plan_default(w, p, "DDL on no configured table");
}

static bool is_ddl_node(PgQuery__Node__NodeCase c)
{
	switch (c) {
	case PG_QUERY__NODE__NODE_CREATE_STMT:
	case PG_QUERY__NODE__NODE_CREATE_FOREIGN_TABLE_STMT:
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
	case PG_QUERY__NODE__NODE_ALTER_TABLE_MOVE_ALL_STMT:
	case PG_QUERY__NODE__NODE_DROP_STMT:
	case PG_QUERY__NODE__NODE_INDEX_STMT:
	case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
	case PG_QUERY__NODE__NODE_COMMENT_STMT:
	case PG_QUERY__NODE__NODE_SEC_LABEL_STMT:
	case PG_QUERY__NODE__NODE_GRANT_STMT:
	case PG_QUERY__NODE__NODE_RENAME_STMT:
	case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT:
	case PG_QUERY__NODE__NODE_ALTER_OWNER_STMT:
	case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
	case PG_QUERY__NODE__NODE_RULE_STMT:
	case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
	case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
	case PG_QUERY__NODE__NODE_CREATE_STATS_STMT:
	case PG_QUERY__NODE__NODE_ALTER_STATS_STMT:
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
	case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
		return true;
	default:
		return false;
	}
}

/* Per-statement state back to empty. */
static void walk_reset(walk_t *w)
{
	if (w->cfg->n_tables > 0)
		memset(w->seen, 0, (size_t)w->cfg->n_tables);
	w->n_order = 0;
	w->other_write[0] = '\0';
	w->writes = false;
	w->map = w->map_table = w->clash = -1;
	w->depth = 0;
	w->smap = NULL;
	shard_set_clear(&w->mentioned);
	w->ins_split = false;
	w->key_column = -1;
	w->one_shard = -1;
	w->refused = false;
	w->error[0] = '\0';
}

static void plan_stmt(walk_t *w, const PgQuery__Node *n, route_plan_t *p)
{
	memset(p, 0, sizeof *p);
	p->key_column = -1;
	walk_reset(w);
	if (n == NULL) {
		plan_default(w, p, "empty statement");
		return;
	}
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		if (n->select_stmt->into_clause != NULL)
			plan_create_as(w, n, n->select_stmt->into_clause, p);
		else
			plan_dml(w, n, p);
		break;
	case PG_QUERY__NODE__NODE_INSERT_STMT:
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
	case PG_QUERY__NODE__NODE_DELETE_STMT:
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		p->is_write = true;
		plan_dml(w, n, p);
		break;
	case PG_QUERY__NODE__NODE_COPY_STMT:
		plan_copy(w, n->copy_stmt, p);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		plan_create_as(w, n->create_table_as_stmt->query, n->create_table_as_stmt->into, p);
		break;
	case PG_QUERY__NODE__NODE_VIEW_STMT:
		plan_view(w, n->view_stmt, p);
		break;
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
		bool analyze = explain_analyzes(n->explain_stmt);

		plan_stmt(w, n->explain_stmt->query, p);
		if (w->refused)
			break;
		if (p->split_insert) {
			refuse(w, "EXPLAIN of an INSERT whose rows go to several shards is not "
			          "supported; explain an INSERT of one shard's rows");
			break;
		}
		p->is_write = analyze && p->is_write;
		p->is_ddl = false;
		prefix_reason(p, "EXPLAIN: ");
		break;
	}
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
		plan_stmt(w, n->prepare_stmt->query, p);
		if (w->refused)
			break;
		if (p->kind != ROUTE_DEFAULT && p->kind != ROUTE_ANY) {
			refuse(w,
			       "SQL PREPARE of a statement on sharded or reference tables is not "
			       "supported: each execution must be routed by its parameters; use "
			       "the protocol's prepared statements (Parse/Bind), as drivers do");
			break;
		}
		p->kind = ROUTE_DEFAULT;
		p->is_write = false;
		prefix_reason(p, "PREPARE: ");
		break;
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		plan_stmt(w, n->declare_cursor_stmt->query, p);
		if (w->refused)
			break;
		if (shard_set_count(&p->shards) != 1 ||
		    !shard_set_has(&p->shards, w->cfg->default_shard)) {
			refuse(w, "cursors over sharded tables are not supported (FETCH could not "
			          "find their shard); run the query without a cursor, or put "
			          "DECLARE and FETCH on one shard with /* pgshard: shard=N */");
			break;
		}
		prefix_reason(p, "DECLARE: ");
		break;
	default:
		if (is_ddl_node(n->node_case)) {
			plan_ddl(w, n, p);
			break;
		}
		/* LOCK and whatever else names tables: where those tables are */
		collect(w, &n->base, NULL);
		if (stopped(w))
			break;
		if (w->n_order > 0)
			plan_all(w, p, "statement on", table_at(w, w->order[0])->name);
		else
			plan_default(w, p, "no sharded table");
		break;
	}
	if (w->refused)
		plan_refused(w, p);
	p->params_missing = w->params_missing;
}

/* ---- overrides: /\* pgshard: shard=N *\/, key=VALUE, all ---- */

typedef enum override_kind {
	OVERRIDE_NONE,
	OVERRIDE_SHARD,
	OVERRIDE_KEY,
	OVERRIDE_ALL,
	OVERRIDE_BAD,
} override_kind_t;

typedef struct override {
	override_kind_t kind;
	long shard;
	char value[256];
	char text[300]; /* as written, for reasons and errors */
} override_t;

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
static void parse_override(const char *sql, override_t *o)
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

static void apply_override(walk_t *w, const override_t *o, route_plan_t *p)
{
	const cfg_t *cfg = w->cfg;

	if (o->kind != OVERRIDE_NONE)
		p->sqlstate[0] = '\0'; /* the comment decides now; a refusal below is 0A000 */
	switch (o->kind) {
	case OVERRIDE_NONE:
		return;
	case OVERRIDE_BAD:
		p->kind = ROUTE_REFUSE;
		shard_set_clear(&p->shards);
		snprintf(p->error, sizeof p->error,
		         "cannot read the routing comment /* pgshard: %s */ (expected shard=N, "
		         "key=VALUE or all)",
		         o->text);
		plan_reason(p, "refused: %s", p->error);
		return;
	case OVERRIDE_ALL:
		p->kind = ROUTE_ALL;
		all_shards(cfg, &p->shards);
		p->split_insert = false;
		p->error[0] = '\0';
		plan_reason(p, "override /* pgshard: all */ -> all %d shards", cfg->n_shards);
		return;
	case OVERRIDE_SHARD:
		p->split_insert = false;
		if (o->shard >= cfg->n_shards) {
			p->kind = ROUTE_REFUSE;
			shard_set_clear(&p->shards);
			snprintf(p->error, sizeof p->error,
			         "/* pgshard: shard=%ld */ names a shard the config does not have "
			         "(it has shards 0 to %d)",
			         o->shard, cfg->n_shards - 1);
			plan_reason(p, "refused: %s", p->error);
			return;
		}
		p->kind = ROUTE_SHARDS;
		shard_set_clear(&p->shards);
		shard_set_add(&p->shards, (int)o->shard);
		p->error[0] = '\0';
		plan_reason(p, "override /* pgshard: shard=%ld */ -> shard %ld", o->shard,
		            o->shard);
		return;
	case OVERRIDE_KEY: {
		const shard_map_t *m;
		shard_key_t k;
		int s;

		p->split_insert = false;
		shard_set_clear(&p->shards);
		p->kind = ROUTE_REFUSE;
		if (w->any_map < 0 || w->maps_differ) {
			snprintf(
			    p->error, sizeof p->error,
			    "/* pgshard: key=%.100s */ needs a statement on the sharded tables of "
			    "one map (this one names %s); use /* pgshard: shard=N */",
			    o->value, w->any_map < 0 ? "none" : "tables of several maps");
			plan_reason(p, "refused: %s", p->error);
			return;
		}
		m = &w->ctx->maps[w->any_map];
		if (shard_key_from_text(m->cfg->key, o->value, strlen(o->value), &k) != 0) {
			snprintf(p->error, sizeof p->error,
			         "/* pgshard: key=%.100s */: '%.100s' is not a valid %s key of map "
			         "%.100s",
			         o->value, o->value, shard_key_type_name(m->cfg->key),
			         m->cfg->name);
			plan_reason(p, "refused: %s", p->error);
			return;
		}
		s = shard_map_lookup(m, &k);
		if (s < 0) {
			snprintf(p->error, sizeof p->error,
			         "/* pgshard: key=%.100s */: no range of map %.100s holds that key",
			         o->value, m->cfg->name);
			plan_reason(p, "refused: %s", p->error);
			return;
		}
		p->kind = ROUTE_SHARDS;
		shard_set_add(&p->shards, s);
		p->map = m->cfg->name;
		p->error[0] = '\0';
		plan_reason(p, "override /* pgshard: key=%.100s */ -> shard %d (%s map %.100s)",
		            o->value, s, map_kind_name(m->cfg), m->cfg->name);
		return;
	}
	}
}

/* ---- several statements in one string ---- */

/* Statements that run wherever the others of their string run. */
static bool is_neutral(const PgQuery__Node *n)
{
	return n != NULL && (n->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT ||
	                     n->node_case == PG_QUERY__NODE__NODE_VARIABLE_SET_STMT);
}

static bool ends_transaction(const PgQuery__Node *n)
{
	return n != NULL && n->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT &&
	       (n->transaction_stmt->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT ||
	        n->transaction_stmt->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE);
}

static int kind_rank(route_kind_t k)
{
	switch (k) {
	case ROUTE_DEFAULT:
		return 0;
	case ROUTE_ANY:
		return 1;
	case ROUTE_SHARDS:
		return 2;
	case ROUTE_ALL:
		return 3;
	default:
		return 4;
	}
}

static void combine(walk_t *w, PgQuery__RawStmt *const *stmts, size_t n, route_plan_t *plans,
                    route_plan_t *out)
{
	const route_plan_t *first = NULL;
	bool split = false, commits = false, is_write = false, is_ddl = false, missing = false;
	sb_t s;

	for (size_t i = 0; i < n; i++) {
		if (plans[i].kind == ROUTE_REFUSE) {
			*out = plans[i];
			return;
		}
	}
	memset(out, 0, sizeof *out);
	out->key_column = -1;
	for (size_t i = 0; i < n; i++) {
		const route_plan_t *p = &plans[i];

		missing |= p->params_missing;
		commits |= ends_transaction(stmts[i]->stmt);
		if (is_neutral(stmts[i]->stmt))
			continue;
		split |= p->split_insert;
		is_write |= p->is_write;
		is_ddl |= p->is_ddl;
		if (first == NULL) {
			first = p;
			*out = *p;
			continue;
		}
		if (memcmp(&p->shards, &first->shards, sizeof p->shards) != 0) {
			char tmp[sizeof out->error];

			sb_init(&s, tmp, sizeof tmp);
			sb_printf(&s,
			          "the statements of this query string route differently "
			          "(statement %zu -> ",
			          (size_t)(first - plans) + 1);
			sb_shards(&s, &first->shards);
			sb_printf(&s, ", statement %zu -> ", i + 1);
			sb_shards(&s, &p->shards);
			sb_printf(&s, "); send these statements separately");
			sb_finish(&s);
			refuse(w, "%s", tmp);
			break;
		}
		if (kind_rank(p->kind) > kind_rank(out->kind))
			out->kind = p->kind;
		if (out->map == NULL)
			out->map = p->map;
	}
	if (!w->refused && first == NULL) {
		*out = plans[0];
		out->params_missing = missing;
		plan_default(w, out, "no sharded table");
		return;
	}
	out->is_write = is_write;
	out->is_ddl = is_ddl;
	out->params_missing = missing;
	if (!w->refused && split && n > 1)
		refuse(w, "a multi-row INSERT or COPY whose rows go to several shards must be sent "
		          "as a query of its own, not with other statements");
	if (!w->refused && commits && out->is_write && shard_set_count(&out->shards) > 1)
		refuse(w, "COMMIT in the same query string as writes on several shards cannot be "
		          "made atomic; send COMMIT as a statement of its own");
	if (w->refused) {
		plan_refused(w, out);
		return;
	}
	if (n > 1) {
		char tmp[sizeof out->reason];

		sb_init(&s, tmp, sizeof tmp);
		sb_printf(&s, "%zu statements: %s", n, first->reason);
		sb_finish(&s);
		memcpy(out->reason, tmp, sizeof tmp);
	}
}

/* ---- merging the answers of several shards ---- */

/*
 * A plan on several shards is only right if the proxy can make, from the
 * shards' answers, the one answer PostgreSQL would give. The proxy can
 * concatenate rows and add up the counts of the tags (SUM), take one
 * shard's answer when every shard holds a copy (ONE), add up one row of
 * counts (COUNT), or run a gather plan (GATHER, router/gather.c).
 *
 * Concatenating a SELECT's rows is right only when each row it returns
 * comes from exactly one shard, and appears once. So its rows must come
 * from a sharded table of its FROM (on the side of an outer join that keeps
 * its rows): rows of reference tables, of VALUES, or of a SELECT without
 * FROM are on every shard, and every shard would return them. And nothing
 * may combine rows of several shards: aggregates, GROUP BY, HAVING,
 * DISTINCT, window functions, ORDER BY, LIMIT/OFFSET, UNION without ALL,
 * INTERSECT, EXCEPT. At the statement's own level (not in a UNION ALL arm,
 * not in COPY (query) TO), ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY,
 * HAVING and DISTINCT are the gather plan's to merge, when gather_check
 * says route_gather can plan them; the rows must still come from a
 * sharded table. Only the top level of the query is judged here; its
 * subqueries, which each shard also answers alone, are judged by
 * subqueries_local below.
 */

/* The CTEs a query level sees: those of `with` up to n_visible, then up's. */
typedef struct mscope {
	const PgQuery__WithClause *with;
	size_t n_visible;
	const struct mscope *up;
} mscope_t;

/* What stops concatenation of a SELECT's rows. */
typedef struct shape {
	bool top;         /* in: the statement's own SELECT, where a gather plan may merge */
	const char *what; /* "ORDER BY", ...: NULL when concatenation (or gather) is right */
	bool rows;        /* its rows do not come from a sharded table in FROM */
	bool count;       /* one row of count(*) / count(expr) columns: COUNT's to add up */
	bool gather;      /* ORDER BY, LIMIT, aggregates, ... at the top: a gather plan's */
	char agg[96];
} shape_t;

static void rows_shape(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *up, bool need_rows,
                       int depth, shape_t *sh);

typedef struct aggscan {
	const char *agg; /* the first aggregate call's name */
	bool window;
} aggscan_t;

/* Aggregate and window calls of one query level (a subquery is a level of its own). */
static void scan_aggs(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	aggscan_t *a = arg;

	if (m->descriptor == &pg_query__sub_link__descriptor)
		return;
	if (m->descriptor == &pg_query__func_call__descriptor) {
		const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)m;
		const char *name = tree_catalog_func_name(f);

		if (f->over != NULL)
			a->window = true;
		else if (a->agg == NULL && (f->agg_star || f->agg_distinct || f->n_agg_order > 0 ||
		                            f->agg_filter != NULL || f->agg_within_group ||
		                            (name != NULL && tree_is_aggregate_name(name))))
			a->agg = name != NULL ? name : "an aggregate";
	}
	each_child(w, m, NULL, NULL, scan_aggs, arg);
}

/* count(*) or count(expr), and nothing around it that the proxy could not add up. */
static bool is_plain_count(const PgQuery__Node *n)
{
	const PgQuery__FuncCall *f;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_RES_TARGET ||
	    n->res_target->val == NULL ||
	    n->res_target->val->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
		return false;
	f = n->res_target->val->func_call;
	return streq(tree_catalog_func_name(f), "count") && !f->agg_distinct &&
	       f->agg_filter == NULL && f->over == NULL && f->n_agg_order == 0 &&
	       !f->agg_within_group && !f->func_variadic &&
	       (f->agg_star ? f->n_args == 0 : f->n_args == 1);
}

static const PgQuery__CommonTableExpr *mscope_find(const mscope_t *sc, const char *name,
                                                   const mscope_t **where, size_t *index)
{
	for (; sc != NULL; sc = sc->up)
		for (size_t i = 0; i < sc->n_visible; i++) {
			const PgQuery__Node *c = sc->with->ctes[i];

			if (c != NULL && c->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR &&
			    streq(c->common_table_expr->ctename, name)) {
				*where = sc;
				*index = i;
				return c->common_table_expr;
			}
		}
	return NULL;
}

/* Whether each row of a subquery or CTE is on one shard only. */
static bool query_partitioned(walk_t *w, const PgQuery__Node *q, const mscope_t *sc, int depth)
{
	const PgQuery__RangeVar *target = NULL;
	shape_t sh;
	int i;

	if (q == NULL)
		return false;
	switch (q->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		memset(&sh, 0, sizeof sh);
		rows_shape(w, q->select_stmt, sc, true, depth + 1, &sh);
		return sh.what == NULL && !sh.count;
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		target = q->insert_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		target = q->update_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		target = q->delete_stmt->relation;
		break;
	default:
		return false;
	}
	/* RETURNING of a write to a sharded table: each shard returns its own rows */
	i = target ? find_table(w->cfg, target->catalogname, target->schemaname, target->relname)
	           : -1;
	return i >= 0 && is_sharded(table_at(w, i));
}

/* Whether each row a FROM item yields is on one shard only. */
static bool item_partitioned(walk_t *w, const PgQuery__Node *n, const mscope_t *sc, int depth)
{
	if (n == NULL || depth > MAX_DEPTH)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		const PgQuery__CommonTableExpr *cte;
		const mscope_t *where;
		size_t idx;
		int i;

		cte = empty(rv->schemaname) ? mscope_find(sc, rv->relname, &where, &idx) : NULL;
		if (cte != NULL) {
			mscope_t inner = {where->with, idx, where->up};

			/* a recursive CTE's rows grow from each shard's own: not judged */
			return !where->with->recursive &&
			       query_partitioned(w, cte->ctequery, &inner, depth + 1);
		}
		i = find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		return i >= 0 && is_sharded(table_at(w, i));
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		const PgQuery__JoinExpr *j = n->join_expr;
		bool l = item_partitioned(w, j->larg, sc, depth + 1);
		bool r = item_partitioned(w, j->rarg, sc, depth + 1);

		/* an outer join keeps the rows of its preserved side(s) */
		switch (j->jointype) {
		case PG_QUERY__JOIN_TYPE__JOIN_INNER:
			return l || r;
		case PG_QUERY__JOIN_TYPE__JOIN_LEFT:
			return l;
		case PG_QUERY__JOIN_TYPE__JOIN_RIGHT:
			return r;
		case PG_QUERY__JOIN_TYPE__JOIN_FULL:
			return l && r;
		default:
			return false;
		}
	}
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
		return query_partitioned(w, n->range_subselect->subquery, sc, depth + 1);
	default:
		return false; /* functions, VALUES, ... */
	}
}

/*
 * How the rows of SELECT s stand to concatenation (see above). need_rows:
 * the statement reads sharded tables, so its rows must come from one.
 */
static void rows_shape(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *up, bool need_rows,
                       int depth, shape_t *sh)
{
	mscope_t own = {s->with_clause, s->with_clause != NULL ? s->with_clause->n_ctes : 0, up};
	const mscope_t *sc = s->with_clause != NULL ? &own : up;
	aggscan_t a = {NULL, false};
	bool top = depth == 0 && sh->top; /* a UNION ALL arm is one level down */

	if (depth > MAX_DEPTH) {
		sh->what = "a query nested this deeply";
		return;
	}
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
		if (s->n_sort_clause > 0)
			sh->what = "ORDER BY";
		else if (s->limit_count != NULL || s->limit_offset != NULL)
			sh->what = "LIMIT/OFFSET";
		else if (s->op == PG_QUERY__SET_OPERATION__SETOP_INTERSECT)
			sh->what = "INTERSECT";
		else if (s->op == PG_QUERY__SET_OPERATION__SETOP_EXCEPT)
			sh->what = "EXCEPT";
		else if (!s->all)
			sh->what = "UNION (without ALL)";
		if (sh->what != NULL)
			return;
		/* UNION ALL: the concatenation of concatenations */
		for (int i = 0; i < 2 && sh->what == NULL; i++) {
			const PgQuery__SelectStmt *arm = i == 0 ? s->larg : s->rarg;

			if (arm == NULL) {
				sh->what = "UNION ALL";
				return;
			}
			rows_shape(w, arm, sc, need_rows, depth + 1, sh);
			if (sh->count) {
				sh->count = false;
				sh->what = "count() in UNION ALL";
			}
		}
		return;
	}
	if (s->n_group_clause > 0 || s->having_clause != NULL) {
		if (!top) {
			sh->what = s->n_group_clause > 0 ? "GROUP BY" : "HAVING";
			return;
		}
		sh->gather = true;
	}
	for (size_t i = 0; i < s->n_target_list; i++)
		scan_aggs(w, &s->target_list[i]->base, &a);
	for (size_t i = 0; i < s->n_sort_clause; i++)
		scan_aggs(w, &s->sort_clause[i]->base, &a);
	if (s->having_clause != NULL)
		scan_aggs(w, &s->having_clause->base, &a);
	if (a.window || s->n_window_clause > 0) {
		sh->what = "window functions";
		return;
	}
	if (a.agg != NULL) {
		bool counts = s->n_target_list > 0;

		for (size_t i = 0; i < s->n_target_list; i++)
			counts &= is_plain_count(s->target_list[i]);
		if (!counts && !top) {
			snprintf(sh->agg, sizeof sh->agg, "aggregate function %.40s()", a.agg);
			sh->what = sh->agg;
			return;
		}
		if (counts)
			sh->count = true;
		else
			sh->gather = true;
	}
	/* a function the router does not know may be a user-defined aggregate */
	if (top && !sh->count && !sh->gather && gather_calls_unknown(s))
		sh->gather = true;
	if (s->n_distinct_clause > 0)
		sh->what = "DISTINCT";
	else if (s->n_sort_clause > 0)
		sh->what = "ORDER BY";
	else if (s->limit_count != NULL || s->limit_offset != NULL)
		sh->what = "LIMIT/OFFSET";
	if (sh->what != NULL && top) {
		sh->what = NULL;
		sh->gather = true;
	}
	if (sh->what == NULL && need_rows) {
		bool from = false;

		for (size_t i = 0; i < s->n_from_clause && !from; i++)
			from = item_partitioned(w, s->from_clause[i], sc, depth + 1);
		if (!from) {
			sh->what = "rows that every shard would return";
			sh->rows = true;
		}
	}
	if (sh->what != NULL || sh->gather)
		sh->count = false;
	if (sh->what != NULL)
		sh->gather = false;
}

static void merge_hint(walk_t *w, char *hint, size_t len);

static void refuse_merge(walk_t *w, const shape_t *sh)
{
	char hint[160];

	merge_hint(w, hint, sizeof hint);
	if (sh->rows)
		refuse(w,
		       "this SELECT's rows do not come from a sharded table in its FROM, so every "
		       "shard would return them, once per shard; %s",
		       hint);
	else
		refuse(w, "%s across shards is not supported; %s", sh->what, hint);
}

static void merge_hint(walk_t *w, char *hint, size_t len)
{
	if (w->map >= 0)
		snprintf(hint, len, "add a condition on %s.%s, or /* pgshard: shard=N */",
		         table_at(w, w->map_table)->name, table_at(w, w->map_table)->key);
	else
		snprintf(hint, len, "run it on one shard with /* pgshard: shard=N */");
}

/*
 * A SELECT whose rows the proxy merges with a gather plan: refused here
 * when route_gather would refuse it, so that the plan and the gather agree.
 */
static int gather_merge(walk_t *w, const PgQuery__Node *n, route_merge_t *m)
{
	char err[400], hint[160];
	int rc = gather_check(n, w->params, w->n_params, w->lits, err, sizeof err);

	if (rc == GATHER_CHECK_NOMEM) {
		w->nomem = true;
		return -1;
	}
	if (rc == GATHER_CHECK_REFUSED) {
		merge_hint(w, hint, sizeof hint);
		refuse(w, "%s; %s", err, hint);
		return -1;
	}
	*m = ROUTE_MERGE_GATHER;
	return 0;
}

/* A SELECT (n, or the query of COPY (n) TO) on several shards. */
static int select_merge(walk_t *w, const PgQuery__Node *n, bool copy, route_merge_t *m)
{
	shape_t sh;

	walk_reset(w);
	collect(w, &n->base, NULL);
	if (stopped(w))
		return -1;
	if (w->map < 0 && w->n_order > 0) {
		*m = ROUTE_MERGE_ONE; /* reference tables only: copies */
		return 0;
	}
	memset(&sh, 0, sizeof sh);
	sh.top = !copy;
	rows_shape(w, n->select_stmt, NULL, w->map >= 0, 0, &sh);
	if (sh.what == NULL && sh.count && copy)
		sh.what = "count() in COPY (query) TO STDOUT";
	if (sh.what != NULL) {
		refuse_merge(w, &sh);
		return -1;
	}
	if (sh.gather)
		return gather_merge(w, n, m);
	*m = sh.count ? ROUTE_MERGE_COUNT : ROUTE_MERGE_SUM;
	return 0;
}

/* ---- subqueries, which each shard answers alone ---- */

/*
 * Each shard runs the whole statement on its own rows, so every subquery
 * in it is answered from that shard's rows only. That is right only when
 * the rows a subquery's answer depends on are all on the shard that uses
 * the answer; otherwise (WHERE n > (SELECT avg(n) FROM users)) each shard
 * gets its own, wrong, answer. A statement routed to one shard by its key
 * predicates (WHERE id = 3 AND n > (SELECT avg(n) FROM users)) is no
 * different: its subqueries see that shard's rows, where one PostgreSQL
 * would use every shard's. So in a statement on several shards, or on one
 * shard of a map with several, every query level below the top one that
 * reads a sharded table must be local in one of these ways, or the
 * statement is refused:
 *
 *  - correlated on the key: a top-level conjunct of its WHERE (or of an
 *    inner join's ON) equates the key of one of its own sharded tables with
 *    the key of a sharded table of an enclosing level, written qualified
 *    (o.user_id = u.id). The outer row is on this shard, so every row with
 *    its key is too (tables of one map are co-located, and the tables of
 *    one level are joined on their keys or refused): anything may then be
 *    done with them, aggregates and LIMIT included.
 *  - IN / = ANY / <> ALL comparing keys: the outer key against a select
 *    list of one key column (id IN (SELECT user_id FROM orders)). Whether
 *    a local key is in the set depends only on rows with that key, which
 *    are local, as long as the subquery does not combine rows: no LIMIT/
 *    OFFSET, no window functions, and aggregates only per group of a GROUP
 *    BY on the key (a group is then on one shard). Rows with a NULL key are
 *    assumed not to exist (NOT IN would see them on one shard only).
 *  - a derived table (FROM subquery, CTE, the SELECT of INSERT ... SELECT)
 *    whose rows do not combine rows of several shards, under the same
 *    rules, and with no DISTINCT and no set operation but UNION ALL.
 *  - on one shard only, pinned there: its own key predicates (a top-level
 *    conjunct of its WHERE or of an inner join's ON, read as the analysis
 *    reads the statement's: pred_part) leave its sharded tables no other
 *    shard than the statement's (SELECT avg(n) FROM users WHERE id = 3 in
 *    a statement on the shard of 3). All its rows are then there. A level
 *    with a derived table over sharded tables in its FROM is not pinned
 *    (its predicates do not narrow that table's rows), nor is a set
 *    operation as a whole (its arms may be, one by one).
 *
 * Anything else over a sharded table (an uncorrelated scalar or EXISTS
 * subquery, IN on other columns, a recursive CTE, an outer key reached
 * through a derived table, an unqualified outer reference whose table
 * PostgreSQL may resolve otherwise) is refused rather than guessed at.
 * Levels that read only reference tables, or no table, have the same rows
 * on every shard and are always right; a level is judged by its own FROM,
 * its own subqueries are judged on their own. A routing comment (shard=N,
 * key=VALUE) that puts a statement on one shard says the user wants that
 * shard's rows: its subqueries are not judged. Nor are they on a map with
 * one shard, which holds every row of its tables.
 *
 * The rules above trust that a level's sharded tables are joined on their
 * keys, which the analysis checks only for the levels it walks (not a
 * subquery inside an expression): each level is checked here again
 * (check_joined_on_keys). How a derived table is joined to the other items
 * of its level (a FROM subquery over orders joined to users on other
 * columns than the keys) is left to the analysis, which refuses that for
 * every plan, as it does for tables.
 */

/* One query level: the sharded tables it reads directly, and its names. */
typedef struct level {
	block_t b;
	PgQuery__Node *const *from; /* FROM / USING items */
	size_t n_from;
	const PgQuery__RangeVar *target; /* INSERT, UPDATE, DELETE, MERGE */
	const PgQuery__Node *source;     /* MERGE ... USING */
	const struct level *up;
} level_t;

typedef struct lwalk {
	const level_t *lv;
	const mscope_t *sc;
} lwalk_t;

static bool select_reads_sharded(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *sc,
                                 int depth);

/* A CTE reference, resolved with only the CTEs before it visible (no self-reference loops). */
static const PgQuery__CommonTableExpr *cte_ref(const PgQuery__RangeVar *rv, const mscope_t *sc,
                                               mscope_t *inner)
{
	const PgQuery__CommonTableExpr *cte;
	const mscope_t *where;
	size_t idx;

	if (!empty(rv->schemaname))
		return NULL;
	cte = mscope_find(sc, rv->relname, &where, &idx);
	if (cte != NULL) {
		inner->with = where->with;
		inner->n_visible = idx;
		inner->up = where->up;
	}
	return cte;
}

/* Whether the rows of a FROM item come from a sharded table. */
static bool item_reads_sharded(walk_t *w, const PgQuery__Node *n, const mscope_t *sc, int depth)
{
	if (n == NULL)
		return false;
	if (depth > MAX_DEPTH)
		return true;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		const PgQuery__RangeVar *rv = n->range_var;
		mscope_t inner;
		const PgQuery__CommonTableExpr *cte = cte_ref(rv, sc, &inner);
		const PgQuery__Node *q;
		int i;

		if (cte != NULL) {
			q = cte->ctequery;
			if (q == NULL)
				return false;
			if (q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
				return select_reads_sharded(w, q->select_stmt, &inner, depth + 1);
			return is_write_query(q); /* RETURNING of a write: conservatively yes */
		}
		i = find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname);
		return i >= 0 && is_sharded(table_at(w, i));
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR:
		return item_reads_sharded(w, n->join_expr->larg, sc, depth + 1) ||
		       item_reads_sharded(w, n->join_expr->rarg, sc, depth + 1);
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
		const PgQuery__Node *q = n->range_subselect->subquery;

		return q != NULL && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		       select_reads_sharded(w, q->select_stmt, sc, depth + 1);
	}
	default:
		return false;
	}
}

/* Whether a SELECT's own FROM (not its expressions' subqueries) reads a sharded table. */
static bool select_reads_sharded(walk_t *w, const PgQuery__SelectStmt *s, const mscope_t *sc,
                                 int depth)
{
	mscope_t own;

	if (s == NULL)
		return false;
	if (depth > MAX_DEPTH)
		return true;
	if (s->with_clause != NULL) {
		own.with = s->with_clause;
		own.n_visible = s->with_clause->n_ctes;
		own.up = sc;
		sc = &own;
	}
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED)
		return select_reads_sharded(w, s->larg, sc, depth + 1) ||
		       select_reads_sharded(w, s->rarg, sc, depth + 1);
	for (size_t i = 0; i < s->n_from_clause; i++)
		if (item_reads_sharded(w, s->from_clause[i], sc, depth + 1))
			return true;
	return false;
}

static void level_add_item(walk_t *w, level_t *lv, const PgQuery__Node *n, const mscope_t *sc,
                           int depth)
{
	mscope_t inner;

	if (n == NULL || depth > MAX_DEPTH)
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_JOIN_EXPR) {
		const PgQuery__JoinExpr *j = n->join_expr;
		int l0 = lv->b.n_rels, l1;

		level_add_item(w, lv, j->larg, sc, depth + 1);
		l1 = lv->b.n_rels;
		level_add_item(w, lv, j->rarg, sc, depth + 1);
		/* what is joined to what, for check_joined_on_keys */
		join_using(&lv->b, j, l0, l1);
		if (j->quals != NULL)
			nodes_push(w, &lv->b.joins, j->quals);
	} else if (n->node_case == PG_QUERY__NODE__NODE_RANGE_VAR &&
	           cte_ref(n->range_var, sc, &inner) == NULL) {
		const PgQuery__RangeVar *rv = n->range_var;
		int i = find_table(w->cfg, rv->catalogname, rv->schemaname, rv->relname);

		if (i >= 0 && is_sharded(table_at(w, i)))
			block_add_rel(w, &lv->b, table_at(w, i), rv);
	}
}

/* The level of a SELECT, INSERT, UPDATE, DELETE or MERGE (m). */
static void level_init(walk_t *w, level_t *lv, const ProtobufCMessage *m, const level_t *up,
                       const mscope_t *sc)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	memset(lv, 0, sizeof *lv);
	block_init(&lv->b);
	lv->up = up;
	if (d == &pg_query__select_stmt__descriptor) {
		lv->from = ((const PgQuery__SelectStmt *)m)->from_clause;
		lv->n_from = ((const PgQuery__SelectStmt *)m)->n_from_clause;
	} else if (d == &pg_query__insert_stmt__descriptor) {
		lv->target = ((const PgQuery__InsertStmt *)m)->relation;
	} else if (d == &pg_query__update_stmt__descriptor) {
		lv->target = ((const PgQuery__UpdateStmt *)m)->relation;
		lv->from = ((const PgQuery__UpdateStmt *)m)->from_clause;
		lv->n_from = ((const PgQuery__UpdateStmt *)m)->n_from_clause;
	} else if (d == &pg_query__delete_stmt__descriptor) {
		lv->target = ((const PgQuery__DeleteStmt *)m)->relation;
		lv->from = ((const PgQuery__DeleteStmt *)m)->using_clause;
		lv->n_from = ((const PgQuery__DeleteStmt *)m)->n_using_clause;
	} else if (d == &pg_query__merge_stmt__descriptor) {
		lv->target = ((const PgQuery__MergeStmt *)m)->relation;
		lv->source = ((const PgQuery__MergeStmt *)m)->source_relation;
	}
	if (lv->target != NULL) {
		int i = find_table(w->cfg, lv->target->catalogname, lv->target->schemaname,
		                   lv->target->relname);

		if (i >= 0 && is_sharded(table_at(w, i)))
			block_add_rel(w, &lv->b, table_at(w, i), lv->target);
	}
	for (size_t i = 0; i < lv->n_from; i++)
		level_add_item(w, lv, lv->from[i], sc, 0);
	level_add_item(w, lv, lv->source, sc, 0);
}

static bool alias_is(const PgQuery__Alias *a, const char *q)
{
	return a != NULL && streq(a->aliasname, q);
}

/* Whether a FROM item is, or holds, a range named q (as a qualifier would name it). */
static bool item_named(const PgQuery__Node *n, const char *q, int depth)
{
	if (n == NULL || depth > MAX_DEPTH)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR:
		return n->range_var->alias != NULL ? alias_is(n->range_var->alias, q)
		                                   : streq(n->range_var->relname, q);
	case PG_QUERY__NODE__NODE_JOIN_EXPR:
		return alias_is(n->join_expr->alias, q) ||
		       item_named(n->join_expr->larg, q, depth + 1) ||
		       item_named(n->join_expr->rarg, q, depth + 1);
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT:
		return alias_is(n->range_subselect->alias, q);
	case PG_QUERY__NODE__NODE_RANGE_FUNCTION:
		return alias_is(n->range_function->alias, q);
	case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
		return item_named(n->range_table_sample->relation, q, depth + 1);
	default:
		return true; /* unknown: it may hold the name, so the name is not known elsewhere */
	}
}

static bool level_names(const level_t *lv, const char *q)
{
	if (lv->target != NULL && (lv->target->alias != NULL ? alias_is(lv->target->alias, q)
	                                                     : streq(lv->target->relname, q)))
		return true;
	for (size_t i = 0; i < lv->n_from; i++)
		if (item_named(lv->from[i], q, 0))
			return true;
	return item_named(lv->source, q, 0);
}

/*
 * The level, from lv outwards, whose sharded table's key column n names,
 * as PostgreSQL resolves it: a qualified name at the nearest level with a
 * range of that name, an unqualified one only at lv itself. NULL if none.
 */
static const level_t *key_level(const level_t *lv, const PgQuery__Node *n)
{
	const PgQuery__ColumnRef *c;
	const char *q;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return NULL;
	c = n->column_ref;
	if (c->n_fields < 2)
		return lv != NULL && key_rel(&lv->b, n) >= 0 ? lv : NULL;
	q = tree_str_of(c->fields[c->n_fields - 2]);
	if (q == NULL)
		return NULL;
	for (; lv != NULL; lv = lv->up)
		if (level_names(lv, q))
			return key_rel(&lv->b, n) >= 0 ? lv : NULL;
	return NULL;
}

/* An enclosing level's key, named qualified (an unqualified name may be q's own column). */
static bool outer_key(const level_t *q, const PgQuery__Node *n)
{
	const PgQuery__ColumnRef *c;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return false;
	c = n->column_ref;
	if (c->n_fields < 2 || tree_str_of(c->fields[c->n_fields - 2]) == NULL ||
	    level_names(q, tree_str_of(c->fields[c->n_fields - 2])))
		return false;
	return key_level(q->up, n) != NULL;
}

/* A conjunct of n equates a key of q's tables with an enclosing level's key. */
static bool conj_correlated(const level_t *q, const PgQuery__Node *n, int depth)
{
	const PgQuery__AExpr *e;

	if (n == NULL || depth > MAX_DEPTH)
		return false;
	if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR &&
	    n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < n->bool_expr->n_args; i++)
			if (conj_correlated(q, n->bool_expr->args[i], depth + 1))
				return true;
		return false;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return false;
	e = n->a_expr;
	if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !streq(op_name(e), "="))
		return false;
	return (key_rel(&q->b, e->lexpr) >= 0 && outer_key(q, e->rexpr)) ||
	       (key_rel(&q->b, e->rexpr) >= 0 && outer_key(q, e->lexpr));
}

/* ... or an inner join's ON does (an outer join's ON filters nothing). */
static bool join_correlated(const level_t *q, const PgQuery__Node *n, int depth)
{
	const PgQuery__JoinExpr *j;

	if (n == NULL || depth > MAX_DEPTH || n->node_case != PG_QUERY__NODE__NODE_JOIN_EXPR)
		return false;
	j = n->join_expr;
	if (j->jointype != PG_QUERY__JOIN_TYPE__JOIN_INNER)
		return false;
	return conj_correlated(q, j->quals, 0) || join_correlated(q, j->larg, depth + 1) ||
	       join_correlated(q, j->rarg, depth + 1);
}

static bool level_correlated(const level_t *q, const PgQuery__SelectStmt *s)
{
	if (q->up == NULL || q->b.n_rels == 0)
		return false;
	if (conj_correlated(q, s->where_clause, 0))
		return true;
	for (size_t i = 0; i < s->n_from_clause; i++)
		if (join_correlated(q, s->from_clause[i], 0))
			return true;
	return false;
}

/*
 * What in a level of one SELECT combines rows of several shards, or NULL.
 * as_set: the rows are only tested for membership (IN), so DISTINCT does
 * not matter.
 */
static const char *level_combines(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b,
                                  bool as_set, char *buf, size_t len)
{
	aggscan_t a = {NULL, false};
	bool by_key = false;

	for (size_t i = 0; i < s->n_target_list; i++)
		scan_aggs(w, &s->target_list[i]->base, &a);
	for (size_t i = 0; i < s->n_sort_clause; i++)
		scan_aggs(w, &s->sort_clause[i]->base, &a);
	if (s->having_clause != NULL)
		scan_aggs(w, &s->having_clause->base, &a);
	if (a.window || s->n_window_clause > 0)
		return "window functions";
	if (s->limit_count != NULL || s->limit_offset != NULL)
		return "LIMIT/OFFSET";
	/* a plain GROUP BY item is in every grouping set: each group is on one shard */
	for (size_t i = 0; i < s->n_group_clause && !by_key; i++)
		by_key = key_rel(b, s->group_clause[i]) >= 0;
	if (!by_key && s->n_group_clause > 0)
		return "GROUP BY on other columns than the shard key";
	if (!by_key && s->having_clause != NULL)
		return "HAVING";
	if (!by_key && a.agg != NULL) {
		snprintf(buf, len, "aggregate function %.40s()", a.agg);
		return buf;
	}
	if (!as_set && s->n_distinct_clause > 0)
		return "DISTINCT";
	return NULL;
}

static const char *set_op_name(const PgQuery__SelectStmt *s)
{
	switch (s->op) {
	case PG_QUERY__SET_OPERATION__SETOP_INTERSECT:
		return "INTERSECT";
	case PG_QUERY__SET_OPERATION__SETOP_EXCEPT:
		return "EXCEPT";
	default:
		return s->all ? "UNION ALL" : "UNION";
	}
}

/* The hint names the key of the outermost level's table: a condition there pins the statement. */
static void refuse_subquery(walk_t *w, const char *what, const level_t *q, const level_t *up,
                            bool correlate)
{
	const cfg_table_t *t = q != NULL && q->b.n_rels > 0 ? q->b.rels[0].table : NULL;
	const cfg_table_t *top = table_at(w, w->map_table);
	char tie[160] = "";

	for (; up != NULL; up = up->up)
		if (up->b.n_rels > 0)
			top = up->b.rels[0].table;
	if (correlate && t != NULL)
		snprintf(tie, sizeof tie,
		         "correlate it with the outer row on the shard key (WHERE %s.%s = "
		         "<outer table>.<its key>), ",
		         t->name, t->key);
	if (w->one_shard >= 0) {
		char own[160] = "";

		/* its own key predicates can keep it there (level_pinned) */
		if (t != NULL)
			snprintf(own, sizeof own,
			         "add a condition on %s.%s inside it that keeps it on shard %d, ",
			         t->name, t->key, w->one_shard);
		else if (q != NULL)
			snprintf(own, sizeof own,
			         "read its sharded tables in its own FROM (not through a subquery "
			         "or CTE) with a condition on their key that keeps them on shard "
			         "%d, ",
			         w->one_shard);
		refuse(w,
		       "%s over %s is not supported yet in a statement on one shard (it runs on "
		       "shard %d alone, which would answer it from its own rows only); "
		       "%s%s%s/* pgshard: shard=N */ to use only that shard's rows",
		       what, t != NULL ? t->name : "sharded tables", w->one_shard, tie, own,
		       tie[0] != '\0' || own[0] != '\0' ? "or " : "run it with ");
		return;
	}
	refuse(w,
	       "%s over %s across shards is not supported yet (each shard would answer it from "
	       "its own rows only); %sadd a condition on %s.%s, or /* pgshard: shard=N */",
	       what, t != NULL ? t->name : "sharded tables", tie, top->name, top->key);
}

static bool sublink_is_key_in(const PgQuery__SubLink *l)
{
	const char *op = l->n_oper_name > 0 ? tree_str_of(l->oper_name[l->n_oper_name - 1]) : NULL;

	if (l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK)
		return l->n_oper_name == 0 || streq(op, "=");
	return l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK && streq(op, "<>");
}

/*
 * The part inner joins' ON give a level's tables (b), into *p; false when a
 * FROM item other than a table reads sharded tables. filter: the joins
 * above n are inner (an outer join's ON, and what is below it, filters
 * nothing for the rows it keeps).
 */
static bool from_pin(walk_t *w, const block_t *b, const PgQuery__Node *n, const mscope_t *sc,
                     bool filter, part_t *p, int depth)
{
	mscope_t inner;

	if (n == NULL)
		return true;
	if (depth > MAX_DEPTH)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		const PgQuery__JoinExpr *j = n->join_expr;

		filter = filter && j->jointype == PG_QUERY__JOIN_TYPE__JOIN_INNER;
		if (filter && j->quals != NULL)
			*p = part_and(*p, pred_part(w, b, j->quals));
		return from_pin(w, b, j->larg, sc, filter, p, depth + 1) &&
		       from_pin(w, b, j->rarg, sc, filter, p, depth + 1);
	}
	case PG_QUERY__NODE__NODE_RANGE_VAR:
		if (cte_ref(n->range_var, sc, &inner) == NULL)
			return true; /* a table: in b when it is sharded */
		return !item_reads_sharded(w, n, sc, depth + 1);
	case PG_QUERY__NODE__NODE_RANGE_TABLE_SAMPLE:
		return false; /* a table b does not hold */
	default:
		return !item_reads_sharded(w, n, sc, depth + 1);
	}
}

/*
 * In a statement on one shard: whether the SELECT level q (its query s)
 * reads only rows of that shard, by key predicates of its own WHERE or
 * inner joins' ON, on its sharded tables (joined on their keys: see
 * check_joined_on_keys). A derived table in its FROM that reads sharded
 * tables is not narrowed by them: such a level is not pinned.
 */
static bool level_pinned(walk_t *w, const level_t *q, const PgQuery__SelectStmt *s,
                         const mscope_t *sc)
{
	part_t p;
	int n;

	if (w->one_shard < 0 || q->b.n_rels == 0)
		return false;
	p = pred_part(w, &q->b, s->where_clause);
	for (size_t i = 0; i < s->n_from_clause; i++)
		if (!from_pin(w, &q->b, s->from_clause[i], sc, true, &p, 0))
			return false;
	n = shard_set_count(&p.set);
	/* no shard at all: contradicting predicates, no row anywhere */
	return p.kind == PART_SET && (n == 0 || (n == 1 && shard_set_has(&p.set, w->one_shard)));
}

/* judge_subquery for one query level (no set operation); not inlined, for the stack. */
static __attribute__((noinline)) void judge_level(walk_t *w, const PgQuery__SelectStmt *s,
                                                  const PgQuery__SubLink *l, const level_t *up,
                                                  const mscope_t *sc)
{
	level_t q;
	char buf[96], what[160];
	const char *why;

	level_init(w, &q, &s->base, up, sc);
	/* the analysis checks the levels it walks, which are not all subqueries */
	if (!w->nomem)
		check_joined_on_keys(w, &q.b, s->where_clause);
	if (!stopped(w) && !level_correlated(&q, s) && !level_pinned(w, &q, s, sc)) {
		bool key_in = l != NULL && sublink_is_key_in(l) && key_level(up, l->testexpr) &&
		              s->n_target_list == 1 &&
		              s->target_list[0]->node_case == PG_QUERY__NODE__NODE_RES_TARGET &&
		              key_rel(&q.b, s->target_list[0]->res_target->val) >= 0;

		why = level_combines(w, s, &q.b, l != NULL, buf, sizeof buf);
		if (why != NULL) {
			snprintf(what, sizeof what, "a subquery with %s", why);
			refuse_subquery(w, what, &q, up, l != NULL);
		} else if (l != NULL && !key_in) {
			if (l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ANY_SUBLINK ||
			    l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ALL_SUBLINK)
				refuse_subquery(
				    w,
				    "an IN/ANY/ALL subquery that does not compare shard "
				    "keys (outer key IN (SELECT key ...))",
				    &q, up, true);
			else
				refuse_subquery(
				    w,
				    l->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK
				        ? "an EXISTS subquery not correlated on the shard key"
				        : "a scalar subquery not correlated on the shard key",
				    &q, up, true);
		}
	}
	block_free(&q.b);
}

/*
 * Judge the query s below level up: a derived table (l NULL) or the
 * subquery of l. Refuses in w what is not local (see above).
 */
static void judge_subquery(walk_t *w, const PgQuery__SelectStmt *s, const PgQuery__SubLink *l,
                           const level_t *up, const mscope_t *sc, int depth)
{
	mscope_t own;
	const char *why = NULL;

	if (s == NULL || stopped(w) || depth > MAX_DEPTH || !select_reads_sharded(w, s, sc, 0))
		return;
	if (s->with_clause != NULL) {
		own.with = s->with_clause;
		own.n_visible = s->with_clause->n_ctes;
		own.up = sc;
		sc = &own;
	}
	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE &&
	    s->op != PG_QUERY__SET_OPERATION__SET_OPERATION_UNDEFINED) {
		/* the arms of a subquery's set operation are tested as it is; a derived
		 * table's rows concatenate only through UNION ALL */
		if (s->limit_count != NULL || s->limit_offset != NULL)
			why = "LIMIT/OFFSET";
		else if (l == NULL && !(s->op == PG_QUERY__SET_OPERATION__SETOP_UNION && s->all))
			why = set_op_name(s);
		if (why != NULL) {
			char what[64];

			snprintf(what, sizeof what, "a subquery with %s", why);
			refuse_subquery(w, what, NULL, up, false);
			return;
		}
		judge_subquery(w, s->larg, l, up, sc, depth + 1);
		judge_subquery(w, s->rarg, l, up, sc, depth + 1);
		return;
	}
	judge_level(w, s, l, up, sc);
}

static void local_walk(walk_t *w, const ProtobufCMessage *m, void *arg);

/* WITH: each CTE is a derived table; a recursive one over sharded tables grows across shards. */
static void local_with(walk_t *w, const PgQuery__WithClause *wc, const lwalk_t *a)
{
	const mscope_t *outer = a->sc != NULL && a->sc->with == wc ? a->sc->up : a->sc;

	for (size_t i = 0; i < wc->n_ctes && !stopped(w); i++) {
		const PgQuery__Node *c = wc->ctes[i];
		const PgQuery__Node *q;
		mscope_t cs = {wc, wc->recursive ? wc->n_ctes : i, outer};
		lwalk_t in = {a->lv, &cs};

		if (c == NULL || c->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR)
			continue;
		q = c->common_table_expr->ctequery;
		if (q == NULL)
			continue;
		if (q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
			if (wc->recursive && select_reads_sharded(w, q->select_stmt, &cs, 0))
				refuse_subquery(w, "a recursive CTE", NULL, a->lv, false);
			else
				judge_subquery(w, q->select_stmt, NULL, a->lv, &cs, 0);
		}
		local_walk(w, &q->base, &in);
	}
}

/* A SELECT, INSERT, UPDATE, DELETE or MERGE: a level of its own; not inlined, for the stack. */
static __attribute__((noinline)) void local_stmt(walk_t *w, const ProtobufCMessage *m,
                                                 const lwalk_t *a)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const PgQuery__WithClause *with;
	lwalk_t in = *a;
	mscope_t own;
	level_t lv;

	if (d == &pg_query__select_stmt__descriptor)
		with = ((const PgQuery__SelectStmt *)m)->with_clause;
	else if (d == &pg_query__insert_stmt__descriptor)
		with = ((const PgQuery__InsertStmt *)m)->with_clause;
	else if (d == &pg_query__update_stmt__descriptor)
		with = ((const PgQuery__UpdateStmt *)m)->with_clause;
	else if (d == &pg_query__delete_stmt__descriptor)
		with = ((const PgQuery__DeleteStmt *)m)->with_clause;
	else
		with = ((const PgQuery__MergeStmt *)m)->with_clause;
	if (with != NULL) {
		own.with = with;
		own.n_visible = with->n_ctes;
		own.up = a->sc;
		in.sc = &own;
	}
	level_init(w, &lv, m, a->lv, in.sc);
	in.lv = &lv;
	if (d == &pg_query__insert_stmt__descriptor) {
		const PgQuery__Node *q = ((const PgQuery__InsertStmt *)m)->select_stmt;

		/* INSERT ... SELECT: the rows to insert are a derived table */
		if (q != NULL && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			judge_subquery(w, q->select_stmt, NULL, a->lv, in.sc, 0);
	}
	each_child(w, m, NULL, NULL, local_walk, &in);
	block_free(&lv.b);
}

/* Find every subquery of a statement and judge it where it stands. */
static void local_walk(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	const lwalk_t *a = arg;
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (stopped(w))
		return;
	if (d == &pg_query__sub_link__descriptor) {
		const PgQuery__SubLink *l = (const PgQuery__SubLink *)m;

		if (l->subselect != NULL &&
		    l->subselect->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			judge_subquery(w, l->subselect->select_stmt, l, a->lv, a->sc, 0);
	} else if (d == &pg_query__range_subselect__descriptor) {
		const PgQuery__Node *q = ((const PgQuery__RangeSubselect *)m)->subquery;

		if (q != NULL && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			judge_subquery(w, q->select_stmt, NULL, a->lv, a->sc, 0);
	} else if (d == &pg_query__with_clause__descriptor) {
		local_with(w, (const PgQuery__WithClause *)m, a);
		return;
	} else if (d == &pg_query__select_stmt__descriptor ||
	           d == &pg_query__insert_stmt__descriptor ||
	           d == &pg_query__update_stmt__descriptor ||
	           d == &pg_query__delete_stmt__descriptor ||
	           d == &pg_query__merge_stmt__descriptor) {
		local_stmt(w, m, a);
		return;
	}
	each_child(w, m, NULL, NULL, local_walk, arg);
}

/*
 * A statement on several shards (merge SUM, COUNT or GATHER; one_shard -1),
 * or on one shard of a map (one_shard): refuse it (in w, -1) when one of
 * its subqueries would be answered wrongly by a shard alone.
 */
static int subqueries_local(walk_t *w, const PgQuery__Node *n, int one_shard)
{
	lwalk_t root = {NULL, NULL};

	/* EXPLAIN ANALYZE runs its statement (a write writes): judged like it; a plan is not */
	if (n != NULL && n->node_case == PG_QUERY__NODE__NODE_EXPLAIN_STMT)
		n = explain_analyzes(n->explain_stmt) ? n->explain_stmt->query : NULL;
	if (n == NULL)
		return 0;
	walk_reset(w);
	w->one_shard = one_shard;
	collect(w, &n->base, NULL);
	if (stopped(w))
		return -1;
	if (w->map < 0)
		return 0;
	w->smap = &w->ctx->maps[w->map];
	/* a map on one shard keeps every row of its tables there */
	if (one_shard >= 0 && shard_set_count(&w->smap->all) <= 1)
		return 0;
	local_walk(w, &n->base, &root);
	return stopped(w) ? -1 : 0;
}

/*
 * How the shards' answers to one statement combine: 1 when it has none to
 * combine (SET, transaction control: they go wherever the others go), 0
 * with *m, or -1 when they cannot be combined (refused, in w).
 */
static int stmt_merge(walk_t *w, const PgQuery__Node *n, route_merge_t *m)
{
	const PgQuery__RangeVar *rel = NULL;
	int i;

	if (n == NULL)
		return 1;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
		return 1;
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		if (n->select_stmt->into_clause != NULL) {
			*m = ROUTE_MERGE_ONE;
			return 0;
		}
		return select_merge(w, n, false, m);
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		rel = n->insert_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
		rel = n->update_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		rel = n->delete_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_MERGE_STMT:
		rel = n->merge_stmt->relation;
		break;
	case PG_QUERY__NODE__NODE_COPY_STMT: {
		const PgQuery__CopyStmt *c = n->copy_stmt;

		if (c->query != NULL && c->query->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
			return select_merge(w, c->query, true, m);
		rel = c->relation;
		break;
	}
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		*m = ROUTE_MERGE_SUM; /* each shard's plan */
		return 0;
	default:
		*m = ROUTE_MERGE_ONE; /* DDL and the like: the same on every shard */
		return 0;
	}
	/* writes: a reference table's copies answer alike; anything else adds up */
	i = rel ? find_table(w->cfg, rel->catalogname, rel->schemaname, rel->relname) : -1;
	*m = i >= 0 && table_at(w, i)->reference ? ROUTE_MERGE_ONE : ROUTE_MERGE_SUM;
	return 0;
}

static const char *merge_words(route_merge_t m)
{
	switch (m) {
	case ROUTE_MERGE_SUM:
		return "concatenates rows";
	case ROUTE_MERGE_ONE:
		return "takes one copy";
	case ROUTE_MERGE_COUNT:
		return "adds up counts";
	case ROUTE_MERGE_GATHER:
		return "merges rows with a gather plan";
	default:
		return "runs on one shard";
	}
}

/*
 * A plan on one shard of a map, unless a routing comment chose it: refuse
 * it (in w) when a subquery needs rows of other shards.
 */
static void one_shard_subqueries(walk_t *w, const PgQuery__ParseResult *tree, bool by_comment,
                                 const route_plan_t *out)
{
	if (out->kind != ROUTE_SHARDS || shard_set_count(&out->shards) != 1 || tree == NULL ||
	    by_comment)
		return;
	for (size_t i = 0; i < tree->n_stmts && !w->nomem; i++)
		if (subqueries_local(w, tree->stmts[i]->stmt, shard_set_first(&out->shards)) < 0)
			break;
}

/*
 * out->merge for the final plan; refuses it when the answers cannot be
 * combined yet, or when a subquery would be answered wrongly where it runs.
 * by_comment: a routing comment chose the shards, whatever the subqueries.
 */
static void plan_merge(walk_t *w, const PgQuery__ParseResult *tree, bool by_comment,
                       route_plan_t *out)
{
	route_merge_t first = ROUTE_MERGE_NONE, m = ROUTE_MERGE_NONE;
	size_t first_at = 0;
	bool any = false;

	out->merge = ROUTE_MERGE_NONE;
	walk_reset(w);
	one_shard_subqueries(w, tree, by_comment, out);
	if ((out->kind != ROUTE_SHARDS && out->kind != ROUTE_ALL) ||
	    shard_set_count(&out->shards) <= 1)
		goto done;
	if (tree == NULL) {
		/* a comment sent it everywhere unparsed: the shards answer alike (an error) */
		out->merge = ROUTE_MERGE_ONE;
		return;
	}
	for (size_t i = 0; i < tree->n_stmts && !w->nomem; i++) {
		int rc;

		walk_reset(w);
		rc = stmt_merge(w, tree->stmts[i]->stmt, &m);
		if (rc == 1)
			continue;
		if (rc < 0)
			break;
		if ((m == ROUTE_MERGE_SUM || m == ROUTE_MERGE_COUNT || m == ROUTE_MERGE_GATHER) &&
		    subqueries_local(w, tree->stmts[i]->stmt, -1) < 0)
			break;
		/* the proxy runs a gather plan for one statement, not for a string of them */
		if (m == ROUTE_MERGE_GATHER && tree->n_stmts > 1) {
			refuse(
			    w,
			    "a SELECT on several shards whose rows the proxy merges (ORDER BY, "
			    "LIMIT, aggregates, GROUP BY, DISTINCT) cannot share its query string "
			    "with other statements; send it alone");
			break;
		}
		if (any && m != first) {
			refuse(w,
			       "the statements of this query string combine the shards' answers "
			       "differently (statement %zu %s, statement %zu %s); send them "
			       "separately",
			       first_at + 1, merge_words(first), i + 1, merge_words(m));
			break;
		}
		if (!any) {
			first = m;
			first_at = i;
			any = true;
		}
	}
	if (!w->refused)
		out->merge = any ? first : ROUTE_MERGE_ONE;
done:
	/* a subquery's key parameter may decide too */
	out->params_missing = out->params_missing || w->params_missing;
	/* a plan for unknown parameters is judged again when they are known */
	if (w->refused && !out->params_missing)
		plan_refused(w, out);
}

/* ---- transaction control ---- */

static route_txn_t txn_of(const PgQuery__TransactionStmt *t)
{
	switch (t->kind) {
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
		return ROUTE_TXN_BEGIN;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
		return t->chain ? ROUTE_TXN_OTHER : ROUTE_TXN_COMMIT;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
		return t->chain ? ROUTE_TXN_OTHER : ROUTE_TXN_ROLLBACK;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
		return ROUTE_TXN_SAVEPOINT;
	default:
		return ROUTE_TXN_OTHER; /* PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED */
	}
}

static void plan_txn(const PgQuery__ParseResult *tree, route_plan_t *out)
{
	out->txn = ROUTE_TXN_NONE;
	out->has_txn_control = false;
	if (tree == NULL)
		return;
	for (size_t i = 0; i < tree->n_stmts; i++) {
		const PgQuery__Node *n = tree->stmts[i]->stmt;

		if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_TRANSACTION_STMT)
			continue;
		out->has_txn_control = true;
		if (tree->n_stmts == 1)
			out->txn = txn_of(n->transaction_stmt);
	}
}

/* ---- the lexical pass: tokens, and the depth guard ---- */

/*
 * libpg_query's parser has no stack depth check. Its grammar keeps the
 * nesting of parentheses, CASE and prefix operators on bison's own stack,
 * which stops at 10,000 entries with "memory exhausted"; but left-deep
 * chains (1+1+1..., a JOIN b JOIN c..., x::t::t..., UNION ...) cost bison
 * nothing and build a tree that pg_query_parse_protobuf then walks
 * recursively, overflowing an 8 MB stack at about 23,500 levels. So the
 * text is measured before it is parsed: parentheses, brackets and CASE ...
 * END open levels; operators, and the words that nest the same way, lengthen
 * a chain that commas, AND, OR and (inside CASE) WHEN/THEN/ELSE end.
 *
 * The tokens are cut the way PostgreSQL's scanner cuts them (scan.l), so
 * that a string or a comment hides exactly what the parser will not see. In
 * doubt, the lexer errs towards seeing code: that only overestimates.
 */

/* Where the figure stops being worth counting: well past the limit. */
#define DEPTH_STOP       (1 << 20)
#define DEPTH_FRAMES_MAX (2 * ROUTE_MAX_SQL_DEPTH + 2)

static bool lex_ident_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool lex_ident_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static bool lex_op_char(char c)
{
	return c != '\0' && strchr("+-*/<>=~!@#%^&|`?", c) != NULL;
}

/* Past whitespace and comments (nested slash-star, and --); *open when a comment runs off. */
static size_t lex_blank(const char *s, size_t len, size_t i, bool *open)
{
	while (i < len) {
		if (isspace((unsigned char)s[i])) {
			i++;
		} else if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n' && s[i] != '\r')
				i++;
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			int depth = 1;

			for (i += 2; i < len && depth > 0;) {
				if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
					depth--;
					i += 2;
				} else {
					i++;
				}
			}
			*open |= depth > 0;
		} else {
			break;
		}
	}
	return i;
}

size_t route_skip_blank(const char *sql, size_t len, size_t pos)
{
	bool open = false;

	return lex_blank(sql, len, pos, &open);
}

/*
 * 'ab'<newline>'cd' is one literal, 'abcd': whitespace holding a newline (and
 * -- comments) between the quotes, no slash-star comment. The position of
 * the opening quote that continues the string ending before i, or 0.
 * Vertical tab counts as space here even if the scanner disagrees: taking
 * a continuation for one only makes the lexer see more code, never less.
 */
static size_t lex_continues(const char *s, size_t len, size_t i)
{
	bool newline = false;

	while (i < len) {
		char c = s[i];

		if (c == '\n' || c == '\r') {
			newline = true;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
			i++;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n' && s[i] != '\r')
				i++;
		} else {
			return c == '\'' && newline ? i : 0;
		}
	}
	return 0;
}

/* The end of a '...' string whose body starts at i, continuations included. */
static size_t lex_string(const char *s, size_t len, size_t i, bool backslash, bool *open)
{
	for (;;) {
		size_t next;

		while (i < len && s[i] != '\'') {
			if (backslash && s[i] == '\\' && i + 1 < len)
				i++;
			i++;
		}
		if (i >= len) {
			*open = true;
			return len;
		}
		if (i + 1 < len && s[i + 1] == '\'') {
			i += 2; /* '' stands for ' */
			continue;
		}
		next = lex_continues(s, len, i + 1);
		if (next == 0)
			return i + 1;
		i = next + 1;
	}
}

/* The end of a "quoted identifier" whose body starts at i. */
static size_t lex_qident(const char *s, size_t len, size_t i, bool *open)
{
	while (i < len) {
		if (s[i] == '"') {
			if (i + 1 < len && s[i + 1] == '"') {
				i += 2;
				continue;
			}
			return i + 1;
		}
		i++;
	}
	*open = true;
	return len;
}

/* $tag$ ... $tag$ starting at i (s[i] == '$'): its end, or 0 when s[i] starts none. */
static size_t lex_dollar(const char *s, size_t len, size_t i, bool *open)
{
	size_t t = i + 1, taglen;

	if (t < len && lex_ident_start((unsigned char)s[t]))
		while (t < len && lex_ident_char((unsigned char)s[t]) && s[t] != '$')
			t++;
	if (t >= len || s[t] != '$')
		return 0;
	taglen = t - i + 1;
	for (size_t k = t + 1; k + taglen <= len; k++)
		if (s[k] == '$' && memcmp(s + k, s + i, taglen) == 0)
			return k + taglen;
	*open = true;
	return len;
}

/* A number at i (a digit, or '.' and a digit), as scan.l cuts it. */
static size_t lex_number(const char *s, size_t len, size_t i, bool *integer)
{
	*integer = true;
	while (i < len && isdigit((unsigned char)s[i]))
		i++;
	/* 1..2 is 1 followed by "..", as in a slice */
	if (i < len && s[i] == '.' && !(i + 1 < len && s[i + 1] == '.')) {
		*integer = false;
		i++;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t k = i + 1;

		if (k < len && (s[k] == '+' || s[k] == '-'))
			k++;
		if (k < len && isdigit((unsigned char)s[k])) {
			*integer = false;
			for (i = k; i < len && isdigit((unsigned char)s[i]);)
				i++;
		}
	}
	return i;
}

/*
 * A run of operator characters at i. As in scan.l, the run stops where a
 * comment starts, and loses trailing + and - unless it holds one of
 * ~ ! @ # % ^ & | ` ? (so that "=-5" is "=" then "-" then 5).
 */
static size_t lex_operator(const char *s, size_t len, size_t i)
{
	size_t j = i, n;

	while (j < len && lex_op_char(s[j])) {
		if (j > i &&
		    ((s[j] == '-' && s[j - 1] == '-') || (s[j] == '*' && s[j - 1] == '/'))) {
			j--;
			break;
		}
		j++;
	}
	n = j - i;
	if (n > 1 && (s[i + n - 1] == '+' || s[i + n - 1] == '-')) {
		bool special = false;

		for (size_t k = i; k + 1 < i + n; k++)
			special |= strchr("~!@#^&|`?%", s[k]) != NULL;
		if (!special)
			do {
				n--;
			} while (n > 1 && (s[i + n - 1] == '+' || s[i + n - 1] == '-'));
	}
	return i + n;
}

size_t route_next_token(const char *sql, size_t len, size_t pos, route_token_t *tok)
{
	const char *s = sql;
	size_t i, end;
	char c;

	memset(tok, 0, sizeof *tok);
	i = lex_blank(s, len, pos, &tok->unterminated);
	tok->start = i;
	if (i >= len) {
		tok->kind = ROUTE_TOK_END;
		return len;
	}
	c = s[i];
	if (c == '\'') {
		tok->kind = ROUTE_TOK_STRING;
		end = lex_string(s, len, i + 1, false, &tok->unterminated);
	} else if (c == '"') {
		tok->kind = ROUTE_TOK_QIDENT;
		end = lex_qident(s, len, i + 1, &tok->unterminated);
	} else if (c != '\0' && strchr("eEbBxXnN", c) != NULL && i + 1 < len && s[i + 1] == '\'') {
		tok->kind = ROUTE_TOK_XSTRING; /* only E'' knows backslash escapes */
		end = lex_string(s, len, i + 2, c == 'e' || c == 'E', &tok->unterminated);
	} else if ((c == 'u' || c == 'U') && i + 2 < len && s[i + 1] == '&' &&
	           (s[i + 2] == '\'' || s[i + 2] == '"')) {
		if (s[i + 2] == '\'') {
			tok->kind = ROUTE_TOK_XSTRING;
			end = lex_string(s, len, i + 3, false, &tok->unterminated);
		} else {
			tok->kind = ROUTE_TOK_QIDENT;
			end = lex_qident(s, len, i + 3, &tok->unterminated);
		}
	} else if (lex_ident_start((unsigned char)c)) {
		tok->kind = ROUTE_TOK_WORD;
		for (end = i + 1; end < len && lex_ident_char((unsigned char)s[end]);)
			end++;
	} else if (isdigit((unsigned char)c) ||
	           (c == '.' && i + 1 < len && isdigit((unsigned char)s[i + 1]))) {
		tok->kind = ROUTE_TOK_NUMBER;
		end = lex_number(s, len, i, &tok->integer);
	} else if (c == '$' && i + 1 < len && isdigit((unsigned char)s[i + 1])) {
		tok->kind = ROUTE_TOK_PARAM;
		for (end = i + 1; end < len && isdigit((unsigned char)s[end]);)
			end++;
	} else if (c == '$' && (end = lex_dollar(s, len, i, &tok->unterminated)) != 0) {
		tok->kind = ROUTE_TOK_XSTRING;
	} else if (c == ':' && i + 1 < len && s[i + 1] == ':') {
		tok->kind = ROUTE_TOK_CAST;
		end = i + 2;
	} else if (c == '.' && i + 1 < len && s[i + 1] == '.') {
		tok->kind = ROUTE_TOK_PUNCT; /* "..", as in 1..2 */
		end = i + 2;
	} else if (lex_op_char(c)) {
		tok->kind = ROUTE_TOK_OP;
		end = lex_operator(s, len, i);
	} else {
		tok->kind = ROUTE_TOK_PUNCT;
		end = i + 1;
	}
	tok->len = end - i;
	return end;
}

static bool token_is(const char *s, const route_token_t *t, const char *const *words)
{
	if (t->kind != ROUTE_TOK_WORD)
		return false;
	for (; *words != NULL; words++)
		if (strlen(*words) == t->len && strncasecmp(s + t->start, *words, t->len) == 0)
			return true;
	return false;
}

/*
 * One level of the estimate: the top level, a parenthesis, a bracket or a
 * CASE. Its depth is its JOIN/UNION count plus its deepest segment, where a
 * segment (between commas, ANDs, ORs, WHENs ...) is a chain of operators
 * over operands that may be levels of their own.
 */
typedef struct depth_frame {
	char close;   /* ')', ']', or 'E' for CASE ... END */
	int best;     /* the deepest finished statement (;) */
	int strct;    /* JOIN, UNION, INTERSECT, EXCEPT */
	int seg_best; /* the deepest finished segment */
	int chain;    /* operators of this segment */
	int sub;      /* the deepest level closed in this segment */
} depth_frame_t;

static int frame_depth(const depth_frame_t *f)
{
	int seg = f->chain + f->sub > f->seg_best ? f->chain + f->sub : f->seg_best;

	return f->strct + seg > f->best ? f->strct + seg : f->best;
}

static void frame_segment_end(depth_frame_t *f)
{
	if (f->chain + f->sub > f->seg_best)
		f->seg_best = f->chain + f->sub;
	f->chain = f->sub = 0;
}

static void frame_close(depth_frame_t *f, int *n)
{
	int d = frame_depth(&f[*n - 1]) + 1;

	(*n)--;
	if (d > f[*n - 1].sub)
		f[*n - 1].sub = d;
}

int route_sql_depth_estimate(const char *sql, size_t len)
{
	static const char *const chain_words[] = {
	    "not",     "is",      "isnull",  "notnull", "in",       "like",     "ilike",
	    "similar", "between", "collate", "at",      "operator", "overlaps", NULL};
	static const char *const struct_words[] = {"join", "union", "intersect", "except", NULL};
	static const char *const and_or[] = {"and", "or", NULL};
	static const char *const case_parts[] = {"when", "then", "else", NULL};
	static const char *const case_word[] = {"case", NULL};
	static const char *const end_word[] = {"end", NULL};
	depth_frame_t local[32], *f = local;
	int n = 1, cap = 32, depth;
	size_t pos = 0;
	route_token_t t;

	memset(&f[0], 0, sizeof f[0]);
	for (;;) {
		depth_frame_t *top;
		char c;

		pos = route_next_token(sql, len, pos, &t);
		if (t.kind == ROUTE_TOK_END)
			break;
		top = &f[n - 1];
		c = sql[t.start];
		if (t.kind == ROUTE_TOK_OP || t.kind == ROUTE_TOK_CAST ||
		    token_is(sql, &t, chain_words)) {
			top->chain++;
		} else if (token_is(sql, &t, struct_words)) {
			top->strct++;
			frame_segment_end(top);
		} else if (token_is(sql, &t, and_or) ||
		           (top->close == 'E' && token_is(sql, &t, case_parts)) ||
		           (t.kind == ROUTE_TOK_PUNCT && c == ',')) {
			frame_segment_end(top);
		} else if (t.kind == ROUTE_TOK_PUNCT && c == ';') {
			top->best = frame_depth(top);
			top->strct = top->seg_best = top->chain = top->sub = 0;
		} else if (token_is(sql, &t, end_word)) {
			if (top->close == 'E')
				frame_close(f, &n);
		} else if ((t.kind == ROUTE_TOK_PUNCT && (c == '(' || c == '[')) ||
		           token_is(sql, &t, case_word)) {
			if (n == cap) {
				depth_frame_t *g;

				if (cap >= DEPTH_FRAMES_MAX) {
					depth = n; /* deeper than the limit already */
					goto out;
				}
				g = malloc(sizeof *g * (size_t)cap * 2);
				if (g == NULL) {
					depth = INT_MAX;
					goto out;
				}
				memcpy(g, f, sizeof *g * (size_t)n);
				if (f != local)
					free(f);
				f = g;
				cap *= 2;
			}
			memset(&f[n], 0, sizeof f[n]);
			f[n].close = c == '(' ? ')' : c == '[' ? ']' : 'E';
			n++;
		} else if (t.kind == ROUTE_TOK_PUNCT && (c == ')' || c == ']')) {
			int k = n - 1;

			while (k > 0 && f[k].close != c)
				k--;
			while (k > 0 && n > k) /* a stray closer closes nothing */
				frame_close(f, &n);
		}
		if (n > 0 && frame_depth(&f[n - 1]) > DEPTH_STOP) {
			depth = frame_depth(&f[n - 1]);
			goto out;
		}
	}
	while (n > 1)
		frame_close(f, &n);
	depth = frame_depth(&f[0]);
out:
	if (f != local)
		free(f);
	return depth;
}

/* ---- the API ---- */

static bool get_varint(const uint8_t *d, size_t len, size_t *pos, uint64_t *out)
{
	*out = 0;
	for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = d[(*pos)++];

		*out |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

/*
 * Whether the serialized tree nests messages deeper than `limit`, found
 * without recursion by following the wire format with the descriptors
 * (a length-delimited field is entered only when the schema says it is a
 * message). Malformed input counts as too deep: unpack would fail anyway.
 */
static bool proto_too_deep(const uint8_t *d, size_t len, int limit)
{
	struct frame {
		const ProtobufCMessageDescriptor *desc;
		size_t end;
	} * stack;
	size_t pos = 0;
	int depth = 1;
	bool deep = true;

	stack = malloc(sizeof *stack * (size_t)(limit + 1));
	if (stack == NULL)
		return true;
	stack[0].desc = &pg_query__parse_result__descriptor;
	stack[0].end = len;
	while (depth > 0) {
		const ProtobufCFieldDescriptor *f;
		uint64_t tag, v;

		if (pos == stack[depth - 1].end) {
			depth--;
			continue;
		}
		if (!get_varint(d, stack[depth - 1].end, &pos, &tag))
			goto out;
		switch (tag & 7) {
		case 0:
			if (!get_varint(d, stack[depth - 1].end, &pos, &v))
				goto out;
			break;
		case 1:
		case 5:
			v = (tag & 7) == 1 ? 8 : 4;
			if (stack[depth - 1].end - pos < v)
				goto out;
			pos += v;
			break;
		case 2:
			if (!get_varint(d, stack[depth - 1].end, &pos, &v) ||
			    v > stack[depth - 1].end - pos)
				goto out;
			f = protobuf_c_message_descriptor_get_field(stack[depth - 1].desc,
			                                            (unsigned)(tag >> 3));
			if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE) {
				pos += v;
				break;
			}
			if (depth >= limit)
				goto out;
			stack[depth].desc = f->descriptor;
			stack[depth].end = pos + v;
			depth++;
			break;
		default:
			goto out;
		}
	}
	deep = false;
out:
	free(stack);
	return deep;
}

int route_ctx_init(route_ctx_t *ctx, const cfg_t *cfg, char *err, size_t errlen)
{
	char e[256];

	ctx->cfg = cfg;
	ctx->maps = NULL;
	if (cfg->n_maps == 0)
		return 0;
	ctx->maps = calloc((size_t)cfg->n_maps, sizeof *ctx->maps);
	if (ctx->maps == NULL) {
		if (errlen > 0)
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < cfg->n_maps; i++) {
		e[0] = '\0';
		if (shard_map_build(&ctx->maps[i], &cfg->maps[i], e, sizeof e) != 0) {
			if (errlen > 0)
				snprintf(err, errlen, "[map.%s]: %s", cfg->maps[i].name, e);
			for (int k = 0; k < i; k++)
				shard_map_free(&ctx->maps[k]);
			free(ctx->maps);
			ctx->maps = NULL;
			return -1;
		}
	}
	return 0;
}

void route_ctx_free(route_ctx_t *ctx)
{
	if (ctx->maps != NULL && ctx->cfg != NULL)
		for (int i = 0; i < ctx->cfg->n_maps; i++)
			shard_map_free(&ctx->maps[i]);
	free(ctx->maps);
	ctx->maps = NULL;
}

/* ---- parsed statements ---- */

typedef enum parsed_status {
	PARSED_TREE,
	PARSED_SYNTAX_ERROR,  /* the shard reports the error */
	PARSED_TOO_DEEP_TEXT, /* refused before parsing (route_sql_depth_estimate) */
	PARSED_TOO_DEEP_TREE, /* refused before unpacking (proto_too_deep) */
} parsed_status_t;

struct route_parsed {
	parsed_status_t status;
	int estimate;
	override_t o;
	PgQuery__ParseResult *tree; /* PARSED_TREE */
	size_t bytes;
};

/* protobuf-c's allocator, counting what a tree takes (with malloc's own overhead, roughly). */
static void *count_alloc(void *data, size_t size)
{
	*(size_t *)data += size + 16;
	return malloc(size);
}

static void count_free(void *data, void *p)
{
	free(p);
}

route_parsed_t *route_parse(const char *sql)
{
	PgQueryProtobufParseResult res;
	ProtobufCAllocator alloc;
	route_parsed_t *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->bytes = sizeof *p;
	parse_override(sql, &p->o);
	p->estimate = route_sql_depth_estimate(sql, strlen(sql));
	if (p->estimate > ROUTE_MAX_SQL_DEPTH) {
		p->status = PARSED_TOO_DEEP_TEXT;
		return p;
	}
	res = pg_query_parse_protobuf(sql);
	if (res.error != NULL) {
		p->status = PARSED_SYNTAX_ERROR;
	} else if (proto_too_deep((const uint8_t *)res.parse_tree.data, res.parse_tree.len,
	                          MAX_DEPTH)) {
		p->status = PARSED_TOO_DEEP_TREE;
	} else {
		alloc.alloc = count_alloc;
		alloc.free = count_free;
		alloc.allocator_data = &p->bytes;
		p->status = PARSED_TREE;
		p->tree = pg_query__parse_result__unpack(&alloc, res.parse_tree.len,
		                                         (const uint8_t *)res.parse_tree.data);
		if (p->tree == NULL) {
			free(p);
			p = NULL;
		}
	}
	pg_query_free_protobuf_parse_result(res);
	return p;
}

void route_parsed_free(route_parsed_t *p)
{
	if (p == NULL)
		return;
	if (p->tree != NULL)
		pg_query__parse_result__free_unpacked(p->tree, NULL);
	free(p);
}

size_t route_parsed_size(const route_parsed_t *p)
{
	return p->bytes;
}

static void refuse_too_deep(route_plan_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refuse_too_deep(route_plan_t *out, const char *fmt, ...)
{
	va_list ap;

	out->kind = ROUTE_REFUSE;
	shard_set_clear(&out->shards);
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof out->error, fmt, ap);
	va_end(ap);
	plan_reason(out, "refused: %s", out->error);
	memcpy(out->sqlstate, "54001", 6);
}

/* The comment decides where a statement goes that the router did not analyse. */
static void override_unanalysed(walk_t *w, const override_t *o, route_plan_t *out)
{
	if (o->kind == OVERRIDE_SHARD || o->kind == OVERRIDE_ALL || o->kind == OVERRIDE_BAD)
		apply_override(w, o, out);
}

int route_analyze(const route_ctx_t *ctx, const route_parsed_t *parsed, const route_param_t *params,
                  int n_params, const route_literals_t *lits, route_plan_t *out)
{
	const PgQuery__ParseResult *tree = parsed->tree;
	route_plan_t *plans = NULL;
	walk_t w;
	int rc = -1;

	memset(out, 0, sizeof *out);
	out->key_column = -1;
	memset(&w, 0, sizeof w);
	w.ctx = ctx;
	w.cfg = ctx->cfg;
	w.params = params;
	w.n_params = params != NULL ? n_params : 0;
	w.lits = lits;
	w.any_map = -1;
	if (ctx->cfg->n_tables > 0) {
		w.seen = calloc((size_t)ctx->cfg->n_tables, 1);
		w.order = calloc((size_t)ctx->cfg->n_tables, sizeof *w.order);
		if (w.seen == NULL || w.order == NULL)
			goto done;
	}
	walk_reset(&w);

	switch (parsed->status) {
	case PARSED_TOO_DEEP_TEXT:
		refuse_too_deep(out,
		                "statement is nested too deeply to analyze (estimated depth %d, "
		                "limit %d)",
		                parsed->estimate, ROUTE_MAX_SQL_DEPTH);
		override_unanalysed(&w, &parsed->o, out);
		break;
	case PARSED_TOO_DEEP_TREE:
		refuse_too_deep(out,
		                "the statement is nested too deeply for pgshard's router (more "
		                "than %d levels)",
		                MAX_DEPTH);
		override_unanalysed(&w, &parsed->o, out);
		break;
	case PARSED_SYNTAX_ERROR:
		plan_default(&w, out, "does not parse (the shard reports the syntax error)");
		override_unanalysed(&w, &parsed->o, out);
		break;
	case PARSED_TREE:
		if (tree->n_stmts == 0) {
			plan_default(&w, out, "empty query");
			apply_override(&w, &parsed->o, out);
			break;
		}
		plans = calloc(tree->n_stmts, sizeof *plans);
		if (plans == NULL)
			goto done;
		for (size_t i = 0; i < tree->n_stmts && !w.nomem; i++)
			plan_stmt(&w, tree->stmts[i]->stmt, &plans[i]);
		if (w.nomem)
			goto done;
		if (tree->n_stmts == 1) {
			*out = plans[0];
		} else {
			walk_reset(&w);
			combine(&w, tree->stmts, tree->n_stmts, plans, out);
		}
		apply_override(&w, &parsed->o, out);
		break;
	}
	plan_txn(tree, out);
	if (out->kind != ROUTE_REFUSE)
		plan_merge(&w, tree,
		           parsed->o.kind == OVERRIDE_SHARD || parsed->o.kind == OVERRIDE_KEY, out);
	if (w.nomem)
		goto done;
	if (out->kind != ROUTE_REFUSE)
		out->sqlstate[0] = '\0';
	else if (out->sqlstate[0] == '\0')
		memcpy(out->sqlstate, "0A000", 6);
	rc = 0;
done:
	free(plans);
	free(w.seen);
	free(w.order);
	return rc;
}

int route_statement(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                    int n_params, route_plan_t *out)
{
	route_parsed_t *p = route_parse(sql);
	int rc;

	if (p == NULL) {
		memset(out, 0, sizeof *out);
		out->key_column = -1;
		return -1;
	}
	rc = route_analyze(ctx, p, params, n_params, NULL, out);
	route_parsed_free(p);
	return rc;
}

int route_gather(const route_ctx_t *ctx, const char *sql, const route_param_t *params, int n_params,
                 gather_plan_t *out, char sqlstate[6], char *err, size_t errlen)
{
	route_plan_t rp;

	memset(out, 0, sizeof *out);
	out->limit = -1;
	sqlstate[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	/* route_statement refuses what this would: the same check, and the same words */
	if (route_statement(ctx, sql, params, n_params, &rp) < 0) {
		memcpy(sqlstate, "53200", 6);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (rp.kind == ROUTE_REFUSE) {
		memcpy(sqlstate, rp.sqlstate[0] != '\0' ? rp.sqlstate : "0A000", 6);
		snprintf(err, errlen, "%s", rp.error);
		return -1;
	}
	return gather_plan_make(sql, params, n_params, out, sqlstate, err, errlen);
}

bool route_parsed_match(const route_parsed_t *a, const route_parsed_t *b,
                        const route_literals_t *lits)
{
	if (a->status != b->status || memcmp(&a->o, &b->o, sizeof a->o) != 0)
		return false;
	switch (a->status) {
	case PARSED_TREE:
		return tree_match_masked(&a->tree->base, &b->tree->base, lits);
	case PARSED_TOO_DEEP_TEXT:
		return a->estimate == b->estimate;
	default:
		return true;
	}
}

/* ---- splitting a multi-row INSERT ---- */

static bool has_param(walk_t *w, const ProtobufCMessage *m);

static void param_child(walk_t *w, const ProtobufCMessage *m, void *arg)
{
	*(bool *)arg |= has_param(w, m);
}

static bool has_param(walk_t *w, const ProtobufCMessage *m)
{
	bool found = m->descriptor == &pg_query__param_ref__descriptor;

	if (!found)
		each_child(w, m, NULL, NULL, param_child, &found);
	return found;
}

static int split_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int split_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Each row's shard, by the plan's key column; -1 with a message in err. */
static int split_row_shards(const route_ctx_t *ctx, const route_plan_t *plan,
                            const PgQuery__SelectStmt *sel, int *shards, char *err, size_t errlen)
{
	walk_t w;

	memset(&w, 0, sizeof w);
	w.ctx = ctx;
	w.cfg = ctx->cfg;
	for (int i = 0; i < ctx->cfg->n_maps; i++)
		if (streq(ctx->cfg->maps[i].name, plan->map))
			w.smap = &ctx->maps[i];
	if (w.smap == NULL || plan->key_column < 0)
		return split_error(err, errlen, "the INSERT has no key column to split by");
	for (size_t r = 0; r < sel->n_values_lists; r++) {
		const PgQuery__Node *row = sel->values_lists[r];
		keyval_t kv;

		shards[r] = -1;
		if (row != NULL && row->node_case == PG_QUERY__NODE__NODE_LIST &&
		    (size_t)plan->key_column < row->list->n_items &&
		    key_value(&w, row->list->items[plan->key_column], 0, &kv) == KV_OK)
			shards[r] = shard_map_lookup(w.smap, &kv.key);
		if (shards[r] < 0)
			return split_error(err, errlen, "row %zu of the INSERT has no shard",
			                   r + 1);
	}
	return 0;
}

int route_split_insert(const route_ctx_t *ctx, const char *sql, route_split_t **out, int *n_out,
                       char *err, size_t errlen)
{
	PgQuery__SelectStmt *sel = NULL;
	PgQuery__Node **all = NULL, **mine = NULL;
	route_parsed_t *p;
	route_split_t *splits = NULL;
	route_plan_t plan;
	size_t n_rows = 0;
	int *shards = NULL, n = 0, rc = -1;
	walk_t w;

	*out = NULL;
	*n_out = 0;
	if (errlen > 0)
		err[0] = '\0';
	p = route_parse(sql);
	if (p == NULL)
		return split_error(err, errlen, "out of memory");
	if (p->status == PARSED_TREE && p->tree->n_stmts == 1 && p->tree->stmts[0]->stmt != NULL &&
	    p->tree->stmts[0]->stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT) {
		PgQuery__Node *s = p->tree->stmts[0]->stmt->insert_stmt->select_stmt;

		if (s != NULL && s->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
		    s->select_stmt->n_values_lists > 1)
			sel = s->select_stmt;
	}
	if (sel == NULL) {
		split_error(err, errlen, "only a multi-row INSERT ... VALUES can be split by rows");
		goto out;
	}
	memset(&w, 0, sizeof w);
	for (size_t r = 0; r < sel->n_values_lists; r++)
		if (has_param(&w, &sel->values_lists[r]->base)) {
			split_error(err, errlen,
			            "a multi-row INSERT with parameters whose rows go to several "
			            "shards cannot be split; send one row per statement");
			goto out;
		}
	if (route_analyze(ctx, p, NULL, 0, NULL, &plan) < 0) {
		split_error(err, errlen, "out of memory");
		goto out;
	}
	if (plan.kind == ROUTE_REFUSE) {
		split_error(err, errlen, "%s", plan.error);
		goto out;
	}
	if (!plan.split_insert) {
		split_error(err, errlen, "the rows of this INSERT do not go to several shards");
		goto out;
	}
	n_rows = sel->n_values_lists;
	shards = malloc(sizeof *shards * n_rows);
	mine = malloc(sizeof *mine * n_rows);
	splits = calloc((size_t)shard_set_count(&plan.shards), sizeof *splits);
	if (shards == NULL || mine == NULL || splits == NULL) {
		split_error(err, errlen, "out of memory");
		goto out;
	}
	if (split_row_shards(ctx, &plan, sel, shards, err, errlen) < 0)
		goto out;
	/* the tree is this call's own: lend it each shard's rows in turn */
	all = sel->values_lists;
	for (int s = 0; s < SHARD_MAX; s++) {
		size_t k = 0;

		for (size_t r = 0; r < n_rows; r++)
			if (shards[r] == s)
				mine[k++] = all[r];
		if (k == 0)
			continue;
		if (n == shard_set_count(&plan.shards)) {
			split_error(err, errlen, "the rows of the INSERT go to unplanned shards");
			goto out;
		}
		sel->values_lists = mine;
		sel->n_values_lists = k;
		splits[n].sql = tree_deparse(p->tree, "the INSERT of one shard", err, errlen);
		sel->values_lists = all;
		sel->n_values_lists = n_rows;
		if (splits[n].sql == NULL)
			goto out;
		splits[n++].shard = s;
	}
	*out = splits;
	*n_out = n;
	splits = NULL;
	rc = 0;
out:
	if (all != NULL) {
		sel->values_lists = all;
		sel->n_values_lists = n_rows;
	}
	route_splits_free(splits, n);
	free(shards);
	free(mine);
	route_parsed_free(p);
	return rc;
}

void route_splits_free(route_split_t *s, int n)
{
	if (s == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(s[i].sql);
	free(s);
}

const char *route_kind_name(route_kind_t k)
{
	switch (k) {
	case ROUTE_DEFAULT:
		return "default";
	case ROUTE_SHARDS:
		return "shards";
	case ROUTE_ANY:
		return "any";
	case ROUTE_ALL:
		return "all";
	case ROUTE_REFUSE:
		return "refuse";
	}
	return "unknown";
}
