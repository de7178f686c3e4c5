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
 * The loader's files, one concern each, share config_int.h:
 *   config.c    this file: the line reader, the order of the passes, the entry
 *               points, freeing a cfg_t
 *   sections.c  what each line means: section headers, the keys of [shard.N],
 *               [map.NAME] and [table.NAME]
 *   settings.c  the [proxy] and [auth] settings table
 *   check.c     the second pass
 *   users.c     the users file named in [auth], read after the second pass
 *   values.c    values as written in the file: numbers, sizes, names, conninfo
 *   loader.c    the error report, reading a whole file
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

/* ------------------------------------------------------------------------ */
/* Freeing                                                                   */
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
	    users_load(ld) < 0 || check_admin_users(ld) < 0)
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
	free(cfg->metrics_listen.host);
	free(cfg->users_path);
	values_free_names(&cfg->admin_users);
	values_free_names(&cfg->writing_functions);
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
