/*
 * admincmd.c — reading an admin console command (see admincmd.h).
 */
#include "proxy/admincmd.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

static const char *skip_blanks(const char *p, const char *end)
{
	while (p < end && isspace((unsigned char)*p))
		p++;
	return p;
}

/* The next word (letters, digits, underscores) at p; its length, 0 when none. */
static size_t word_at(const char *p, const char *end)
{
	const char *q = p;

	while (q < end && (isalnum((unsigned char)*q) || *q == '_'))
		q++;
	return (size_t)(q - p);
}

static bool word_is(const char *w, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(w, name, len) == 0;
}

void admincmd_parse(const char *sql, admin_cmd_t *out)
{
	static const struct {
		const char *name;
		admin_cmd_kind_t kind;
	} shows[] =
	    {
	        {"shards", ADMIN_SHOW_SHARDS},     {"pools", ADMIN_SHOW_POOLS},
	        {"clients", ADMIN_SHOW_CLIENTS},   {"servers", ADMIN_SHOW_SERVERS},
	        {"stats", ADMIN_SHOW_STATS},       {"transactions", ADMIN_SHOW_TRANSACTIONS},
	        {"recovery", ADMIN_SHOW_RECOVERY}, {"config", ADMIN_SHOW_CONFIG},
	        {"version", ADMIN_SHOW_VERSION},   {"state", ADMIN_SHOW_STATE},
	        {"tables", ADMIN_SHOW_TABLES},     {"load", ADMIN_SHOW_LOAD},
	    },
	  verbs[] = {
	      {"reload", ADMIN_RELOAD},
	      {"pause", ADMIN_PAUSE},
	      {"resume", ADMIN_RESUME},
	      {"shutdown", ADMIN_SHUTDOWN},
	  };
	const char *p = sql, *end = sql + strlen(sql), *w;
	size_t len;

	memset(out, 0, sizeof(*out));
	/* drop the trailing blanks and one semicolon */
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	if (end > p && end[-1] == ';')
		end--;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	p = skip_blanks(p, end);
	if (p == end) {
		out->kind = ADMIN_EMPTY;
		return;
	}
	w = p;
	len = word_at(p, end);
	out->kind = ADMIN_UNKNOWN;
	out->word = w;
	out->word_len = len > 0 ? len : (size_t)(end - p);
	if (len == 0)
		return;
	p = skip_blanks(p + len, end);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (word_is(w, len, verbs[i].name)) {
			out->kind = p == end ? verbs[i].kind : ADMIN_UNKNOWN;
			return;
		}
	}
	if (!word_is(w, len, "show"))
		return;
	w = p;
	len = word_at(p, end);
	out->kind = ADMIN_SHOW_UNKNOWN;
	out->word = w;
	out->word_len = len > 0 ? len : (size_t)(end - p);
	if (len == 0)
		return;
	p = skip_blanks(p + len, end);
	if (word_is(w, len, "hot")) {
		/* SHOW HOT KEYS: two words */
		const char *k = p;
		size_t klen = word_at(p, end);

		if (word_is(k, klen, "keys") && skip_blanks(p + klen, end) == end)
			out->kind = ADMIN_SHOW_HOT_KEYS;
		return;
	}
	if (word_is(w, len, "route")) {
		/* SHOW ROUTE <statement>: the statement is the rest, as written */
		if (p == end)
			return; /* nothing to route: an unknown SHOW, whose word says why */
		out->kind = ADMIN_SHOW_ROUTE;
		out->arg = p;
		out->arg_len = (size_t)(end - p);
		return;
	}
	for (size_t i = 0; i < sizeof(shows) / sizeof(shows[0]); i++) {
		if (word_is(w, len, shows[i].name)) {
			if (p == end)
				out->kind = shows[i].kind;
			return;
		}
	}
}
