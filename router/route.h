/*
 * route.h — statement + parameters + config in, plan out.
 *
 * The router parses a statement with PostgreSQL's own grammar (libpg_query),
 * finds the tables it names, and decides where it must run:
 *
 *   ROUTE_DEFAULT   no sharded or reference table: the default shard
 *                   (catalog queries, SELECT version(), SHOW, SET, ...)
 *   ROUTE_SHARDS    a sharded table: the shards that can hold matching rows
 *                   (one for key = value; several for IN, OR, ranges; all
 *                   shards of the map when the statement names no usable key)
 *   ROUTE_ANY       only reference tables, read: any one shard
 *   ROUTE_ALL       DDL on sharded or reference tables, writes to reference
 *                   tables: every shard
 *   ROUTE_REFUSE    cannot be run correctly: SQLSTATE 0A000 and a message that
 *                   says what to change (tables on different maps joined, or
 *                   joined on other columns than their keys, an UPDATE of the
 *                   key column that may move the row, an INSERT without the
 *                   key column, a SELECT on several shards whose answers the
 *                   proxy cannot combine yet, ...); 54001 for a statement
 *                   nested too deeply to analyze
 *
 * A leading comment decides for statements the router cannot (or should
 * not) decide itself; it applies to the whole query string:
 *
 *   /\* pgshard: shard=N *\/     ROUTE_SHARDS {N}; refused when there is no shard N
 *   /\* pgshard: key=VALUE *\/   as if `key = VALUE` on the map of the statement's
 *                              sharded tables ('quoted' values allowed)
 *   /\* pgshard: all *\/         ROUTE_ALL: every shard (DROP INDEX, CREATE FUNCTION, ...)
 *
 * Any other text after "pgshard:" is refused, so that a typo does not route
 * silently by the statement instead.
 *
 * A plan on several shards also says how their answers combine (merge), and
 * a query string that is one transaction-control statement says which
 * (txn), so that the proxy can run transactions across shards.
 *
 * From all that, a plan says how to run the statement as a short list of
 * steps (route_step_t, router/route_steps.c): the executor dispatches on
 * them rather than on the fields above, which stay for the people and
 * tests that read where and why.
 *
 * Pure: no sockets, no globals; cmocka tests run it on plain strings.
 */
#ifndef PGSHARD_ROUTER_ROUTE_H
#define PGSHARD_ROUTER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "router/shardmap.h"

typedef enum route_kind {
	ROUTE_DEFAULT,
	ROUTE_SHARDS,
	ROUTE_ANY,
	ROUTE_ALL,
	ROUTE_REFUSE,
} route_kind_t;

/*
 * Statements whose parse tree would nest deeper than this are refused
 * (SQLSTATE 54001) before libpg_query sees them: its parser has no stack
 * depth check, and a chain such as SELECT 1+1+...+1 of about 23,500
 * operators overflows an 8 MB stack inside pg_query_parse_protobuf. The
 * limit is on route_sql_depth_estimate's figure, more than ten times below
 * that; no real query comes near it.
 */
#define ROUTE_MAX_SQL_DEPTH 2000

/* The transaction-control statement a query string is (see route_plan_t.txn). */
typedef enum route_txn {
	ROUTE_TXN_NONE,      /* not transaction control, or a string of several statements */
	ROUTE_TXN_BEGIN,     /* BEGIN / START TRANSACTION (any options) */
	ROUTE_TXN_COMMIT,    /* COMMIT / END (not AND CHAIN) */
	ROUTE_TXN_ROLLBACK,  /* ROLLBACK / ABORT (not AND CHAIN) */
	ROUTE_TXN_SAVEPOINT, /* SAVEPOINT, RELEASE [SAVEPOINT], ROLLBACK TO [SAVEPOINT] */
	ROUTE_TXN_OTHER,     /* AND CHAIN variants, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED */
} route_txn_t;

