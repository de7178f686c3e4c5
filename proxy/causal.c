/*
 * causal.c — a session's positions on each shard, and causal tokens
 * (causal.h says why it works this way).
 */
#include "proxy/causal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/sqlchars.h"

#define TOKEN_PREFIX "pgshard1:"

void causal_init(causal_t *k)
{
	memset(k, 0, sizeof(*k));
	k->rep_node = -1;
}

static void raise_to(causal_t *k, uint64_t lsn)
{
	if (lsn > k->need_lsn)
		k->need_lsn = lsn;
}

void causal_settle(causal_t *k, causal_pos_t primary, causal_pos_t rep)
{
	if (k->pend_at_us != 0 && primary.lsn != 0 && primary.at_us >= k->pend_at_us) {
		raise_to(k, primary.lsn);
		k->pend_at_us = 0;
	}
	if (k->rep_at_us != 0 && rep.lsn != 0 && rep.at_us >= k->rep_at_us) {
		raise_to(k, rep.lsn);
		k->rep_at_us = 0;
	}
}

void causal_bound(causal_t *k, uint64_t lsn, uint64_t asked_at_us)
{
	if (lsn == 0)
		return;
	raise_to(k, lsn);
	if (k->pend_at_us != 0 && k->pend_at_us <= asked_at_us)
		k->pend_at_us = 0;
	/* a replica is never ahead of its primary: its earlier reads are bound too */
	if (k->rep_at_us != 0 && k->rep_at_us <= asked_at_us)
		k->rep_at_us = 0;
}

bool causal_allows(const causal_t *k, int node, causal_pos_t at)
{
	if (k->pend_at_us != 0 || at.lsn == 0 || at.lsn < k->need_lsn)
		return false;
	return k->rep_at_us == 0 || node == k->rep_node;
}

void causal_ran(causal_t *k, int node, uint64_t now_us)
{
	k->on_primary = node < 0;
	if (node < 0) {
		k->pend_at_us = now_us;
		return;
	}
	if (node != k->rep_node)
		causal_forget_node(k);
	k->rep_node = node;
	k->rep_at_us = now_us;
}

bool causal_settled(const causal_t *k)
{
	return k->pend_at_us == 0 && k->rep_at_us == 0;
}

void causal_forget_node(causal_t *k)
{
	/* the primary was at or past anything a replica had, at any later check */
	if (k->rep_at_us > k->pend_at_us)
		k->pend_at_us = k->rep_at_us;
	k->rep_at_us = 0;
	k->rep_node = -1;
}

bool causal_token_write(const causal_t *ks, int n, char *buf, size_t len)
{
	size_t used;
	int w = snprintf(buf, len, "%s", TOKEN_PREFIX);

	if (w < 0 || (size_t)w >= len)
		return false;
	used = (size_t)w;
	for (int i = 0; i < n; i++) {
		uint64_t lsn = ks[i].need_lsn;

		if (lsn == 0)
			continue;
		w = snprintf(buf + used, len - used, "%s%d=%X/%X",
		             used > strlen(TOKEN_PREFIX) ? "," : "", i, (unsigned)(lsn >> 32),
		             (unsigned)lsn);
		if (w < 0 || (size_t)w >= len - used)
			return false;
		used += (size_t)w;
	}
	return true;
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f');
}

bool causal_lsn_parse(const char *s, uint64_t *lsn, const char **end)
{
	char *e;
	unsigned long long hi, lo;

	if (!is_hex(*s))
		return false;
	hi = strtoull(s, &e, 16);
	if (*e != '/' || hi > UINT32_MAX)
		return false;
	s = e + 1;
	if (!is_hex(*s))
		return false;
	lo = strtoull(s, &e, 16);
	if (lo > UINT32_MAX)
		return false;
	*lsn = (uint64_t)hi << 32 | lo;
	*end = e;
	return true;
}

/* One "SHARD=HI/LO" at s; the end of it in *end. false: not one. */
static bool read_entry(const char *s, const char **end, long *shard, uint64_t *lsn)
{
	char *e;

	if (*s < '0' || *s > '9')
		return false;
	*shard = strtol(s, &e, 10);
	if (*e != '=' || *shard < 0 || *shard > 1000000)
		return false;
	return causal_lsn_parse(e + 1, lsn, end);
}

