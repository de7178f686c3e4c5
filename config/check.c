/*
 * check.c — the second pass: what needs the whole file. References between
 * sections (a table's map, a map's shards, a range's shard, default_shard) may
 * point forward in the file, and a range's bounds are values of the map's key
 * type, which may be written below them; so these are checked here, once
 * everything is read, together with what each section must have (a shard's
 * primary, a map's kind and key, a table's key and map). Messages still name
 * the line where the reference or the value was written. Range bounds leave
 * here in the form the router compares, and ranges sorted by lo.
 */
#include "config/config_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_VNODES 256

static int shard_id_cmp(const void *a, const void *b)
{
	const shard_decl_t *x = a, *y = b;
	return (x->shard.id > y->shard.id) - (x->shard.id < y->shard.id);
}

int check_shards(loader_t *ld)
{
	if (ld->n_shards == 0)
		return loader_fail(
		    ld, 0, "no [shard.N] section (expected at least [shard.0] with a primary)");
	for (int i = 0; i < ld->n_shards; i++) {
		shard_decl_t *d = &ld->shards[i];
		if (d->primary_line == 0)
			return loader_fail(
			    ld, d->line,
			    "[shard.%d] has no primary (expected primary = a libpq connection "
			    "string such as %s)",
			    d->shard.id, CONNINFO_EXAMPLE);
	}
	/* Ids are unique (begin_shard), so after sorting, id i sits at index i unless one is
	 * missing. */
	qsort(ld->shards, (size_t)ld->n_shards, sizeof ld->shards[0], shard_id_cmp);
	for (int i = 0; i < ld->n_shards; i++) {
		shard_decl_t *d = &ld->shards[i];
		if (d->shard.id != i)
			return loader_fail(
			    ld, d->line,
			    "shard %d is missing before [shard.%d] (expected shard ids 0 to %d "
			    "without gaps: add [shard.%d] or renumber)",
			    i, d->shard.id, ld->n_shards - 1, i);
	}
	if (ld->cfg->default_shard >= ld->n_shards)
		return loader_fail(
		    ld, settings_given_at(ld, "proxy", "default_shard"),
		    "[proxy] default_shard: shard %d does not exist (expected an id of a "
		    "[shard.N] section, 0 to %d)",
		    ld->cfg->default_shard, ld->n_shards - 1);
	return 0;
}

static bool shard_exists(const loader_t *ld, int id)
{
	return id >= 0 && id < ld->n_shards;
}

/* Bounds are compared only once normalized (canonical_bound), and never unbounded. */
static int bound_cmp(cfg_key_type_t key, const char *a, const char *b)
{
	if (key == CFG_KEY_BIGINT) {
		long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
		return (x > y) - (x < y);
	}
	/* text: bytewise (strcmp compares as unsigned char); uuid: canonical lower-case hex */
	return strcmp(a, b);
}

/*
 * Rewrite a bound in the form the router compares: bigint in plain decimal,
 * uuid as lower-case 8-4-4-4-12, text as written. Returns false when the bound
 * is not a value of the key type, or (*nomem set) when memory ran out.
 */
static bool canonical_bound(cfg_key_type_t key, char **bound, bool *nomem)
{
	char buf[40];
	*nomem = false;
	if (key == CFG_KEY_TEXT)
		return true;
	if (key == CFG_KEY_BIGINT) {
		long long v;
		if (values_parse_ll(*bound, &v) != NUM_OK)
			return false;
		snprintf(buf, sizeof buf, "%lld", v);
	} else {
		char hex[32];
		int n = 0;
		const char *p = *bound;
		size_t len = strlen(p);
		if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
			p++;
			len -= 2;
		}
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '-' && i > 0 && i + 1 < len && p[i + 1] != '-')
				continue;
			if (!isxdigit((unsigned char)p[i]) || n == 32)
				return false;
			hex[n++] = (char)tolower((unsigned char)p[i]);
		}
		if (n != 32)
			return false;
		snprintf(buf, sizeof buf, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		         hex + 16, hex + 20);
	}
	char *c = strdup(buf);
	if (c == NULL) {
		*nomem = true;
		return false;
	}
	free(*bound);
	*bound = c;
	return true;
}