/* How the answers of several shards make the one answer (see route_plan_t.merge). */
typedef enum route_merge {
	ROUTE_MERGE_NONE,   /* runs on one shard (or returns no rows and no counts to merge) */
	ROUTE_MERGE_SUM,    /* several shards: concatenate rows, add the counts of CommandComplete
	                       tags ("INSERT 0 n", "UPDATE n", "DELETE n", "SELECT n", "COPY n",
	                       "MERGE n") */
	ROUTE_MERGE_ONE,    /* several shards holding copies (DDL; writes to reference tables only):
	                       rows and tag of one shard are the answer, the others' are the same */
	ROUTE_MERGE_COUNT,  /* several shards, a SELECT whose every output column is count(*) or
	                       count(expr) (no DISTINCT inside, no FILTER, no GROUP BY/HAVING/ORDER
	                       BY/LIMIT/OFFSET/DISTINCT/set operation/window): one bigint row per
	                       shard, the proxy adds them column by column */
	ROUTE_MERGE_GATHER, /* several shards, a SELECT the proxy merges with a gather plan: ORDER
	                       BY, LIMIT/OFFSET, aggregates, GROUP BY, HAVING, DISTINCT at its top
	                       level (see router/gather.h); always alone in its query string */
} route_merge_t;

/* What a statement does to a SQL cursor (see route_plan_t.cursor_op). */
typedef enum route_cursor_op {
	ROUTE_CURSOR_NONE,
	ROUTE_CURSOR_DECLARE,   /* DECLARE name ... on the one shard its query reads */
	ROUTE_CURSOR_USE,       /* FETCH, MOVE: where name was declared */
	ROUTE_CURSOR_CLOSE,     /* CLOSE name: there, and it is gone */
	ROUTE_CURSOR_CLOSE_ALL, /* CLOSE ALL */
} route_cursor_op_t;

/* One Bind parameter as the client sent it. */
typedef struct route_param {
	const uint8_t *data; /* NULL for SQL NULL */
	int32_t len;
	int16_t format;    /* 0 text, 1 binary */
	uint32_t type_oid; /* from Parse, 0 when unspecified */
} route_param_t;

/*
 * What the executor does with a statement: the kind of a plan's steps.
 * Every plan has at least one step; today every plan has exactly one,
 * except transaction control (TXN, then the step that runs the statement
 * when the session's transaction leaves it to routing).
 */
typedef enum route_step_kind {
	ROUTE_STEP_REFUSE,        /* answer the plan's error (sqlstate, error); always alone */
	ROUTE_STEP_TXN,           /* transaction control (plan.txn): the session's transaction
	                             answers it, or runs it on the shards it holds, or leaves it to
	                             the next step */
	ROUTE_STEP_ONE,           /* relay the statement to one shard, replies unchanged */
	ROUTE_STEP_EACH,          /* run it on each shard of the set, answers combined by merge */
	ROUTE_STEP_SPLIT_INSERT,  /* a multi-row INSERT: each shard its own rows
	                             (route_split_insert), counts added */
	ROUTE_STEP_SPLIT_COPY,    /* COPY FROM STDIN into a sharded table: the proxy splits the
	                             rows by their key column (router/copy.h), counts added */
	ROUTE_STEP_GATHER,        /* a SELECT merged by a gather plan (router/gather.h) */
	ROUTE_STEP_BATCH,         /* a query string of statements that route differently: the
	                             executor runs each as a query of its own, in one
	                             transaction (route_batch_statements cuts the string) */
	ROUTE_STEP_MOVE,          /* an UPDATE that may set the key to values of other shards:
	                             it runs on each shard of the set, and the rows whose new
	                             key belongs elsewhere are deleted there and inserted on
	                             their new shard (route_move_prepare, proxy/move.c) */
	ROUTE_STEP_INSERT_SELECT, /* an INSERT ... SELECT whose rows may belong to other shards
	                            than the ones its SELECT reads: the SELECT runs on each
	                            shard of the set, and each row it gives is inserted on the
	                            shard of its key, one of move_to (route_insel_prepare,
	                            proxy/move.c) */
	ROUTE_STEP_JOIN,          /* a SELECT joining two sharded tables whose matching rows
	                             may be on different shards: one side's rows, then the
	                             other's by their join keys, then the statement over both
	                             on one shard (router/join_plan.h, proxy/join.c); shards
	                             are every shard of either table's map */
} route_step_kind_t;

#define ROUTE_MAX_STEPS 4

/* Room for a key value's text in a plan (route_plan_t.key_value), the NUL included. */
#define ROUTE_KEY_TEXT 64
/* A multi-row INSERT's distinct key values a plan reports, at most (route_plan_t.insert_keys). */
#define ROUTE_INSERT_KEYS 8

