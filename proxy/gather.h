/*
 * gather.h — the merges of scatter-gather (gather.c), on top of the
 * fan-out: sorted streams, LIMIT/OFFSET, partial results finished by a
 * final query.
 */
#ifndef PGSHARD_PROXY_GATHER_H
#define PGSHARD_PROXY_GATHER_H

#include "proxy/fanout_state.h"
#include "proxy/proxy.h"
#include "proxy/wire.h"

/* Make f a scatter-gather of c's plan: the gather plan of `sql` with these parameters.
 * 0; -1 with sqlstate and message (refused, or out of memory). */
int gather_setup(client_t *c, fanout_t *f, const char *sql, const route_param_t *params,
                 int n_params, char sqlstate[6], char *err, size_t errlen);
/* Whether the first member must be asked the database's collation first. */
bool gather_needs_collation(client_t *c, const fanout_t *f);
/* The one-row answer of router/gather_sql.h's gather_collation_sql. */
void gather_note_collation(client_t *c, const uint8_t *body, size_t len);
/* Before partial results: the one-row answer of gather_float_digits_sql. */
void gather_note_float_digits(fanout_t *f, const uint8_t *body, size_t len);

/*
 * A member's message during a scatter-gather result ('T', 'D', 'C'):
 * 1 when gather.c took care of it (it went to the client or was
 * dropped), 2 when the member must not be read further for now (its head
 * row waits for its turn), 0 when fanout.c handles it as usual.
 */
int gather_message(client_t *c, fanout_t *f, member_t *m, uint8_t type, const uint8_t *msg,
                   size_t total);
/* Send rows of the sorted merge while every member has one and the client keeps up. */
void gather_pump(client_t *c, fanout_t *f);
/* Every member finished the partial results: start the final query. 1 started, 0 not one, -1
 * failed (error kept in f). */
int gather_finalize(client_t *c, fanout_t *f);
/* The final query's parameters (gather_plan_t.final_params) in its Parse: their types, as
 * the client's Parse gave them (0: the final query infers them). */
void gather_put_final_types(wire_buf_t *b, const fanout_t *f);
/* ...and in its Bind: formats and values, as the client's Bind gave them. -1 when that Bind
 * lacks one of them. */
int gather_put_final_values(wire_buf_t *b, const fanout_t *f);
/* A member's error is the shards refusing a user-defined aggregate (see gather_plan_t.probed):
 * true when the proxy's own error, which says so, stands for it. */
bool gather_probe_refused(fanout_t *f, const uint8_t *body, size_t len);
/* The CommandComplete tag of a streamed result. */
void gather_tag(const fanout_t *f, char *out, size_t outlen);
void gather_free(fanout_t *f);
void gather_colls_free(worker_t *w);

#endif
