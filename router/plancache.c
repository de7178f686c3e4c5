/*
 * plancache.c — parsed statements kept by masked text (see plancache.h).
 * The masking itself is router/mask.c.
 */
#include "router/plancache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/classify.h"
#include "router/mask.h"

/* Plans made from literals and parameters longer than this together are not kept. */
#define MEMO_MAX_INPUT 4096

/* ---- the cache ---- */

/*
 * The last plan made from an entry's parse, with what made it: the values
 * of the literals and the caller's parameters (the parse and the config
 * being the entry's and the cache's, route_analyze is a function of
 * these). A call with the same ones gets the same plan without analysis,
 * and the gather plan of a statement on several shards is made once, from
 * the kept parse, and shared (refcounted) by every statement running it.
 */
typedef struct memo {
	uint8_t *in;
	size_t in_len, in_cap;
	route_plan_t plan;
	gather_plan_t *gather; /* NULL until route_gather_cached asks */
	size_t bytes;
} memo_t;

typedef struct entry {
	struct entry *hnext;       /* bucket chain */
	struct entry *prev, *next; /* LRU list, most recent first */
	uint64_t hash;
	char *key;
	size_t key_len;
	route_parsed_t *parsed; /* NULL: uncacheable, route the original text */
	memo_t *memo;
	route_plan_t *generic;  /* a generic plan made from the parse (route_generic_t) */
	size_t gen_at, gen_len; /* where its reason names the value and shard ("v -> shard N") */
	bool gen_value;         /* ... or only the shard (" -> shard N") */
	bool calm;              /* route_plan_t.calm for every text of this key */
	size_t bytes;           /* with the memo's */
} entry_t;

struct route_cache {
	const route_ctx_t *ctx;
	bool reasons; /* route_cache_set_reasons */
	int capacity, n;
	size_t bytes, budget;
	entry_t **buckets;
	size_t n_buckets; /* a power of two */
	entry_t lru;      /* sentinel: lru.next is the most recent */
	route_cache_stats_t stats;
	mask_t m;
	char *last;      /* the text m was made from (a Parse's text comes again at its Bind, a */
	size_t last_len; /* prepared statement's at each Bind): m is not made again for it */
	size_t last_cap;
	uint64_t last_hash; /* of m's key */
	uint8_t *in;        /* this call's memo inputs (see memo_t) */
	size_t in_len, in_cap;
	bool in_ok; /* they fit in MEMO_MAX_INPUT */
};

route_cache_t *route_cache_new(const route_ctx_t *ctx, int capacity)
{
	route_cache_t *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	if (capacity < 1)
		capacity = 1;
	if (capacity > (1 << 20))
		capacity = 1 << 20;
	c->ctx = ctx;
	c->reasons = true;
	c->capacity = capacity;
	c->budget = (size_t)capacity * ROUTE_CACHE_ENTRY_BYTES;
	c->n_buckets = 16;
	while (c->n_buckets < (size_t)capacity * 2)
		c->n_buckets *= 2;
	c->buckets = calloc(c->n_buckets, sizeof *c->buckets);
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	c->lru.next = c->lru.prev = &c->lru;
	return c;
}