/* One key value of an INSERT's rows and the shard those rows go to. */
typedef struct route_key_hit {
	char text[ROUTE_KEY_TEXT]; /* as shard_key_text spells it */
	int shard;
} route_key_hit_t;

typedef struct route_step {
	route_step_kind_t kind;
	int shard;           /* ONE: the shard; -1 when the executor picks one of `shards` (a
	                        reference read goes where the client already is), or the default
	                        shard when `shards` is empty. -1 for the other kinds */
	shard_set_t shards;  /* ONE: {shard}, or the shards it may pick; EACH, GATHER, the splits:
	                        the shards that run it; empty for REFUSE and TXN */
	route_merge_t merge; /* EACH: how the answers combine (ROUTE_MERGE_NONE only in a plan
	                        made without a parameter it needs: one shard's answer); GATHER:
	                        ROUTE_MERGE_GATHER; the splits: ROUTE_MERGE_SUM; NONE otherwise */
} route_step_t;

/*
 * How a plan of one shard depends on its inputs when one key value picked
 * that shard and no other input was read (route_analyze sets it; input 0
 * otherwise): another value of the same input gives the same plan on that
 * value's shard (route_generic_plan), so the plan cache need not analyse
 * the statement again.
 */
typedef struct route_generic {
	int input; /* the parameter ($n, or a masked literal's number) holding the key; 0: none */
	uint32_t oid;   /* the type a cast around it names (0: none) */
	int map;        /* the key's map, an index of the context's maps */
	bool any_input; /* no input was read at all (a statement for the default shard): the
	                   plan is the same whatever the inputs' values */
} route_generic_t;

