/*
 * tree_int.h — the tree helpers that only the router's own files use
 * (tree.h has the arena-based ones): names in a tree, comparing two trees,
 * and writing a parse result back to SQL. They work on libpg_query's
 * protobuf structures as they are, with no arena.
 *
 * Not part of the router's interface: only the router's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_TREE_INT_H
#define PGSHARD_ROUTER_TREE_INT_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "router/route.h"

/*
 * Trees nested deeper than this many protobuf messages (a Node and the node
 * it holds count two) are refused before they are unpacked: protobuf-c's
 * unpack and the walks below recurse once per level, and a worker thread's
 * stack must survive whatever a client sends. 4000 is ten times below the
 * depth where unpacking overflows an 8 MB stack under ASan.
 */
#define MAX_DEPTH 4000

/* The String node's text, or NULL for any other node. */
const char *tree_str_of(const PgQuery__Node *n);

/* The function's own name when it is unqualified or in pg_catalog, else NULL. */
const char *tree_catalog_func_name(const PgQuery__FuncCall *f);

/* Whether name is one of PostgreSQL 15's built-in aggregates. */
bool tree_is_aggregate_name(const char *name);

/* Whether two trees are the same, locations aside. */
bool tree_msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

/*
 * Whether a masked tree b (the plan cache's, with literals taken out as
 * parameters) is the original a, locations aside: a parameter of lits in b
 * matches the constant of a whose text it holds.
 */
bool tree_match_masked(const ProtobufCMessage *a, const ProtobufCMessage *b,
                       const route_literals_t *lits);

/*
 * The SQL text of tree, from pg_query_deparse_protobuf; NULL with a message
 * in err ("cannot write <what>: ...", or "out of memory").
 */
char *tree_deparse(const PgQuery__ParseResult *tree, const char *what, char *err, size_t errlen);

/* One more client statement given to libpg_query's parser (parse_count.c, route_parse_count). */
void route_parse_counted(void);

#endif