static void describe_range(const cfg_range_t *r, char *buf, size_t size)
{
	snprintf(buf, size, "[%s, %s)", r->lo ? r->lo : "-inf", r->hi ? r->hi : "+inf");
}

/* Unbounded lo sorts first. */
static int range_lo_cmp(cfg_key_type_t key, const cfg_range_t *a, const cfg_range_t *b)
{
	if (a->lo == NULL || b->lo == NULL)
		return (a->lo != NULL) - (b->lo != NULL);
	return bound_cmp(key, a->lo, b->lo);
}

static int check_ranges(loader_t *ld, map_decl_t *d)
{
	cfg_map_t *m = &d->map;
	static const char *const expect[] = {
	    [CFG_KEY_BIGINT] = "an integer or '-'",
	    [CFG_KEY_TEXT] = "a string or '-'",
	    [CFG_KEY_UUID] = "a uuid or '-'",
	};

	for (int i = 0; i < m->n_ranges; i++) {
		cfg_range_t *r = &m->ranges[i];
		char **bounds[2] = {&r->lo, &r->hi};
		for (int b = 0; b < 2; b++) {
			bool nomem;
			if (*bounds[b] == NULL || canonical_bound(m->key, bounds[b], &nomem))
				continue;
			if (nomem)
				return loader_oom(ld);
			return loader_fail(ld, r->line,
			                   "[map.%s] range: %s '%s' is not a %s (expected %s)",
			                   m->name, b == 0 ? "lo" : "hi", *bounds[b],
			                   sections_key_type_names[m->key], expect[m->key]);
		}
		if (r->lo != NULL && r->hi != NULL && bound_cmp(m->key, r->lo, r->hi) >= 0)
			return loader_fail(
			    ld, r->line,
			    "[map.%s] range: lo %s is not below hi %s (expected lo < hi: lo "
			    "is inclusive, hi exclusive)",
			    m->name, r->lo, r->hi);
		if (!shard_exists(ld, r->shard))
			return loader_fail(
			    ld, r->line,
			    "[map.%s] range: shard %d does not exist (expected an id of a "
			    "[shard.N] section)",
			    m->name, r->shard);
	}

	/* insertion sort: few ranges, and qsort has no way to pass the key type */
	for (int i = 1; i < m->n_ranges; i++) {
		cfg_range_t r = m->ranges[i];
		int j = i;
		for (; j > 0 && range_lo_cmp(m->key, &m->ranges[j - 1], &r) > 0; j--)
			m->ranges[j] = m->ranges[j - 1];
		m->ranges[j] = r;
	}

	/*
	 * Sorted by lo, with lo < hi in each, ranges are disjoint exactly when each
	 * one ends at or before the next one starts.
	 */
	for (int i = 1; i < m->n_ranges; i++) {
		const cfg_range_t *prev = &m->ranges[i - 1], *cur = &m->ranges[i];
		if (prev->hi != NULL && cur->lo != NULL &&
		    bound_cmp(m->key, cur->lo, prev->hi) >= 0)
			continue;
		const cfg_range_t *later = cur->line > prev->line ? cur : prev;
		const cfg_range_t *earlier = later == cur ? prev : cur;
		char a[128], b[128];
		describe_range(later, a, sizeof a);
		describe_range(earlier, b, sizeof b);
		return loader_fail(
		    ld, later->line,
		    "[map.%s] range: %s overlaps %s at line %d (expected ranges that do "
		    "not overlap)",
		    m->name, a, b, earlier->line);
	}
	return 0;
}

