/*
 * join_plan.h — a join of sharded tables whose matching rows may be on
 * different shards (tables of different maps, or of one map joined on other
 * columns than their keys), planned as steps the proxy runs
 * (ROUTE_STEP_JOIN, proxy/join.c). For two tables:
 *
 *   1. drive   the driving side's rows, with the filters of its own that the
 *              statement applies to it pushed down, on the shards those
 *              filters leave: SELECT a.col, ROW(a.*) FROM t AS a WHERE ...
 *   2. probe   the other side's rows whose join column equals one of the
 *              driving rows' join keys: SELECT ROW(b.*) FROM u AS b WHERE
 *              b.col = ANY($1) AND ..., $1 an array of the driving column's
 *              type (join_array_type), in batches of JOIN_BATCH_KEYS keys,
 *              only on the shards that own those keys when b.col is u's
 *              shard key (else on every shard its own filters leave)
 *   3. final   the statement itself on one shard, each table replaced by the
 *              rows fetched for it: FROM unnest($n+1::t[]) AS a JOIN
 *              unnest($n+2::u[]) AS b ON ..., n the client's parameters (the
 *              rows travel as parameters, arrays of the table's row type,
 *              never pasted into the text)
 *
 * Why the last step runs in PostgreSQL rather than as a hash join in the
 * proxy: whatever the statement does with the joined rows (the join's own
 * ON with its operators, outer-join NULLs, other predicates, expressions,
 * GROUP BY, aggregates, HAVING, DISTINCT, window functions, ORDER BY in the
 * database's collation, LIMIT/OFFSET, the result's column names, types and
 * binary formats) is then PostgreSQL's own work, so the answer is the one a
 * single PostgreSQL holding all the rows gives. Steps 1 and 2 only decide
 * which rows reach step 3; they may fetch more than the statement uses,
 * never less:
 *
 *   - a filter is pushed down to a side only when it is one conjunct of the
 *     WHERE (or of an inner join's ON) that reads only that side, calls no
 *     function, has no subquery; for an outer join only the preserved
 *     side's WHERE conjuncts and the nullable side's ON conjuncts go down
 *   - the driving side of a LEFT JOIN is its left side, of a RIGHT JOIN its
 *     right side (their rows are kept even without a match); of an inner
 *     join, the side its filters hold to fewer shards, else the first one
 *   - NULL keys are not looked up (= never matches NULL), but their driving
 *     rows still reach step 3
 *
 * The rows held are capped by max_join_rows per side (54000 naming it).
 *
 * With three to JOIN_MAX_SIDES sharded tables (inner joins only), step 2 repeats: each
 * next side is probed by the keys of one fetched before it (by its shard
 * key when an equality allows), and each side's statement returns the
 * join columns the sides after it are probed by (join_side_t.keys).
 *
 * Co-located pairs inside a larger inner join (two sharded tables of one
 * map, joined by an equality of their shard keys, `o.user_id = u.id`) are
 * fetched together, by one statement per shard (join_group.c): a join of
 * co-located tables is complete on each shard, so the rows of each that
 * have a partner there are all the final statement can use of them. The
 * pair is two sides, the second riding with the first (join_side_t.rides):
 *
 *   SELECT u.keys.., NULL.., ROW(u.*), NULL FROM users u
 *     WHERE [u.col = ANY($1)] AND <u's filters>
 *       AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND <o's>)
 *   UNION ALL
 *   SELECT NULL.., o.keys.., NULL, ROW(o.*) FROM orders o WHERE <o's filters>
 *       AND EXISTS (SELECT 1 FROM users u WHERE o.user_id = u.id
 *                   [AND u.col = ANY($1)] AND <u's filters>)
 *
 * Each table's row comes once however many partners it has (a users row
 * with two orders is not fetched twice, two equal rows of a table without
 * a key both come), and the final statement still joins them with its own
 * ON. Probing the pair by a shard key goes only to the shards owning the
 * keys, as for a table alone; its keys go in one Bind (a row of the second
 * table may have partners whose keys would be in two batches). Outer joins
 * keep one side per table.
 *
 * The shape planned today: one SELECT (no WITH, no set operation, no FOR
 * UPDATE) whose FROM is two to JOIN_MAX_SIDES sharded tables inner-joined (with
 * reference tables too), or exactly two sharded tables, `a [INNER|LEFT|RIGHT]
 * JOIN b ON ...` or `a, b WHERE ...`, with at least one `a.x = b.y` conjunct
 * between them in the ON (WHERE for the comma form); or two sharded tables
 * and reference tables, all inner-joined (the reference tables stay in the
 * final statement: its shard has them). No other table, and no subquery in
 * FROM, anywhere in the statement; subqueries over reference tables are
 * fine. Subqueries over one sharded table each are sides too, when an
 * equality ties them to a side before them (see join_plan.c): a correlation
 * b.y = a.x in their WHERE, or `a.x IN (SELECT b.y FROM b ...)` as a plain
 * condition of the WHERE. Up to JOIN_MAX_SIDES sharded tables in all.
 *
 * When the statement as written is none of those, join_plan_make tries, in
 * this order:
 *   - its uncorrelated subqueries over one sharded table taken out to run
 *     first (join_sub_t, router/subq_plan.c), their answers parameters of
 *     the statement, which is then planned as above, or with at most one
 *     sharded table left, over that table fetched whole (JOIN_ALONE);
 *   - a FULL JOIN of two sharded tables (JOIN_FULL), or outer joins among
 *     other joins or reference tables (JOIN_OUTER): every sharded table
 *     fetched whole, no filter pushed down (planned with the shapes above);
 *   - CTEs and subqueries in FROM over sharded tables (JOIN_WHOLE): every
 *     sharded table the statement reads fetched whole, the CTEs and derived
 *     tables computed by the final statement over their rows.
 * A table fetched whole is capped like any side. Refused still: WITH
 * RECURSIVE, writes, FOR UPDATE, more than JOIN_MAX_SIDES sharded tables,
 * an inner join of tables not tied by an equality, a subquery correlated
 * otherwise than by an equality.
 */