bool causal_token_read(causal_t *ks, int n, const char *token)
{
	const char *s = token;
	long shard = 0;
	uint64_t lsn = 0;

	if (strncmp(s, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return false;
	/* check it all before changing anything: a bad token changes nothing */
	for (s += strlen(TOKEN_PREFIX); *s != '\0';) {
		if (!read_entry(s, &s, &shard, &lsn))
			return false;
		if (*s == ',' && s[1] != '\0')
			s++;
		else if (*s != '\0')
			return false;
	}
	for (s = token + strlen(TOKEN_PREFIX); *s != '\0';) {
		if (!read_entry(s, &s, &shard, &lsn))
			break; /* cannot happen: checked above */
		if (shard < n)
			raise_to(&ks[shard], lsn);
		if (*s == ',')
			s++;
	}
	return true;
}

/* ---- session commands ---- */

static const char *skip_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

/* The keyword kw (any case) at s, followed by something that ends a word: past it, or NULL. */
static const char *keyword(const char *s, const char *kw)
{
	size_t n;

	/* every statement comes here (SELECT too starts as SET does): letter by letter, in ASCII */
	for (n = 0; kw[n] != '\0'; n++)
		if (sql_lower((unsigned char)s[n]) != (unsigned char)kw[n])
			return NULL;
	if (isalnum((unsigned char)s[n]) || s[n] == '_')
		return NULL;
	return s + n;
}

/* Only space and one ';' left. */
static bool at_end(const char *s)
{
	s = skip_space(s);
	if (*s == ';')
		s = skip_space(s + 1);
	return *s == '\0';
}

causal_verb_t causal_parse_command(const char *sql, char *name, size_t name_len, char *value,
                                   size_t value_len)
{
	const char *s = skip_space(sql), *p;
	causal_verb_t verb;
	size_t n = 0;

	if ((p = keyword(s, "set")) != NULL)
		verb = CAUSAL_SET;
	else if ((p = keyword(s, "reset")) != NULL)
		verb = CAUSAL_RESET;
	else if ((p = keyword(s, "show")) != NULL)
		verb = CAUSAL_SHOW;
	else
		return CAUSAL_NOT_OURS;
	s = skip_space(p);
	if (verb == CAUSAL_SET && (p = keyword(s, "session")) != NULL)
		s = skip_space(p);
	if (strncasecmp(s, "pgshard.", 8) != 0)
		return CAUSAL_NOT_OURS;
	for (s += 8; isalnum((unsigned char)*s) || *s == '_'; s++) {
		if (n + 1 >= name_len)
			return CAUSAL_BAD;
		name[n++] = (char)tolower((unsigned char)*s);
	}
	name[n] = '\0';
	if (n == 0)
		return CAUSAL_BAD;
	value[0] = '\0';
	if (verb != CAUSAL_SET)
		return at_end(s) ? verb : CAUSAL_BAD;
	s = skip_space(s);
	if (*s == '=')
		s = skip_space(s + 1);
	else if ((p = keyword(s, "to")) != NULL)
		s = skip_space(p);
	else
		return CAUSAL_BAD;
	n = 0;
	if (*s == '\'') {
		for (s++;; s++) {
			if (*s == '\0')
				return CAUSAL_BAD;
			if (*s == '\'' && s[1] == '\'')
				s++;
			else if (*s == '\'')
				break;
			if (n + 1 >= value_len)
				return CAUSAL_BAD;
			value[n++] = *s;
		}
		s++;
	} else {
		if ((p = keyword(s, "default")) != NULL) {
			value[0] = '\0';
			return at_end(p) ? CAUSAL_RESET : CAUSAL_BAD;
		}
		for (; *s != '\0' && !isspace((unsigned char)*s) && *s != ';'; s++) {
			if (n + 1 >= value_len)
				return CAUSAL_BAD;
			value[n++] = *s;
		}
		if (n == 0)
			return CAUSAL_BAD;
	}
	value[n] = '\0';
	return at_end(s) ? CAUSAL_SET : CAUSAL_BAD;
}
