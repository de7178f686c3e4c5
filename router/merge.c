/*
 * merge.c — combining the answers of several shards (see merge.h).
 */
#include "router/merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The commands whose tag ends in a row count (PostgreSQL's cmdtaglist.h). */
static bool tag_has_count(const char *tag)
{
	static const char *const counted[] = {"INSERT ", "UPDATE ", "DELETE ", "SELECT ",
	                                      "COPY ",   "MERGE ",  "FETCH ",  "MOVE "};

	for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++)
		if (strncmp(tag, counted[i], strlen(counted[i])) == 0)
			return true;
	return false;
}

static bool all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

void merge_tag_add(merge_tag_t *m, const char *tag, bool first_only)
{
	const char *sp = strrchr(tag, ' ');

	if (m->have && first_only)
		return;
	if (sp != NULL && tag_has_count(tag) && all_digits(sp + 1)) {
		size_t plen = (size_t)(sp - tag);

		if (!m->have) {
			if (plen >= sizeof(m->prefix))
				plen = sizeof(m->prefix) - 1;
			memcpy(m->prefix, tag, plen);
			m->prefix[plen] = '\0';
			m->count = 0;
			m->counted = true;
		}
		m->count += strtoull(sp + 1, NULL, 10);
	} else if (!m->have) {
		snprintf(m->prefix, sizeof(m->prefix), "%s", tag);
		m->counted = false;
	}
	m->have = true;
}

void merge_tag_format(const merge_tag_t *m, char *out, size_t outlen)
{
	if (m->counted)
		snprintf(out, outlen, "%s %" PRIu64, m->prefix, m->count);
	else
		snprintf(out, outlen, "%s", m->prefix);
}

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The value of column i of a DataRow of count()s, or -1 if malformed; *pos moves on. */
static int count_at(const uint8_t *body, size_t len, size_t *pos, int64_t *out)
{
	char tmp[24], *end;
	int32_t vlen;

	if (len - *pos < 4)
		return -1;
	vlen = (int32_t)be32(body + *pos);
	*pos += 4;
	if (vlen <= 0 || (size_t)vlen >= sizeof(tmp) || len - *pos < (size_t)vlen)
		return -1;
	memcpy(tmp, body + *pos, (size_t)vlen);
	tmp[vlen] = '\0';
	*pos += (size_t)vlen;
	*out = strtoll(tmp, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int merge_counts_add(merge_counts_t *m, const uint8_t *body, size_t len)
{
	size_t pos = 2;
	int64_t v;
	int n;

	if (len < 2)
		return -1;
	n = (int16_t)(((uint16_t)body[0] << 8) | body[1]);
	if (n < 0 || (m->sums != NULL && n != m->n))
		return -1;
	/* check the whole row first: a bad row adds nothing */
	for (int i = 0; i < n; i++)
		if (count_at(body, len, &pos, &v) < 0)
			return -1;
	if (pos != len)
		return -1;
	if (m->sums == NULL) {
		m->sums = calloc((size_t)n + 1, sizeof(*m->sums));
		if (m->sums == NULL)
			return -1;
		m->n = n;
	}
	pos = 2;
	for (int i = 0; i < n; i++) {
		count_at(body, len, &pos, &v);
		m->sums[i] += v;
	}
	return 0;
}

void merge_counts_free(merge_counts_t *m)
{
	free(m->sums);
	m->sums = NULL;
	m->n = -1;
}