#ifndef PGSHARD_ROUTER_JOIN_PLAN_H
#define PGSHARD_ROUTER_JOIN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "router/route.h"

/* Join keys per probe statement: one Bind of $1 each (integer and uuid keys, each once; others,
   and a co-located pair's keys, all in one: proxy/join_keys.c says why). */
#define JOIN_BATCH_KEYS 1000

/* The client's parameters a side's filters may use (the statement may have more). */
#define JOIN_MAX_PARAMS 1024

/* Sharded tables in one join: the driving one and those probed after it. */
#define JOIN_MAX_SIDES 8

/* Uncorrelated subqueries over a sharded table run first, in one statement. */
#define JOIN_MAX_SUBS 4
/* The client's parameters one of them may use. */
#define JOIN_SUB_PARAMS 256

typedef enum join_kind {
	JOIN_INNER,
	JOIN_LEFT,
	JOIN_RIGHT,
	JOIN_SEMI,  /* one table in FROM, the others in its subqueries (EXISTS, IN, ...) */
	JOIN_FULL,  /* a FULL JOIN of two sharded tables: both fetched whole */
	JOIN_OUTER, /* outer joins mixed with other joins or reference tables: every sharded
	               table fetched whole */
	JOIN_ALONE, /* at most one sharded table besides the subqueries that run first: it is
	               fetched whole */
	JOIN_WHOLE, /* CTEs or subqueries in FROM over sharded tables: every sharded table the
	               statement reads, wherever, fetched whole */
} join_kind_t;

/*
 * An uncorrelated subquery over one sharded table (`n > (SELECT avg(n) FROM
 * t)`, `x IN (SELECT y FROM t WHERE ...)`, `x NOT IN (...)`, `x op ANY/ALL
 * (...)`, `EXISTS (...)`), run before anything else. When its own plan (the
 * router's) runs it on one shard, or on several whose rows are only put
 * together, it runs so, as it is (direct); else its table's rows (with the
 * filters of its WHERE on that table alone, and the client's parameters
 * those use) are fetched from the shards those filters leave, then the
 * subquery runs over them on one shard, as the join's final statement
 * does (aggregates, DISTINCT, ORDER BY/LIMIT are then PostgreSQL's own).
 * Its answer goes to the statement as parameter $param, typed as the
 * answer's column (RowDescription): the value of a scalar subquery (NULL
 * without rows; more than one row is PostgreSQL's 21000), the array of an
 * ANY/ALL subquery's values (`x = ANY($param)`, the same answers, NULLs
 * included, as `x IN (subquery)`), whether an EXISTS subquery had a row
 * (bool). Its table's rows and its answer are capped by max_join_rows.
 */
typedef enum join_sub_kind {
	JOIN_SUB_SCALAR,
	JOIN_SUB_ARRAY,
	JOIN_SUB_EXISTS,
} join_sub_kind_t;

