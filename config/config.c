/*
 * config.c — pgshard's INI file -> one validated, immutable cfg_t.
 *
 * Loading runs in two passes. The first walks the file once: inih splits each
 * line into key and value, and the handlers below parse every value where it
 * stands, so that a bad value is reported at its own line. References between
 * sections (a table's map, a map's shards, default_shard) may point forward in
 * the file, so they are checked in a second pass once everything is read; those
 * messages still name the line where the reference was written.
 *
 * [proxy] and [auth] settings are declared once, in settings[] (settings.c)
 * (PgBouncer-style): adding a setting is adding a row. The sections that repeat
 * ([shard.N], [map.NAME], [table.NAME]) have a few keys of their own each, read
 * by one function per section kind into a "decl" that also remembers the lines
 * the second pass needs. Only a fully valid load moves the decls into a cfg_t.
 *
 * Why inih reads through our own line reader (read_line) and not ini_parse():
 *  - Line numbers. inih can pass them to the handler only when built with
 *    INI_HANDLER_LINENO, and Debian's libinih is not. The reader counts lines.
 *  - Section headers. inih calls the handler for key lines only, so a section
 *    with no keys ([shard.2] without primary, a misspelt [prxy]) would go
 *    unnoticed. The reader sees every header and opens the section itself.
 *  - Indentation. inih (like Python's configparser) treats an indented line as
 *    the continuation of the previous value, so an indented "pool_size = 20"
 *    would silently be appended to the key above it. The reader strips leading
 *    whitespace; continuation lines do not exist in pgshard's format.
 *  - Line length. inih's line buffer is fixed (200 bytes in Debian's build) and
 *    a longer line is silently cut in two. The reader refuses such a line with
 *    a message instead (comments do not count towards the limit).
 *  - Comments. A line starting with ';' or '#' is a comment, and so is the rest
 *    of a line from a ';' that follows whitespace (`pool_size = 20 ; note`),
 *    exactly inih's default rule; the reader applies it itself so that the
 *    format does not depend on how inih was built. A ';' with no space before
 *    it is data: `password=a;b` keeps its ';'.
 */
#include "config/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <libpq-fe.h>

#define DEFAULT_VNODES 256
#define MAX_VNODES     65536

static const char *const key_type_names[] = {
    [CFG_KEY_BIGINT] = "bigint",
    [CFG_KEY_TEXT] = "text",
    [CFG_KEY_UUID] = "uuid",
};

