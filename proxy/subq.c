/*
 * subq.c — the subqueries a join across shards runs first
 * (router/join_plan.h's join_sub_t), on the join's members, before its
 * driving side: for each, the subquery itself on the shards its own plan
 * names (direct), or its table's rows and then the subquery over them on
 * one shard; its answer (a value, an array of values, whether it had a row)
 * is kept, typed as its column, as a parameter of the statements after it.
 * Its table's rows and its answer count towards max_join_rows and
 * merge_memory (54000).
 */
#include "proxy/join_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/log.h"
#include "proxy/wire.h"

/* A row of the table of the subquery running first. */
void subq_row(join_t *j, const uint8_t *body, size_t len)
{
	const join_sub_t *sb = &j->plan.subs[j->sr.sub];
	const uint8_t *row = NULL;
	int32_t row_len = -1;

	if (join_field_at(body, len, 0, &row, &row_len) < 0 || row_len < 0) {
		join_own_error(j, "08P01", "pgshard: a shard sent a subquery's row wrongly");
		return;
	}
	if (j->sr.rows.n >= j->max_rows) {
		join_own_error(j, "54000",
		               "pgshard: a subquery run first would hold more than max_join_rows = "
		               "%" PRIu64 " rows of %s; filter it further, or raise max_join_rows",
		               j->max_rows, sb->table->name);
		return;
	}
	if (!join_room_for(j, (size_t)row_len))
		return;
	if (join_lit_add(&j->sr.rows, row ? row : (const uint8_t *)"", (size_t)row_len) < 0)
		join_own_error(j, "53200", "pgshard: out of memory");
}

/* A row of the answer of the subquery running first. */
void subq_answer_row(join_t *j, const uint8_t *body, size_t len)
{
	const join_sub_t *sb = &j->plan.subs[j->sr.sub];
	subrun_t *sr = &j->sr;
	const uint8_t *v = NULL;
	int32_t vlen = -1;

	sr->n++;
	if (sb->kind == JOIN_SUB_EXISTS)
		return; /* a row is all it asks */
	if (join_field_at(body, len, 0, &v, &vlen) < 0) {
		join_own_error(j, "08P01", "pgshard: a shard sent a subquery's answer wrongly");
		return;
	}
	if (sb->kind == JOIN_SUB_SCALAR) {
		if (sr->n > 1) {
			/* PostgreSQL's own error for it */
			join_own_error(
			    j, "21000",
			    "more than one row returned by a subquery used as an expression");
			return;
		}
		sr->scalar_len = vlen;
		if (vlen >= 0) {
			if ((sr->scalar = malloc((size_t)vlen + 1)) == NULL) {
				join_own_error(j, "53200", "pgshard: out of memory");
				return;
			}
			if (vlen > 0)
				memcpy(sr->scalar, v, (size_t)vlen);
			sr->scalar[vlen] = '\0';
		}
		return;
	}
	if (sr->n > j->max_rows) {
		join_own_error(
		    j, "54000",
		    "pgshard: the answer of a subquery run first (over %s) would hold more "
		    "than max_join_rows = %" PRIu64
		    " values; filter it further, or raise max_join_rows",
		    sb->table->name, j->max_rows);
		return;
	}
	if (!join_room_for(j, vlen > 0 ? (size_t)vlen : 4))
		return;
	if ((vlen < 0 ? join_lit_add_null(&sr->values)
	              : join_lit_add(&sr->values, v ? v : (const uint8_t *)"", (size_t)vlen)) < 0)
		join_own_error(j, "53200", "pgshard: out of memory");
}

/*
 * The subquery's answer, once its statement is answered: the final
 * statement's parameter, typed as its column (or the array of it, or bool).
 * 0, or -1 when memory runs out.
 */
static int sub_answer(join_t *j)
{
	subrun_t *sr = &j->sr;
	const join_sub_t *sb = &j->plan.subs[sr->sub];
	route_param_t *v = &sr->v[sr->sub];
	char *text = NULL;

	memset(v, 0, sizeof *v);
	switch (sb->kind) {
	case JOIN_SUB_EXISTS:
		v->type_oid = 16; /* bool */
		if ((text = strdup(sr->n > 0 ? "t" : "f")) == NULL)
			return -1;
		break;
	case JOIN_SUB_SCALAR:
		v->type_oid = sr->type;
		text = sr->scalar; /* NULL without a row, or for NULL */
		sr->scalar = NULL;
		break;
	case JOIN_SUB_ARRAY: {
		const char *lt;

		v->type_oid = join_array_type(sr->type);
		if (v->type_oid == 0) {
			join_own_error(
			    j, "0A000",
			    "pgshard: a subquery run first (over %s) answers values of type "
			    "%u, which pgshard does not pass as an array yet; cast its "
			    "select-list item to a built-in type",
			    sb->table->name, sr->type);
			return 0;
		}
		if ((lt = join_lit_text(&sr->values)) == NULL || (text = strdup(lt)) == NULL)
			return -1;
		break;
	}
	}
	sr->text[sr->sub] = text;
	v->data = (const uint8_t *)text;
	v->len = text != NULL ? (int32_t)strlen(text) : -1;
	join_lit_free(&sr->rows);
	join_lit_free(&sr->values);
	sr->n = 0;
	sr->type = 0;
	return 0;
}