typedef struct route_plan {
	route_kind_t kind;
	shard_set_t shards; /* ROUTE_SHARDS, ROUTE_ALL: where; ROUTE_ANY/DEFAULT: the one shard */
	bool is_write;      /* INSERT/UPDATE/DELETE/COPY FROM/DDL */
	bool replica_ok;    /* one SELECT that cannot write, lock or need a primary
	                       (router/route_replica.c): a replica may run it */
	bool is_ddl;
	bool split_insert;           /* a multi-row INSERT whose rows go to different shards */
	route_cursor_op_t cursor_op; /* a statement on a SQL cursor, alone in its string: the
	                                executor keeps where each cursor was declared and sends
	                                FETCH, MOVE and CLOSE there */
	char cursor[64];             /* its name (DECLARE, FETCH, MOVE, CLOSE name) */
	bool cursor_hold;            /* DECLARE ... WITH HOLD: it outlives its transaction */
	int64_t fetch_count;         /* FETCH/MOVE forward (n, NEXT, FORWARD n, ALL): the rows,
	                                -1 for ALL; 0 for any other direction */
	bool fetch_move;             /* MOVE rather than FETCH */
	bool needs_columns;  /* ROUTE_REFUSE of an INSERT ... VALUES into a sharded table without a
	                        column list: with the table's columns from the catalog, the
	                        proxy writes the list in and routes it again
	                        (route_insert_columns) */
	bool batch;          /* a string of statements that route differently (or one of which
	                        must run alone), runnable one by one: ROUTE_STEP_BATCH */
	bool ids_split;      /* DDL that makes sequences (serial/identity columns of a sharded
	                        table, CREATE SEQUENCE): each shard runs its own copy, numbered
	                        so that ids never repeat across shards (route_split_ids); an EACH
	                        step even on one shard; alone in its query string */
	bool key_move;       /* an UPDATE whose SET of the key column may move rows to other
	                        shards (ROUTE_STEP_MOVE); alone in its query string */
	bool insert_select;  /* an INSERT ... SELECT into a sharded table whose rows are not
	                        known to belong where they are read (ROUTE_STEP_INSERT_SELECT):
	                        shards are where its SELECT runs; alone in its query string */
	bool join;           /* a SELECT joining two sharded tables across shards
	                        (ROUTE_STEP_JOIN, router/join_plan.h): shards are every shard
	                        of their maps; alone in its query string */
	shard_set_t move_to; /* with key_move: the shards its rows can move to (the SET value's
	                        shard, or every shard of the map when the value is computed);
	                        with insert_select: the shards of the table's map */
	const char *map;     /* ROUTE_SHARDS: the name of the map that decided */
	const char *table;   /* the config table that decided where it runs: the sharded table
	                        of ROUTE_SHARDS, the reference table of a reference read or
	                        write; NULL otherwise (for the proxy's per-table counts) */
	char key_value[ROUTE_KEY_TEXT]; /* ROUTE_SHARDS on one shard because of exactly one key
	                                   value (key = v, a one-row INSERT): that value as
	                                   shard_key_text spells it (for hot keys); "" otherwise;
	                                   a routing comment's key=VALUE too */
	route_key_hit_t insert_keys[ROUTE_INSERT_KEYS]; /* an INSERT ... VALUES of several rows
	                                   (key_value ""): the distinct key values of its rows, the
	                                   first ROUTE_INSERT_KEYS of them, each with its shard (for
	                                   hot keys) */
	int n_insert_keys;
	int key_column;          /* INSERT ... VALUES, COPY FROM: position of the key column in the
	                            column list; -1 otherwise, and when a COPY names no columns (the
	                            table's own column order then decides) */
	bool params_missing;     /* a parameter the route depends on was not given: the plan
	                            assumed any value (all shards of the map); route again with it */
	route_generic_t generic; /* see route_generic_t */
	bool key_encoded;        /* a text key value it routed by has bytes above 0x7F: the shard
	                            holds for UTF-8 text only (the proxy refuses it from clients in
	                            another client_encoding) */
	bool calm;               /* set by the plan cache alone: no statement of the text can change
	                            the session (route_scan_effects finds nothing in its masked
	                            text), so the proxy need not scan it again */
	char reason[512]; /* why, for people: "orders.user_id = 42 -> shard 1 (hash map users)" */
	char error[512];  /* ROUTE_REFUSE: the message after "pgshard: " */
	char sqlstate[6]; /* ROUTE_REFUSE: "54001" for a statement nested too deeply to analyze
	                     (over ROUTE_MAX_SQL_DEPTH, or a tree deeper than the router walks),
	                     "0A000" for every other refusal; "" otherwise */
	route_txn_t txn;  /* set only when the query string is exactly one such statement */
	char txn_tag[24]; /* with txn: the CommandComplete tag PostgreSQL answers it with, when
	                     the transaction has not failed ("BEGIN", "START TRANSACTION",
	                     "COMMIT" (also for END), "ROLLBACK" (also ABORT and ROLLBACK TO),
	                     "SAVEPOINT", "RELEASE", "PREPARE TRANSACTION", "COMMIT PREPARED",
	                     "ROLLBACK PREPARED"); "" otherwise. A COMMIT of a failed
	                     transaction is answered "ROLLBACK": that is the session's to know */
	bool has_txn_control; /* the string holds any TransactionStmt (with other statements too) */
	route_merge_t merge;  /* ROUTE_SHARDS with more than one shard, ROUTE_ALL: how the shards'
	                         answers combine; ROUTE_MERGE_NONE for one shard. A SELECT whose
	                         answers cannot be combined yet is refused instead; so is a
	                         string whose statements would need different merges. A plan made
	                         without a parameter it needs (params_missing) is not refused for
	                         that: it has ROUTE_MERGE_NONE until routed with the values */
	bool copy_from_stdin; /* the string holds a COPY ... FROM STDIN (with split_insert: the
	                         proxy splits its rows by key, ROUTE_STEP_SPLIT_COPY) */
	bool no_tx_block;     /* a statement of the string cannot run in a transaction pgshard
	                         opens and prepares (router/route_txblock.c): PostgreSQL refuses
	                         it inside a transaction block (VACUUM, CREATE INDEX
	                         CONCURRENTLY, ...), or refuses to PREPARE after it (temporary
	                         objects, LISTEN/UNLISTEN/NOTIFY). On several shards it runs
	                         unwrapped (ROUTE_COMMIT_EACH) */
	const char *no_tx_why;               /* with no_tx_block: why, for people (static text) */
	route_step_t steps[ROUTE_MAX_STEPS]; /* how to run it: see route_step_kind_t */
	int n_steps;                         /* 1..ROUTE_MAX_STEPS */
} route_plan_t;

/* The config with its maps built, shared by every routing call. */
typedef struct route_ctx {
	const cfg_t *cfg;
	shard_map_t *maps; /* parallel to cfg->maps */
	/*
	 * route_statement (route_ctx_init sets it). The join planner
	 * (router/join_plan.c), which route_statement itself calls for a join
	 * across shards, routes each side's statement through it: the
	 * recursion goes through the context, not from file to file.
	 */
	int (*route)(const struct route_ctx *ctx, const char *sql, const route_param_t *params,
	             int n_params, route_plan_t *out);
} route_ctx_t;

