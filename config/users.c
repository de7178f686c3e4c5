/*
 * users.c — the users file, PgBouncer's auth_file format: one
 * `"user" "password"` line per user, the password plain, md5... or
 * SCRAM-SHA-256$.... Read after the config file's second pass (its path and
 * whether it is needed come from [auth]), and kept sorted by name so that
 * cfg_find_user can bisect.
 */
#include "config/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int users_load(loader_t *ld)
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

const cfg_user_t *cfg_find_user(const cfg_t *cfg, const char *name)
{
	if (cfg == NULL || name == NULL || cfg->n_users == 0)
		return NULL;
	cfg_user_t key = {.name = (char *)name};
	return bsearch(&key, cfg->users, (size_t)cfg->n_users, sizeof key, user_name_cmp);
}
