/*
 * server.h — one connection to a PostgreSQL backend (server.c): connect,
 * start up, authenticate, send.
 */
#ifndef PGSHARD_PROXY_SERVER_H
#define PGSHARD_PROXY_SERVER_H

#include "proxy/log.h"
#include "proxy/proxy.h"

server_t *server_connect(pool_t *p, const server_events_t *events);
void server_close(server_t *s, const char *why);
void server_free(server_t *s); /* an SV_CLOSED server, from the reaper */
int server_send(server_t *s, const void *data, size_t len);
/* The first ErrorResponse body of a settings sync, kept for the client. */
void server_keep_sync_error(server_t *s, const uint8_t *body, size_t len);
/*
 * The ReadyForQuery of a message the proxy sent on its own (PEND_SWALLOW at
 * the head): a settings sync it ends is over (params_hash: the client's, in
 * effect now unless the sync failed), and the entry is done.
 */
void server_swallowed_ready(server_t *s, uint64_t params_hash, char status);
void server_note_ready(server_t *s, char status); /* any ReadyForQuery: counted (stats.h) */
/*
 * Any ErrorResponse (its body): counted, and logged with its SQLSTATE at
 * the level log_server_error_level gives for whose statement it answers.
 */
void server_note_error(server_t *s, const uint8_t *body, size_t len, log_origin_t origin);
/* Send a simple Query the proxy makes, noted in the pending queue as pend_msg/action. */
int server_query(server_t *s, wire_buf_t *b, const char *sql, uint8_t pend_msg,
                 pending_action_t action);
void server_note_parameter(server_t *s, const uint8_t *body, size_t len);
/* Read what an idle server sent unasked; false when that closed it (see server.c). */
bool server_read_idle(server_t *s);

#endif