static const char *const map_kind_names[] = {
    [CFG_MAP_HASH] = "hash",
    [CFG_MAP_RANGE] = "range",
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Returns arr with room for one more element after its n, or NULL (arr
 * untouched) when out of memory. Capacity is implied by n: 4, then doubling.
 */
static void *array_room(void *arr, int n, size_t elsize)
{
	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return arr;
	size_t cap = n == 0 ? 4 : (size_t)n * 2;
	return realloc(arr, cap * elsize);
}

static void free_shard(cfg_shard_t *s)
{
	values_free_node(&s->primary);
	for (int i = 0; i < s->n_replicas; i++)
		values_free_node(&s->replicas[i]);
	free(s->replicas);
}

static void free_map(cfg_map_t *m)
{
	free(m->name);
	free(m->shards);
	for (int i = 0; i < m->n_ranges; i++) {
		free(m->ranges[i].lo);
		free(m->ranges[i].hi);
	}
	free(m->ranges);
}

static void free_table(cfg_table_t *t)
{
	free(t->name);
	free(t->key);
}

/* ------------------------------------------------------------------------ */
/* Sections                                                                  */
/* ------------------------------------------------------------------------ */

static int shard_key(loader_t *ld, const char *name, const char *value)
{
	shard_decl_t *d = &ld->shards[ld->sec_index];
	cfg_shard_t *s = &d->shard;

	if (strcmp(name, "primary") == 0) {
		if (loader_once(ld, &d->primary_line, name) < 0)
			return -1;
		return values_parse_node(ld, name, value, &s->primary);
	}
	if (strcmp(name, "replica") == 0) {
		cfg_node_t *r = array_room(s->replicas, s->n_replicas, sizeof *r);
		if (r == NULL)
			return loader_oom(ld);
		s->replicas = r;
		if (values_parse_node(ld, name, value, &s->replicas[s->n_replicas]) < 0)
			return -1;
		s->n_replicas++;
		return 0;
	}
	return loader_unknown_key(ld, name, "primary, replica");
}

/* shards = 0, 1, 2 */
static int parse_shard_list(loader_t *ld, const char *value, cfg_map_t *m)
{
	const char *p = value;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		const char *start = p;
		while (*p != '\0' && *p != ',')
			p++;
		const char *end = p;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		char item[32];
		long long id;
		size_t len = (size_t)(end - start);
		if (len == 0 || len >= sizeof item)
			goto bad;
		memcpy(item, start, len);
		item[len] = '\0';
		if (values_parse_ll(item, &id) != NUM_OK || id < 0 || id > INT_MAX)
			goto bad;
		for (int i = 0; i < m->n_shards; i++) {
			if (m->shards[i] == id)
				return loader_fail(
				    ld, ld->line,
				    "[%s] shards: shard %lld is listed twice (expected each "
				    "shard once)",
				    ld->sec_name, id);
		}
		int *a = array_room(m->shards, m->n_shards, sizeof *a);
		if (a == NULL)
			return loader_oom(ld);
		m->shards = a;
		m->shards[m->n_shards++] = (int)id;
		if (*p == '\0')
			return 0;
		p++; /* the comma */
	}
bad:
	return loader_fail(
	    ld, ld->line,
	    "[%s] shards: '%s' is not a list of shard ids (expected ids separated by "
	    "commas, e.g. shards = 0, 1, 2)",
	    ld->sec_name, value);
}

/*
 * range = LO HI SHARD. Only the shape is checked here: whether LO and HI are
 * valid depends on the map's key type, which may be written below the ranges,
 * so the second pass checks them (check_ranges).
 */
static int parse_range(loader_t *ld, const char *value, cfg_map_t *m)
{
	const char *tok[4];
	size_t len[4];
	int n = 0;
	for (const char *p = value; *p != '\0';) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		if (n == 4)
			break;
		tok[n] = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		len[n] = (size_t)(p - tok[n]);
		n++;
	}
	long long shard = -1;
	char id[32] = "";
	if (n == 3 && len[2] < sizeof id) {
		memcpy(id, tok[2], len[2]);
		id[len[2]] = '\0';
	}
	if (n != 3 || values_parse_ll(id, &shard) != NUM_OK || shard < 0 || shard > INT_MAX)
		return loader_fail(
		    ld, ld->line,
		    "[%s] range: '%s' is not LO HI SHARD (expected e.g. range = - 1000000 0: "
		    "lo inclusive, hi exclusive, '-' for unbounded, then a shard id)",
		    ld->sec_name, value);

	cfg_range_t r = {.shard = (int)shard, .line = ld->line};
	bool lo_open = len[0] == 1 && tok[0][0] == '-';
	bool hi_open = len[1] == 1 && tok[1][0] == '-';
	r.lo = lo_open ? NULL : dup_range(tok[0], len[0]);
	r.hi = hi_open ? NULL : dup_range(tok[1], len[1]);
	cfg_range_t *a = array_room(m->ranges, m->n_ranges, sizeof *a);
	if ((!lo_open && r.lo == NULL) || (!hi_open && r.hi == NULL) || a == NULL) {
		free(r.lo);
		free(r.hi);
		return loader_oom(ld);
	}
	m->ranges = a;
	m->ranges[m->n_ranges++] = r;
	return 0;
}

