/*
 * params.c — session parameters that follow a client across server
 * connections.
 *
 * A client's settings come from two places: its startup packet (and the
 * `-c name=value` switches of its `options` parameter) and the session-level
 * SET statements it ran. Server connections are opened without any of
 * them, so before a client uses a server connection whose applied set
 * differs from its own, the proxy runs one query there:
 *
 *   RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; <startup>; <sets>
 *
 * (joined with newline-semicolon-newline, so that a replayed SET ending in
 * a -- comment cannot comment out the separator)
 *
 * Startup parameters become pg_catalog.set_config(name, value, false),
 * which takes the raw value string exactly as the startup packet does (a
 * plain SET would quote list values such as search_path differently).
 * Session SETs are replayed as the client wrote them.
 */
#include "proxy/params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/classify.h"

void params_free(param_list_t *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].stmt);
	}
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

int params_set(param_list_t *l, const char *name, const char *stmt)
{
	char *n2, *s2;
	param_t *items;

	s2 = strdup(stmt);
	if (s2 == NULL)
		return -1;
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, name) == 0) {
			free(l->items[i].stmt);
			l->items[i].stmt = s2;
			return 0;
		}
	}
	n2 = strdup(name);
	items = realloc(l->items, sizeof(*items) * (size_t)(l->n + 1));
	if (n2 == NULL || items == NULL) {
		free(n2);
		free(s2);
		if (items != NULL)
			l->items = items;
		return -1;
	}
	l->items = items;
	l->items[l->n].name = n2;
	l->items[l->n].stmt = s2;
	l->n++;
	return 0;
}

void params_remove(param_list_t *l, const char *name)
{
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, name) == 0) {
			free(l->items[i].name);
			free(l->items[i].stmt);
			memmove(&l->items[i], &l->items[i + 1],
			        sizeof(param_t) * (size_t)(l->n - i - 1));
			l->n--;
			return;
		}
	}
}

int params_copy(param_list_t *dst, const param_list_t *src)
{
	params_free(dst);
	for (int i = 0; i < src->n; i++)
		if (params_set(dst, src->items[i].name, src->items[i].stmt) < 0)
			return -1;
	return 0;
}

static bool valid_name(const char *name)
{
	if (*name == '\0')
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.')
			return false;
	return true;
}

static int add_set_config(param_list_t *l, const char *name, const char *value, char *err,
                          size_t errlen)
{
	char lname[128], *qname, *qvalue, *stmt;
	size_t n = strlen(name);
	int rc;

	if (!valid_name(name) || n >= sizeof(lname)) {
		snprintf(err, errlen, "invalid startup parameter name \"%.64s\"", name);
		return -1;
	}
	for (size_t i = 0; i <= n; i++)
		lname[i] = (char)tolower((unsigned char)name[i]);
	qname = route_quote_literal(lname);
	qvalue = route_quote_literal(value);
	if (qname == NULL || qvalue == NULL) {
		free(qname);
		free(qvalue);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = strlen(qname) + strlen(qvalue) + 64;
	stmt = malloc(n);
	if (stmt == NULL) {
		free(qname);
		free(qvalue);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(stmt, n, "SELECT pg_catalog.set_config(%s, %s, false)", qname, qvalue);
	rc = params_set(l, lname, stmt);
	free(stmt);
	free(qname);
	free(qvalue);
	if (rc < 0)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/*
 * `options` holds command-line switches for the server process, separated
 * by spaces, with backslash escaping a space. Only -c name=value and
 * --name=value set parameters; PostgreSQL clients use nothing else.
 */
static int parse_options(param_list_t *l, const char *opts, char *err, size_t errlen)
{
	char *buf = malloc(strlen(opts) + 1);
	const char *p = opts;
	bool want_c = false;
	int rc = 0;

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (rc == 0) {
		size_t k = 0;
		char *eq;
		const char *arg;

		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (*p && !isspace((unsigned char)*p)) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			buf[k++] = *p++;
		}
		buf[k] = '\0';

		if (want_c) {
			arg = buf;
			want_c = false;
		} else if (strcmp(buf, "-c") == 0) {
			want_c = true;
			continue;
		} else if (strncmp(buf, "-c", 2) == 0) {
			arg = buf + 2;
		} else if (strncmp(buf, "--", 2) == 0) {
			arg = buf + 2;
		} else {
			snprintf(err, errlen,
			         "unsupported switch \"%.64s\" in options (expected -c name=value)",
			         buf);
			rc = -1;
			break;
		}
		eq = strchr(arg, '=');
		if (eq == NULL) {
			snprintf(err, errlen,
			         "invalid options switch \"%.64s\" (expected -c name=value)", arg);
			rc = -1;
			break;
		}
		*eq = '\0';
		for (char *q = (char *)arg; *q; q++)
			if (*q == '-')
				*q = '_';
		rc = add_set_config(l, arg, eq + 1, err, errlen);
	}
	if (rc == 0 && want_c) {
		snprintf(err, errlen, "options ends with -c and no name=value");
		rc = -1;
	}
	free(buf);
	return rc;
}

int params_from_startup(param_list_t *l, const wire_startup_t *s, char *err, size_t errlen)
{
	for (int i = 0; i < s->n_params; i++) {
		const char *name = s->params[i].name, *value = s->params[i].value;

		if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0)
			continue;
		if (strncmp(name, "_pq_.", 5) == 0)
			continue; /* protocol options: answered by NegotiateProtocolVersion */
		if (strcmp(name, "pgshard.causal_token") == 0 ||
		    strcmp(name, "pgshard.replica_reads") == 0)
			continue; /* pgshard's own (replica.c) */
		if (strcmp(name, "replication") == 0) {
			if (strcmp(value, "false") == 0 || strcmp(value, "off") == 0 ||
			    strcmp(value, "0") == 0 || strcmp(value, "no") == 0)
				continue;
			snprintf(err, errlen, "replication connections are not supported");
			return -1;
		}
		if (strcmp(name, "options") == 0) {
			if (parse_options(l, value, err, errlen) < 0)
				return -1;
			continue;
		}
		if (add_set_config(l, name, value, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 1099511628211ULL;
	}
	h ^= 0xff; /* separator, so that ("ab","c") and ("a","bc") differ */
	h *= 1099511628211ULL;
	return h;
}

uint64_t params_hash(const param_list_t *startup, const param_list_t *session)
{
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < startup->n; i++)
		h = fnv1a(h, startup->items[i].stmt);
	h = fnv1a(h, "");
	for (int i = 0; i < session->n; i++)
		h = fnv1a(h, session->items[i].stmt);
	return h;
}

char *params_sync_sql(const param_list_t *startup, const param_list_t *session)
{
	static const char head[] = "RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION";
	size_t n = sizeof(head) + 2;
	char *out, *p;

	for (int i = 0; i < startup->n; i++)
		n += strlen(startup->items[i].stmt) + 3;
	for (int i = 0; i < session->n; i++)
		n += strlen(session->items[i].stmt) + 3;
	out = malloc(n);
	if (out == NULL)
		return NULL;
	p = out;
	p += sprintf(p, "%s", head);
	for (int i = 0; i < startup->n; i++)
		p += sprintf(p, "\n;\n%s", startup->items[i].stmt);
	for (int i = 0; i < session->n; i++)
		p += sprintf(p, "\n;\n%s", session->items[i].stmt);
	return out;
}
