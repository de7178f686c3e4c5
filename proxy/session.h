/*
 * session.h — a client session as the layers below the message loop see it
 * (session.c): its state lists, its links (at most one server per shard),
 * its output, linking a server and letting it go, its transaction as the
 * shards report it, and closing.
 */
#ifndef PGSHARD_PROXY_SESSION_H
#define PGSHARD_PROXY_SESSION_H

#include <stdarg.h>

#include "proxy/proxy.h"

/* ---- state lists ---- */

void session_wait(client_t *c, pool_t *p); /* into p->waiting, CL_WAITING */
void session_unwait(client_t *c);          /* out of p->waiting, back to CL_IDLE */
void session_logged_in(client_t *c);

/* ---- links: at most one server per shard ---- */

server_t *session_link(const client_t *c, int shard);
server_t *session_any_link(const client_t *c);
void session_unlinked(client_t *c, server_t *s); /* s went back to the pool, or is gone */
int session_step_shard(const client_t *c, const route_step_t *step); /* -1: not ONE */

/* ---- output, failing and closing ---- */

void session_send_buf(client_t *c, wire_buf_t *b);
/* Stop reading, let the output drain, then close. */
void session_close_after_flush(client_t *c);
void session_fail(client_t *c, const char *severity, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void session_fail_status(client_t *c, px_status_t st); /* FATAL with the status's SQLSTATE */
void session_fail_with_body(client_t *c, const uint8_t *error_body, size_t len);
void session_protocol_violation(client_t *c, const char *what);
void session_close(client_t *c);
void session_free(client_t *c); /* a CL_CLOSED client, from the reaper */

/* ---- linking, and the transaction as the shards report it ---- */

void session_linked(client_t *c, server_t *s); /* pool gave it a server */
void session_join_held(client_t *c);           /* its transaction opened: held links join */

/*
 * A query string run statement by statement (a batch: client.c's
 * run_batch puts each statement in the input as a Query of its own). A
 * ReadyForQuery due to the client ends one of them: true when the batch
 * goes on instead (the next statement, or its end: the commit of the
 * transaction it ran in), false when it is the batch's answer. After an
 * error the rest of the statements are dropped, as PostgreSQL skips them.
 */
bool session_batch_step_done(client_t *c);
int session_batch_start(client_t *c, const size_t *lens, int n, bool wrap); /* -1: no memory */
bool session_batch_done_all(const client_t *c); /* the end marker is next */
bool session_batch_busy(const client_t *c);     /* a statement of it runs: the next waits */
void session_batch_consumed(client_t *c);       /* a statement of it left the input */
void session_batch_free(client_t *c);
void session_sync_done(client_t *c, server_t *s, const uint8_t *error_body, size_t len);
bool session_maybe_release(client_t *c);
/*
 * The same while a statement is being routed (the phase is not idle): every
 * link idle outside a transaction goes back to its pool; no resume.
 */
bool session_release_idle(client_t *c);
void session_server_lost(client_t *c, server_t *s, const char *why);
/*
 * The next whole message from s for c's statement: 1 with its type, length
 * and bytes (pulled up, still in s's input: the caller drains it), 0 when
 * it has not all come yet, -1 when s broke the protocol (the client is
 * told, s closed) or memory ran out (the client failed).
 */
int session_server_message(client_t *c, server_t *s, uint8_t *type, size_t *total,
                           const uint8_t **msg);
char session_tx_status(const client_t *c);
void session_note_status(client_t *c, char status); /* a ReadyForQuery from a link */
void session_tx_fail(client_t *c);                  /* an error inside the transaction */
void session_drop_pending_sets(client_t *c); /* forget SETs noted in the current transaction */
void session_note_writes(client_t *c, const route_plan_t *p);
bool session_aborted_tx_allows(const route_plan_t *p);
/* A ParameterStatus the client was sent: client_encoding and server_encoding are kept. */
void session_told_parameter(client_t *c, const char *name, const char *value);
/*
 * A plan that routes by a non-ASCII text key, for a client whose encoding
 * is not the database's, is refused (0A000) in place: the key's bytes are
 * not those the row is stored and hashed under.
 */
void session_check_key_bytes(const client_t *c, route_plan_t *p);
/* The statement runs in a transaction of pgshard's own (tx_t.implicit). */
bool session_wants_implicit_tx(const client_t *c, const route_plan_t *p);

/* ---- replies made by the proxy ---- */

/* Write a reply the proxy makes, in order: behind what the current server still owes. */
int session_reply(client_t *c, uint8_t reply, char *str);
char *session_error_str(const char *sqlstate, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Answers the proxy makes itself, in order (see session_reply). */
int session_reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int session_reply_aborted(client_t *c);                        /* 25P02 */
int session_reply_no_statement(client_t *c, const char *name); /* 26000 */
int session_reply_tag(client_t *c, const char *tag);
/* ReadyForQuery for a statement the proxy answered; the message is consumed. */
int session_end_sql_statement(client_t *c, pbuf_t *in, size_t total);
void session_emit(client_t *c, uint8_t reply, const char *str); /* see session_reply */
/* Send the replies the proxy makes itself that are due now (head of the queue). */
void session_flush_synthesized(client_t *c, server_t *s);

/* ---- up to the message loop (c->ops) ---- */

void session_resume(client_t *c);
void session_server_reply(client_t *c, server_t *s); /* called when the server has data */

#endif