static int map_key(loader_t *ld, const char *name, const char *value)
{
	map_decl_t *d = &ld->maps[ld->sec_index];
	cfg_map_t *m = &d->map;

	if (strcmp(name, "kind") == 0) {
		if (loader_once(ld, &d->kind_line, name) < 0)
			return -1;
		int k = values_lookup_name(map_kind_names, COUNT(map_kind_names), value);
		if (k < 0)
			return loader_fail(
			    ld, ld->line,
			    "[%s] kind: unknown map kind '%s' (expected hash or range)",
			    ld->sec_name, value);
		m->kind = (cfg_map_kind_t)k;
		return 0;
	}
	if (strcmp(name, "key") == 0) {
		if (loader_once(ld, &d->key_line, name) < 0)
			return -1;
		int k = values_lookup_name(key_type_names, COUNT(key_type_names), value);
		if (k < 0)
			return loader_fail(
			    ld, ld->line,
			    "[%s] key: unknown key type '%s' (expected bigint, text or uuid)",
			    ld->sec_name, value);
		m->key = (cfg_key_type_t)k;
		return 0;
	}
	if (strcmp(name, "shards") == 0) {
		if (loader_once(ld, &d->shards_line, name) < 0)
			return -1;
		return parse_shard_list(ld, value, m);
	}
	if (strcmp(name, "vnodes") == 0) {
		if (loader_once(ld, &d->vnodes_line, name) < 0)
			return -1;
		long long n;
		num_result_t r = values_parse_ll(value, &n);
		if (r != NUM_OK || n < 1 || n > MAX_VNODES)
			return loader_fail(
			    ld, ld->line, "[%s] vnodes: '%s' %s (expected an integer from 1 to %d)",
			    ld->sec_name, value,
			    r == NUM_BAD ? "is not an integer" : "is out of range", MAX_VNODES);
		m->vnodes = (int)n;
		return 0;
	}
	if (strcmp(name, "range") == 0)
		return parse_range(ld, value, m);
	return loader_unknown_key(ld, name, "kind, key, shards, vnodes, range");
}

static int table_key(loader_t *ld, const char *name, const char *value)
{
	table_decl_t *d = &ld->tables[ld->sec_index];
	cfg_table_t *t = &d->table;

	if (strcmp(name, "reference") == 0) {
		if (loader_once(ld, &d->reference_line, name) < 0)
			return -1;
		if (!values_parse_bool(value, &t->reference))
			return loader_fail(
			    ld, ld->line,
			    "[%s] reference: '%s' is not a boolean (expected yes, no, true, "
			    "false, on, off, 1 or 0)",
			    ld->sec_name, value);
		return 0;
	}
	if (strcmp(name, "key") == 0) {
		if (loader_once(ld, &d->key_line, name) < 0)
			return -1;
		bool nomem;
		t->key = values_normalize_ident(value, false, &nomem);
		if (t->key == NULL)
			return nomem ? loader_oom(ld)
			             : loader_fail(
			                   ld, ld->line,
			                   "[%s] key: '%s' is not a column name (expected an SQL "
			                   "name such as user_id or \"UserId\")",
			                   ld->sec_name, value);
		return 0;
	}
	if (strcmp(name, "map") == 0) {
		if (loader_once(ld, &d->map_line, name) < 0)
			return -1;
		if (*value == '\0')
			return loader_fail(
			    ld, ld->line,
			    "[%s] map: empty map name (expected the NAME of a [map.NAME] "
			    "section)",
			    ld->sec_name);
		d->map_name = strdup(value);
		return d->map_name == NULL ? loader_oom(ld) : 0;
	}
	return loader_unknown_key(ld, name, "reference, key, map");
}

