/*
 * verify_rules.c — the decisions of the consistency checks (see verify_rules.h).
 */
#include "proxy/verify_rules.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "router/verify_sql.h"

int verify_ranges_diff(const verify_range_t *const *shards, const int *n, int n_shards,
                       int64_t *out, int64_t *rows)
{
	int pos[n_shards > 0 ? n_shards : 1];
	int n_out = 0;

	*rows = 0;
	memset(pos, 0, sizeof(pos));
	for (;;) {
		const verify_range_t *first = NULL;
		int64_t next = 0, most = 0;
		bool have = false, differs = false;

		/* the smallest range any shard has left */
		for (int s = 0; s < n_shards; s++) {
			if (pos[s] < n[s] && (!have || shards[s][pos[s]].range < next)) {
				next = shards[s][pos[s]].range;
				have = true;
			}
		}
		if (!have)
			break;
		for (int s = 0; s < n_shards; s++) {
			const verify_range_t *r = pos[s] < n[s] ? &shards[s][pos[s]] : NULL;

			if (r == NULL || r->range != next) {
				differs = true; /* no rows of this range on shard s */
				continue;
			}
			pos[s]++;
			if (r->count > most)
				most = r->count;
			if (first == NULL)
				first = r;
			else if (r->count != first->count || strcmp(r->sum1, first->sum1) != 0 ||
			         strcmp(r->sum2, first->sum2) != 0)
				differs = true;
		}
		if (differs) {
			out[n_out++] = next;
			*rows += most;
		}
	}
	return n_out;
}

verify_next_t verify_next(int level, int n, int64_t rows, int64_t leaf_rows)
{
	if (n == 0)
		return VERIFY_NEXT_DONE;
	if (rows <= leaf_rows || level >= VERIFY_LEVELS || n > VERIFY_MAX_SPLIT)
		return VERIFY_NEXT_FETCH;
	return VERIFY_NEXT_SPLIT;
}

static bool same_version(const verify_row_t *a, const verify_row_t *b)
{
	if (a->present != b->present)
		return false;
	return !a->present || (a->copies == b->copies && strcmp(a->hash, b->hash) == 0);
}

/* A small appender with a sticky end: what does not fit is cut. */
typedef struct out {
	char *buf;
	size_t size, len;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (o->len + 1 >= o->size)
		return;
	va_start(ap, fmt);
	k = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (k > 0)
		o->len = o->len + (size_t)k < o->size ? o->len + (size_t)k : o->size - 1;
}

/* "shard 1" or "shards 0, 2": the shards holding version v (by index into rows). */
static void put_shards(out_t *o, const verify_row_t *rows, int n, const int *version, int v)
{
	int count = 0, k = 0;

	for (int i = 0; i < n; i++)
		count += version[i] == v;
	put(o, "shard%s ", count == 1 ? "" : "s");
	for (int i = 0; i < n; i++) {
		if (version[i] == v)
			put(o, "%s%d", k++ > 0 ? ", " : "", rows[i].shard);
	}
}

bool verify_row_describe(const verify_row_t *rows, int n, char *buf, size_t size)
{
	int version[n > 0 ? n : 1], held[n > 0 ? n : 1], first[n > 0 ? n : 1];
	int n_versions = 0, major = -1, best = 0;
	bool tie = false, no_pk = false;
	out_t o = {buf, size, 0};

	if (size > 0)
		buf[0] = '\0';
	/* number the versions in order of first appearance, and count their holders */
	for (int i = 0; i < n; i++) {
		int v = 0;

		while (v < n_versions && !same_version(&rows[i], &rows[first[v]]))
			v++;
		version[i] = v;
		if (v == n_versions) {
			first[v] = i;
			held[n_versions++] = 0;
		}
		held[v]++;
		if (rows[i].present && rows[i].hash[0] == '\0')
			no_pk = true;
	}
	if (n_versions <= 1)
		return false;
	for (int v = 0; v < n_versions; v++) {
		if (held[v] > best) {
			best = held[v];
			major = v;
			tie = false;
		} else if (held[v] == best) {
			tie = true;
		}
	}
	if (tie) {
		put(&o, "shards disagree:");
		for (int v = 0; v < n_versions; v++) {
			const verify_row_t *r = &rows[first[v]];

			put(&o, "%s ", v > 0 ? ";" : "");
			if (!r->present)
				put(&o, "absent on ");
			else if (no_pk)
				put(&o, "%lld cop%s on ", (long long)r->copies,
				    r->copies == 1 ? "y" : "ies");
			else
				put(&o, "version %c on ", 'A' + (v < 26 ? v : 25));
			put_shards(&o, rows, n, version, v);
		}
		return true;
	}
	{
		const verify_row_t *m = &rows[first[major]];
		int k = 0;

		for (int v = 0; v < n_versions; v++) {
			const verify_row_t *r = &rows[first[v]];

			if (v == major)
				continue;
			put(&o, "%s", k++ > 0 ? "; " : "");
			if (!r->present)
				put(&o, "missing on ");
			else if (!m->present)
				put(&o, "extra on ");
			else if (no_pk)
				put(&o, "%lld cop%s on ", (long long)r->copies,
				    r->copies == 1 ? "y" : "ies");
			else
				put(&o, "changed on ");
			put_shards(&o, rows, n, version, v);
		}
		if (m->present && no_pk)
			put(&o, " (%lld on ", (long long)m->copies);
		else
			put(&o, " (");
		put_shards(&o, rows, n, version, major);
		put(&o, "%s", m->present ? (no_pk ? ")" : " agree)") : " lack it)");
	}
	return true;
}

/* The escaped form of one byte into piece (room for 5). */
static size_t escape_byte(unsigned char c, char *piece)
{
	if (c == '\\')
		return (size_t)snprintf(piece, 5, "\\\\");
	if (c == '\n')
		return (size_t)snprintf(piece, 5, "\\n");
	if (c == '\t')
		return (size_t)snprintf(piece, 5, "\\t");
	if (c < 0x20 || c == 0x7f)
		return (size_t)snprintf(piece, 5, "\\x%02x", c);
	piece[0] = (char)c;
	piece[1] = '\0';
	return 1;
}

void verify_escape(const char *s, char *buf, size_t size)
{
	const unsigned char *p;
	size_t total = 0, k = 0, room;
	char piece[5];

	if (size == 0)
		return;
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		total += escape_byte(*p, piece);
	/* all of it when it fits, else as much as fits before a "..." */
	room = total < size ? size - 1 : (size > 4 ? size - 4 : 0);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		size_t len = escape_byte(*p, piece);

		if (k + len > room)
			break;
		memcpy(buf + k, piece, len);
		k += len;
	}
	if (total >= size) {
		size_t dots = size - 1 - k < 3 ? size - 1 - k : 3;

		memcpy(buf + k, "...", dots);
		k += dots;
	}
	buf[k] = '\0';
}
