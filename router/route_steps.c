/*
 * route_steps.c — a plan as the list of steps that run it (see route.h).
 *
 * The router decides where a statement runs (kind, shards) and how the
 * shards' answers combine (merge, split_insert, txn). The executor needs
 * one thing of that: what to do first. Before the steps it worked that out
 * again from combinations of those fields in three places (the simple
 * Query, Bind, the fan-out's start); now they dispatch on a step's kind,
 * and the combinations are read here, once.
 *
 * A list rather than one step because some statements take several: today
 * transaction control (the session's transaction decides first; the next
 * step runs the statement when it leaves it to routing), and later
 * application-level joins (fetch one side, then the other side by its
 * keys) and subqueries that run first as plans of their own.
 *
 * Pure, as the rest of the router: the steps are a function of the plan.
 */
#include "router/route.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static route_step_t step_of(route_step_kind_t kind)
{
	route_step_t s;

	memset(&s, 0, sizeof s);
	s.kind = kind;
	s.shard = -1;
	s.merge = ROUTE_MERGE_NONE;
	return s;
}

route_step_t route_step_each(const shard_set_t *shards, route_merge_t merge)
{
	route_step_t s = step_of(ROUTE_STEP_EACH);

	s.shards = *shards;
	s.merge = merge;
	return s;
}

/* The step that runs a plan that is not refused, where the router routed it. */
static route_step_t routed_step(const route_plan_t *p)
{
	route_step_t s;

	if (p->insert_select) {
		/* its SELECT's shards, even one: the rows may belong elsewhere */
		s = step_of(ROUTE_STEP_INSERT_SELECT);
		s.shards = p->shards;
		s.merge = ROUTE_MERGE_SUM;
		return s;
	}
	if (p->join) {
		s = step_of(ROUTE_STEP_JOIN);
		s.shards = p->shards;
		return s;
	}
	switch (p->kind) {
	case ROUTE_DEFAULT:
		/* the default shard (route_statement names it in shards) */
		s = step_of(ROUTE_STEP_ONE);
		s.shard = shard_set_first(&p->shards);
		s.shards = p->shards;
		return s;
	case ROUTE_ANY:
		/* a copy on every shard: the executor reads it where the client already is */
		s = step_of(ROUTE_STEP_ONE);
		s.shards = p->shards;
		return s;
	default:
		break;
	}
	if (p->batch) {
		s = step_of(ROUTE_STEP_BATCH);
		s.shards = p->shards;
		return s;
	}
	if (p->ids_split)
		return route_step_each(&p->shards, ROUTE_MERGE_ONE); /* each shard its own copy */
	if (p->key_move) {
		s = step_of(ROUTE_STEP_MOVE);
		s.shards = p->shards;
		s.merge = ROUTE_MERGE_SUM;
		return s;
	}
	if (shard_set_count(&p->shards) == 1) {
		s = step_of(ROUTE_STEP_ONE);
		s.shard = shard_set_first(&p->shards);
		s.shards = p->shards;
		return s;
	}
	if (p->split_insert) {
		s = step_of(p->copy_from_stdin ? ROUTE_STEP_SPLIT_COPY : ROUTE_STEP_SPLIT_INSERT);
		s.shards = p->shards;
		s.merge = p->merge;
		return s;
	}
	if (p->merge == ROUTE_MERGE_GATHER) {
		s = step_of(ROUTE_STEP_GATHER);
		s.shards = p->shards;
		s.merge = ROUTE_MERGE_GATHER;
		return s;
	}
	return route_step_each(&p->shards, p->merge);
}

void route_plan_set_steps(route_plan_t *p)
{
	memset(p->steps, 0, sizeof p->steps);
	p->n_steps = 0;
	if (p->kind == ROUTE_REFUSE) {
		p->steps[p->n_steps++] = step_of(ROUTE_STEP_REFUSE);
		return;
	}
	if (p->txn != ROUTE_TXN_NONE)
		p->steps[p->n_steps++] = step_of(ROUTE_STEP_TXN);
	p->steps[p->n_steps++] = routed_step(p);
}

/* The bytes of a plan from field a up to field b. */
#define PLAN_SPAN(a, b) (offsetof(route_plan_t, b) - offsetof(route_plan_t, a))

