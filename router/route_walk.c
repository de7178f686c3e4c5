/*
 * route_walk.c — what every step of routing shares: the state of one
 * routing call (walk_t: refusing, stopping, starting the next statement),
 * parts (where the rows a piece of a statement needs can be, and how parts
 * combine), and a bounded string builder for the reasons and messages the
 * router writes. See route.c for the overall picture.
 */
#include "router/route.h"

#include <ctype.h>
#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/route_int.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- small text helpers ---- */

void sb_init(sb_t *s, char *buf, size_t size)
{
	s->buf = buf;
	s->size = size;
	s->len = 0;
	s->cut = false;
	buf[0] = '\0';
}

void sb_printf(sb_t *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->len + 1 >= s->size) {
		s->cut = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, s->size - s->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= s->size - s->len) {
		s->len = s->size - 1;
		s->cut = true;
	} else {
		s->len += (size_t)n;
	}
}

/* A cut text ends in "..." so that nobody reads it as complete. */
int route_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void sb_finish(sb_t *s)
{
	if (s->cut && s->size >= 4)
		memcpy(s->buf + s->size - 4, "...", 4);
}

void sb_shards(sb_t *s, const shard_set_t *set)
{
	int n = shard_set_count(set), k = 0;

	if (n == 0) {
		sb_printf(s, "no shard");
		return;
	}
	sb_printf(s, n == 1 ? "shard " : "shards ");
	for (int i = 0; i < SHARD_MAX; i++) {
		if (!shard_set_has(set, i))
			continue;
		sb_printf(s, k++ ? ", %d" : "%d", i);
	}
}

/* ---- parts: where the rows a piece of a statement needs can be ---- */

part_t part_make(part_kind_t kind)
{
	part_t p;

	memset(&p, 0, sizeof p);
	p.kind = kind;
	return p;
}

static void join_desc(char *out, const char *a, const char *op, const char *b, bool paren)
{
	char tmp[DESC_MAX];
	sb_t s;
	bool pa = paren && strstr(a, " OR ") != NULL;
	bool pb = paren && strstr(b, " OR ") != NULL;

	sb_init(&s, tmp, sizeof tmp);
	if (a[0] != '\0' && b[0] != '\0')
		sb_printf(&s, "%s%s%s %s %s%s%s", pa ? "(" : "", a, pa ? ")" : "", op,
		          pb ? "(" : "", b, pb ? ")" : "");
	else
		sb_printf(&s, "%s", a[0] != '\0' ? a : b);
	sb_finish(&s);
	memcpy(out, tmp, sizeof tmp);
}

/* Rows that need both: intersection. NONE and ALL do not narrow. */
part_t part_and(part_t a, part_t b)
{
	if (a.kind == PART_NONE)
		return b;
	if (b.kind == PART_NONE)
		return a;
	if (a.kind == PART_ALL)
		return b;
	if (b.kind == PART_ALL)
		return a;
	shard_set_intersect(&a.set, &b.set);
	if (strcmp(a.desc, b.desc) != 0)
		join_desc(a.desc, a.desc, "AND", b.desc, true);
	return a;
}

/* Rows that need either: union. ALL absorbs. */
part_t part_or(part_t a, part_t b)
{
	if (a.kind == PART_NONE)
		return b;
	if (b.kind == PART_NONE)
		return a;
	if (a.kind == PART_ALL || b.kind == PART_ALL)
		return part_make(PART_ALL);
	shard_set_union(&a.set, &b.set);
	if (strcmp(a.desc, b.desc) != 0)
		join_desc(a.desc, a.desc, "OR", b.desc, false);
	return a;
}

/* What a part means on the nullable side of an outer join: never narrower. */
part_t part_weaken(part_t p)
{
	return part_make(p.kind == PART_NONE ? PART_NONE : PART_ALL);
}

/* ---- the state of one routing call ---- */

void walk_refuse(walk_t *w, const char *fmt, ...)
{
	va_list ap;

	if (w->refused)
		return;
	w->refused = true;
	va_start(ap, fmt);
	vsnprintf(w->error, sizeof w->error, fmt, ap);
	va_end(ap);
}

bool walk_stopped(const walk_t *w)
{
	return w->refused || w->nomem;
}

const char *walk_map_kind_name(const cfg_map_t *m)
{
	return m->kind == CFG_MAP_HASH ? "hash" : "range";
}

/* Per-statement state back to empty. */
void walk_reset(walk_t *w)
{
	if (w->cfg->n_tables > 0)
		memset(w->seen, 0, (size_t)w->cfg->n_tables);
	w->n_order = 0;
	w->other_write[0] = '\0';
	w->writes = false;
	w->map = w->map_table = w->clash = -1;
	w->depth = 0;
	w->smap = NULL;
	shard_set_clear(&w->mentioned);
	w->n_keys = 0;
	w->key_text[0] = '\0';
	w->n_ins_keys = 0;
	w->ins_split = false;
	w->key_move = false;
	w->ins_select = false;
	w->needs_columns = false;
	shard_set_clear(&w->move_to);
	w->key_column = -1;
	w->one_shard = -1;
	w->refused = false;
	w->error[0] = '\0';
}
