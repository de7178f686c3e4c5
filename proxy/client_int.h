/*
 * client_int.h — what the files of a client session share: client.c (the
 * session's lists, links, output and message loop) and login.c (startup and
 * authentication) and extended.c (the extended protocol).
 */
#ifndef PGSHARD_PROXY_CLIENT_INT_H
#define PGSHARD_PROXY_CLIENT_INT_H

#include <stdarg.h>

#include "proxy/proxy.h"

/* client.c */
void session_send_buf(client_t *c, wire_buf_t *b);
/* Stop reading, let the output drain, then close. */
void session_close_after_flush(client_t *c);
void session_protocol_violation(client_t *c, const char *what);

/* What a step of the message loop did: consumed the message, wait, or failed. */
enum { STEP_NEXT = 0, STEP_WAIT = 1, STEP_FAIL = -1 };

/* session.c */
char *session_error_str(const char *sqlstate, const char *fmt, va_list ap);

/* client.c: answers the proxy makes itself, in order (see session_reply) */
int session_reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int session_reply_aborted(client_t *c);                        /* 25P02 */
int session_reply_no_statement(client_t *c, const char *name); /* 26000 */
int session_reply_tag(client_t *c, const char *tag);
/* ReadyForQuery for a statement the proxy answered; the message is consumed. */
int session_end_sql_statement(client_t *c, struct evbuffer *in, size_t total);

/* client.c: links and where a statement runs */
server_t *session_any_link(const client_t *c);
int session_single_shard(const client_t *c, const route_plan_t *p); /* -1: several */
int forward_use_shard(client_t *c, int shard);                      /* 1 now, 0 wait, -1 failed */
int forward_gather_links(client_t *c, const shard_set_t *want);
int forward_message(client_t *c, uint8_t type, struct evbuffer *in, size_t total);

/* client.c: session state a statement changes */
void forward_apply_effects(client_t *c, const char *sql, size_t len);
int forward_remember_named(client_t *c, const wire_parse_msg_t *m, ps_entry_t **e);
int forward_remember_unnamed(client_t *c, const uint8_t *msg, size_t total);
bool session_aborted_tx_allows(const route_plan_t *p);
void session_note_writes(client_t *c, const route_plan_t *p);

/* extended.c */
int extended_on_parse(client_t *c, struct evbuffer *in, size_t total);
int extended_on_bind(client_t *c, struct evbuffer *in, size_t total);
int extended_on_describe_close(client_t *c, uint8_t type, struct evbuffer *in, size_t total);
int extended_on_other(client_t *c, uint8_t type, struct evbuffer *in, size_t total);
void extended_fan_portal_free(client_t *c);
/* A message leaves the current extended batch's shard: 0 go on, -1 refused, 1 wait, 2 skip. */
int extended_leave_batch(client_t *c, int shard);
int extended_left_batch(client_t *c, struct evbuffer *in, size_t total, int rc, const char *why);

void session_logged_in(client_t *c);

/* login.c */
void login_read(client_t *c);   /* startup and password messages */
void login_finish(client_t *c); /* the parameters are known: ReadyForQuery */

#endif
