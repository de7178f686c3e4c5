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

/* Whose statement a server's ErrorResponse answers. */
typedef enum log_origin {
	LOG_BY_CLIENT, /* a client's statement (or a commit step of its transaction): the
	                  client gets the error */
	LOG_BY_PROXY,  /* one pgshard runs for itself (a parameter sync, a transaction's
	                  BEGIN replayed on a joining shard, a catalog lookup): it should work */
	LOG_BY_PROBE,  /* a lookup whose failure is expected and handled (an INSERT's columns
	                  of a table that may not exist, an aggregate probe, a COMMIT PREPARED
	                  that recovery finished first): what the client sees says it */
} log_origin_t;

/*
 * The level a server's error is logged at. Whatever ran it, the server's
 * own trouble (FATAL or PANIC; SQLSTATE class 08 connection, 53 resources,
 * 57 operator intervention but 57014 a cancel, 58 system, F0 config, XX
 * internal) is a WARNING: the operator has to look. Otherwise a client's
 * error is LOG (its own doing, and the client is told: a line to follow
 * the session by, as PostgreSQL logs its statements' errors), pgshard's own
 * statement failing is a WARNING, and a probe's error is DEBUG.
 */
log_level_t log_server_error_level(const char *severity, const char *sqlstate, log_origin_t origin);

/*
 * A server's error message as a log line may show it: for a data exception
 * (SQLSTATE class 22, whose messages quote the value that failed, which may
 * be a client's parameter: `invalid input syntax for type integer: "x"`)
 * every double-quoted part becomes "..."; other messages are copied. Cut to
 * size bytes.
 */
void log_error_message(char *dst, size_t size, const char *sqlstate, const char *msg);

#define log_error(...) log_msg(LOG_ERROR, 0, 0, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, 0, 0, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, 0, 0, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (g_log_level >= LOG_DEBUG)                                                      \
			log_msg(LOG_DEBUG, 0, 0, __VA_ARGS__);                                     \
	} while (0)

#endif
