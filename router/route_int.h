/*
 * route_int.h — what the router's routing files share (route.c lists them
 * and the order of their calls): the state of one routing call, parts,
 * query blocks, key values and routing comments, and each file's functions
 * that the files above it use.
 *
 * Not part of the router's interface: only the router's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_ROUTE_INT_H
#define PGSHARD_ROUTER_ROUTE_INT_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "router/route.h"
#include "router/shardmap.h"
#include "router/tree_int.h"

#define DESC_MAX 192

#define NAME_MAX_LEN 200

/* A bounded string builder: appends what fits and remembers that it cut. */
typedef struct sb {
	char *buf;
	size_t size;
	size_t len;
	bool cut;
} sb_t;

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

	/* tables_collect(): per statement */
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
	shard_set_t mentioned;         /* every shard a key predicate named, for the empty case */
	int n_keys;                    /* key values that picked a shard (keys_add_shard) */
	char key_text[ROUTE_KEY_TEXT]; /* the first of them, as shard_key_text spells it */
	route_key_hit_t
	    ins_keys[ROUTE_INSERT_KEYS]; /* an INSERT's rows' distinct keys (row_shard) */
	int n_ins_keys;
	bool ins_split;      /* the top-level INSERT's rows go to several shards */
	bool key_move;       /* the top-level UPDATE may move rows to other shards */
	bool ins_select;     /* the top-level INSERT ... SELECT's rows may belong to other
	                        shards than those it reads (route_plan.c's insel_plan) */
	bool needs_columns;  /* the top-level INSERT ... VALUES has no column list */
	shard_set_t move_to; /* ... to these */
	int key_column;
	const struct block *lateral_up; /* for the LATERAL subquery about to be analysed: the
	                                   block it may correlate with */
	int one_shard; /* subqueries_local: the one shard the statement runs on, or -1 */

	/* outcome */
	bool refused;
	char error[512];
	bool nomem;
	bool params_missing;
	bool key_encoded; /* a text key value with bytes above 0x7F (shard_key_encoded) */
	/* over the whole analysis: whether the plan is generic (route_generic_t) */
	int gen_input;    /* the one input read so far; 0: none */
	uint32_t gen_oid; /* the type it was read as a key */
	int gen_map;      /* the map it was a key of; -1: not read as a key */
	bool gen_bad;     /* another input read, or read otherwise than as one key */

	/* across the statements of the string, for /\* pgshard: key=... *\/ */
	int any_map;
	bool maps_differ;
} walk_t;

typedef void (*child_fn)(walk_t *w, const ProtobufCMessage *child, void *arg);

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
	part_t own;       /* a derived table: the shards its own query reads */
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

/* The CTEs a query level sees: those of `with` up to n_visible, then up's. */
typedef struct mscope {
	const PgQuery__WithClause *with;
	size_t n_visible;
	const struct mscope *up;
} mscope_t;

typedef struct aggscan {
	const char *agg; /* the first aggregate call's name */
	bool window;
} aggscan_t;

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
	struct join_memo *join; /* what route.c's join_across found for this parse, once */
};

static inline bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static inline bool streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* ---- route_walk.c ---- */

