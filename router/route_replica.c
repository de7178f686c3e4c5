/*
 * route_replica.c — whether a statement may run on a replica: it reads and
 * cannot write, lock or leave anything behind on the node that runs it.
 *
 * The answer must never be yes for a statement that a replica would refuse
 * or run differently, so it is a positive list: one SELECT (no INTO), with
 * no FOR UPDATE/SHARE at any level, no data-modifying WITH, and no call of
 * a function that writes, takes a lock, uses the session's sequence state
 * or needs a primary (nextval, advisory locks, txid_current(), ...), nor of
 * one the config lists in writing_functions. Anything else stays on the
 * primary. Functions written by users that write are the config's to name:
 * the grammar cannot tell a volatile function that writes from one that
 * does not.
 */
#include <string.h>
#include <strings.h>

#include "router/route_int.h"
#include "router/tree.h"

/* Built-in functions a replica refuses, or whose effect belongs on the primary. */
static const char *const writing_exact[] = {
    "nextval",           "setval",
    "currval",           "lastval",
    "pg_notify",         "set_config",
    "pg_switch_wal",     "pg_logical_emit_message",
    "pg_reload_conf",    "pg_rotate_logfile",
    "pg_promote",        "pg_terminate_backend",
    "pg_cancel_backend", "pg_import_system_collations",
};
static const char *const writing_prefix[] = {
    "pg_advisory_",
    "pg_try_advisory_",
    "lo_",
    "txid_current",
    "pg_current_xact_id",
    "pg_current_wal_",
    "pg_create_",
    "pg_drop_",
    "pg_replication_origin_",
    "pg_replication_slot_",
    "pg_stat_reset",
    "dblink",
    "pg_snapshot",
    "txid_current_snapshot",
};

typedef struct scan {
	const cfg_t *cfg;
	bool writes;
} scan_t;

static bool writing_function(const cfg_t *cfg, const char *name)
{
	for (size_t i = 0; i < sizeof writing_exact / sizeof writing_exact[0]; i++)
		if (strcasecmp(name, writing_exact[i]) == 0)
			return true;
	for (size_t i = 0; i < sizeof writing_prefix / sizeof writing_prefix[0]; i++)
		if (strncasecmp(name, writing_prefix[i], strlen(writing_prefix[i])) == 0)
			return true;
	for (int i = 0; cfg != NULL && i < cfg->writing_functions.n; i++)
		if (strcasecmp(name, cfg->writing_functions.names[i]) == 0)
			return true;
	return false;
}

static void scan_slot(tree_t *t, PgQuery__Node **slot, void *arg)
{
	scan_t *s = arg;
	const PgQuery__Node *n = *slot;

	if (n == NULL || s->writes)
		return;
	switch (n->node_case) {
	case NODE(INSERT_STMT):
	case NODE(UPDATE_STMT):
	case NODE(DELETE_STMT):
	case NODE(MERGE_STMT):
		s->writes = true; /* a data-modifying WITH */
		return;
	case NODE(SELECT_STMT):
		if (n->select_stmt->n_locking_clause > 0 || n->select_stmt->into_clause != NULL) {
			s->writes = true;
			return;
		}
		break;
	case NODE(FUNC_CALL): {
		const PgQuery__FuncCall *f = n->func_call;
		const char *name = tree_last_string(f->funcname, f->n_funcname);

		if (name != NULL && writing_function(s->cfg, name)) {
			s->writes = true;
			return;
		}
		break;
	}
	default:
		break;
	}
	if (tree_inner(n) != NULL)
		tree_each_slot(t, tree_inner(n), scan_slot, s);
}

bool route_replica_safe(const cfg_t *cfg, const PgQuery__ParseResult *tree)
{
	PgQuery__Node *stmt;
	scan_t s = {cfg, false};
	tree_t t;

	if (tree == NULL || tree->n_stmts != 1 || tree->stmts[0]->stmt == NULL)
		return false;
	stmt = tree->stmts[0]->stmt;
	if (stmt->node_case != NODE(SELECT_STMT))
		return false;
	tree_init(&t);
	scan_slot(&t, &stmt, &s);
	tree_free(&t);
	return !s.writes;
}
