/*
 * hotkeys.c — counting where the load goes (see hotkeys.h): a Space-Saving
 * sketch of the heaviest keys, statements per shard and per table.
 *
 * The sketch is an array of entries found by a 64-bit hash of (table, key)
 * through an open-addressed index, and grouped by count (Space-Saving's
 * stream summary): a statement costs a probe or two and a move to the next
 * group, and a key not held (once full) takes an item of the lowest group,
 * the smallest count, at once.
 */
#include "proxy/hotkeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * FNV-1a of s, going on from h. *plain becomes false unless s is kept as it
 * is (copy_text): ASCII, and short enough not to be cut.
 */
static uint64_t fnv_text(uint64_t h, const char *s, bool *plain)
{
	uint8_t bits = 0;
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		bits |= (uint8_t)s[n];
		h = (h ^ (uint8_t)s[n]) * 1099511628211ull;
	}
	*plain = *plain && bits < 0x80 && n < HOTKEYS_TEXT;
	return h;
}

/* FNV-1a over the table, kept in s's memo when the table is plain (it then fits). */
static uint64_t table_hash(hotkeys_sketch_t *s, const char *table, bool *plain)
{
	struct hotkeys_memo *m = &s->memo[((uintptr_t)table >> 4) & (HOTKEYS_MEMO - 1)];
	bool table_plain = true;
	uint64_t h;

	if (m->src == table && strcmp(m->text, table) == 0)
		return m->hash; /* only plain names are kept */
	h = fnv_text(14695981039346656037ull, table, &table_plain);
	if (table_plain) {
		m->src = table;
		m->hash = h;
		strcpy(m->text, table);
	}
	*plain = *plain && table_plain;
	return h;
}

/*
 * FNV-1a over the table, a zero byte, and the key. *plain: whether both
 * are kept as they are (ASCII and short enough not to be cut, the usual
 * case: names and numbers), so that the hash is that of the kept pair.
 */
static uint64_t pair_hash(hotkeys_sketch_t *s, const char *table, const char *key, bool *plain)
{
	uint64_t h = table_hash(s, table, plain);

	return fnv_text(h * 1099511628211ull, key, plain);
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

/* ---- the items grouped by count ---- */

static int group_new(hotkeys_sketch_t *s, uint64_t count, int prev, int next)
{
	int g = s->free_group;

	s->free_group = s->groups[g].next;
	s->groups[g].count = count;
	s->groups[g].first = s->groups[g].last = -1;
	s->groups[g].prev = (int16_t)prev;
	s->groups[g].next = (int16_t)next;
	if (prev >= 0)
		s->groups[prev].next = (int16_t)g;
	else
		s->low = (int16_t)g;
	if (next >= 0)
		s->groups[next].prev = (int16_t)g;
	return g;
}

static void group_free(hotkeys_sketch_t *s, int g)
{
	int prev = s->groups[g].prev, next = s->groups[g].next;

	if (prev >= 0)
		s->groups[prev].next = (int16_t)next;
	else
		s->low = (int16_t)next;
	if (next >= 0)
		s->groups[next].prev = (int16_t)prev;
	s->groups[g].next = s->free_group;
	s->free_group = (int16_t)g;
}

/* i joins group g last: of equal counts, the one that has had it longest goes first. */
static void item_join(hotkeys_sketch_t *s, int i, int g)
{
	int last = s->groups[g].last;

	s->group_of[i] = (int16_t)g;
	s->item_next[i] = -1;
	s->item_prev[i] = (int16_t)last;
	if (last >= 0)
		s->item_next[last] = (int16_t)i;
	else
		s->groups[g].first = (int16_t)i;
	s->groups[g].last = (int16_t)i;
}

/* Take i out of its group; the group goes when it is left empty. */
static void item_leave(hotkeys_sketch_t *s, int i)
{
	int g = s->group_of[i], prev = s->item_prev[i], next = s->item_next[i];

	if (prev >= 0)
		s->item_next[prev] = (int16_t)next;
	else
		s->groups[g].first = (int16_t)next;
	if (next >= 0)
		s->item_prev[next] = (int16_t)prev;
	else
		s->groups[g].last = (int16_t)prev;
	if (s->groups[g].first < 0)
		group_free(s, g);
}

/*
 * Put item i (out of any group) in the group of its count, looking up from
 * group `from` (a group of a count not above it, or -1: from the lowest).
 */
static void item_place(hotkeys_sketch_t *s, int i, int from)
{
	uint64_t count = s->items[i].count;
	int prev = -1, g = from >= 0 ? from : s->low;

	while (g >= 0 && s->groups[g].count < count) {
		prev = g;
		g = s->groups[g].next;
	}
	if (g < 0 || s->groups[g].count != count)
		g = group_new(s, count, prev, g);
	item_join(s, i, g);
}

/* i's count went up: to its group now. */
static void item_moved_up(hotkeys_sketch_t *s, int i)
{
	int g = s->group_of[i], from;

	if (s->groups[g].count == s->items[i].count)
		return;
	/* alone in its group: the group itself takes the new count when it stays in order */
	if (s->groups[g].first == i && s->item_next[i] < 0) {
		int next = s->groups[g].next;

		if (next < 0 || s->groups[next].count > s->items[i].count) {
			s->groups[g].count = s->items[i].count;
			return;
		}
	}
	from = s->groups[g].prev;
	item_leave(s, i);
	/* the group below is still in place (the one left may be gone) */
	item_place(s, i, from);
}

/* The smallest count (s->n > 0), and an item that has it. */
static uint64_t sketch_min(const hotkeys_sketch_t *s)
{
	return s->groups[s->low].count;
}

static int sketch_min_item(const hotkeys_sketch_t *s)
{
	return s->groups[s->low].first;
}

static void groups_reset(hotkeys_sketch_t *s)
{
	s->low = -1;
	s->free_group = 0;
	for (int g = 0; g < HOTKEYS_CAPACITY; g++)
		s->groups[g].next = (int16_t)(g + 1 < HOTKEYS_CAPACITY ? g + 1 : -1);
}

/* The index and the groups from the items, after they moved. */
static void sketch_reindex(hotkeys_sketch_t *s)
{
	memset(s->slots, 0, sizeof s->slots);
	groups_reset(s);
	for (int i = 0; i < s->n; i++) {
		slot_put(s, i);
		item_place(s, i, -1);
	}
}

void hotkeys_sketch_init(hotkeys_sketch_t *s, int capacity)
{
	memset(s, 0, sizeof(*s));
	s->capacity = capacity < 1 ? 1 : capacity > HOTKEYS_CAPACITY ? HOTKEYS_CAPACITY : capacity;
	groups_reset(s);
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
	bool plain = true;

	hash = pair_hash(s, table, key, &plain);
	if (!plain) {
		/* the names as they are kept, so that a long one finds itself again */
		copy_text(tbuf, table);
		copy_text(kbuf, key);
		t = tbuf;
		k = kbuf;
		hash = pair_hash(s, t, k, &plain);
	}
	slot = slot_of(s, hash, t, k);
	if (slot >= 0) {
		i = s->slots[slot] - 1;
	} else {
		if (s->n < s->capacity) {
			i = s->n++;
			memset(&s->items[i], 0, sizeof(s->items[i]));
			item_place(s, i, -1);
		} else {
			/* full: the smallest entry makes room, and its count is the newcomer's
			 * error */
			i = sketch_min_item(s);
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
	item_moved_up(s, i);
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
