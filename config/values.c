/*
 * values.c — a value as written in the config file, parsed: integers, sizes
 * with units, booleans, names out of a list, SQL identifiers, HOST:PORT, and a
 * server's libpq connection string. The parsers that can only say yes or no
 * return it; the one that has more to say (values_parse_node) reports at the
 * line being read.
 */
#include "config/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 5432

/* A whole decimal integer, optionally signed; nothing before or after it. */
num_result_t values_parse_ll(const char *s, long long *out)
{
	if (*s == '\0' || isspace((unsigned char)*s))
		return NUM_BAD;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return NUM_BAD;
	if (errno == ERANGE)
		return NUM_OVERFLOW;
	*out = v;
	return NUM_OK;
}

/* yes/no/true/false/on/off/1/0, any case (as PostgreSQL reads booleans). */
bool values_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/*
 * A comma-separated list of names (user names: kept as written, as
 * PostgreSQL compares them), each trimmed. An empty value is an empty list;
 * an empty item or a name given twice is not.
 */
int values_parse_names(const char *v, cfg_names_t *out)
{
	cfg_names_t l = {NULL, 0};
	const char *p = v;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0') {
		*out = l;
		return 0;
	}
	for (;;) {
		const char *start, *end;
		int rc = 0;

		while (isspace((unsigned char)*p))
			p++;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		if (end == start)
			rc = -1;
		for (int i = 0; rc == 0 && i < l.n; i++)
			if (strlen(l.names[i]) == (size_t)(end - start) &&
			    memcmp(l.names[i], start, (size_t)(end - start)) == 0)
				rc = -2;
		if (rc == 0) {
			char **a = array_room(l.names, l.n, sizeof *a);

			if (a == NULL ||
			    (a[l.n] = dup_range(start, (size_t)(end - start))) == NULL) {
				if (a != NULL)
					l.names = a;
				rc = -3;
			} else {
				l.names = a;
				l.n++;
			}
		}
		if (rc < 0) {
			values_free_names(&l);
			return rc;
		}
		if (*p == '\0')
			break;
		p++; /* the comma */
	}
	*out = l;
	return 0;
}

void values_free_names(cfg_names_t *n)
{
	for (int i = 0; i < n->n; i++)
		free(n->names[i]);
	free(n->names);
	n->names = NULL;
	n->n = 0;
}

/* Index of s (any case) in names[0..n), or -1. */
int values_lookup_name(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(names[i], s) == 0)
			return (int)i;
	}
	return -1;
}

/*
 * Normalize a name written in the file the way PostgreSQL reads an
 * identifier: a double-quoted part keeps its case ("" inside is one quote),
 * any other part is lower-cased (ASCII only, as PostgreSQL does for UTF-8).
 * With `qualified`, up to three dot-separated parts are allowed
 * (public.users). Returns NULL when s is not such a name, and sets *nomem when
 * that is because memory ran out.
 */