/* inih's handler: one key = value line of the current section. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	loader_t *ld = user;
	int rc;

	(void)section; /* the line reader tracks sections itself */
	if (ld->failed)
		return 0;
	switch (ld->sec) {
	case SEC_PROXY:
	case SEC_AUTH:
		rc = settings_key(ld, name, value);
		break;
	case SEC_SHARD:
		rc = shard_key(ld, name, value);
		break;
	case SEC_MAP:
		rc = map_key(ld, name, value);
		break;
	case SEC_TABLE:
		rc = table_key(ld, name, value);
		break;
	default:
		rc = loader_fail(ld, ld->line,
		                 "key '%s' outside any section (expected a section header such as "
		                 "[proxy] above it)",
		                 name);
		break;
	}
	return rc == 0;
}

static int duplicate_section(loader_t *ld, const char *name, int first_line)
{
	return loader_fail(ld, ld->line,
	                   "duplicate section [%s], first at line %d (expected each "
	                   "section once)",
	                   name, first_line);
}

static int begin_shard(loader_t *ld, const char *name, const char *id_text)
{
	long long id;
	bool canonical =
	    isdigit((unsigned char)id_text[0]) && (id_text[0] != '0' || id_text[1] == '\0');
	if (!canonical || values_parse_ll(id_text, &id) != NUM_OK || id > INT_MAX)
		return loader_fail(
		    ld, ld->line,
		    "bad section name [%s] (expected [shard.N] with N a shard id: 0, 1, 2...)",
		    name);
	for (int i = 0; i < ld->n_shards; i++) {
		if (ld->shards[i].shard.id == id)
			return duplicate_section(ld, name, ld->shards[i].line);
	}
	shard_decl_t *a = array_room(ld->shards, ld->n_shards, sizeof *a);
	if (a == NULL)
		return loader_oom(ld);
	ld->shards = a;
	ld->sec_index = ld->n_shards++;
	a[ld->sec_index] = (shard_decl_t){.shard = {.id = (int)id}, .line = ld->line};
	ld->sec = SEC_SHARD;
	return 0;
}

static int begin_map(loader_t *ld, const char *name, const char *map_name)
{
	bool ok = *map_name != '\0';
	for (const char *p = map_name; *p != '\0'; p++)
		ok = ok && (isalnum((unsigned char)*p) || *p == '_' || *p == '-');
	if (!ok)
		return loader_fail(
		    ld, ld->line,
		    "bad section name [%s] (expected [map.NAME] with a NAME made of letters, "
		    "digits, '_' and '-')",
		    name);
	for (int i = 0; i < ld->n_maps; i++) {
		if (strcmp(ld->maps[i].map.name, map_name) == 0)
			return duplicate_section(ld, name, ld->maps[i].line);
	}
	map_decl_t *a = array_room(ld->maps, ld->n_maps, sizeof *a);
	if (a == NULL)
		return loader_oom(ld);
	ld->maps = a;
	map_decl_t d = {.map = {.name = strdup(map_name)}, .line = ld->line};
	if (d.map.name == NULL)
		return loader_oom(ld);
	ld->sec_index = ld->n_maps++;
	a[ld->sec_index] = d;
	ld->sec = SEC_MAP;
	return 0;
}

static int begin_table(loader_t *ld, const char *name, const char *table_name)
{
	bool nomem;
	char *norm = values_normalize_ident(table_name, true, &nomem);
	if (norm == NULL)
		return nomem ? loader_oom(ld)
		             : loader_fail(
		                   ld, ld->line,
		                   "bad table name in [%s] (expected an SQL name such as "
		                   "[table.users], [table.public.users] or [table.\"MixedCase\"])",
		                   name);
	for (int i = 0; i < ld->n_tables; i++) {
		if (strcmp(ld->tables[i].table.name, norm) == 0) {
			free(norm);
			return duplicate_section(ld, name, ld->tables[i].line);
		}
	}
	table_decl_t *a = array_room(ld->tables, ld->n_tables, sizeof *a);
	table_decl_t d = {
	    .table = {.name = norm, .map = -1}, .section = strdup(name), .line = ld->line};
	if (a == NULL || d.section == NULL) {
		if (a != NULL)
			ld->tables = a;
		free(norm);
		free(d.section);
		return loader_oom(ld);
	}
	ld->tables = a;
	ld->sec_index = ld->n_tables++;
	a[ld->sec_index] = d;
	ld->sec = SEC_TABLE;
	return 0;
}