/* 0, or -1 with a message in err. */
int route_ctx_init(route_ctx_t *ctx, const cfg_t *cfg, char *err, size_t errlen);
void route_ctx_free(route_ctx_t *ctx);

/*
 * Plan one statement (a query string may hold several; each must route the
 * same way, or the whole string is refused). params may be NULL when
 * n_params is 0; a parameter the statement uses but that is not given (a
 * Parse without Bind, or --route) counts as an unknown value.
 * Returns 0 with *out filled, -1 on out-of-memory.
 */
int route_statement(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                    int n_params, route_plan_t *out);

const char *route_kind_name(route_kind_t k);

/*
 * The steps of a plan from its other fields (kind, shards, split_insert,
 * copy_from_stdin, merge, txn): route_statement calls it last, and so must
 * whoever changes those fields of a plan afterwards.
 *
 *   ROUTE_REFUSE                          REFUSE
 *   txn != ROUTE_TXN_NONE                 TXN, then the step below
 *   ROUTE_DEFAULT                         ONE: the first of shards (-1 when empty)
 *   ROUTE_ANY                             ONE: -1 (the executor picks one of shards)
 *   ROUTE_SHARDS, ROUTE_ALL on one shard  ONE: that shard
 *   ... on several, split_insert          SPLIT_COPY (copy_from_stdin) or SPLIT_INSERT
 *   ... on several, ROUTE_MERGE_GATHER    GATHER
 *   ... on several, otherwise             EACH with the plan's merge
 */
void route_plan_set_steps(route_plan_t *p);

/*
 * *out = *in, but without the unused room of the texts (reason, error) and
 * of insert_keys: what reads a plan reads those only up to their end, and
 * the plan cache copies a plan for every statement it routes (2 kB, most
 * of it that room).
 */
void route_plan_copy(route_plan_t *out, const route_plan_t *in);

/*
 * Make p a refusal: SQLSTATE sqlstate, the message (after "pgshard: ")
 * formatted into p->error and into p->reason as "refused: ...", no shards,
 * no split, no merge, and its one REFUSE step.
 */
