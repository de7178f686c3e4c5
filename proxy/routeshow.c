/*
 * routeshow.c — the router's decision about statements, for people: what
 * `pgshard --route` prints and the admin console's SHOW ROUTE shows (one
 * "label: text" line each: statement, route, why, merge, steps, commit and
 * a gather plan).
 */
#include "proxy/routeshow.h"

#include <string.h>

#include "router/gather.h"
#include "router/join_plan.h"
#include "router/route.h"
#include "router/shardmap.h"

static const char *merge_text(route_merge_t m)
{
	switch (m) {
	case ROUTE_MERGE_SUM:
		return "rows of every shard, row counts added";
	case ROUTE_MERGE_ONE:
		return "one shard's answer (every shard holds the same)";
	case ROUTE_MERGE_COUNT:
		return "count() columns added over the shards";
	case ROUTE_MERGE_GATHER:
		return "gather: the proxy merges the shards' rows (plan below)";
	default:
		return "none";
	}
}

static void print_shards(FILE *f, const shard_set_t *set)
{
	const char *sep = "";

	for (int s = 0; s < SHARD_MAX; s++) {
		if (shard_set_has(set, s)) {
			fprintf(f, "%s%d", sep, s);
			sep = ", ";
		}
	}
}

/* A plan's steps for people: "step N: what" lines. */
/* Whether a replica may run it, and why not. */
static void show_replica(FILE *f, const cfg_t *cfg, const route_plan_t *plan)
{
	const char *no = NULL;

	if (!plan->replica_ok)
		no = "the primary runs it (not one SELECT that cannot write or lock)";
	else if (plan->n_steps != 1 || plan->steps[0].kind != ROUTE_STEP_ONE)
		no = "the primaries run it (replicas serve reads of one shard)";
	else if (cfg->replica_reads == CFG_REPLICA_READS_OFF)
		no = "the primary runs it (replica_reads = off; it is a read a replica could run)";
	if (no != NULL)
		fprintf(f, "replica:   no: %s\n", no);
	else
		fprintf(f, "replica:   yes: a replica that has replayed the session's writes and "
		           "reads, else the primary\n");
}

static void show_steps(FILE *f, const route_plan_t *plan)
{
	for (int i = 0; i < plan->n_steps; i++) {
		const route_step_t *s = &plan->steps[i];

		fprintf(f, "step %d:    %s", i + 1, route_step_kind_name(s->kind));
		switch (s->kind) {
		case ROUTE_STEP_REFUSE:
			fprintf(f, ", ERROR %s", plan->sqlstate);
			break;
		case ROUTE_STEP_TXN:
			fprintf(f, " (the session's transaction answers it, or step %d runs it)",
			        i + 2);
			break;
		case ROUTE_STEP_ONE:
			if (s->shard >= 0) {
				fprintf(f, ", shard %d", s->shard);
			} else if (shard_set_count(&s->shards) == 0) {
				fprintf(f, ", the default shard");
			} else {
				fprintf(f, ", any of shard%s ",
				        shard_set_count(&s->shards) == 1 ? "" : "s");
				print_shards(f, &s->shards);
				fprintf(f, " (where the client already is)");
			}
			break;
		default:
			fprintf(f, ", shard%s ", shard_set_count(&s->shards) == 1 ? "" : "s");
			print_shards(f, &s->shards);
			if (s->kind == ROUTE_STEP_EACH)
				fprintf(f, "; merge: %s", merge_text(s->merge));
			if (s->kind == ROUTE_STEP_MOVE) {
				fprintf(f, "; rows whose new key is elsewhere move to shard%s ",
				        shard_set_count(&plan->move_to) == 1 ? "" : "s");
				print_shards(f, &plan->move_to);
			}
			if (s->kind == ROUTE_STEP_INSERT_SELECT) {
				if (plan->map != NULL)
					fprintf(
					    f,
					    " run its SELECT; each row is inserted on the shard of "
					    "its key, of shard%s ",
					    shard_set_count(&plan->move_to) == 1 ? "" : "s");
				else
					fprintf(f,
					        " run its SELECT; each row is inserted on shard%s ",
					        shard_set_count(&plan->move_to) == 1 ? "" : "s");
				print_shards(f, &plan->move_to);
			}
			break;
		}
		fprintf(f, "\n");
	}
}

