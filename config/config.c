/*
 * config.c — pgshard's INI file -> one validated, immutable cfg_t.
 *
 * Loading runs in two passes. The first walks the file once: inih splits each
 * line into key and value, and the handlers (sections.c) parse every value
 * where it stands, so that a bad value is reported at its own line. References
 * between sections (a table's map, a map's shards, default_shard) may point
 * forward in the file, so they are checked in a second pass (check.c) once
 * everything is read; those messages still name the line where the reference
 * was written.
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

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

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
/* The line reader                                                           */
/* ------------------------------------------------------------------------ */

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

	if (len > 0 && *start == '[' && sections_begin(ld, start, len) < 0)
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

	int ret = ini_parse_stream(read_line, ld, sections_on_key, ld);
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