typedef struct join_sub {
	join_sub_kind_t kind;
	const cfg_table_t *table;
	int map;            /* index in cfg->maps */
	char alias[64];     /* how the subquery names its table */
	int param;          /* its answer's $n in the final statement */
	char *rows_sql;     /* SELECT ROW(alias.*) FROM t AS alias [WHERE its filters] */
	shard_set_t shards; /* where rows_sql runs */
	int n_pushed;       /* filters that went down with rows_sql */
	bool direct; /* its own plan runs it on `shards` as it is, their rows only put together
	                (one shard, or ROUTE_MERGE_SUM): sql is the subquery itself, no rows_sql */
	char *sql;   /* the subquery, its table replaced by unnest($n+1::t[]) ($n: its
	                parameters); direct: the subquery itself */
	int params[JOIN_SUB_PARAMS]; /* sql's $1..$n: the client's number of each */
	int n_params;
	int rows_params[JOIN_SUB_PARAMS]; /* rows_sql's $1..: the client's number of each */
	int n_rows_params;
} join_sub_t;

typedef struct join_side {
	const cfg_table_t *table;
	int map;         /* index in cfg->maps */
	char alias[64];  /* how the statement names it (its alias, or the table's name) */
	char column[64]; /* probed: its join column (the driving side: the column of its first
	                    key, for people) */
	bool left;       /* the left side of the join as written (of two) */
	int written;     /* its place among the sharded tables as the statement names them */
	bool sub;        /* read by a subquery of the statement (fetched by the keys of a side
	                    its correlation or IN compares it with) */
	int src;         /* probed: the side (index in sides) whose rows give its keys; -1 for
	                    the driving side */
	int src_key;     /* ... which of that side's keys */
	char keys[JOIN_MAX_SIDES][64]; /* the columns its statement returns before its row:
	                                  the join columns the sides it feeds are probed by */
	int deps[JOIN_MAX_SIDES];      /* the side each key feeds */
	int n_keys;
	char *sql; /* SELECT alias.key..., ROW(alias.*) FROM ... [WHERE alias.column = ANY($1)]
	              [AND its filters] */
	shard_set_t shards; /* where its statement runs (probe: when not by_key, or the shards
	                       its keys may pick from) */
	bool by_key;        /* probe: its join column is its shard key, so the keys pick the
	                       shards */
	bool whole;         /* fetched whole, not by keys (FULL and mixed outer joins, the one
	                       table of JOIN_ALONE): on every shard its filters leave */
	bool leads;         /* the first of a co-located pair (see below): its statement fetches the
	                       rows of the side after it too */
	bool rides; /* the second of a co-located pair: no statement of its own, its rows come
	               with the side before it (sql NULL; shards and by_key: that side's) */
	int key_of[JOIN_MAX_SIDES];  /* whose column each key is: this side, or the side riding
	                                with it */
	int n_pushed;                /* filters of its own pushed down with it */
	int params[JOIN_MAX_PARAMS]; /* its statement's parameters after its own (the probe's $1
	                                is the keys): the client's number of each, in order */
	int n_params;
} join_side_t;

typedef struct join_plan {
	join_kind_t kind;
	join_side_t sides[JOIN_MAX_SIDES]; /* in the order they run: [0] drives; each probed side
	                                      comes after the side its keys come from */
	int n_sides;
	int n_params; /* the client's parameters, $1..$n_params, as the statement has them */
	join_sub_t subs[JOIN_MAX_SUBS]; /* run first, in this order */
	int n_subs;
	char *final_sql; /* the statement with the client's parameters, the subqueries' answers
	                    ($n_params+1+k: subs[k]), over $n_params+n_subs+1+i (the rows of
	                    sides[i]) */
	char why[160];   /* why that side drives, for people */
} join_plan_t;

/*
 * Plan sql as such a join. params (n_params of them, NULL when not known)
 * are the client's: they may pin the driving side to fewer shards. 1 with
 * *out filled; 0 when it is not a join of that shape (why in err, for
 * people); -1 when memory runs out.
 */
int join_plan_make(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                   int n_params, join_plan_t *out, char *err, size_t errlen);
void join_plan_free(join_plan_t *p);

/* "scalar", "array", "exists". */
const char *join_sub_kind_name(join_sub_kind_t k);

/*
 * The shard of probed side `side` that owns the key value `text` (the
 * feeding column's text), or -1 when the key does not read as its map's key
 * type (then every shard of its step may hold it).
 */
int join_probe_shard(const route_ctx_t *ctx, const join_side_t *side, const char *text, size_t len);

/*
 * The array type of a built-in type (int4 -> int4[]), 0 for any other. The
 * probe's $1 is declared as the array of the driving join column's type,
 * so that PostgreSQL compares the keys with the probe column as the join's
 * own `=` would (an int column with numeric keys: numeric = numeric), rather
 * than reading each key as the probe column's type (1.5 is no integer).
 * With 0 the keys are read as the probe column's type: right when both
 * columns have the same type.
 */
uint32_t join_array_type(uint32_t oid);

/* "inner", "left", "right", "semi", "full", "outer", "alone", "whole". */
const char *join_kind_name(join_kind_t k);

#endif