/* A join's steps for people: which side drives, where each step runs, batches. */
static void show_join(FILE *f, const route_ctx_t *ctx, const char *sql)
{
	join_plan_t j;
	char err[300];
	int rc = join_plan_make(ctx, sql, NULL, 0, &j, err, sizeof err);

	if (rc <= 0) {
		fprintf(f, "join:      not planned: %s\n", rc < 0 ? "out of memory" : err);
		return;
	}
	int at = 1;

	for (int k = 0; k < j.n_subs; k++) {
		const join_sub_t *sb = &j.subs[k];

		if (sb->direct) {
			fprintf(f,
			        "join %d:    subquery first (%s, its answer is $%d): itself, as "
			        "its own "
			        "plan runs it, on shard%s ",
			        at++, join_sub_kind_name(sb->kind), sb->param,
			        shard_set_count(&sb->shards) == 1 ? "" : "s");
			print_shards(f, &sb->shards);
			fprintf(f, ": %s\n", sb->sql);
			continue;
		}
		fprintf(f,
		        "join %d:    subquery first (%s, its answer is $%d): the rows of %s on "
		        "shard%s ",
		        at++, join_sub_kind_name(sb->kind), sb->param, sb->table->name,
		        shard_set_count(&sb->shards) == 1 ? "" : "s");
		print_shards(f, &sb->shards);
		fprintf(f, " (%d filter%s of its own pushed down): %s\n", sb->n_pushed,
		        sb->n_pushed == 1 ? "" : "s", sb->rows_sql);
		fprintf(f, "join %d:    the subquery over them on one shard: %s\n", at++, sb->sql);
	}
	if (j.n_sides > 0)
		fprintf(f, "join:      %s join; %s (%s) drives: %s\n", join_kind_name(j.kind),
		        j.sides[0].table->name, j.sides[0].alias, j.why);
	for (int i = 0; i < j.n_sides; i++) {
		const join_side_t *sd = &j.sides[i];
		char with[200] = "", batch[64];
		int pushed;

		if (sd->rides)
			continue; /* in its partner's step */
		if (sd->leads && i + 1 < j.n_sides)
			snprintf(with, sizeof with,
			         " with %s (%s), a co-located pair in one statement",
			         j.sides[i + 1].table->name, j.sides[i + 1].alias);
		snprintf(batch, sizeof batch,
		         sd->leads ? "all keys in one batch" : "%d keys a batch", JOIN_BATCH_KEYS);
		if (i == 0 || sd->whole) {
			fprintf(f, "join %d:    %s %s%s%s on shard%s ", at++,
			        i == 0 ? "drive" : "fetch", sd->table->name,
			        sd->whole ? " whole" : "", with,
			        shard_set_count(&sd->shards) == 1 ? "" : "s");
			print_shards(f, &sd->shards);
		} else {
			fprintf(f,
			        "join %d:    probe %s%s%s by %s.%s = ANY($1) (keys: %s.%s), %s, ",
			        at++, sd->table->name, sd->sub ? " (a subquery's table)" : "", with,
			        sd->alias, sd->column,
			        j.sides[j.sides[sd->src].key_of[sd->src_key]].alias,
			        j.sides[sd->src].keys[sd->src_key], batch);
			if (sd->by_key)
				fprintf(f,
				        "only on the shards owning the keys (its shard key), of ");
			else
				fprintf(f, "on each of shard%s ",
				        shard_set_count(&sd->shards) == 1 ? "" : "s");
			print_shards(f, &sd->shards);
		}
		pushed =
		    sd->n_pushed + (sd->leads && i + 1 < j.n_sides ? j.sides[i + 1].n_pushed : 0);
		fprintf(f, " (%d filter%s of its own pushed down): %s\n", pushed,
		        pushed == 1 ? "" : "s", sd->sql);
	}
	fprintf(f, "join %d:    the statement over ", at);
	for (int k = 0; k < j.n_subs; k++)
		fprintf(f, "%s$%d", k > 0 ? ", " : "the subqueries' answers ", j.subs[k].param);
	if (j.n_subs > 0 && j.n_sides > 0)
		fprintf(f, " and ");
	if (j.n_sides > 0)
		fprintf(f, "the tables' rows (");
	for (int i = 0; i < j.n_sides; i++)
		fprintf(f, "%s$%d %s", i > 0 ? ", " : "", j.n_params + j.n_subs + 1 + i,
		        j.sides[i].table->name);
	fprintf(f, "%s on one shard: %s\n", j.n_sides > 0 ? ", at most max_join_rows each)" : "",
	        j.final_sql);
	join_plan_free(&j);
}