char *values_normalize_ident(const char *s, bool qualified, bool *nomem)
{
	size_t len = strlen(s);
	char *out = malloc(len + 1);
	*nomem = out == NULL;
	if (out == NULL)
		return NULL;
	char *o = out;
	const char *p = s;
	for (int part = 0;; part++) {
		if (part == (qualified ? 3 : 1))
			goto bad;
		if (*p == '"') {
			const char *start = o;
			for (p++;; p++) {
				if (*p == '\0')
					goto bad;
				if (*p == '"' && p[1] == '"') {
					*o++ = '"';
					p++;
				} else if (*p == '"') {
					p++;
					break;
				} else if (*p == '.') {
					/* stored names join parts with '.': keep them unambiguous
					 */
					goto bad;
				} else {
					*o++ = *p;
				}
			}
			if (o == start)
				goto bad;
		} else {
			unsigned char c = (unsigned char)*p;
			if (!(isalpha(c) || c == '_' || c >= 0x80))
				goto bad;
			while (isalnum(c) || c == '_' || c == '$' || c >= 0x80) {
				*o++ = (char)(c < 0x80 ? tolower(c) : c);
				c = (unsigned char)*++p;
			}
		}
		if (*p == '\0')
			break;
		if (*p != '.')
			goto bad;
		*o++ = *p++;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

void values_free_node(cfg_node_t *n)
{
	free(n->conninfo);
	free(n->host);
	free(n->dbname);
	free(n->user);
	free(n->password);
}

/* HOST:PORT, [IPV6]:PORT or *:PORT. */
bool values_parse_listen(const char *v, char **host, int *port)
{
	const char *h = v, *colon;
	size_t hlen;
	if (*v == '[') {
		const char *close = strchr(v, ']');
		if (close == NULL || close[1] != ':')
			return false;
		h = v + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL)
			return false;
		hlen = (size_t)(colon - v);
		if (memchr(v, ':', hlen) != NULL)
			return false; /* an IPv6 address must be bracketed */
	}
	long long p;
	if (hlen == 0 || values_parse_ll(colon + 1, &p) != NUM_OK || p < 1 || p > 65535)
		return false;
	for (size_t i = 0; i < hlen; i++) {
		if (isspace((unsigned char)h[i]))
			return false;
	}
	*host = dup_range(h, hlen);
	*port = (int)p;
	return true;
}

/* A size with an optional unit, as postgresql.conf writes memory: 64MB, 1024 kB. */
num_result_t values_parse_bytes(const char *v, long long *out)
{
	static const struct {
		const char *unit;
		long long factor;
	} units[] = {
	    {"", 1},
	    {"B", 1},
	    {"kB", 1024LL},
	    {"MB", 1024LL * 1024},
	    {"GB", 1024LL * 1024 * 1024},
	    {"TB", 1024LL * 1024 * 1024 * 1024},
	};
	if (!isdigit((unsigned char)*v))
		return NUM_BAD;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	bool overflow = errno == ERANGE;
	while (isspace((unsigned char)*end))
		end++;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (overflow || n > LLONG_MAX / units[i].factor)
			return NUM_OVERFLOW;
		*out = n * units[i].factor;
		return NUM_OK;
	}
	return NUM_BAD;
}

/*
 * One server, from a libpq conninfo string (key=value pairs or a
 * postgresql:// URI). Only what the proxy uses is picked out; the string itself
 * is kept as written.
 */
int values_parse_node(loader_t *ld, const char *key, const char *value, cfg_node_t *out)
{
	if (*value == '\0')
		return loader_fail(
		    ld, ld->line,
		    "[%s] %s: empty connection string (expected a libpq connection string "
		    "such as %s)",
		    ld->sec_name, key, CONNINFO_EXAMPLE);
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(value, &errmsg);
	if (opts == NULL) {
		if (errmsg == NULL)
			return loader_oom(ld);
		size_t len = strlen(errmsg);
		while (len > 0 && isspace((unsigned char)errmsg[len - 1]))
			errmsg[--len] = '\0';
		loader_fail(ld, ld->line,
		            "[%s] %s: %s (expected a libpq connection string such as %s)",
		            ld->sec_name, key, errmsg, CONNINFO_EXAMPLE);
		PQfreemem(errmsg);
		return -1;
	}

	const char *host = NULL, *hostaddr = NULL, *port = NULL;
	const char *dbname = NULL, *user = NULL, *password = NULL;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if (strcmp(o->keyword, "password") == 0)
			password = o->val;
	}
	/* The data path dials the server itself: a hostaddr without host is the address. */
	if (host == NULL)
		host = hostaddr;

	int rc = 0;
	long long p = DEFAULT_PORT;
	if ((host != NULL && strchr(host, ',') != NULL) ||
	    (port != NULL && strchr(port, ',') != NULL))
		rc = loader_fail(
		    ld, ld->line,
		    "[%s] %s: several hosts in one connection string (expected one server; "
		    "write each replica on its own replica = line)",
		    ld->sec_name, key);
	else if (port != NULL && (values_parse_ll(port, &p) != NUM_OK || p < 1 || p > 65535))
		rc = loader_fail(ld, ld->line,
		                 "[%s] %s: bad port '%s' (expected a port from 1 to 65535)",
		                 ld->sec_name, key, port);

	cfg_node_t n = {0};
	if (rc == 0) {
		n.conninfo = strdup(value);
		n.host = strdup(host != NULL ? host : DEFAULT_HOST);
		n.port = (int)p;
		n.dbname = dbname != NULL ? strdup(dbname) : NULL;
		n.user = user != NULL ? strdup(user) : NULL;
		n.password = password != NULL ? strdup(password) : NULL;
		if (n.conninfo == NULL || n.host == NULL || (dbname != NULL && n.dbname == NULL) ||
		    (user != NULL && n.user == NULL) || (password != NULL && n.password == NULL)) {
			values_free_node(&n);
			rc = loader_oom(ld);
		}
	}
	PQconninfoFree(opts);
	if (rc == 0)
		*out = n;
	return rc;
}
