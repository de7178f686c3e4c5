/*
 * tree.h — building, copying, walking and writing libpg_query's protobuf
 * trees in an arena, for the router's rewrites (the gather planner's).
 *
 * A tree_t is one rewrite's arena and its outcome. Every node, the
 * parser's (tree_parse unpacks into the arena) and the rewrite's own,
 * lives in the arena until tree_free, so that nodes can be shared, moved
 * and replaced in place without ownership questions. The outcome is
 * sticky: once refused (err says why) or out of memory, the helpers do
 * nothing more and return NULL, and the caller checks once, at the end.
 *
 * Not part of the router's interface: only the router's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_TREE_H
#define PGSHARD_ROUTER_TREE_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The node case of a Node kind: NODE(SELECT_STMT). */
#define NODE(c) PG_QUERY__NODE__NODE_##c

typedef struct tree_chunk tree_chunk_t;

typedef struct tree {
	tree_chunk_t *chunks;
	ProtobufCAllocator alloc; /* protobuf-c's unpack allocates in the arena */
	bool nomem, refused;
	char err[400]; /* why refused */
} tree_t;

/* ---- the arena and the outcome ---- */

void tree_init(tree_t *t);
/* Frees the arena, and every node in it. */
void tree_free(tree_t *t);
/* n zeroed bytes in the arena; NULL (and nomem) when memory runs out. */
void *tree_alloc(tree_t *t, size_t n);
char *tree_strdup(tree_t *t, const char *s);
/* Refuse with a message, unless already refused or out of memory (the first reason stays). */
void tree_refuse(tree_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Refused or out of memory. */
bool tree_stopped(const tree_t *t);

/* ---- reading nodes ---- */

/* The message a Node holds (straight to the oneof member its case names), or NULL. */
ProtobufCMessage *tree_inner(const PgQuery__Node *n);
/* Whether two trees are the same, locations aside; false when either is NULL. */
bool tree_equal(const PgQuery__Node *a, const PgQuery__Node *b);
/* The last String of a list (a qualified name's own name), or NULL. */
const char *tree_last_string(PgQuery__Node *const *items, size_t n);
/* A bare column name (`x`, not `t.x`), or NULL. */
const char *tree_bare_name(const PgQuery__Node *n);
/* Whether n is an integer constant (int4), and its value in *v. */
bool tree_int_const(const PgQuery__Node *n, int *v);
/* Whether a select-list value is `*` or `x.*`. */
bool tree_is_star(const PgQuery__Node *val);
/* e without the COLLATE clauses around it. */
const PgQuery__Node *tree_strip_collate(const PgQuery__Node *e);
/* Whether two column references end in the same names (x and t.x: true). */
bool tree_colref_suffix_equal(const PgQuery__ColumnRef *a, const PgQuery__ColumnRef *b);
/* a.b.c for people, in out; `*` where a field is a star. */
void tree_colref_text(const PgQuery__ColumnRef *c, char *out, size_t len);

/* ---- making nodes, in the arena (NULL when memory runs out) ---- */

/* A Node of case c holding inner; NULL when inner is NULL. */
PgQuery__Node *tree_node(tree_t *t, PgQuery__Node__NodeCase c, void *inner);
PgQuery__Node *tree_string(tree_t *t, const char *s);
/* Room for n Node pointers (at least one), zeroed. */
PgQuery__Node **tree_list(tree_t *t, size_t n);
/* `val AS name` (name NULL: no AS); NULL when val is NULL. */
PgQuery__Node *tree_res_target(tree_t *t, const char *name, PgQuery__Node *val);
/* An integer constant; past int4, written as PostgreSQL's parser keeps it (a Float). */
PgQuery__Node *tree_int(tree_t *t, int64_t v);
/* A string constant of len bytes of s, or NULL (null true). */
PgQuery__Node *tree_text_const(tree_t *t, const char *s, size_t len, bool null);
/* a AND b, one AND when a is already one; b alone when a is NULL. */
PgQuery__Node *tree_and(tree_t *t, PgQuery__Node *a, PgQuery__Node *b);
/* Append `expr AS name` to a select list. */
bool tree_append_target(tree_t *t, PgQuery__SelectStmt *s, const char *name, PgQuery__Node *expr);
/* A deep copy of n. */
PgQuery__Node *tree_copy(tree_t *t, const PgQuery__Node *n);
/* An expression of our own, written as SQL: SELECT <text>'s only target. */
PgQuery__Node *tree_expr(tree_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- walking ---- */

typedef void (*tree_slot_fn)(tree_t *t, PgQuery__Node **slot, void *arg);

/*
 * Call fn with the address of every Node pointer reachable from m without
 * passing through another Node (through TypeName, WindowDef, ... it goes
 * on); fn decides whether to go into the Node it is given (tree_each_slot
 * on tree_inner(*slot)), and may replace it. Stops once t has stopped.
 */
void tree_each_slot(tree_t *t, ProtobufCMessage *m, tree_slot_fn fn, void *arg);
/*
 * The first node of kind c in the tree n (n itself included), not looking
 * into subqueries (SubLink) unless into_sublinks; NULL for none.
 */
const PgQuery__Node *tree_find(tree_t *t, const PgQuery__Node *n, PgQuery__Node__NodeCase c,
                               bool into_sublinks);

/* ---- SQL text in and out ---- */

/*
 * The tree of sql, unpacked into the arena; NULL when it does not parse
 * (refused: it is taken for the rewrite's own text) or memory runs out.
 */
PgQuery__ParseResult *tree_parse(tree_t *t, const char *sql);
/*
 * The SQL text of the SELECT s, malloc'd; NULL when it cannot be written
 * (refused: "cannot write <what>: ...") or memory runs out.
 */
char *tree_deparse_select(tree_t *t, PgQuery__SelectStmt *s, const char *what);

#endif
