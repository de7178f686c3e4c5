/*
 * cursor.c — the SQL cursors of a session.
 *
 * A cursor whose query reads one shard lives there: DECLARE notes the
 * shard, FETCH, MOVE and CLOSE are sent to it (client.c), and the server's
 * answers pass unchanged.
 *
 * A cursor over several shards is a scatter-gather merge fetched in parts.
 * Each shard declares a SCROLL cursor of the same name over its shard query
 * (router/gather.c), sorted by the statement's ORDER BY when it has one. A
 * FETCH of n rows asks every shard that has rows left for n (plus the
 * OFFSET rows still to skip); the merge of gather.c sends the first n of
 * the merged order, which are among those; and each shard gives back with
 * MOVE BACKWARD the rows it sent that were not used, so that the next
 * FETCH starts where this one stopped. The proxy holds no rows between
 * fetches, and at most n per shard during one. Aggregated results are not
 * fetched that way: their final query, over the shards' partial results,
 * declares the client's cursor on the shard that runs it, and the cursor
 * then lives there like any other.
 */
#include "proxy/cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/context.h"
#include "proxy/log.h"
#include "router/classify.h"

cursor_at_t *cursor_find(const client_t *c, const char *name)
{
	for (int i = 0; i < c->n_cursors; i++)
		if (strcmp(c->cursors[i]->name, name) == 0)
			return c->cursors[i];
	return NULL;
}

static cursor_at_t *add(client_t *c, const char *name, bool hold)
{
	cursor_at_t **v, *cur;

	cursor_forget(c, name);
	v = realloc(c->cursors, sizeof *v * (size_t)(c->n_cursors + 1));
	if (v == NULL)
		return NULL;
	c->cursors = v;
	if ((cur = calloc(1, sizeof *cur)) == NULL)
		return NULL;
	snprintf(cur->name, sizeof cur->name, "%s", name);
	cur->hold = hold;
	cur->shard = -1;
	c->cursors[c->n_cursors++] = cur;
	return cur;
}

int cursor_note(client_t *c, const char *name, int shard, bool hold)
{
	cursor_at_t *cur = add(c, name, hold);

	if (cur == NULL)
		return -1;
	cur->shard = shard;
	return 0;
}

int cursor_note_several(client_t *c, const fanout_t *f)
{
	const gather_plan_t *gp = f->gp;
	cursor_at_t *cur = add(c, gp->cursor, gp->cursor_hold);

	if (cur == NULL)
		return -1;
	cur->portal = f->portal_declare;
	if (f->phase == GATHER_FINAL) {
		/* the final query's cursor, on the first member: its rows as they come */
		if ((cur->gp = calloc(1, sizeof *cur->gp)) == NULL)
			return -1;
		cur->gp->limit = -1;
		cur->gp->refs = 1;
		shard_set_add(&cur->shards, f->m[0].shard);
		cur->left = -1;
		return 0;
	}
	cur->gp = gather_plan_ref(f->gp);
	for (int i = 0; i < f->n; i++)
		shard_set_add(&cur->shards, f->m[i].shard);
	cur->skip = gp->offset;
	cur->left = gp->limit;
	return 0;
}

bool cursor_keeps_links(const client_t *c)
{
	for (int i = 0; i < c->n_cursors; i++)
		if (c->cursors[i]->hold)
			return true;
	return false;
}

int cursor_close_portals(client_t *c, shard_set_t *on, char **sql)
{
	size_t len = 1, at = 0;
	char *out;

	shard_set_clear(on);
	for (int i = 0; i < c->n_cursors; i++)
		if (c->cursors[i]->portal && c->cursors[i]->hold)
			len += 2 * strlen(c->cursors[i]->name) + 16;
	if (len == 1)
		return 0;
	if ((out = malloc(len)) == NULL)
		return -1;
	out[0] = '\0';
	for (int i = 0; i < c->n_cursors; i++) {
		cursor_at_t *cur = c->cursors[i];
		char *name;

		if (!cur->portal || !cur->hold)
			continue;
		if ((name = route_quote_relation(NULL, cur->name)) == NULL) {
			free(out);
			return -1;
		}
		at += (size_t)snprintf(out + at, len - at, "%sCLOSE %s", at > 0 ? "; " : "", name);
		free(name);
		shard_set_union(on, &cur->shards);
	}
	for (int i = c->n_cursors - 1; i >= 0; i--)
		if (c->cursors[i]->portal && c->cursors[i]->hold)
			cursor_forget(c, c->cursors[i]->name);
	*sql = out;
	return 1;
}

static void cursor_free(cursor_at_t *cur)
{
	gather_plan_unref(cur->gp);
	free(cur);
}

void cursor_forget(client_t *c, const char *name)
{
	int k = 0;

	for (int i = 0; i < c->n_cursors; i++) {
		if (name != NULL && strcmp(c->cursors[i]->name, name) != 0)
			c->cursors[k++] = c->cursors[i];
		else
			cursor_free(c->cursors[i]);
	}
	c->n_cursors = k;
	if (k == 0) {
		free(c->cursors);
		c->cursors = NULL;
	}
}

void cursor_tx_end(client_t *c)
{
	int k = 0;

	for (int i = 0; i < c->n_cursors; i++) {
		if (c->cursors[i]->hold)
			c->cursors[k++] = c->cursors[i];
		else
			cursor_free(c->cursors[i]);
	}
	c->n_cursors = k;
}