/* A "[name]" line (without comment and surrounding whitespace) opens a section. */
static int begin_section(loader_t *ld, const char *text, size_t len)
{
	if (len < 2 || text[len - 1] != ']')
		return loader_fail(
		    ld, ld->line,
		    "section header without closing ']' (expected [name] alone on its line)");
	const char *start = text + 1, *end = text + len - 1;
	while (start < end && isspace((unsigned char)*start))
		start++;
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	char *name = dup_range(start, (size_t)(end - start));
	if (name == NULL)
		return loader_oom(ld);
	free(ld->sec_name);
	ld->sec_name = name;
	ld->sec = SEC_NONE;

	if (strcmp(name, "proxy") == 0 || strcmp(name, "auth") == 0) {
		bool proxy = name[0] == 'p';
		int *first = proxy ? &ld->proxy_line : &ld->auth_line;
		if (*first != 0)
			return duplicate_section(ld, name, *first);
		*first = ld->line;
		ld->sec = proxy ? SEC_PROXY : SEC_AUTH;
		return 0;
	}
	if (strncmp(name, "shard.", 6) == 0)
		return begin_shard(ld, name, name + 6);
	if (strncmp(name, "map.", 4) == 0)
		return begin_map(ld, name, name + 4);
	if (strncmp(name, "table.", 6) == 0)
		return begin_table(ld, name, name + 6);
	return loader_fail(
	    ld, ld->line,
	    "unknown section [%s] (expected [proxy], [auth], [shard.N], [map.NAME] or "
	    "[table.NAME])",
	    name);
}

/*
 * inih's reader: hands inih one line at a time from the text, counting lines,
 * opening sections, and stripping indentation and comments (see the comment at
 * the top of this file for why). Returns NULL at the end or after an error,
 * which ends the parse.
 */
static char *read_line(char *buf, int size, void *stream)
{
	loader_t *ld = stream;
	if (ld->failed || *ld->pos == '\0')
		return NULL;

	const char *start = ld->pos;
	const char *eol = strchr(start, '\n');
	if (eol == NULL)
		eol = start + strlen(start);
	ld->pos = *eol == '\n' ? eol + 1 : eol;
	ld->line++;

	while (start < eol && isspace((unsigned char)*start))
		start++;
	const char *end = start;
	if (*start != ';' && *start != '#') {
		bool was_space = false;
		while (end < eol && !(was_space && *end == ';')) {
			was_space = isspace((unsigned char)*end);
			end++;
		}
	}
	while (end > start && isspace((unsigned char)end[-1]))
		end--;
	size_t len = (size_t)(end - start);

	if (len > 0 && *start == '[' && begin_section(ld, start, len) < 0)
		return NULL;
	if (size < 2 || len > (size_t)size - 2) {
		loader_fail(
		    ld, ld->line,
		    "line too long: %zu characters (expected at most %d, the longest line inih "
		    "reads; comments do not count)",
		    len, size - 2);
		return NULL;
	}
	memcpy(buf, start, len);
	buf[len] = '\n';
	buf[len + 1] = '\0';
	return buf;
}

/* ------------------------------------------------------------------------ */
/* Second pass: what needs the whole file                                    */
/* ------------------------------------------------------------------------ */

static int shard_id_cmp(const void *a, const void *b)
{
	const shard_decl_t *x = a, *y = b;
	return (x->shard.id > y->shard.id) - (x->shard.id < y->shard.id);
}

static int check_shards(loader_t *ld)
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
			                   key_type_names[m->key], expect[m->key]);
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

static int check_maps(loader_t *ld)
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

static int check_tables(loader_t *ld)
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

/* ------------------------------------------------------------------------ */
/* The users file                                                            */
/* ------------------------------------------------------------------------ */