part_t part_and(part_t a, part_t b);
part_t part_make(part_kind_t kind);
part_t part_or(part_t a, part_t b);
part_t part_weaken(part_t p);
void sb_finish(sb_t *s);
/* A message in err (when errlen > 0); returns -1, for `return route_error(...)`. */
int route_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sb_init(sb_t *s, char *buf, size_t size);
void sb_printf(sb_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_shards(sb_t *s, const shard_set_t *set);
const char *walk_map_kind_name(const cfg_map_t *m);
void walk_refuse(walk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void walk_reset(walk_t *w);
bool walk_stopped(const walk_t *w);

/* ---- route_tables.c ---- */

const cfg_table_t *tables_at(const walk_t *w, int i);
void tables_collect(walk_t *w, const ProtobufCMessage *m, scope_t *sc);
void tables_each_child(walk_t *w, const ProtobufCMessage *m, const void *skip1, const void *skip2,
                       child_fn fn, void *arg);
int tables_find(const cfg_t *cfg, const char *catalog, const char *schema, const char *rel);
scope_t *tables_find_cte(scope_t *sc, const char *name);
int tables_find_list(const cfg_t *cfg, const PgQuery__Node *const *items, size_t n);
bool tables_is_sharded(const cfg_table_t *t);
void tables_note(walk_t *w, int i, bool write);
void tables_note_rangevar(walk_t *w, const PgQuery__RangeVar *rv, scope_t *sc, bool write);
scope_t *tables_with_open(walk_t *w, const PgQuery__WithClause *with, scope_t *sc, scope_t **nodes);

/* ---- route_keys.c ---- */

void keys_add_shard(walk_t *w, shard_set_t *set, const shard_key_t *k);
bool keys_array_shards(walk_t *w, const PgQuery__Node *n, uint32_t oid, shard_set_t *set);
int keys_value(walk_t *w, const PgQuery__Node *n, uint32_t oid, keyval_t *kv);
void keys_value_desc(const walk_t *w, sb_t *s, const PgQuery__Node *n);
/* A key value that picked a shard: counted, and the first one kept (walk_t.key_text). */
void keys_note(walk_t *w, const shard_key_t *k);
/* An INSERT row's key value and its shard: kept when new, up to ROUTE_INSERT_KEYS
 * (walk_t.ins_keys). */
void keys_note_row(walk_t *w, const shard_key_t *k, int shard);

/* ---- route_where.c ---- */

bool where_alias_is(const PgQuery__Alias *a, const char *q);
const char *where_alias_of(const PgQuery__RangeVar *rv);
void where_block_add_derived(walk_t *w, block_t *b, const char *name, const char *what,
                             const keyout_t *ko, const part_t *own);
void where_block_add_rel(walk_t *w, block_t *b, const cfg_table_t *t, const PgQuery__RangeVar *rv);
void where_block_free(block_t *b);
void where_block_init(block_t *b);
bool where_item_named(const PgQuery__Node *n, const char *q, int depth);
int where_key_rel(const block_t *b, const PgQuery__Node *n);
void where_nodes_push(walk_t *w, nodes_t *l, const PgQuery__Node *n);
const char *where_op_name(const PgQuery__AExpr *e);
part_t where_pred_part(walk_t *w, const block_t *b, const PgQuery__Node *n);
bool where_rel_has_key(const rel_t *r, const char *col);
void where_rel_join(block_t *b, int x, int y);
const char *where_rel_key(const rel_t *r, int k);
int where_rel_n_keys(const rel_t *r);
part_t where_set_part(walk_t *w, const shard_set_t *set, const char *desc);

/* ---- route_analysis.c ---- */

void an_check_joined_on_keys(walk_t *w, block_t *b, const PgQuery__Node *where);
int an_column_pos(PgQuery__Node *const *cols, size_t n, const char *key, bool *indirect);
bool an_is_write_query(const PgQuery__Node *n);
void an_join_using(block_t *b, const PgQuery__JoinExpr *j, int l0, int l1);
const char *an_level_combines(walk_t *w, const PgQuery__SelectStmt *s, const block_t *b,
                              bool as_set, char *buf, size_t len);
part_t an_query(walk_t *w, const PgQuery__Node *n, scope_t *sc, bool top, keyout_t *ko);
void an_scan_aggs(walk_t *w, const ProtobufCMessage *m, void *arg);

/* ---- route_plan.c ---- */

void plan_all_shards(const cfg_t *cfg, shard_set_t *set);
void plan_combine(walk_t *w, PgQuery__RawStmt *const *stmts, size_t n, route_plan_t *plans,
                  route_plan_t *out);
void plan_default(walk_t *w, route_plan_t *p, const char *why);
bool plan_explain_analyzes(const PgQuery__ExplainStmt *e);
void plan_reason(route_plan_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void plan_refused(walk_t *w, route_plan_t *p);
void plan_stmt(walk_t *w, const PgQuery__Node *n, route_plan_t *p);
void plan_txn(const PgQuery__ParseResult *tree, route_plan_t *out);
/* Whether the statement of tree may run on a replica (route_replica.c: route_plan_t.replica_ok). */
bool route_replica_safe(const cfg_t *cfg, const PgQuery__ParseResult *tree);

/* ---- route_txblock.c ---- */

/*
 * NULL when statement n can run in a transaction pgshard opens around it and
 * commits in two phases; else why not (static text): PostgreSQL refuses it
 * inside a transaction block, or refuses to PREPARE a transaction that ran it.
 */
const char *txblock_why_not(const PgQuery__Node *n);

/* ---- route_hint.c ---- */

void hint_apply(walk_t *w, const override_t *o, route_plan_t *p);
void hint_parse(const char *sql, override_t *o);
bool hint_all_writes(const PgQuery__ParseResult *tree);

/* route_ids.c: what a DDL statement does to sequences */
typedef enum ids_kind {
	IDS_NONE,  /* nothing */
	IDS_SPLIT, /* makes sequences (serial/identity columns of a sharded table, CREATE
	              SEQUENCE): each shard runs its own copy (route_split_ids) */
	IDS_ALL,   /* changes or drops sequences: every shard, as written */
} ids_kind_t;
ids_kind_t ids_kind(walk_t *w, const PgQuery__Node *n); /* may refuse */

/* route_ddlcheck.c: constraints that cannot hold across shards are refused */
void ddl_check_constraints(walk_t *w, const PgQuery__Node *n);
void ddl_check_conflict_target(walk_t *w, const PgQuery__InsertStmt *ins, const cfg_table_t *t);

/* ---- route_mergekind.c ---- */

const PgQuery__CommonTableExpr *mergekind_scope_find(const mscope_t *sc, const char *name,
                                                     const mscope_t **where, size_t *index);
int mergekind_select(walk_t *w, const PgQuery__Node *n, bool copy, route_merge_t *m);
/* DECLARE ... CURSOR FOR n on several shards: always a gather plan (ONE for copies). */
int mergekind_cursor(walk_t *w, const PgQuery__Node *n, route_merge_t *m);

/* ---- route_subq.c ---- */

void subq_plan_merge(walk_t *w, const PgQuery__ParseResult *tree, bool by_comment,
                     route_plan_t *out);

#endif
