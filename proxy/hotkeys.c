/*
 * hotkeys.c — counting where the load goes (see hotkeys.h): a Space-Saving
 * sketch of the heaviest keys, statements per shard and per table.
 *
 * The sketch is an array of entries found by a 64-bit hash of (table, key)
 * through an open-addressed index, and ordered by count in a min-heap: a
 * statement costs a probe or two and a few heap steps, and a key not held
 * (once full) takes the heap's top, the smallest count, at once.
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

/*
 * pair_hash of table and key as they are, when they are kept as they are:
 * ASCII and short enough not to be cut (the usual case: names and numbers).
 * false otherwise, and the caller copies them as kept first.
 */
static bool plain_pair_hash(const char *table, const char *key, uint64_t *hash)
{
	uint64_t h = 14695981039346656037ull;
	size_t n;

	for (n = 0; table[n] != '\0'; n++) {
		if ((uint8_t)table[n] >= 0x80 || n + 2 >= HOTKEYS_TEXT)
			return false;
		h = (h ^ (uint8_t)table[n]) * 1099511628211ull;
	}
	h *= 1099511628211ull;
	for (n = 0; key[n] != '\0'; n++) {
		if ((uint8_t)key[n] >= 0x80 || n + 2 >= HOTKEYS_TEXT)
			return false;
		h = (h ^ (uint8_t)key[n]) * 1099511628211ull;
	}
	*hash = h;
	return true;
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

/* The slot of (table, key) in s's index, -1 when s holds none. */
static int slot_of(const hotkeys_sketch_t *s, uint64_t hash, const char *table, const char *key)
{
	for (unsigned h = (unsigned)hash & (HOTKEYS_SLOTS - 1); s->slots[h] != 0;
	     h = (h + 1) & (HOTKEYS_SLOTS - 1)) {
		const hotkey_t *e = &s->items[s->slots[h] - 1];

		if (e->hash == hash && strcmp(e->key, key) == 0 && strcmp(e->table, table) == 0)
			return (int)h;
	}
	return -1;
}

/* The slot holding item (which s holds). */
static unsigned slot_holding(const hotkeys_sketch_t *s, int item)
{
	unsigned h = (unsigned)s->items[item].hash & (HOTKEYS_SLOTS - 1);

	while (s->slots[h] != item + 1)
		h = (h + 1) & (HOTKEYS_SLOTS - 1);
	return h;
}

static void slot_put(hotkeys_sketch_t *s, int item)
{
	unsigned h = (unsigned)s->items[item].hash & (HOTKEYS_SLOTS - 1);

	while (s->slots[h] != 0)
		h = (h + 1) & (HOTKEYS_SLOTS - 1);
	s->slots[h] = (int16_t)(item + 1);
}

/* Empty slot h, moving back the entries after it that would no longer be found. */
static void slot_remove(hotkeys_sketch_t *s, unsigned h)
{
	unsigned j = h;

	s->slots[h] = 0;
	for (;;) {
		unsigned home;

		j = (j + 1) & (HOTKEYS_SLOTS - 1);
		if (s->slots[j] == 0)
			return;
		home = (unsigned)s->items[s->slots[j] - 1].hash & (HOTKEYS_SLOTS - 1);
		/* it stays when its home lies in (h, j], going round */
		if (h <= j ? (home > h && home <= j) : (home > h || home <= j))
			continue;
		s->slots[h] = s->slots[j];
		s->slots[j] = 0;
		h = j;
	}
}

static uint64_t heap_count(const hotkeys_sketch_t *s, int at)
{
	return s->items[s->heap[at]].count;
}

static void heap_swap(hotkeys_sketch_t *s, int a, int b)
{
	int16_t x = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = x;
	s->place[s->heap[a]] = (int16_t)a;
	s->place[s->heap[b]] = (int16_t)b;
}

static void heap_up(hotkeys_sketch_t *s, int at)
{
	while (at > 0 && heap_count(s, (at - 1) / 2) > heap_count(s, at)) {
		heap_swap(s, at, (at - 1) / 2);
		at = (at - 1) / 2;
	}
}

static void heap_down(hotkeys_sketch_t *s, int at)
{
	for (;;) {
		int l = 2 * at + 1, r = l + 1, m = at;

		if (l < s->n && heap_count(s, l) < heap_count(s, m))
			m = l;
		if (r < s->n && heap_count(s, r) < heap_count(s, m))
			m = r;
		if (m == at)
			return;
		heap_swap(s, at, m);
		at = m;
	}
}

/* The smallest count (s->n > 0). */
static uint64_t sketch_min(const hotkeys_sketch_t *s)
{
	return s->items[s->heap[0]].count;
}

/* The index and the heap from the items, after they moved. */
static void sketch_reindex(hotkeys_sketch_t *s)
{
	memset(s->slots, 0, sizeof s->slots);
	for (int i = 0; i < s->n; i++) {
		slot_put(s, i);
		s->heap[i] = (int16_t)i;
		s->place[i] = (int16_t)i;
	}
	for (int i = s->n / 2 - 1; i >= 0; i--)
		heap_down(s, i);
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
	char tbuf[HOTKEYS_TEXT], kbuf[HOTKEYS_TEXT];
	const char *t = table, *k = key; /* as kept: no copies unless the pair comes in */
	uint64_t hash;
	hotkey_t *e;
	int i, slot;

	if (!plain_pair_hash(table, key, &hash)) {
		/* the names as they are kept, so that a long one finds itself again */
		copy_text(tbuf, table);
		copy_text(kbuf, key);
		t = tbuf;
		k = kbuf;
		hash = pair_hash(t, k);
	}
	slot = slot_of(s, hash, t, k);
	if (slot >= 0) {
		i = s->slots[slot] - 1;
	} else {
		if (s->n < s->capacity) {
			i = s->n++;
			memset(&s->items[i], 0, sizeof(s->items[i]));
			s->heap[i] = (int16_t)i;
			s->place[i] = (int16_t)i;
		} else {
			/* full: the smallest entry makes room, and its count is the newcomer's
			 * error */
			i = s->heap[0];
			slot_remove(s, slot_holding(s, i));
			s->items[i].error = s->items[i].count;
		}
		e = &s->items[i];
		e->hash = hash;
		strcpy(e->table, t);
		strcpy(e->key, k);
		slot_put(s, i);
	}
	e = &s->items[i];
	e->shard = shard;
	e->count += n;
	heap_up(s, s->place[i]);
	heap_down(s, s->place[i]);
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
		min_into = sketch_min(into);
	if (from->n == from->capacity && from->n > 0)
		min_from = sketch_min(from);
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
	unsigned seen =
	    (unsigned)(((uintptr_t)table >> 3) ^ (uintptr_t)shard) & (HOTKEYS_TABLE_SEEN - 1);
	int i = h->table_seen[seen] - 1;

	/* the usual way: the same string (a table of the config) as last time */
	if (i >= 0 && h->tables[i].src == table && h->tables[i].shard == shard &&
	    strcmp(h->tables[i].table, table) == 0) {
		h->tables[i].statements += n;
		return;
	}
	copy_text(t, table);
	for (i = 0; i < h->n_tables; i++)
		if (h->tables[i].shard == shard && strcmp(h->tables[i].table, t) == 0)
			break;
	if (i == h->n_tables) {
		if (h->n_tables == HOTKEYS_TABLES) {
			h->tables_dropped += n;
			return;
		}
		memcpy(h->tables[i].table, t, sizeof(t));
		h->tables[i].shard = shard;
		h->tables[i].statements = 0;
		h->n_tables++;
	}
	h->tables[i].statements += n;
	h->tables[i].src = table;
	h->table_seen[seen] = (int16_t)(i + 1);
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