void route_plan_refuse(route_plan_t *p, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * The step that runs the statement on shards: steps[0], or for transaction
 * control the step after TXN (what runs when the session's transaction
 * leaves the statement to routing).
 */
const route_step_t *route_step_routed(const route_plan_t *p);

/* A step that runs a statement on each of `shards`, answers combined as `merge`. */
route_step_t route_step_each(const shard_set_t *shards, route_merge_t merge);

/*
 * The plan runs as this one step, whatever the router planned: for the
 * executor's own decisions (transaction control on the shards a transaction
 * holds, describing a portal on one shard). shards, merge and split_insert
 * follow the step.
 */
void route_plan_run_step(route_plan_t *p, const route_step_t *step);

/* "refuse", "txn", "one", "each", "split insert", "split copy", "gather", "move". */
const char *route_step_kind_name(route_step_kind_t k);

/* How a statement run in autocommit commits. */
typedef enum route_commit {
	ROUTE_COMMIT_NONE,      /* it does not write (or is refused, or is transaction control) */
	ROUTE_COMMIT_ONE,       /* it writes on one shard: that shard's own commit */
	ROUTE_COMMIT_TWO_PHASE, /* it writes on several (DDL too): in a transaction pgshard
	                           opens for it, committed in two phases (router/twophase.h) */
	ROUTE_COMMIT_EACH,      /* it writes on several but cannot be wrapped (no_tx_block:
	                           VACUUM, CREATE INDEX CONCURRENTLY, a temporary table, ...):
	                           each shard commits on its own, not atomic */
} route_commit_t;

route_commit_t route_plan_commit(const route_plan_t *p);

/*
 * An upper-bound-ish estimate of how deeply the parse tree of `sql` nests,
 * from its text alone and in one pass: the depth of parentheses, brackets
 * and CASE ... END, plus at each level the longest chain of operators
 * (+ - * / % ^ || < > = ..., ::, and the words that nest like them: NOT, IS,
 * IN, LIKE, COLLATE, AT, OPERATOR(...), ...) and of JOIN, UNION, INTERSECT,
 * EXCEPT. AND and OR do not count (PostgreSQL flattens them into one list),
 * nor do commas: a 5 MB INSERT ... VALUES (...), (...), ... is wide, not
 * deep. String literals (with '' and E'' escapes), dollar quotes, quoted
 * identifiers and comments (-- and nested slash-star) are skipped.
 * route_statement refuses a statement whose estimate exceeds
 * ROUTE_MAX_SQL_DEPTH; the proxy calls it too before it lets libpg_query
 * parse a statement for other reasons. Linear in len; counting stops once
 * the figure is far past the limit (nesting twice the limit deep, or a
 * million-long chain), which it then returns; INT_MAX when memory runs out.
 */
int route_sql_depth_estimate(const char *sql, size_t len);

/*
 * One token of SQL text, as PostgreSQL's lexer would cut it (standard
 * conforming strings). For router/plancache.c's masking and for the depth
 * estimate; whitespace and comments between tokens are skipped.
 */
typedef enum route_token_kind {
	ROUTE_TOK_END,     /* end of the text */
	ROUTE_TOK_WORD,    /* keyword or unquoted identifier */
	ROUTE_TOK_QIDENT,  /* "quoted identifier", U&"..." */
	ROUTE_TOK_STRING,  /* a plain '...' string (with '' inside) */
	ROUTE_TOK_XSTRING, /* E'...', B'...', X'...', N'...', U&'...', $tag$...$tag$ */
	ROUTE_TOK_NUMBER,  /* 42, 4.2, .5, 1e-3 (no sign) */
	ROUTE_TOK_PARAM,   /* $1 */
	ROUTE_TOK_OP,      /* a run of operator characters: + - * / < > = ~ ! @ # % ^ & | ` ? */
	ROUTE_TOK_CAST,    /* :: */
	ROUTE_TOK_PUNCT,   /* one of ( ) [ ] , ; . : .. and any other byte */
} route_token_kind_t;

typedef struct route_token {
	route_token_kind_t kind;
	size_t start, len; /* the token's bytes in the text */
	bool unterminated; /* a string, quoted identifier or comment runs to the end */
	bool integer;      /* ROUTE_TOK_NUMBER: digits only */
} route_token_t;

/* The token at or after `pos`; returns the position just after it. */
size_t route_next_token(const char *sql, size_t len, size_t pos, route_token_t *tok);

/* Whether token t of s is a word, one of `words` (NULL-terminated, lower case) in any case. */
bool route_token_is(const char *s, const route_token_t *t, const char *const *words);

/* Past the whitespace and comments (--, nested slash-star) at `pos`, as the lexer skips them. */
size_t route_skip_blank(const char *sql, size_t len, size_t pos);

typedef struct route_split {
	int shard;
	char *sql;      /* INSERT with only the rows of this shard, deparsed */
	int *param_map; /* its parameters, numbered from $1 again: param_map[k] is the
	                   caller's number of $k+1 (NULL when it has none) */
	int n_params;
	size_t *rows;  /* a multi-row INSERT with RETURNING: the positions (from 0) in its VALUES
	                  list of this shard's rows, in the order the shard's INSERT has them, so
	                  that the proxy can answer the returned rows in VALUES order (proxy/
	                  retorder.h); NULL without RETURNING, and for other splits */
	size_t n_rows; /* how many there are (with rows) */
} route_split_t;

/*
 * Split a multi-row INSERT ... VALUES (plan.split_insert) into one statement
 * per shard, in ascending shard order, with pg_query_deparse_protobuf on the
 * rewritten tree. Rows keep their order within a shard; ON CONFLICT,
 * RETURNING, WITH, column lists are kept (route_statement does not split an
 * INSERT with WITH, though: it refuses it). Comments are not: a routing
 * comment would have kept the rows together anyway. Returns 0, or -1 with a
 * message in err (out of memory, or a statement that cannot be split:
 * parameters ($n) in the rows, or a statement that is not a multi-row
 * INSERT ... VALUES whose rows go to several shards).
 */
int route_split_insert(const route_ctx_t *ctx, const char *sql, route_split_t **out, int *n_out,
                       char *err, size_t errlen);
void route_splits_free(route_split_t *s, int n);

/*
 * The same for an INSERT with parameters ($n in its rows, RETURNING, ON
 * CONFLICT), given their values: each shard's INSERT has its own rows and
 * the parameters they use, numbered again ($1, $2, ... in order of
 * appearance; param_map says which of the caller's each is), so that each
 * shard is bound only its own values.
 */
int route_split_insert_params(const route_ctx_t *ctx, const char *sql, const route_param_t *params,
                              int n_params, route_split_t **out, int *n_out, char *err,
                              size_t errlen);

/*
 * The statements of a query string (plan.batch), each as written (its own
 * text, without the ';'), malloc'd, in *out (n_out of them); *own_begin when
 * the first is BEGIN/START TRANSACTION. 0, or -1 with err.
 */
int route_batch_statements(const char *sql, char ***out, int *n_out, bool *own_begin, char *err,
                           size_t errlen);

/*
 * An INSERT ... VALUES without a column list (plan.needs_columns): *query
 * is the catalog query for its table's columns in order (one column,
 * attname; dropped ones left out) and *table how the INSERT names the table
 * (for a cache). route_insert_columns then writes the INSERT with the
 * first columns named, as many as its rows have values. 0, or -1 with err.
 */
int route_insert_columns_query(const char *sql, char **query, char **table, char *err,
                               size_t errlen);
int route_insert_columns(const char *sql, char *const *columns, int n_columns, char **out,
                         char *err, size_t errlen);
/*
 * Whether sql's first word is INSERT or WITH: only such a statement can be
 * an INSERT ... VALUES without a column list. A look at one token, before
 * deciding whether the statement is worth routing for that alone.
 */
bool route_may_be_insert(const char *sql, size_t len);

/*
 * The DDL of a plan with ids_split, written once for each shard of `shards`
 * with that shard's sequence numbering (router/route_ids.c says how ids
 * stay unique). 0, or -1 with a message in err.
 */
int route_split_ids(const route_ctx_t *ctx, const char *sql, const shard_set_t *shards,
                    route_split_t **out, int *n_out, char *err, size_t errlen);

/*
 * The statements that move rows for an UPDATE of the key column
 * (plan.key_move), made from its text:
 *
 *   update_sql   the UPDATE, its RETURNING list (if any) followed by four
 *                hidden columns, all of type text: the new row's tableoid
 *                and ctid, its key (to find its shard) and the row
 *                (ROW(t.*)); it runs on each shard of the plan
 *   columns_sql  the table's columns an INSERT can set (not dropped, not
 *                generated), in order: one column, attname
 *   delete_sql   DELETE of one updated row by $1 tableoid and $2 ctid, on
 *                the shard the row has to leave
 *   relation     the table as the INSERT names it (quoted, with its schema
 *                when the UPDATE names one); route_move_insert_sql makes the
 *                INSERT of one row ($1, the row's text) on its new shard
 *
 * map is the table's map (index in cfg->maps). Returns 0, or -1 with a
 * message in err (out of memory, or not such an UPDATE).
 */
typedef struct route_move {
	char *update_sql;
	char *columns_sql;
	char *delete_sql;
	char *relation;
	int map;
} route_move_t;

#define ROUTE_MOVE_HIDDEN 4 /* the hidden columns at the end of update_sql's rows */

int route_move_prepare(const route_ctx_t *ctx, const char *sql, route_move_t *out, char *err,
                       size_t errlen);
/* INSERT INTO relation (columns) OVERRIDING SYSTEM VALUE SELECT columns FROM ($1::relation). */
char *route_move_insert_sql(const route_move_t *m, char *const *columns, int n);
void route_move_free(route_move_t *m);

/*
 * The statements of an INSERT ... SELECT whose rows go to the shards of
 * their keys (plan.insert_select), made from its text:
 *
 *   select_sql  the SELECT (with the INSERT's WITH), as a subquery whose
 *               every column is returned, followed by one hidden column:
 *               the key's value cast to the map's key type, as text (NULL
 *               for a NULL key). It runs on each shard of the plan, with
 *               the client's parameters.
 *   n_columns   the INSERT's column list's length: the SELECT must return
 *               as many columns (PostgreSQL's 42601 otherwise)
 *   unknown     per column: ROUTE_INSEL_TYPED, ROUTE_INSEL_UNKNOWN (a string
 *               literal or NULL at the top of the SELECT's list, which
 *               PostgreSQL reads as the column's type, not as text), or the
 *               number of the parameter ($n) the column is (unknown when the
 *               client left its type unspecified)
 *   map         the table's map (index in cfg->maps)
 *
 * route_insel_insert_sql writes the INSERT itself for `rows` rows: the
 * original statement (column list, OVERRIDING, ON CONFLICT) with its
 * SELECT replaced by VALUES ($1, ..., $n), ($n+1, ...), ...: the values
 * are each row's columns as the SELECT gave them, and their parameter
 * types make PostgreSQL apply the same assignment casts.
 *
 * Returns 0, or -1 with a message in err (out of memory, or not such an
 * INSERT).
 */
enum { ROUTE_INSEL_TYPED = 0, ROUTE_INSEL_UNKNOWN = -1 };

typedef struct route_insel {
	char *select_sql;
	char *head, *tail; /* the INSERT's text before and after its VALUES rows */
	int n_columns;
	int *unknown; /* n_columns entries */
	int map;
} route_insel_t;

int route_insel_prepare(const route_ctx_t *ctx, const char *sql, route_insel_t *out, char *err,
                        size_t errlen);
char *route_insel_insert_sql(const route_insel_t *m, int rows);
void route_insel_free(route_insel_t *m);

/*
 * The plan base's statement (base->generic.input set) gets when that input
 * is value (kind: the masked literal's kind letter, 0 for a client
 * parameter): base on the value's shard, with its key (the reason is
 * base's: the caller rewrites it). false when the value is no key of the
 * map (NULL, invalid, in no range): analyse it instead.
 */
bool route_generic_plan(const route_ctx_t *ctx, const route_plan_t *base,
                        const route_param_t *value, char kind, route_plan_t *out);

/*
 * How a plan's reason names input `number` holding p (kind: its masked
 * literal's kind letter, 0 for a client parameter): "$2", "42", "'bob'"
 * (strings cut at 40 bytes).
 */
void route_input_desc(const route_param_t *p, char kind, int number, char *out, size_t len);

/*
 * Parse once, plan many times: route_statement is route_parse, then
 * route_analyze, then route_parsed_free. router/plancache.c keeps parsed
 * statements and analyses them again with each call's parameters.
 *
 * route_parse runs the depth guard, reads the routing comment and parses;
 * a statement that is too deep or does not parse is kept as such (its plan
 * says so). NULL only when memory runs out. A parsed statement does not
 * depend on the config.
 */
typedef struct route_parsed route_parsed_t;

route_parsed_t *route_parse(const char *sql);
void route_parsed_free(route_parsed_t *p);

/*
 * How many client statements the router has given libpg_query's parser
 * in this process (route_parse, classify, COPY statements; not the
 * snippets of pgshard's own rewrites), all threads together: for the tests
 * that pin one parse per statement, and for anyone measuring.
 */
uint64_t route_parse_count(void);

/* Bytes a parsed statement holds (its tree, as allocated). */
size_t route_parsed_size(const route_parsed_t *p);

/*
 * Literals the plan cache took out of a statement's text and passes as
 * parameters: parameter number first + i stands for literal i, given in
 * text format in values[i]. kinds[i] says how the literal was written, so
 * that reasons and errors print it as route_statement would have: 'i' an
 * integer that fits in int4 (values[i] canonical, "-7"), 'f' another number
 * (as written, with its sign), 's' a '...' string (values[i] unescaped).
 */
typedef struct route_literals {
	int first;
	int n;
	const route_param_t *values;
	const char *kinds;
} route_literals_t;

/*
 * Input `number` of a statement (a masked literal's value first, else the
 * caller's parameter), NULL when not given; *kind: the literal's kind
 * letter, 0 for a parameter.
 */
const route_param_t *route_input(const route_literals_t *l, const route_param_t *params,
                                 int n_params, int number, char *kind);

/*
 * Plan a parsed statement, with the same contract as route_statement;
 * lits may be NULL. A parameter number that is neither the caller's
 * (1..n_params) nor a literal's counts as not given.
 */
int route_analyze(const route_ctx_t *ctx, const route_parsed_t *p, const route_param_t *params,
                  int n_params, const route_literals_t *lits, route_plan_t *out);

/*
 * Whether two parsed statements have the same tree, except that where b
 * has a literal's parameter (lits), a has that literal as a constant whose
 * value is the parameter's; locations do not count. The plan cache checks
 * a masked text against the original with it before it keeps the masked
 * one.
 */
bool route_parsed_match(const route_parsed_t *a, const route_parsed_t *b,
                        const route_literals_t *lits);

#endif
