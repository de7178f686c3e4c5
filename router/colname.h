/*
 * colname.h — the names PostgreSQL gives the output columns of a select
 * list, for the gather planner (the final query names each column as
 * PostgreSQL would have named the original's).
 *
 * Not part of the router's interface: only the router's own .c files include it.
 */
#ifndef PGSHARD_ROUTER_COLNAME_H
#define PGSHARD_ROUTER_COLNAME_H

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

/*
 * The name PostgreSQL 15 gives the column of a select-list entry: its AS
 * name, else FigureColname's, else "?column?"; NULL for `*`. The result
 * points into the tree or is a constant.
 */
const char *colname_of_target(const PgQuery__ResTarget *r);

#endif
