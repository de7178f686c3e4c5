/*
 * hotkeys.h — where the load goes (hotkeys.c): statements per shard, per
 * table and shard, and the heaviest shard keys, counted by each worker for
 * the statements it routes.
 *
 * The heaviest keys come from a Space-Saving sketch of fixed capacity: it
 * holds at most HOTKEYS_CAPACITY (table, key) entries, whatever the
 * traffic. A key it holds counts exactly from the moment it came in; a key
 * that comes in when the sketch is full takes the place of the entry with
 * the smallest count and starts from that count, which becomes its error
 * bound. So an entry's count never underestimates the key's true count and
 * overestimates it by at most its error; any key whose true count exceeds
 * the stream's total over the capacity is in the sketch. Two sketches
 * (two workers') merge into one with the same guarantees.
 *
 * The per-shard and per-table counts run from the worker's start: a rate
 * is a count over the time since start, or Prometheus' rate() over two
 * scrapes. The sketch follows the recent load instead: every
 * HOTKEYS_HALF_LIFE_S seconds (hotkeys_age) its counts are halved, and so
 * are the per-shard counts its shares are taken of (shard_recent), so that
 * a key that was hot an hour ago fades and a new one takes its place.
 *
 * Pure: no worker, no locks (each worker owns its own, and the console
 * merges copies); tested in proxy/tests/test_hotkeys.c.
 */
#ifndef PGSHARD_PROXY_HOTKEYS_H
#define PGSHARD_PROXY_HOTKEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "router/route.h"

#define HOTKEYS_CAPACITY    128
#define HOTKEYS_TEXT        ROUTE_KEY_TEXT         /* a table name or key value, cut to fit */
#define HOTKEYS_SLOTS       (2 * HOTKEYS_CAPACITY) /* a power of two */
#define HOTKEYS_TABLE_SEEN  64                     /* a power of two */
#define HOTKEYS_MEMO        8   /* tables whose hash state is kept (a power of two) */
#define HOTKEYS_TABLES      512 /* (table, shard) pairs counted; more are dropped */
#define HOTKEYS_HALF_LIFE_S 60  /* the sketch's counts halve this often */

typedef struct hotkey {
	uint64_t hash; /* of table and key, to compare fast */
	char table[HOTKEYS_TEXT];
	char key[HOTKEYS_TEXT];
	int shard;      /* where the key's last statement went */
	uint64_t count; /* estimated statements: never below the true count */
	uint64_t error; /* count - error <= true count */
} hotkey_t;

typedef struct hotkeys_sketch {
	int capacity; /* 1..HOTKEYS_CAPACITY */
	int n;
	hotkey_t items[HOTKEYS_CAPACITY];
	/* where each item is: item numbers + 1 by hash, open addressing (0: free) */
	int16_t slots[HOTKEYS_SLOTS];
	/*
	 * The items grouped by count (Space-Saving's "stream summary"): groups
	 * in a list by rising count (`low`: the smallest), each a list of its
	 * items; an item counted once more moves to the next group up.
	 */
	struct hotkeys_group {
		uint64_t count;
		int16_t first, last; /* its items, the longest in it first */
		int16_t prev, next;  /* groups of smaller and larger counts; -1: none */
	} groups[HOTKEYS_CAPACITY];
	int16_t low;                        /* the group of the smallest count; -1 when empty */
	int16_t free_group;                 /* unused groups, linked by next; -1: none */
	int16_t group_of[HOTKEYS_CAPACITY]; /* each item's group */
	int16_t item_prev[HOTKEYS_CAPACITY], item_next[HOTKEYS_CAPACITY]; /* in it, -1: none */
	/*
	 * The hash's state after a table's name, for the last few names seen (a
	 * statement names a config string: found by its address, checked by its
	 * text, so an address used again for another name is no harm).
	 */
	struct hotkeys_memo {
		const char *src;
		uint64_t hash;
		char text[HOTKEYS_TEXT];
	} memo[HOTKEYS_MEMO];
} hotkeys_sketch_t;

/* Statements on one shard that named one table (route_plan_t.table). */
typedef struct hotkeys_table {
	char table[HOTKEYS_TEXT];
	int shard;
	uint64_t statements;
	const char *src; /* the string it was last counted by (compared, never read) */
} hotkeys_table_t;

/* One worker's counts (or several workers', merged). */
typedef struct hotkeys {
	hotkeys_sketch_t sketch;
	uint64_t shard_statements[SHARD_MAX]; /* routed statements per shard */
	uint64_t shard_recent[SHARD_MAX];     /* the same, halved with the sketch */
	hotkeys_table_t tables[HOTKEYS_TABLES];
	int n_tables;
	int16_t
	    table_seen[HOTKEYS_TABLE_SEEN]; /* tables' numbers + 1 by (src, shard): the fast way */
	uint64_t tables_dropped;            /* statements of pairs that found the table full */
	uint64_t since_us; /* when counting began (stats_now_us), for rates; 0: unset */
	uint64_t aged_us;  /* when the sketch was last halved (or counting began) */
} hotkeys_t;

void hotkeys_init(hotkeys_t *h, int capacity);

/*
 * How many bytes at the start of s (n bytes) are whole, valid UTF-8
 * characters (no overlong forms, surrogates or code points past U+10FFFF).
 * *cut_short tells whether what follows them is only the start of a
 * character that the end of s cut off (a text cut to fit), not bad bytes.
 */
size_t hotkeys_utf8_prefix(const char *s, size_t n, bool *cut_short);

void hotkeys_sketch_init(hotkeys_sketch_t *s, int capacity);
/* n more statements of key `key` of `table`, on `shard`. */
void hotkeys_sketch_add(hotkeys_sketch_t *s, const char *table, const char *key, int shard,
                        uint64_t n);
/*
 * from's entries into `into` (same capacity or not): counts of a key held
 * by both add up; a key held by only one gains the other's smallest count
 * (when the other is full, the key may have been evicted there with up to
 * that many), in count and in error; then the `into->capacity` largest stay.
 */
void hotkeys_sketch_merge(hotkeys_sketch_t *into, const hotkeys_sketch_t *from);
/* Entries by count, largest first (ties by table, then key). */
void hotkeys_sketch_sort(hotkeys_sketch_t *s);

/*
 * A routed statement: each shard it runs on counts one statement, its table
 * (if any) one per shard, and its one key (if any) one in the sketch.
 * Transaction control and refusals are not counted.
 */
void hotkeys_note(hotkeys_t *h, const route_plan_t *p);

/*
 * Halve the sketch (counts rounded down, errors up, so that count - error
 * stays a lower bound; entries at 0 leave) and shard_recent when
 * HOTKEYS_HALF_LIFE_S have passed since aged_us (set to now the first time).
 */
void hotkeys_age(hotkeys_t *h, uint64_t now_us);

/* Everything of from added into `into` (since_us: the earlier one). */
void hotkeys_merge(hotkeys_t *into, const hotkeys_t *from);

#endif
