/*
 * log.c — one line per event on stderr, with a timestamp, the level and the
 * ids of the client and server it concerns.
 */
#include "proxy/log.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

log_level_t g_log_level = LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARNING", "LOG", "DEBUG"};

void log_msg(log_level_t level, uint64_t client_id, uint64_t server_id, const char *fmt, ...)
{
	char line[2048], stamp[32], ids[64] = "";
	struct timeval tv;
	struct tm tm;
	va_list ap;

	if (level > g_log_level)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	if (client_id && server_id)
		snprintf(ids, sizeof(ids), "C-%" PRIu64 " S-%" PRIu64 ": ", client_id, server_id);
	else if (client_id)
		snprintf(ids, sizeof(ids), "C-%" PRIu64 ": ", client_id);
	else if (server_id)
		snprintf(ids, sizeof(ids), "S-%" PRIu64 ": ", server_id);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03d %s %s%s\n", stamp, (int)(tv.tv_usec / 1000), level_names[level],
	        ids, line);
}

void log_one_line(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	bool space = false;

	for (; *src != '\0' && n + 1 < size; src++) {
		if (isspace((unsigned char)*src)) {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < size)
			dst[n++] = ' ';
		space = false;
		dst[n++] = *src;
	}
	dst[n] = '\0';
}

void log_statement_text(char *dst, size_t size, const char *sql, size_t max)
{
	size_t n;

	if (size < 4) {
		if (size > 0)
			dst[0] = '\0';
		return;
	}
	if (max + 4 > size)
		max = size - 4;
	log_one_line(dst, max + 2, sql); /* one byte more than max: says whether it was cut */
	n = strlen(dst);
	if (n <= max)
		return;
	n = max;
	while (n > 0 && ((unsigned char)dst[n] & 0xC0) == 0x80)
		n--; /* dst[n] continues a UTF-8 character: cut before the character */
	memcpy(dst + n, "...", 4);
}

void log_error_message(char *dst, size_t size, const char *sqlstate, const char *msg)
{
	bool redact = sqlstate != NULL && strncmp(sqlstate, "22", 2) == 0, quoted = false;
	size_t n = 0;

	if (size == 0)
		return;
	for (const char *p = msg; *p != '\0' && n + 1 < size; p++) {
		if (redact && *p == '"') {
			quoted = !quoted;
			if (quoted) {
				if (n + 5 >= size)
					break;
				memcpy(dst + n, "\"...", 4);
				n += 4;
			} else {
				dst[n++] = '"';
			}
			continue;
		}
		if (!quoted)
			dst[n++] = *p;
	}
	if (quoted && n + 1 < size)
		dst[n++] = '"';
	dst[n] = '\0';
}

static bool server_trouble(const char *severity, const char *sqlstate)
{
	static const char *const classes[] = {"08", "53", "57", "58", "F0", "XX"};

	if (severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
		return true;
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return false;
	if (strcmp(sqlstate, "57014") == 0) /* query_canceled: a client's cancel, a timeout */
		return false;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strncmp(sqlstate, classes[i], 2) == 0)
			return true;
	return false;
}

log_level_t log_server_error_level(const char *severity, const char *sqlstate, log_origin_t origin)
{
	if (server_trouble(severity, sqlstate))
		return LOG_WARNING;
	switch (origin) {
	case LOG_BY_CLIENT:
		return LOG_INFO;
	case LOG_BY_PROXY:
		return LOG_WARNING;
	case LOG_BY_PROBE:
		return LOG_DEBUG;
	}
	return LOG_INFO;
}