/* A gather plan for people: the shard query, then how the rows merge or finalize. */
static void show_gather(FILE *f, const route_ctx_t *ctx, const char *sql)
{
	static const char *const kinds[] = {"TEXT", "ROWS", "TYPE", "AVG"};
	gather_plan_t g;
	char sqlstate[6], err[512];

	if (route_gather(ctx, sql, NULL, 0, &g, sqlstate, err, sizeof(err)) < 0) {
		/* --route has no parameter values; LIMIT $1 needs one to be planned */
		fprintf(f, "gather:    not planned%s, ERROR %s pgshard: %s\n",
		        strstr(err, "needs the value of parameter") ? " without parameter values"
		                                                    : "",
		        sqlstate, err);
		return;
	}
	fprintf(f, "shard sql: %s\n", g.shard_sql);
	if (!g.finalize) {
		fprintf(f, "merge:     ");
		if (g.n_keys == 0)
			fprintf(f, "concatenate");
		for (int i = 0; i < g.n_keys; i++) {
			const gather_key_t *k = &g.keys[i];

			fprintf(f, "%s%s%d %s NULLS %s%s", i > 0 ? ", " : "by ",
			        k->hidden ? "hidden column " : "column ", k->column + 1,
			        k->desc ? "DESC" : "ASC", k->nulls_first ? "FIRST" : "LAST",
			        k->coll == GATHER_COLL_C ? " COLLATE \"C\"" : "");
		}
		fprintf(f, "; offset %lld, limit ", (long long)g.offset);
		if (g.limit < 0)
			fprintf(f, "all");
		else
			fprintf(f, "%lld", (long long)g.limit);
		fprintf(f, ", %d hidden column%s\n", g.hidden, g.hidden == 1 ? "" : "s");
	} else {
		fprintf(f, "final:     ");
		for (int i = 0; i < g.n_parts; i++) {
			const gather_part_t *p = &g.parts[i];

			if (p->kind == GATHER_PART_TEXT)
				fprintf(f, "%s", p->text);
			else if (p->kind == GATHER_PART_ROWS)
				fprintf(f, "<%s %s>", kinds[p->kind], p->text);
			else
				fprintf(f, "<%s c%d>", kinds[p->kind], p->column);
		}
		fprintf(f, "\n");
	}
	gather_plan_free(&g);
}

int routeshow_print(FILE *f, const cfg_t *cfg, char *const *sqls, int n)
{
	route_ctx_t ctx;
	char err[512];
	int rc = 0;

	if (route_ctx_init(&ctx, cfg, err, sizeof(err)) < 0) {
		fprintf(f, "error:     %s\n", err);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		route_plan_t plan;
		int first = 1;

		if (route_statement(&ctx, sqls[i], NULL, 0, &plan) < 0) {
			fprintf(f, "error:     out of memory\n");
			rc = 1;
			break;
		}
		fprintf(f, "statement: %s\n", sqls[i]);
		if (plan.kind == ROUTE_REFUSE) {
			fprintf(f, "route:     refused, ERROR %s pgshard: %s\n", plan.sqlstate,
			        plan.error);
			rc = 3;
		} else {
			fprintf(f, "route:     %s, shard%s", route_kind_name(plan.kind),
			        shard_set_count(&plan.shards) == 1 ? "" : "s");
			for (int s = 0; s < SHARD_MAX; s++) {
				if (shard_set_has(&plan.shards, s)) {
					fprintf(f, "%s%d", first ? " " : ", ", s);
					first = 0;
				}
			}
			fprintf(f, "%s%s\n", plan.is_write ? " (write)" : "",
			        plan.split_insert ? " (rows split by shard)" : "");
		}
		if (plan.kind != ROUTE_REFUSE)
			fprintf(f, "why:       %s\n", plan.reason);
		if (plan.kind != ROUTE_REFUSE && plan.merge != ROUTE_MERGE_NONE)
			fprintf(f, "merge:     %s\n", merge_text(plan.merge));
		show_steps(f, &plan);
		if (plan.kind != ROUTE_REFUSE)
			show_replica(f, ctx.cfg, &plan);
		switch (route_plan_commit(&plan)) {
		case ROUTE_COMMIT_NONE:
			break;
		case ROUTE_COMMIT_ONE:
			fprintf(f, "commit:    one phase (one shard writes)\n");
			break;
		case ROUTE_COMMIT_TWO_PHASE:
			fprintf(f, "commit:    two phases (in autocommit, in a transaction of "
			           "pgshard's own)\n");
			break;
		case ROUTE_COMMIT_EACH:
			fprintf(f, "commit:    each shard on its own, not atomic (%s)\n",
			        plan.no_tx_why != NULL ? plan.no_tx_why : "not wrapped");
			break;
		}
		if (plan.kind != ROUTE_REFUSE && plan.merge == ROUTE_MERGE_GATHER)
			show_gather(f, &ctx, sqls[i]);
		if (plan.join)
			show_join(f, &ctx, sqls[i]);
	}
	route_ctx_free(&ctx);
	return rc;
}