int check_maps(loader_t *ld)
{
	for (int i = 0; i < ld->n_maps; i++) {
		map_decl_t *d = &ld->maps[i];
		cfg_map_t *m = &d->map;
		if (d->kind_line == 0)
			return loader_fail(
			    ld, d->line,
			    "[map.%s] has no kind (expected kind = hash or kind = range)", m->name);
		if (d->key_line == 0)
			return loader_fail(
			    ld, d->line,
			    "[map.%s] has no key (expected key = bigint, text or uuid)", m->name);
		if (m->kind == CFG_MAP_HASH) {
			if (m->n_ranges > 0)
				return loader_fail(
				    ld, m->ranges[0].line,
				    "[map.%s] range: not allowed in a hash map (expected "
				    "shards = and vnodes = here, or kind = range)",
				    m->name);
			if (d->shards_line == 0)
				return loader_fail(
				    ld, d->line,
				    "[map.%s] has no shards (expected shards = a comma list "
				    "of shard ids)",
				    m->name);
			for (int j = 0; j < m->n_shards; j++) {
				if (!shard_exists(ld, m->shards[j]))
					return loader_fail(
					    ld, d->shards_line,
					    "[map.%s] shards: shard %d does not exist "
					    "(expected an id of a [shard.N] section)",
					    m->name, m->shards[j]);
			}
			if (d->vnodes_line == 0)
				m->vnodes = DEFAULT_VNODES;
			continue;
		}
		if (d->shards_line != 0 || d->vnodes_line != 0)
			return loader_fail(
			    ld, d->shards_line != 0 ? d->shards_line : d->vnodes_line,
			    "[map.%s] %s: not allowed in a range map (expected range = LO "
			    "HI SHARD lines, or kind = hash)",
			    m->name, d->shards_line != 0 ? "shards" : "vnodes");
		if (m->n_ranges == 0)
			return loader_fail(
			    ld, d->line,
			    "[map.%s] has no ranges (expected range = LO HI SHARD lines)", m->name);
		if (check_ranges(ld, d) < 0)
			return -1;
	}
	return 0;
}

int check_tables(loader_t *ld)
{
	for (int i = 0; i < ld->n_tables; i++) {
		table_decl_t *d = &ld->tables[i];
		cfg_table_t *t = &d->table;
		bool sharded = d->key_line != 0 || d->map_line != 0;

		if (t->reference && sharded)
			return loader_fail(
			    ld, d->key_line != 0 ? d->key_line : d->map_line,
			    "[%s] has both reference = yes and a shard %s (expected either "
			    "reference = yes, or key = COLUMN and map = NAME)",
			    d->section, d->key_line != 0 ? "key" : "map");
		if (t->reference)
			continue;
		if (!sharded)
			return loader_fail(
			    ld, d->line,
			    "[%s] is neither a reference table nor sharded (expected "
			    "reference = yes, or key = COLUMN and map = NAME)",
			    d->section);
		if (d->key_line == 0 || d->map_line == 0)
			return loader_fail(ld, d->line,
			                   "[%s] has a %s but no %s (expected both key = "
			                   "COLUMN and map = NAME)",
			                   d->section, d->key_line != 0 ? "key" : "map",
			                   d->key_line != 0 ? "map" : "key");
		for (int j = 0; j < ld->n_maps && t->map < 0; j++) {
			if (strcmp(ld->maps[j].map.name, d->map_name) == 0)
				t->map = j;
		}
		if (t->map < 0) {
			char names[256] = "";
			size_t len = 0;
			for (int j = 0; j < ld->n_maps; j++) {
				int n = snprintf(names + len, sizeof names - len, "%s%s",
				                 len ? ", " : "", ld->maps[j].map.name);
				if (n > 0 && (size_t)n < sizeof names - len)
					len += (size_t)n;
			}
			return loader_fail(
			    ld, d->map_line,
			    "[%s] map: map '%s' does not exist (expected the NAME of a "
			    "[map.NAME] section%s%s)",
			    d->section, d->map_name, len ? ": " : "", names);
		}
	}
	return 0;
}

/*
 * An admin the users file does not list could never log in (unless every
 * login is trusted): say so now rather than at the first failed login.
 */
int check_admin_users(loader_t *ld)
{
	const cfg_t *cfg = ld->cfg;

	if (cfg->auth_method == CFG_AUTH_TRUST || cfg->users_path == NULL)
		return 0;
	for (int i = 0; i < cfg->admin_users.n; i++) {
		if (cfg_find_user(cfg, cfg->admin_users.names[i]) == NULL)
			return loader_fail(
			    ld, settings_given_at(ld, "proxy", "admin_users"),
			    "[proxy] admin_users: user '%s' is not in the users file "
			    "%s (expected a user who can log in)",
			    cfg->admin_users.names[i], cfg->users_path);
	}
	return 0;
}
