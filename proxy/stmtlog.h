/*
 * stmtlog.h — slow statements in the log (stmtlog.c): a client's statement
 * that took log_min_duration_statement milliseconds or more, from its first
 * message to the ReadyForQuery that answers it, is logged with its text
 * (cut to STMTLOG_TEXT_MAX bytes, on one line), its duration and the shards
 * it ran on. Parameter values are never logged.
 */
#ifndef PGSHARD_PROXY_STMTLOG_H
#define PGSHARD_PROXY_STMTLOG_H

#include "proxy/proxy.h"

#define STMTLOG_TEXT_MAX 1000

/* The message loop takes a message of c's: the first since the last answer starts a statement. */
void stmtlog_begin(client_t *c, uint8_t type, pbuf_t *in, size_t total);
void stmtlog_shard(client_t *c, int shard); /* a server of that shard answered for it */
void stmtlog_end(client_t *c);              /* a ReadyForQuery went to c */
void stmtlog_free(client_t *c);

#endif