/* The statement of the subquery running first on m: its table's rows, or itself over them,
 * with the client's parameters it uses. */
static int send_sub(client_t *c, join_t *j, member_t *m, bool run)
{
	wire_buf_t *b = &c->worker->scratch;
	stmt_params_t *sp = &j->sp;
	const join_sub_t *sb = &j->plan.subs[j->sr.sub];
	route_param_t rows = join_text_param("{}");
	bool over_rows = run && !sb->direct; /* ... its table's rows after its parameters */

	if (over_rows) {
		const char *text = join_lit_text(&j->sr.rows);

		if (text == NULL)
			return -1;
		rows = join_text_param(text);
	}
	if (join_params_of(j, sp, &rows, over_rows ? 1 : 0, run ? sb->params : sb->rows_params,
	                   run ? sb->n_params : sb->n_rows_params) < 0)
		return join_params_short(j);
	wire_buf_reset(b);
	join_put_parse(b, run ? sb->sql : sb->rows_sql, sp);
	join_put_bind(b, sp, NULL, 0);
	log_msg(LOG_DEBUG, c->id, 0, "join: subquery over %s, %s on shard %d", sb->table->name,
	        run ? "itself" : "its rows", m->shard);
	return join_send_run(c, m, b, run ? PEND_SUB_RUN : PEND_SUB_ROWS, run);
}

/* The type of the first column of a RowDescription, 0 when it has none. */
uint32_t subq_first_type(const uint8_t *body, size_t len)
{
	const uint8_t *end = len > 2 ? memchr(body + 2, '\0', len - 2) : NULL;

	if (len < 2 || wire_be16(body) < 1 || end == NULL || (size_t)(end - body) + 1 + 18 > len)
		return 0;
	return (uint32_t)wire_be32(end + 1 + 6);
}

/*
 * A subquery run first failed for a column it does not have: a bare name
 * in it may be the outer query's column, which it cannot see on its own.
 * Said so (0A000) rather than answered with an error PostgreSQL would not
 * give.
 */
void subq_error(join_t *j, const uint8_t *body, size_t len)
{
	const char *code = NULL, *text = NULL;

	for (size_t at = 0; at < len && body[at] != '\0';) {
		const uint8_t *end = memchr(body + at + 1, '\0', len - at - 1);

		if (end == NULL)
			return;
		if (body[at] == 'C')
			code = (const char *)body + at + 1;
		else if (body[at] == 'M')
			text = (const char *)body + at + 1;
		at = (size_t)(end - body) + 1;
	}
	if (code != NULL && strcmp(code, "42703") == 0)
		join_own_error(
		    j, "0A000",
		    "pgshard: a subquery over %s run first across shards failed on its own "
		    "(%s): if that is a column of the outer query, the subquery is correlated, "
		    "and runs across shards when its WHERE ties it to the outer query by an "
		    "equality of qualified columns (b.y = a.x)",
		    j->plan.subs[j->sr.sub].table->name, text != NULL ? text : "42703");
}

/*
 * The next statements of the subqueries that run first: the rows of the
 * next one's table, then the subquery over them on one shard, then its
 * answer kept. 0, or -1 when memory runs out.
 */
int subq_stage(client_t *c, join_t *j)
{
	subrun_t *sr = &j->sr;
	const join_sub_t *sb = &j->plan.subs[sr->sub];
	member_t *run = NULL;
	int rc;

	if (sr->phase == 0) {
		/* its table's rows; or, run as it is (direct), the subquery itself on each of its
		   shards, their answers put together */
		sr->phase = sb->direct ? 2 : 1;
		sr->scalar_len = -1;
		for (int i = 0; i < j->n; i++) {
			member_t *m = &j->m[i];

			if (!shard_set_has(&sb->shards, m->shard))
				continue;
			if (m->s == NULL) {
				join_own_error(j, "08006",
				               "pgshard: lost the connection to shard %d",
				               m->shard);
				return 0;
			}
			if ((rc = send_sub(c, j, m, sb->direct)) != 0)
				return rc;
		}
		return 0;
	}
	if (sr->phase == 1) {
		sr->phase = 2;
		for (int i = 0; i < j->n && run == NULL; i++)
			if (j->m[i].s != NULL && shard_set_has(&sb->shards, j->m[i].shard))
				run = &j->m[i];
		for (int i = 0; i < j->n && run == NULL; i++)
			if (j->m[i].s != NULL)
				run = &j->m[i];
		if (run == NULL) {
			join_own_error(j, "08006", "pgshard: no shard left to run a subquery on");
			return 0;
		}
		return send_sub(c, j, run, true);
	}
	rc = sub_answer(j);
	sr->sub++;
	sr->phase = 0;
	return rc;
}