/* Shards where the cursors of the session live, the default shard among them. */
static void all_shards(const client_t *c, shard_set_t *out)
{
	shard_set_clear(out);
	shard_set_add(out, context_cfg(c->worker)->default_shard);
	for (int i = 0; i < c->n_cursors; i++) {
		if (c->cursors[i]->shard >= 0)
			shard_set_add(out, c->cursors[i]->shard);
		else
			shard_set_union(out, &c->cursors[i]->shards);
	}
}

void cursor_fetch_shards(const cursor_at_t *cur, shard_set_t *out)
{
	shard_set_clear(out);
	if (cur->left != 0)
		for (int i = 0; i < SHARD_MAX; i++)
			if (shard_set_has(&cur->shards, i) && !shard_set_has(&cur->done, i))
				shard_set_add(out, i);
	if (shard_set_count(out) == 0)
		/* a FETCH answers a RowDescription even without rows */
		shard_set_add(out, shard_set_first(&cur->shards));
}

int cursor_route(client_t *c, route_plan_t *p, int shard)
{
	cursor_at_t *cur = cursor_find(c, p->cursor);
	route_step_t each;
	shard_set_t on;

	switch (p->cursor_op) {
	case ROUTE_CURSOR_DECLARE:
		return cursor_note(c, p->cursor, shard, p->cursor_hold) < 0 ? -1 : shard;
	case ROUTE_CURSOR_CLOSE_ALL:
		all_shards(c, &on);
		if (shard_set_count(&on) > 1)
			break;
		return shard;
	case ROUTE_CURSOR_CLOSE:
	case ROUTE_CURSOR_USE:
		if (cur == NULL || cur->shard >= 0)
			return cur != NULL ? cur->shard : shard;
		if (p->cursor_op == ROUTE_CURSOR_USE)
			cursor_fetch_shards(cur, &on);
		else
			on = cur->shards;
		break;
	case ROUTE_CURSOR_NONE:
		return shard;
	}
	each = route_step_each(&on, ROUTE_MERGE_ONE);
	route_plan_run_step(p, &each);
	return -2;
}

void cursor_ran(client_t *c, const route_plan_t *p)
{
	if (p->cursor_op == ROUTE_CURSOR_CLOSE)
		cursor_forget(c, p->cursor);
	else if (p->cursor_op == ROUTE_CURSOR_CLOSE_ALL)
		cursor_forget(c, NULL);
}

int cursor_fetch_setup(fanout_t *f, cursor_at_t *cur, int64_t count, bool move)
{
	char *name = route_quote_relation(NULL, cur->name);
	int64_t want, k;
	size_t len;

	if (name == NULL)
		return -1;
	/* rows to send (or count) this time, -1 all */
	want = count < 0           ? cur->left
	       : cur->left < 0     ? count
	       : count < cur->left ? count
	                           : cur->left;
	k = want < 0 ? -1 : want + cur->skip;
	len = strlen(name) + 64;
	f->member_sql = malloc(len);
	if (f->member_sql == NULL) {
		free(name);
		return -1;
	}
	if (k < 0)
		snprintf(f->member_sql, len, "FETCH ALL FROM %s", name);
	else /* nothing to send still describes the rows: one row, given back */
		snprintf(f->member_sql, len, "FETCH FORWARD %" PRId64 " FROM %s", k > 0 ? k : 1,
		         name);
	free(name);
	f->cur = cur;
	f->fetch_move = move;
	f->fetch_k = k < 0 ? -1 : k > 0 ? k : 1;
	f->gp = gather_plan_ref(cur->gp);
	f->merge = ROUTE_MERGE_GATHER;
	f->phase = GATHER_STREAM;
	f->skip = cur->skip;
	f->left = want;
	f->enough = want == 0;
	return 0;
}

int cursor_fetch_end(client_t *c, fanout_t *f)
{
	cursor_at_t *cur = f->cur;
	char *name, sql[128];
	bool waits = false;

	if (cur == NULL || f->phase != GATHER_STREAM || f->error != NULL || f->failed)
		return 0;
	cur->skip = f->skip;
	if (cur->left >= 0)
		cur->left = cur->left > (int64_t)f->sent ? cur->left - (int64_t)f->sent : 0;
	if ((name = route_quote_relation(NULL, cur->name)) == NULL) {
		fanout_own_error(f, "53200", "pgshard: out of memory");
		return 0;
	}
	for (int i = 0; i < f->n; i++) {
		member_t *m = &f->m[i];
		uint64_t back = m->got - m->used;
		bool at_end = f->fetch_k < 0 || m->got < (uint64_t)f->fetch_k;

		if (back == 0) {
			if (at_end)
				shard_set_add(&cur->done, m->shard);
			continue;
		}
		/* past the end, the cursor stands after the last row: one more step back */
		back += at_end ? 1 : 0;
		snprintf(sql, sizeof sql, "MOVE BACKWARD %" PRIu64 " FROM %s", back, name);
		f->phase = GATHER_REWIND;
		m->ready = false;
		m->result_end = false;
		if (f->svc->send(c, f, m, sql) < 0) {
			m->ready = true;
			fanout_own_error(f, "08006", "pgshard: could not send to a shard");
			break;
		}
		waits = true;
	}
	free(name);
	if (waits)
		log_msg(LOG_DEBUG, c->id, 0, "cursor %s: rows not sent given back", cur->name);
	return waits ? 1 : 0;
}