/* route_plan_copy skips only the room of these: nothing may come between them */
_Static_assert(PLAN_SPAN(insert_keys, n_insert_keys) <
                   sizeof(((route_plan_t *)0)->insert_keys) + sizeof(int),
               "n_insert_keys follows insert_keys");
_Static_assert(PLAN_SPAN(reason, error) == sizeof(((route_plan_t *)0)->reason),
               "error follows reason");
_Static_assert(PLAN_SPAN(error, sqlstate) == sizeof(((route_plan_t *)0)->error),
               "sqlstate follows error");

void route_plan_copy(route_plan_t *out, const route_plan_t *in)
{
	memcpy(out, in, offsetof(route_plan_t, insert_keys));
	memcpy(out->insert_keys, in->insert_keys,
	       (size_t)in->n_insert_keys * sizeof in->insert_keys[0]);
	memcpy(&out->n_insert_keys, &in->n_insert_keys, PLAN_SPAN(n_insert_keys, reason));
	memcpy(out->reason, in->reason, strlen(in->reason) + 1);
	memcpy(out->error, in->error, strlen(in->error) + 1);
	memcpy(out->sqlstate, in->sqlstate, sizeof *out - offsetof(route_plan_t, sqlstate));
}

void route_plan_refuse(route_plan_t *p, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	p->kind = ROUTE_REFUSE;
	shard_set_clear(&p->shards);
	p->split_insert = false;
	p->key_move = false;
	p->insert_select = false;
	p->join = false;
	p->merge = ROUTE_MERGE_NONE;
	va_start(ap, fmt);
	vsnprintf(p->error, sizeof p->error, fmt, ap);
	va_end(ap);
	snprintf(p->reason, sizeof p->reason, "refused: %.*s", (int)sizeof p->reason - 10,
	         p->error);
	snprintf(p->sqlstate, sizeof p->sqlstate, "%s", sqlstate);
	route_plan_set_steps(p);
}

const route_step_t *route_step_routed(const route_plan_t *p)
{
	if (p->steps[0].kind == ROUTE_STEP_TXN && p->n_steps > 1)
		return &p->steps[1];
	return &p->steps[0];
}

void route_plan_run_step(route_plan_t *p, const route_step_t *step)
{
	memset(p->steps, 0, sizeof p->steps);
	p->steps[0] = *step;
	p->n_steps = 1;
	p->shards = step->shards;
	p->merge = step->merge;
	p->split_insert =
	    step->kind == ROUTE_STEP_SPLIT_INSERT || step->kind == ROUTE_STEP_SPLIT_COPY;
	p->key_move = step->kind == ROUTE_STEP_MOVE;
	p->insert_select = step->kind == ROUTE_STEP_INSERT_SELECT;
	p->join = step->kind == ROUTE_STEP_JOIN;
}

const char *route_step_kind_name(route_step_kind_t k)
{
	switch (k) {
	case ROUTE_STEP_REFUSE:
		return "refuse";
	case ROUTE_STEP_TXN:
		return "txn";
	case ROUTE_STEP_ONE:
		return "one";
	case ROUTE_STEP_EACH:
		return "each";
	case ROUTE_STEP_SPLIT_INSERT:
		return "split insert";
	case ROUTE_STEP_SPLIT_COPY:
		return "split copy";
	case ROUTE_STEP_GATHER:
		return "gather";
	case ROUTE_STEP_MOVE:
		return "move";
	case ROUTE_STEP_INSERT_SELECT:
		return "insert select";
	case ROUTE_STEP_BATCH:
		return "batch";
	case ROUTE_STEP_JOIN:
		return "join";
	}
	return "?";
}

route_commit_t route_plan_commit(const route_plan_t *p)
{
	const route_step_t *step;

	if (p->kind == ROUTE_REFUSE || !p->is_write || p->has_txn_control || p->batch)
		return ROUTE_COMMIT_NONE; /* a batch's statements commit as the executor runs them
		                           */
	step = route_step_routed(p);
	if (step->kind == ROUTE_STEP_ONE)
		return ROUTE_COMMIT_ONE;
	return p->no_tx_block ? ROUTE_COMMIT_EACH : ROUTE_COMMIT_TWO_PHASE;
}
