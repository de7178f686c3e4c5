/*
 * hotkeys.c — counting where the load goes (see hotkeys.h): a Space-Saving
 * sketch of the heaviest keys, statements per shard and per table.
 *
 * The sketch is a plain array searched by a 64-bit hash of (table, key):
 * at HOTKEYS_CAPACITY entries a statement costs one pass over the hashes,
 * and a key not held (once full) one more pass for the smallest count;
 * both passes read the dense copies of hashes and counts, not the entries.
 */
#include "proxy/hotkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a over the table, a zero byte, and the key. */
static uint64_t pair_hash(const char *table, const char *key)
{
	uint64_t h = 14695981039346656037ull;

	for (const char *p = table; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h *= 1099511628211ull;
	for (const char *p = key; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

size_t hotkeys_utf8_prefix(const char *s, size_t n, bool *cut_short)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	*cut_short = false;
	while (i < n) {
		uint8_t c = p[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0)
			len = 2, cp = c & 0x1F, min = 0x80;
		else if ((c & 0xF0) == 0xE0)
			len = 3, cp = c & 0x0F, min = 0x800;
		else if ((c & 0xF8) == 0xF0)
			len = 4, cp = c & 0x07, min = 0x10000;
		else
			return i;
		for (size_t k = 1; k < len; k++) {
			if (i + k == n) {
				*cut_short = true;
				return i;
			}
			if ((p[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += len;
	}
	return i;
}

/*
 * src as the sketch keeps it, cut to fit, never inside a UTF-8 character:
 * the console and the metrics endpoint send it as UTF-8 text. A src that
 * is not UTF-8 (a text key a client sent in another encoding) is spelled
 * as PostgreSQL writes a bytea, \x and its bytes in hex (as many as fit).
 */
static void copy_text(char dst[HOTKEYS_TEXT], const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strnlen(src, HOTKEYS_TEXT - 1), ok, k = 0;
	bool cut_short;

	ok = hotkeys_utf8_prefix(src, n, &cut_short);
	if (ok == n || (cut_short && src[n] != '\0')) {
		memcpy(dst, src, ok);
		dst[ok] = '\0';
		return;
	}
	dst[k++] = '\\';
	dst[k++] = 'x';
	for (size_t i = 0; i < n && k + 2 < HOTKEYS_TEXT; i++) {
		dst[k++] = hex[(uint8_t)src[i] >> 4];
		dst[k++] = hex[(uint8_t)src[i] & 0xF];
	}
	dst[k] = '\0';
}

/* The index of (table, key) in s, -1 when it holds none. */
static int sketch_find(const hotkeys_sketch_t *s, uint64_t hash, const char *table, const char *key)
{
	for (int i = 0; i < s->n; i++) {
		const hotkey_t *e = &s->items[i];

		if (s->hashes[i] == hash && strcmp(e->key, key) == 0 &&
		    strcmp(e->table, table) == 0)
			return i;
	}
	return -1;
}

/* The index of the smallest count (s->n > 0). */
static int sketch_min(const hotkeys_sketch_t *s)
{
	int min = 0;

	for (int i = 1; i < s->n; i++)
		if (s->counts[i] < s->counts[min])
			min = i;
	return min;
}

/* The dense copies from the entries, after they moved. */
static void sketch_reindex(hotkeys_sketch_t *s)
{
	for (int i = 0; i < s->n; i++) {
		s->hashes[i] = s->items[i].hash;
		s->counts[i] = s->items[i].count;
	}
}

void hotkeys_sketch_init(hotkeys_sketch_t *s, int capacity)
{
	memset(s, 0, sizeof(*s));
	s->capacity = capacity < 1 ? 1 : capacity > HOTKEYS_CAPACITY ? HOTKEYS_CAPACITY : capacity;
}

void hotkeys_init(hotkeys_t *h, int capacity)
{
	memset(h, 0, sizeof(*h));
	hotkeys_sketch_init(&h->sketch, capacity);
}

void hotkeys_sketch_add(hotkeys_sketch_t *s, const char *table, const char *key, int shard,
                        uint64_t n)
{
	char t[HOTKEYS_TEXT], k[HOTKEYS_TEXT];
	uint64_t hash;
	hotkey_t *e;
	int i;

	/* the names as they are kept, so that a long one finds itself again */
	copy_text(t, table);
	copy_text(k, key);
	hash = pair_hash(t, k);
	i = sketch_find(s, hash, t, k);
	if (i < 0 && s->n < s->capacity) {
		i = s->n++;
		memset(&s->items[i], 0, sizeof(s->items[i]));
	} else if (i < 0) {
		/* full: the smallest entry makes room, and its count is the newcomer's error */
		i = sketch_min(s);
		s->items[i].error = s->items[i].count;
	}
	e = &s->items[i];
	if (e->hash != hash || strcmp(e->table, t) != 0 || strcmp(e->key, k) != 0) {
		e->hash = hash;
		memcpy(e->table, t, sizeof(t));
		memcpy(e->key, k, sizeof(k));
	}
	e->shard = shard;
	e->count += n;
	s->hashes[i] = hash;
	s->counts[i] = e->count;
}

static int hotkey_cmp(const void *a, const void *b)
{
	const hotkey_t *x = a, *y = b;
	int c;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	c = strcmp(x->table, y->table);
	return c != 0 ? c : strcmp(x->key, y->key);
}

void hotkeys_sketch_sort(hotkeys_sketch_t *s)
{
	if (s->n > 1)
		qsort(s->items, (size_t)s->n, sizeof(s->items[0]), hotkey_cmp);
	sketch_reindex(s);
}

void hotkeys_sketch_merge(hotkeys_sketch_t *into, const hotkeys_sketch_t *from)
{
	hotkey_t all[2 * HOTKEYS_CAPACITY];
	uint64_t min_into = 0, min_from = 0;
	int n = 0;

	/* a sketch that is not full has seen every key it lacks zero times */
	if (into->n == into->capacity && into->n > 0)
		min_into = into->counts[sketch_min(into)];
	if (from->n == from->capacity && from->n > 0)
		min_from = from->counts[sketch_min(from)];
	for (int i = 0; i < into->n; i++) {
		hotkey_t *e = &all[n++];

		*e = into->items[i];
		e->count += min_from;
		e->error += min_from;
	}
	for (int i = 0; i < from->n; i++) {
		const hotkey_t *f = &from->items[i];
		hotkey_t *e = NULL;

		for (int k = 0; k < into->n; k++) {
			if (all[k].hash == f->hash && strcmp(all[k].key, f->key) == 0 &&
			    strcmp(all[k].table, f->table) == 0) {
				e = &all[k];
				break;
			}
		}
		if (e != NULL) {
			/* held by both: its count there replaces the guess made for it */
			e->count = e->count - min_from + f->count;
			e->error = e->error - min_from + f->error;
			e->shard = f->shard;
		} else {
			e = &all[n++];
			*e = *f;
			e->count += min_into;
			e->error += min_into;
		}
	}
	qsort(all, (size_t)n, sizeof(all[0]), hotkey_cmp);
	into->n = n < into->capacity ? n : into->capacity;
	memcpy(into->items, all, sizeof(all[0]) * (size_t)into->n);
	sketch_reindex(into);
}

static void table_add(hotkeys_t *h, const char *table, int shard, uint64_t n)
{
	char t[HOTKEYS_TEXT];

	copy_text(t, table);
	for (int i = 0; i < h->n_tables; i++) {
		if (h->tables[i].shard == shard && strcmp(h->tables[i].table, t) == 0) {
			h->tables[i].statements += n;
			return;
		}
	}
	if (h->n_tables == HOTKEYS_TABLES) {
		h->tables_dropped += n;
		return;
	}
	memcpy(h->tables[h->n_tables].table, t, sizeof(t));
	h->tables[h->n_tables].shard = shard;
	h->tables[h->n_tables].statements = n;
	h->n_tables++;
}

static void note_shard(hotkeys_t *h, const route_plan_t *p, int shard)
{
	if (shard < 0 || shard >= SHARD_MAX)
		return;
	h->shard_statements[shard]++;
	h->shard_recent[shard]++;
	if (p->table != NULL)
		table_add(h, p->table, shard, 1);
}

void hotkeys_note(hotkeys_t *h, const route_plan_t *p)
{
	const route_step_t *step;
	const shard_set_t *set;

	if (p->kind == ROUTE_REFUSE || p->txn != ROUTE_TXN_NONE)
		return;
	step = route_step_routed(p);
	if (step->kind == ROUTE_STEP_ONE) {
		/* a reference read picks its shard later: it counts on the plan's one */
		int shard = step->shard >= 0 ? step->shard : shard_set_first(&p->shards);

		note_shard(h, p, shard);
		if (p->key_value[0] != '\0' && p->table != NULL && shard >= 0)
			hotkeys_sketch_add(&h->sketch, p->table, p->key_value, shard, 1);
	} else {
		set = shard_set_count(&step->shards) > 0 ? &step->shards : &p->shards;
		for (int s = shard_set_first(set); s >= 0 && s < SHARD_MAX; s++)
			if (shard_set_has(set, s))
				note_shard(h, p, s);
	}
	/* a multi-row INSERT: each distinct key of its rows counts once (the first few) */
	for (int i = 0; i < p->n_insert_keys && p->table != NULL; i++)
		hotkeys_sketch_add(&h->sketch, p->table, p->insert_keys[i].text,
		                   p->insert_keys[i].shard, 1);
}

void hotkeys_merge(hotkeys_t *into, const hotkeys_t *from)
{
	hotkeys_sketch_merge(&into->sketch, &from->sketch);
	for (int s = 0; s < SHARD_MAX; s++) {
		into->shard_statements[s] += from->shard_statements[s];
		into->shard_recent[s] += from->shard_recent[s];
	}
	for (int i = 0; i < from->n_tables; i++)
		table_add(into, from->tables[i].table, from->tables[i].shard,
		          from->tables[i].statements);
	into->tables_dropped += from->tables_dropped;
	if (from->since_us != 0 && (into->since_us == 0 || from->since_us < into->since_us))
		into->since_us = from->since_us;
}

void hotkeys_age(hotkeys_t *h, uint64_t now_us)
{
	hotkeys_sketch_t *s = &h->sketch;
	int kept = 0;

	if (h->aged_us == 0 || now_us < h->aged_us) {
		h->aged_us = now_us;
		return;
	}
	if (now_us - h->aged_us < (uint64_t)HOTKEYS_HALF_LIFE_S * 1000000u)
		return;
	h->aged_us = now_us;
	for (int i = 0; i < s->n; i++) {
		hotkey_t e = s->items[i];

		e.count /= 2;
		e.error = (e.error + 1) / 2;
		if (e.error > e.count)
			e.error = e.count;
		if (e.count > 0)
			s->items[kept++] = e;
	}
	s->n = kept;
	sketch_reindex(s);
	for (int k = 0; k < SHARD_MAX; k++)
		h->shard_recent[k] /= 2;
}