static void lru_unlink(entry_t *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_front(route_cache_t *c, entry_t *e)
{
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
}

static void memo_drop(route_cache_t *c, entry_t *e)
{
	memo_t *m = e->memo;

	if (m == NULL)
		return;
	e->bytes -= m->bytes;
	c->bytes -= m->bytes;
	gather_plan_unref(m->gather);
	free(m->in);
	free(m);
	e->memo = NULL;
}

static void generic_drop(route_cache_t *c, entry_t *e)
{
	if (e->generic == NULL)
		return;
	e->bytes -= sizeof *e->generic;
	c->bytes -= sizeof *e->generic;
	free(e->generic);
	e->generic = NULL;
}

static void entry_drop(route_cache_t *c, entry_t *e)
{
	entry_t **pp = &c->buckets[e->hash & (c->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(e);
	memo_drop(c, e);
	generic_drop(c, e);
	c->n--;
	c->bytes -= e->bytes;
	route_parsed_free(e->parsed);
	free(e->key);
	free(e);
}

void route_cache_free(route_cache_t *c)
{
	if (c == NULL)
		return;
	while (c->lru.next != &c->lru)
		entry_drop(c, c->lru.next);
	free(c->buckets);
	mask_free(&c->m);
	free(c->last);
	free(c->in);
	free(c);
}

void route_cache_set_reasons(route_cache_t *c, bool on)
{
	c->reasons = on;
}

void route_cache_stats(const route_cache_t *c, route_cache_stats_t *out)
{
	*out = c->stats;
}

static entry_t *lookup(route_cache_t *c, uint64_t hash)
{
	for (entry_t *e = c->buckets[hash & (c->n_buckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == hash && e->key_len == c->m.key_len &&
		    memcmp(e->key, c->m.key, e->key_len) == 0)
			return e;
	return NULL;
}

/* Drop the least recently used entries while over the bounds, never keep. */
static void trim(route_cache_t *c, const entry_t *keep)
{
	while (c->n > 1 && (c->n > c->capacity || c->bytes > c->budget) && c->lru.prev != keep)
		entry_drop(c, c->lru.prev);
}

/*
 * Whether the effects scan finds nothing in a key's text. Every text of the
 * key has the same words outside its literals, and the scan only ever finds
 * more in a literal (a value spelling advisory_lock pins a session for
 * nothing), so what holds for the masked text holds for them all.
 */
static bool text_is_calm(const char *text, size_t len)
{
	route_effects_t fx;
	bool calm;

	if (route_scan_effects(text, len, &fx) < 0)
		return false;
	calm = !fx.pin && fx.n_sets == 0;
	route_effects_free(&fx);
	return calm;
}

/* Keep parsed (NULL: uncacheable) under the current key; NULL when memory runs out. */
static entry_t *insert(route_cache_t *c, uint64_t hash, route_parsed_t *parsed)
{
	entry_t *e = calloc(1, sizeof *e);

	if (e == NULL || (e->key = malloc(c->m.key_len)) == NULL) {
		free(e);
		return NULL;
	}
	memcpy(e->key, c->m.key, c->m.key_len);
	e->key_len = c->m.key_len;
	e->hash = hash;
	e->parsed = parsed;
	e->calm = text_is_calm(c->m.key, c->m.text_len);
	e->bytes = sizeof *e + e->key_len + (parsed != NULL ? route_parsed_size(parsed) : 0);
	e->hnext = c->buckets[hash & (c->n_buckets - 1)];
	c->buckets[hash & (c->n_buckets - 1)] = e;
	lru_front(c, e);
	c->n++;
	c->bytes += e->bytes;
	trim(c, e);
	return e;
}

/* ---- memos ---- */

static int in_put(route_cache_t *c, const void *data, size_t len)
{
	uint8_t *p;

	if (!c->in_ok)
		return 0;
	if (c->in_len + len > MEMO_MAX_INPUT) {
		c->in_ok = false;
		return 0;
	}
	p = mask_grow(c->in, &c->in_cap, c->in_len + len, 1);
	if (p == NULL)
		return -1;
	c->in = p;
	if (len > 0)
		memcpy(c->in + c->in_len, data, len);
	c->in_len += len;
	return 0;
}

static int in_i32(route_cache_t *c, int32_t v)
{
	return in_put(c, &v, sizeof v);
}

/*
 * This call's memo inputs: the literals' values and the parameters, as
 * bytes (in_ok when they fit; -1 when memory runs out, and in_ok false).
 */
static int serialize_inputs(route_cache_t *c, const route_param_t *params, int n_params)
{
	c->in_len = 0;
	c->in_ok = true;
	if (params == NULL)
		n_params = 0;
	for (int i = 0; i < c->m.n; i++)
		if (in_i32(c, c->m.params[i].len) < 0 ||
		    in_put(c, c->m.params[i].data, (size_t)c->m.params[i].len) < 0)
			return -1;
	if (in_i32(c, n_params) < 0)
		return -1;
	for (int i = 0; i < n_params && c->in_ok; i++) {
		const route_param_t *p = &params[i];

		if (in_i32(c, p->format) < 0 || in_i32(c, (int32_t)p->type_oid) < 0 ||
		    in_i32(c, p->data != NULL ? p->len : -1) < 0 ||
		    (p->data != NULL && p->len > 0 && in_put(c, p->data, (size_t)p->len) < 0))
			return -1;
	}
	return 0;
}

static int inputs(route_cache_t *c, const route_param_t *params, int n_params)
{
	if (c->in_ok)
		return 0; /* already, for this call */
	if (serialize_inputs(c, params, n_params) < 0) {
		c->in_ok = false;
		return -1;
	}
	return 0;
}

static bool memo_matches(const route_cache_t *c, const entry_t *e)
{
	return c->in_ok && e->memo != NULL && e->memo->in_len == c->in_len &&
	       memcmp(e->memo->in, c->in, c->in_len) == 0;
}

/*
 * Keep plan as the entry's memo for this call's inputs (if they fit). Kept
 * are the plans on several shards whose answers the proxy merges (their
 * analysis is the costly one: it checks the gather plan, and the proxy asks
 * for their gather plan right after) and the plans of texts without inputs
 * (BEGIN, COMMIT: every call has the same ones). A statement on one shard
 * by its key rarely comes again with the same value. The memo is reused,
 * not made anew: its cost is that of a copy.
 */
static void memo_keep(route_cache_t *c, entry_t *e, const route_plan_t *plan,
                      const route_param_t *params, int n_params)
{
	memo_t *m = e->memo;
	size_t old, in_len;

	if (plan->merge != ROUTE_MERGE_GATHER && plan->merge != ROUTE_MERGE_COUNT &&
	    (c->m.n > 0 || n_params > 0) && !plan->generic.any_input)
		return; /* an older memo stays: it matches only its own inputs */
	/* the same plan whatever the inputs: kept without them (and matched without them) */
	if (!plan->generic.any_input && (inputs(c, params, n_params) < 0 || !c->in_ok)) {
		memo_drop(c, e);
		return;
	}
	in_len = plan->generic.any_input ? 0 : c->in_len;
	if (m == NULL) {
		m = calloc(1, sizeof *m);
		if (m == NULL)
			return;
		m->bytes = sizeof *m;
		e->memo = m;
		e->bytes += m->bytes;
		c->bytes += m->bytes;
	}
	old = m->bytes;
	gather_plan_unref(m->gather); /* made with the old inputs */
	m->gather = NULL;
	if (in_len > m->in_cap) {
		uint8_t *in = realloc(m->in, in_len);

		if (in == NULL) {
			memo_drop(c, e);
			return;
		}
		m->in = in;
		m->in_cap = in_len;
	}
	if (in_len > 0)
		memcpy(m->in, c->in, in_len);
	m->in_len = in_len;
	route_plan_copy(&m->plan, plan);
	m->bytes = sizeof *m + m->in_cap;
	e->bytes = e->bytes - old + m->bytes;
	c->bytes = c->bytes - old + m->bytes;
	trim(c, e);
}

static size_t gather_bytes(const gather_plan_t *g)
{
	size_t n = sizeof *g + (size_t)g->n_keys * sizeof *g->keys +
	           (size_t)g->n_parts * sizeof *g->parts + strlen(g->shard_sql) + 1 +
	           (size_t)g->n_final_params * sizeof *g->final_params;

	for (int i = 0; i < g->n_parts; i++)
		n += g->parts[i].text != NULL ? strlen(g->parts[i].text) + 1 : 0;
	return n;
}

/* Keep a gather plan with the entry's memo, unless it would make the entry too big. */
static void memo_keep_gather(route_cache_t *c, entry_t *e, gather_plan_t *g)
{
	size_t max =
	    c->budget < ROUTE_CACHE_MAX_ENTRY_BYTES ? c->budget : ROUTE_CACHE_MAX_ENTRY_BYTES;
	size_t n = gather_bytes(g);

	if (e->memo == NULL || e->memo->gather != NULL || e->bytes + n > max)
		return;
	e->memo->gather = gather_plan_ref(g);
	e->memo->bytes += n;
	e->bytes += n;
	c->bytes += n;
	trim(c, e);
}

/* The input holding the generic plan g's key in this call, and its kind; false: not given. */
static bool generic_input(const route_cache_t *c, const route_plan_t *g,
                          const route_param_t *params, int n_params, const route_param_t **v,
                          char *kind)
{
	route_literals_t lits = {c->m.first, c->m.n, c->m.params, c->m.kinds};

	*v = route_input(c->m.n > 0 ? &lits : NULL, params, n_params, g->generic.input, kind);
	return *v != NULL;
}

/* What a reason says where it names a key's value and shard (" 'bob' -> shard 2"). */
static void reason_part(const route_param_t *v, char kind, int input, bool value, int shard,
                        char *out, size_t len)
{
	char desc[64] = "";

	if (value)
		route_input_desc(v, kind, input, desc, sizeof desc);
	/* from the blank before it: "5 -> shard 1" is not "295 -> shard 1"'s */
	snprintf(out, len, "%s%s -> shard %d", value ? " " : "", desc, shard);
}

/* The plan of this call from the entry's generic plan: false when it cannot be made so. */
static bool generic_of(route_cache_t *c, const entry_t *e, const route_param_t *params,
                       int n_params, route_plan_t *out)
{
	const route_plan_t *g = e->generic;
	const route_param_t *v;
	char kind, part[128], reason[sizeof out->reason];

	if (!generic_input(c, g, params, n_params, &v, &kind) ||
	    !route_generic_plan(c->ctx, g, v, kind, out))
		return false;
	if (!c->reasons) {
		out->reason[0] = '\0';
		return true;
	}
	/* the reason as analysis would write it: the value and shard put in */
	reason_part(v, kind, g->generic.input, e->gen_value, shard_set_first(&out->shards), part,
	            sizeof part);
	snprintf(reason, sizeof reason, "%.*s%s%s", (int)e->gen_at, g->reason, part,
	         g->reason + e->gen_at + e->gen_len);
	memcpy(out->reason, reason, sizeof reason);
	return true;
}

/* The one place of needle in hay, or -1 (none, or several). */
static long only_place(const char *hay, const char *needle)
{
	const char *at = strstr(hay, needle);

	if (at == NULL || strstr(at + 1, needle) != NULL)
		return -1;
	return at - hay;
}

/*
 * Keep plan, just made by analysis, as the entry's generic plan when it is
 * one and its reason names the key's value and shard once (or the shard
 * once and not the value); the plan it makes for this very call must be
 * plan (a check of the rule).
 */
static void generic_keep(route_cache_t *c, entry_t *e, const route_plan_t *plan,
                         const route_param_t *params, int n_params)
{
	const route_param_t *v;
	char kind, part[128], desc[64];
	route_plan_t *g, again;
	int shard = shard_set_first(&plan->shards);
	long at;

	if (e->generic != NULL || plan->generic.input <= 0 ||
	    !generic_input(c, plan, params, n_params, &v, &kind))
		return;
	reason_part(v, kind, plan->generic.input, true, shard, part, sizeof part);
	at = only_place(plan->reason, part);
	e->gen_value = at >= 0;
	if (at < 0) {
		route_input_desc(v, kind, plan->generic.input, desc, sizeof desc);
		reason_part(v, kind, plan->generic.input, false, shard, part, sizeof part);
		at = strstr(plan->reason, desc) == NULL ? only_place(plan->reason, part) : -1;
	}
	if (at < 0 || (g = malloc(sizeof *g)) == NULL)
		return;
	*g = *plan;
	e->generic = g;
	e->gen_at = (size_t)at;
	e->gen_len = strlen(part);
	if (!generic_of(c, e, params, n_params, &again) ||
	    memcmp(&again.shards, &plan->shards, sizeof again.shards) != 0 ||
	    (c->reasons && strcmp(again.reason, plan->reason) != 0)) {
		e->generic = NULL;
		free(g);
		return;
	}
	e->bytes += sizeof *g;
	c->bytes += sizeof *g;
	trim(c, e);
}

static int uncached(route_cache_t *c, const char *sql, const route_param_t *params, int n_params,
                    route_plan_t *out)
{
	c->stats.uncacheable++;
	return route_statement(c->ctx, sql, params, n_params, out);
}

static int miss(route_cache_t *c, const char *sql, uint64_t hash, const route_literals_t *lits,
                const route_param_t *params, int n_params, route_plan_t *out, entry_t **ep)
{
	route_parsed_t *orig, *kept;
	entry_t *e;
	size_t max =
	    c->budget < ROUTE_CACHE_MAX_ENTRY_BYTES ? c->budget : ROUTE_CACHE_MAX_ENTRY_BYTES;
	int rc;

	orig = route_parse(sql);
	if (orig == NULL)
		goto nomem;
	kept = orig;
	if (lits != NULL) {
		route_parsed_t *masked = route_parse(c->m.key);

		if (masked == NULL) {
			route_parsed_free(orig);
			goto nomem;
		}
		kept = masked;
		if (!route_parsed_match(orig, masked, lits)) {
			route_parsed_free(masked);
			kept = NULL;
		}
	}
	if (kept != NULL && route_parsed_size(kept) + c->m.key_len > max) {
		if (kept != orig)
			route_parsed_free(kept);
		kept = NULL;
	}
	e = insert(c, hash, kept);
	if (e == NULL) {
		/* not kept: this call still gets its plan */
		if (kept != NULL && kept != orig)
			route_parsed_free(kept);
		kept = NULL;
	}
	if (kept != NULL) {
		c->stats.misses++;
		rc = route_analyze(c->ctx, kept, params, n_params, kept == orig ? NULL : lits, out);
		if (rc == 0) {
			*ep = e;
			memo_keep(c, e, out, params, n_params);
			generic_keep(c, e, out, params, n_params);
		}
	} else {
		c->stats.uncacheable++;
		rc = route_analyze(c->ctx, orig, params, n_params, NULL, out);
	}
	if (kept != orig)
		route_parsed_free(orig);
	return rc;
nomem:
	memset(out, 0, sizeof *out);
	out->key_column = -1;
	return -1;
}

/*
 * route_statement_cached's work. *ep: the entry whose parse made the plan
 * and whose memo now holds it with this call's inputs (when they fit), or
 * NULL when no entry made it (too long, uncacheable, not kept).
 */
static int plan_of(route_cache_t *c, const char *sql, const route_param_t *params, int n_params,
                   route_plan_t *out, entry_t **ep)
{
	size_t len = strlen(sql);
	route_literals_t lits;
	uint64_t hash;
	entry_t *e;
	int rc;

	*ep = NULL;
	if (len > ROUTE_CACHE_MAX_TEXT)
		return uncached(c, sql, params, n_params, out);
	c->in_ok = false; /* this call's inputs: not serialized until a memo needs them */
	if (len != c->last_len || c->last == NULL || memcmp(sql, c->last, len) != 0) {
		char *last = mask_grow(c->last, &c->last_cap, len + 1, 1);

		c->last_len = 0; /* m is not last's until it is made */
		if (last != NULL)
			c->last = last;
		if (last == NULL || mask_text(&c->m, sql, len) < 0) {
			memset(out, 0, sizeof *out);
			out->key_column = -1;
			return -1;
		}
		memcpy(last, sql, len);
		c->last_len = len;
		c->last_hash = c->m.hash;
	}
	lits.first = c->m.first;
	lits.n = c->m.n;
	lits.values = c->m.params;
	lits.kinds = c->m.kinds;
	hash = c->last_hash;
	e = lookup(c, hash);
	if (e == NULL)
		return miss(c, sql, hash, c->m.n > 0 ? &lits : NULL, params, n_params, out, ep);
	lru_unlink(e);
	lru_front(c, e);
	if (e->parsed == NULL)
		return uncached(c, sql, params, n_params, out);
	c->stats.hits++;
	*ep = e;
	if (e->generic != NULL && generic_of(c, e, params, n_params, out)) {
		c->stats.generic++;
		return 0;
	}
	if (e->memo != NULL && (e->memo->plan.generic.any_input ||
	                        (inputs(c, params, n_params) == 0 && memo_matches(c, e)))) {
		c->stats.reused++;
		route_plan_copy(out, &e->memo->plan);
		return 0;
	}
	rc = route_analyze(c->ctx, e->parsed, params, n_params, c->m.n > 0 ? &lits : NULL, out);
	if (rc == 0) {
		memo_keep(c, e, out, params, n_params);
		generic_keep(c, e, out, params, n_params);
	}
	return rc;
}

int route_statement_cached(route_cache_t *c, const char *sql, const route_param_t *params,
                           int n_params, route_plan_t *out)
{
	entry_t *e;
	int rc = plan_of(c, sql, params, n_params, out, &e);

	out->calm = rc == 0 && e != NULL && e->calm;
	return rc;
}

int route_gather_cached(route_cache_t *c, const char *sql, const route_param_t *params,
                        int n_params, gather_plan_t **out, char sqlstate[6], char *err,
                        size_t errlen)
{
	route_literals_t lits = {c->m.first, c->m.n, c->m.params, c->m.kinds};
	route_plan_t rp;
	gather_plan_t *g;
	entry_t *e;
	int rc;

	*out = NULL;
	g = calloc(1, sizeof *g);
	if (g != NULL && strlen(sql) > ROUTE_CACHE_MAX_TEXT) {
		/* never kept: route_gather parses it once, as plan_of would */
		c->stats.uncacheable++;
		e = NULL;
		goto make;
	}
	if (g == NULL || plan_of(c, sql, params, n_params, &rp, &e) < 0) {
		free(g);
		memcpy(sqlstate, "53200", 6);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (e != NULL && memo_matches(c, e) && e->memo->gather != NULL) {
		free(g);
		c->stats.gathers_reused++;
		*out = gather_plan_ref(e->memo->gather);
		return 0;
	}
make:
	if (e != NULL) {
		/* plan_of left this call's literals in c->m */
		lits.first = c->m.first;
		lits.n = c->m.n;
		lits.values = c->m.params;
		lits.kinds = c->m.kinds;
		rc = route_gather_parsed(c->ctx, e->parsed, params, n_params,
		                         c->m.n > 0 ? &lits : NULL, &rp, g, sqlstate, err, errlen);
	} else {
		/* no kept parse: route_gather parses the text (once) */
		rc = route_gather(c->ctx, sql, params, n_params, g, sqlstate, err, errlen);
	}
	if (rc < 0) {
		gather_plan_free(g);
		free(g);
		return -1;
	}
	c->stats.gathers_made++;
	g->refs = 1;
	if (e != NULL && memo_matches(c, e))
		memo_keep_gather(c, e, g);
	*out = g;
	return 0;
}
