/*
 * log.h — log lines on stderr that carry the client and server ids, so that
 * one session can be followed through a busy log ("C-12 S-3: ...").
 */
#ifndef PGSHARD_LOG_H
#define PGSHARD_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum log_level {
	LOG_ERROR,
	LOG_WARNING,
	LOG_INFO,
	LOG_DEBUG,
} log_level_t;

extern log_level_t g_log_level;

void log_msg(log_level_t level, uint64_t client_id, uint64_t server_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * src on one line in dst (size bytes): each run of white space becomes one
 * space, none at the ends. libpq's messages span lines ("...failed:
 * Connection refused\n\tIs the server...").
 */
void log_one_line(char *dst, size_t size, const char *src);

/*
 * A statement's text for a log line: on one line (log_one_line), at most
 * max bytes of it (cut before a UTF-8 character, never inside one), with
 * "..." after it when it was cut. dst holds size bytes: max + 4 is enough.
 */
void log_statement_text(char *dst, size_t size, const char *sql, size_t max);

#define log_error(...) log_msg(LOG_ERROR, 0, 0, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, 0, 0, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, 0, 0, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (g_log_level >= LOG_DEBUG)                                                      \
			log_msg(LOG_DEBUG, 0, 0, __VA_ARGS__);                                     \
	} while (0)

#endif
