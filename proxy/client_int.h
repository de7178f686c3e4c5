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
void client_send_buf(client_t *c, wire_buf_t *b);
/* Stop reading, let the output drain, then close. */
void client_close_after_flush(client_t *c);
void client_protocol_violation(client_t *c, const char *what);

/* What a step of the message loop did: consumed the message, wait, or failed. */
enum { STEP_NEXT = 0, STEP_WAIT = 1, STEP_FAIL = -1 };

/* session.c */
char *client_error_str(const char *sqlstate, const char *fmt, va_list ap);

/* client.c: answers the proxy makes itself, in order (see client_reply) */
int client_reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int client_reply_aborted(client_t *c);                        /* 25P02 */
int client_reply_no_statement(client_t *c, const char *name); /* 26000 */
int client_reply_tag(client_t *c, const char *tag);
/* ReadyForQuery for a statement the proxy answered; the message is consumed. */
int client_end_sql_statement(client_t *c, struct evbuffer *in, size_t total);

/* client.c: links and where a statement runs */
server_t *client_any_link(const client_t *c);
int client_single_shard(const client_t *c, const route_plan_t *p); /* -1: several */
int client_use_shard(client_t *c, int shard);                      /* 1 now, 0 wait, -1 failed */
int client_gather_links(client_t *c, const shard_set_t *want);
int client_forward(client_t *c, uint8_t type, struct evbuffer *in, size_t total);

/* client.c: session state a statement changes */
void client_apply_effects(client_t *c, const char *sql, size_t len);
int client_remember_named(client_t *c, const wire_parse_msg_t *m, ps_entry_t **e);
int client_remember_unnamed(client_t *c, const uint8_t *msg, size_t total);
bool client_aborted_tx_allows(const route_plan_t *p);
void client_note_writes(client_t *c, const route_plan_t *p);

/* extended.c */
int client_on_parse(client_t *c, struct evbuffer *in, size_t total);
int client_on_bind(client_t *c, struct evbuffer *in, size_t total);
int client_on_describe_close(client_t *c, uint8_t type, struct evbuffer *in, size_t total);
int client_on_other(client_t *c, uint8_t type, struct evbuffer *in, size_t total);
void client_fan_portal_free(client_t *c);
/* A message leaves the current extended batch's shard: 0 go on, -1 refused, 1 wait, 2 skip. */
int client_leave_batch(client_t *c, int shard);
int client_left_batch(client_t *c, struct evbuffer *in, size_t total, int rc, const char *why);

void client_logged_in(client_t *c);

/* login.c */
void client_login_read(client_t *c);   /* startup and password messages */
void client_finish_login(client_t *c); /* the parameters are known: ReadyForQuery */

#endif
