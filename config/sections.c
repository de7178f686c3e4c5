/*
 * sections.c — what each line of the config file means. A [section] header
 * opens its section: the ones that repeat ([shard.N], [map.NAME],
 * [table.NAME]) each get a "decl" that also remembers the lines the second
 * pass needs. A key = value line goes to its section's handler: [proxy] and
 * [auth] keys to the settings table (settings.c), the others to one function
 * per section kind here. Where a value's meaning depends on something that
 * may be written further down (a range's bounds, a table's map), only its
 * shape is checked here; the second pass (check.c) does the rest.
 */
#include "config/config_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VNODES 65536

const char *const sections_key_type_names[] = {
    [CFG_KEY_BIGINT] = "bigint",
    [CFG_KEY_TEXT] = "text",
    [CFG_KEY_UUID] = "uuid",
};

static const char *const map_kind_names[] = {
    [CFG_MAP_HASH] = "hash",
    [CFG_MAP_RANGE] = "range",
};

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
		int k = values_lookup_name(sections_key_type_names, COUNT(sections_key_type_names),
		                           value);
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
int sections_on_key(void *user, const char *section, const char *name, const char *value)
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
int sections_begin(loader_t *ld, const char *text, size_t len)
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