/*
 * One "..." field of the users file at *p, with "" standing for one quote.
 * Returns the unquoted text, or NULL (*nomem tells why) when there is no
 * well-formed quoted field there.
 */
static char *users_field(const char **p, bool *nomem)
{
	const char *s = *p;
	*nomem = false;
	if (*s != '"')
		return NULL;
	size_t n = 0;
	const char *q = s + 1;
	for (;; q++) {
		if (*q == '\0' || *q == '\n')
			return NULL;
		if (*q == '"' && q[1] == '"')
			q++;
		else if (*q == '"')
			break;
		n++;
	}
	char *out = malloc(n + 1);
	if (out == NULL) {
		*nomem = true;
		return NULL;
	}
	char *o = out;
	for (q = s + 1; !(*q == '"' && q[1] != '"'); q++) {
		if (*q == '"')
			q++;
		*o++ = *q;
	}
	*o = '\0';
	*p = q + 1;
	return out;
}

static int user_name_cmp(const void *a, const void *b)
{
	const cfg_user_t *x = a, *y = b;
	return strcmp(x->name, y->name);
}

typedef struct user_line {
	cfg_user_t user;
	int line;
} user_line_t;

/* By name, then by line: duplicates end up next to each other, first one first. */
static int user_line_cmp(const void *a, const void *b)
{
	const user_line_t *x = a, *y = b;
	int c = strcmp(x->user.name, y->user.name);
	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/*
 * PgBouncer's auth_file format: `"user" "password"` per line. Fields after the
 * password are ignored, as PgBouncer does (old files carry more). Users are
 * stored sorted by name, so that cfg_find_user can bisect.
 */
static int parse_users(loader_t *ld, const char *path, const char *text)
{
	cfg_t *cfg = ld->cfg;
	int *lines = NULL; /* of each user, for the duplicate message */
	int rc = 0;
	int lineno = 0;

	for (const char *p = text; *p != '\0' && rc == 0;) {
		const char *eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		lineno++;
		const char *s = p;
		p = *eol == '\n' ? eol + 1 : eol;

		while (s < eol && isspace((unsigned char)*s))
			s++;
		if (s == eol || *s == ';' || *s == '#')
			continue;

		bool nomem;
		char *name = users_field(&s, &nomem);
		char *password = NULL;
		if (name != NULL) {
			while (*s == ' ' || *s == '\t')
				s++;
			password = users_field(&s, &nomem);
		}
		if (password == NULL || !(s == eol || isspace((unsigned char)*s))) {
			free(name);
			free(password);
			rc = nomem ? loader_oom(ld)
			           : loader_fail_in(
			                 ld, path, lineno,
			                 "cannot parse user line (expected \"user\" \"password\", "
			                 "with \"\" for a quote inside quotes)");
			break;
		}
		if (*name == '\0') {
			free(name);
			free(password);
			rc = loader_fail_in(ld, path, lineno,
			                    "empty user name (expected \"user\" \"password\")");
			break;
		}
		cfg_user_t *u = array_room(cfg->users, cfg->n_users, sizeof *u);
		if (u != NULL)
			cfg->users = u;
		int *l = array_room(lines, cfg->n_users, sizeof *l);
		if (l != NULL)
			lines = l;
		if (u == NULL || l == NULL) {
			free(name);
			free(password);
			rc = loader_oom(ld);
			break;
		}
		lines[cfg->n_users] = lineno;
		cfg->users[cfg->n_users++] = (cfg_user_t){.name = name, .password = password};
	}
	if (rc != 0) {
		free(lines);
		return rc;
	}

	/* Sort users by name, for cfg_find_user and to find duplicates. */
	user_line_t *pairs = cfg->n_users ? malloc((size_t)cfg->n_users * sizeof *pairs) : NULL;
	if (cfg->n_users && pairs == NULL) {
		free(lines);
		return loader_oom(ld);
	}
	for (int i = 0; i < cfg->n_users; i++)
		pairs[i] = (user_line_t){cfg->users[i], lines[i]};
	free(lines);
	if (cfg->n_users > 1)
		qsort(pairs, (size_t)cfg->n_users, sizeof *pairs, user_line_cmp);
	for (int i = 0; i < cfg->n_users; i++) {
		cfg->users[i] = pairs[i].user;
		if (i == 0 || strcmp(pairs[i].user.name, pairs[i - 1].user.name) != 0)
			continue;
		loader_fail_in(
		    ld, path, pairs[i].line,
		    "user '%s' is listed twice, first at line %d (expected each user once)",
		    pairs[i].user.name, pairs[i - 1].line);
		rc = -1;
	}
	free(pairs);
	return rc;
}

static int load_users(loader_t *ld)
{
	cfg_t *cfg = ld->cfg;
	if (cfg->users_path == NULL) {
		if (cfg->auth_method == CFG_AUTH_TRUST)
			return 0;
		return loader_fail(
		    ld, settings_given_at(ld, "auth", "method"),
		    "[auth] method = %s needs a users file (expected users = PATH in "
		    "[auth], a file of \"user\" \"password\" lines)",
		    cfg_auth_method_name(cfg->auth_method));
	}
	char *text = NULL;
	const char *op;
	int e = loader_read_file(cfg->users_path, &text, &op);
	if (e != 0)
		return loader_fail(
		    ld, settings_given_at(ld, "auth", "users"),
		    "[auth] users: cannot %s '%s': %s (expected a readable users file)", op,
		    cfg->users_path, e == EINVAL ? "contains a NUL byte" : strerror(e));
	int rc = parse_users(ld, cfg->users_path, text);
	free(text);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Entry points                                                              */
/* ------------------------------------------------------------------------ */

static void free_decls(loader_t *ld)
{
	for (int i = 0; i < ld->n_shards; i++)
		free_shard(&ld->shards[i].shard);
	for (int i = 0; i < ld->n_maps; i++)
		free_map(&ld->maps[i].map);
	for (int i = 0; i < ld->n_tables; i++) {
		free_table(&ld->tables[i].table);
		free(ld->tables[i].section);
		free(ld->tables[i].map_name);
	}
	free(ld->shards);
	free(ld->maps);
	free(ld->tables);
	ld->n_shards = ld->n_maps = ld->n_tables = 0;
}

/* Move the checked decls into cfg; after this, the decls own nothing. */
static int adopt_decls(loader_t *ld)
{
	cfg_t *cfg = ld->cfg;
	cfg->shards = calloc((size_t)ld->n_shards, sizeof *cfg->shards);
	cfg->maps = ld->n_maps ? calloc((size_t)ld->n_maps, sizeof *cfg->maps) : NULL;
	cfg->tables = ld->n_tables ? calloc((size_t)ld->n_tables, sizeof *cfg->tables) : NULL;
	if (cfg->shards == NULL || (ld->n_maps && cfg->maps == NULL) ||
	    (ld->n_tables && cfg->tables == NULL))
		return loader_oom(ld);
	for (int i = 0; i < ld->n_shards; i++)
		cfg->shards[i] = ld->shards[i].shard;
	for (int i = 0; i < ld->n_maps; i++)
		cfg->maps[i] = ld->maps[i].map;
	for (int i = 0; i < ld->n_tables; i++) {
		cfg->tables[i] = ld->tables[i].table;
		free(ld->tables[i].section);
		free(ld->tables[i].map_name);
	}
	cfg->n_shards = ld->n_shards;
	cfg->n_maps = ld->n_maps;
	cfg->n_tables = ld->n_tables;
	free(ld->shards);
	free(ld->maps);
	free(ld->tables);
	ld->n_shards = ld->n_maps = ld->n_tables = 0;
	ld->shards = NULL;
	ld->maps = NULL;
	ld->tables = NULL;
	return 0;
}

static int load(loader_t *ld, const char *text)
{
	/* a UTF-8 byte order mark, as some editors write */
	if (strncmp(text, "\xEF\xBB\xBF", 3) == 0)
		text += 3;
	ld->pos = text;

	int ret = ini_parse_stream(read_line, ld, on_key, ld);
	/*
	 * inih reports a line it cannot parse (no '=') by its number and goes on;
	 * our own errors stop the parse. Report whichever came first.
	 */
	if (ret > 0 && (!ld->failed || ret < ld->err_line)) {
		ld->failed = false;
		return loader_fail(
		    ld, ret,
		    "cannot parse this line (expected [section], key = value, or a comment "
		    "starting with ; or #)");
	}
	if (ld->failed)
		return -1;
	if (ret < 0)
		return loader_oom(ld);

	if (settings_defaults(ld) < 0)
		return -1;
	if (check_shards(ld) < 0 || check_maps(ld) < 0 || check_tables(ld) < 0 ||
	    load_users(ld) < 0)
		return -1;
	return adopt_decls(ld);
}

int cfg_load_string(const char *text, const char *name, cfg_t **out, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	loader_t ld = {
	    .file = name != NULL ? name : "(config)",
	    .err = err,
	    .errlen = errlen,
	};
	ld.cfg = calloc(1, sizeof *ld.cfg);
	if (ld.cfg == NULL || (ld.cfg->path = strdup(ld.file)) == NULL) {
		free(ld.cfg);
		return loader_oom(&ld);
	}

	int rc = load(&ld, text != NULL ? text : "");
	free_decls(&ld);
	free(ld.sec_name);
	if (rc < 0) {
		cfg_free(ld.cfg);
		return -1;
	}
	*out = ld.cfg;
	return 0;
}

int cfg_load(const char *path, cfg_t **out, char *err, size_t errlen)
{
	char *text = NULL;
	const char *op;
	int e = loader_read_file(path, &text, &op);
	if (e != 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: cannot %s: %s", path, op,
			         e == EINVAL ? "contains a NUL byte (expected a text file)"
			                     : strerror(e));
		return -1;
	}
	int rc = cfg_load_string(text, path, out, err, errlen);
	free(text);
	return rc;
}

void cfg_free(cfg_t *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->listen_host);
	free(cfg->users_path);
	for (int i = 0; i < cfg->n_users; i++) {
		free(cfg->users[i].name);
		free(cfg->users[i].password);
	}
	free(cfg->users);
	for (int i = 0; i < cfg->n_shards; i++)
		free_shard(&cfg->shards[i]);
	free(cfg->shards);
	for (int i = 0; i < cfg->n_maps; i++)
		free_map(&cfg->maps[i]);
	free(cfg->maps);
	for (int i = 0; i < cfg->n_tables; i++)
		free_table(&cfg->tables[i]);
	free(cfg->tables);
	free(cfg);
}

const cfg_user_t *cfg_find_user(const cfg_t *cfg, const char *name)
{
	if (cfg == NULL || name == NULL || cfg->n_users == 0)
		return NULL;
	cfg_user_t key = {.name = (char *)name};
	return bsearch(&key, cfg->users, (size_t)cfg->n_users, sizeof key, user_name_cmp);
}

const cfg_map_t *cfg_find_map(const cfg_t *cfg, const char *name)
{
	if (cfg == NULL || name == NULL)
		return NULL;
	for (int i = 0; i < cfg->n_maps; i++) {
		if (strcmp(cfg->maps[i].name, name) == 0)
			return &cfg->maps[i];
	}
	return NULL;
}

const cfg_table_t *cfg_find_table(const cfg_t *cfg, const char *name)
{
	if (cfg == NULL || name == NULL)
		return NULL;
	for (int i = 0; i < cfg->n_tables; i++) {
		if (strcmp(cfg->tables[i].name, name) == 0)
			return &cfg->tables[i];
	}
	return NULL;
}
