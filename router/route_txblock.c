/*
 * route_txblock.c — whether a statement can run in a transaction that
 * pgshard opens around it and commits in two phases (see route_plan_t's
 * no_tx_block and route_plan_commit).
 *
 * An autocommit statement that writes on several shards is all or nothing
 * only when pgshard wraps it: BEGIN on each shard, the statement, then
 * PREPARE TRANSACTION and the decision (router/twophase.h). Two kinds of
 * statements cannot take part:
 *
 *   - those PostgreSQL refuses inside a transaction block
 *     (PreventInTransactionBlock: they commit on their own, some several
 *     times, as VACUUM and CREATE INDEX CONCURRENTLY do), and
 *   - those whose transaction PREPARE TRANSACTION refuses: one that touched
 *     temporary objects, or ran LISTEN, UNLISTEN or NOTIFY.
 *
 * Such a statement on several shards keeps running unwrapped, each shard
 * committing on its own: it cannot be atomic, and the README says so.
 *
 * Only the text is known here, not the catalog: where PostgreSQL decides
 * by what an object is (REINDEX or CLUSTER of a partitioned table runs one
 * transaction per partition and refuses a block), the whole statement kind
 * is left unwrapped. Wrongly unwrapped costs atomicity of a statement that
 * changes no schema; wrongly wrapped would make it fail on every shard.
 *
 * Pure, as the rest of the router.
 */
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "router/route_int.h"

#define NO_BLOCK(what) what " cannot run inside a transaction block"

static bool schema_is_temp(const char *schema)
{
	return schema != NULL && strncasecmp(schema, "pg_temp", 7) == 0;
}

/* CREATE TEMP ..., or an object named in pg_temp (the session's temporary schema). */
static bool rangevar_is_temp(const PgQuery__RangeVar *rv)
{
	if (rv == NULL)
		return false;
	if (rv->relpersistence != NULL && rv->relpersistence[0] == 't')
		return true;
	return schema_is_temp(rv->schemaname);
}

/* DROP's objects: a qualified name (a List of Strings) whose schema is pg_temp. */
static bool names_temp(PgQuery__Node *const *objs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const PgQuery__Node *o = objs[i];

		if (o == NULL || o->node_case != PG_QUERY__NODE__NODE_LIST || o->list->n_items < 2)
			continue;
		if (o->list->items[0]->node_case == PG_QUERY__NODE__NODE_STRING &&
		    schema_is_temp(o->list->items[0]->string->sval))
			return true;
	}
	return false;
}

static bool has_option(PgQuery__Node *const *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (opts[i] != NULL && opts[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
		    opts[i]->def_elem->defname != NULL &&
		    strcasecmp(opts[i]->def_elem->defname, name) == 0)
			return true;
	return false;
}

/* ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (and its FINALIZE). */
static bool detaches_concurrently(const PgQuery__AlterTableStmt *a)
{
	for (size_t i = 0; i < a->n_cmds; i++) {
		const PgQuery__Node *c = a->cmds[i];

		if (c == NULL || c->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
			continue;
		if (c->alter_table_cmd->subtype ==
		    PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartitionFinalize)
			return true;
		if (c->alter_table_cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition &&
		    c->alter_table_cmd->def != NULL &&
		    c->alter_table_cmd->def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD &&
		    c->alter_table_cmd->def->partition_cmd->concurrent)
			return true;
	}
	return false;
}

/*
 * PostgreSQL 15's PreventInTransactionBlock callers, as far as the text
 * tells them; the answer is static text (plans keep it, and are copied).
 */
static const char *block_refused(const PgQuery__Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		/* ANALYZE alone is fine in a block; VACUUM (with or without ANALYZE) is not */
		return n->vacuum_stmt->is_vacuumcmd ? NO_BLOCK("VACUUM") : NULL;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		return n->index_stmt->concurrent ? NO_BLOCK("CREATE INDEX CONCURRENTLY") : NULL;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		return n->drop_stmt->concurrent ? NO_BLOCK("DROP INDEX CONCURRENTLY") : NULL;
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		/* CONCURRENTLY, SCHEMA/SYSTEM/DATABASE, and a partitioned table or index */
		return NO_BLOCK("REINDEX (CONCURRENTLY, of a schema, the system, the database, or "
		                "of a partitioned table)");
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		/* CLUSTER without a table, and of a partitioned table */
		return NO_BLOCK("CLUSTER (without a table, or of a partitioned table)");
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		return detaches_concurrently(n->alter_table_stmt)
		           ? NO_BLOCK("ALTER TABLE ... DETACH CONCURRENTLY")
		           : NULL;
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
		return NO_BLOCK("CREATE DATABASE");
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
		return NO_BLOCK("DROP DATABASE");
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT:
		return has_option(n->alter_database_stmt->options,
		                  n->alter_database_stmt->n_options, "tablespace")
		           ? NO_BLOCK("ALTER DATABASE SET TABLESPACE")
		           : NULL;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
		return NO_BLOCK("CREATE TABLESPACE");
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
		return NO_BLOCK("DROP TABLESPACE");
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
		return NO_BLOCK("ALTER SYSTEM");
	case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT:
		/* the forms that create, drop or copy through a slot; all of them, to be safe */
		return NO_BLOCK("CREATE SUBSCRIPTION");
	case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT:
		return NO_BLOCK("ALTER SUBSCRIPTION");
	case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:
		return NO_BLOCK("DROP SUBSCRIPTION");
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		return n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL
		           ? NO_BLOCK("DISCARD ALL")
		           : NULL;
	default:
		return NULL;
	}
}

/* Statements whose transaction PREPARE TRANSACTION refuses. */
static bool prepare_refused(const PgQuery__Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_LISTEN_STMT:
	case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
	case PG_QUERY__NODE__NODE_NOTIFY_STMT:
		return true;
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		return n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_TEMP;
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		return rangevar_is_temp(n->create_stmt->relation);
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		return n->create_table_as_stmt->into != NULL &&
		       rangevar_is_temp(n->create_table_as_stmt->into->rel);
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		return n->select_stmt->into_clause != NULL &&
		       rangevar_is_temp(n->select_stmt->into_clause->rel);
	case PG_QUERY__NODE__NODE_VIEW_STMT:
		return rangevar_is_temp(n->view_stmt->view);
	case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
		return rangevar_is_temp(n->create_seq_stmt->sequence);
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		return rangevar_is_temp(n->index_stmt->relation);
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		return rangevar_is_temp(n->alter_table_stmt->relation);
	case PG_QUERY__NODE__NODE_DROP_STMT:
		return names_temp(n->drop_stmt->objects, n->drop_stmt->n_objects);
	default:
		return false;
	}
}

const char *txblock_why_not(const PgQuery__Node *n)
{
	const char *why;

	if (n == NULL)
		return NULL;
	why = block_refused(n);
	if (why != NULL)
		return why;
	if (prepare_refused(n))
		return "a transaction that used temporary objects or LISTEN/UNLISTEN/NOTIFY cannot "
		       "be "
		       "prepared";
	return NULL;
}
