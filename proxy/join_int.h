/*
 * join_int.h — what the files of the join executor share: its state (one
 * join_t per client running a join across shards) and the helpers that put
 * rows into array literals and statements on the wire (join_msg.c). join.c
 * runs the steps; subq.c runs the subqueries that answer first. Not part of
 * the proxy's interface: only those files include it.
 */
#ifndef PGSHARD_PROXY_JOIN_INT_H
#define PGSHARD_PROXY_JOIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy.h"
#include "proxy/wire.h"
#include "router/join_plan.h"

/* The pending-queue marks of the join's own statements on a member. */
enum {
	PEND_DRIVE = 'j',
	PEND_PROBE = 'p',
	PEND_FINAL = 'f',
	PEND_FLOATS = 'g',   /* SHOW extra_float_digits */
	PEND_SUB_ROWS = 'r', /* a subquery's table rows */
	PEND_SUB_RUN = 'q',  /* the subquery over them */
};

/* A growing array literal: "{" then quoted elements separated by commas. */
typedef struct lit {
	char *p;
	size_t len, cap;
	uint64_t n;
} lit_t;

/* One statement's parameters. */
typedef struct stmt_params {
	route_param_t *v; /* cap of them */
	int cap;
	int n;
} stmt_params_t;

/* Key texts, each once (join_keys.c). */
typedef struct keyset {
	uint64_t *h; /* per slot: the key's hash, 0 for none */
	char **k;
	size_t *len;
	size_t cap, n;
} keyset_t;

typedef struct member {
	server_t *s; /* NULL once lost */
	int shard;
	int waiting;                    /* the join's own ReadyForQuery still to come */
	lit_t *batches[JOIN_MAX_SIDES]; /* per probed side: its keys for this shard,
	                                   JOIN_BATCH_KEYS each */
	int n_batches[JOIN_MAX_SIDES];
	keyset_t seen[JOIN_MAX_SIDES]; /* per probed side: its keys in those batches, when they
	                                  are split in batches (join_keys.c) */
} member_t;

/* The subquery being run first (join_plan_t.subs[sub]) and the answers of those before it. */
typedef struct subrun {
	int sub;    /* the one running; n_subs: all answered */
	int phase;  /* 0 nothing sent yet, 1 its table's rows asked, 2 the subquery itself asked */
	lit_t rows; /* its table's rows */
	uint64_t n; /* its answer's rows so far */
	uint32_t type;                  /* its answer's column type (RowDescription) */
	lit_t values;                   /* an ANY/ALL subquery's values */
	char *scalar;                   /* a scalar subquery's value (NULL: none yet, or NULL) */
	int32_t scalar_len;             /* -1: NULL */
	route_param_t v[JOIN_MAX_SUBS]; /* the answers, typed, as the final statement's params */
	char *text[JOIN_MAX_SUBS];      /* their text */
} subrun_t;

struct join {
	join_plan_t plan;
	member_t *m;
	int n;
	subrun_t sr;                /* the subqueries that run first */
	int step;                   /* the side being fetched (-1: none yet); n_sides: the final
	                               statement */
	lit_t rows[JOIN_MAX_SIDES]; /* each side's rows */
	uint64_t max_rows;
	size_t max_bytes;                   /* merge_memory: the text both sides' rows may take */
	uint32_t key_types[JOIN_MAX_SIDES]; /* per probed side: the type of the column its keys
	                                       come from, from that side's RowDescription */
	size_t key_bytes;                   /* the probe batches' text, all members */
	int float_digits; /* the session's extra_float_digits, as the first member says */
	bool extended;    /* the client's Bind/Execute: no ReadyForQuery, Sync gets it */
	bool describe;    /* ... and it asked for the RowDescription */
	uint8_t *results; /* the client's result format codes (int16 count, codes) */
	size_t results_len;
	route_param_t *client; /* the client's parameters (copies) */
	int n_client;
	uint8_t *client_data;
	stmt_params_t sp;  /* one statement's parameters, as they are put together */
	bool short_params; /* the client's Bind gave fewer parameters than the statement has */
	uint8_t *error;    /* the first ErrorResponse body: the answer */
	size_t error_len;
	char sqlstate[6]; /* or pgshard's own error */
	char message[512];
};

/* ---- join_msg.c: array literals ---- */

void join_lit_free(lit_t *l);
/* One element, double-quoted with " and \ escaped; 0, or -1 when memory runs out. */
int join_lit_add(lit_t *l, const uint8_t *v, size_t len);
/* A NULL element (unquoted). */
int join_lit_add_null(lit_t *l);
/* The literal's text ("{}" with no elements), closed and NUL-terminated in place: once. */
const char *join_lit_text(lit_t *l);

/* ---- join_msg.c: the join's error, rows and memory ---- */

/* pgshard's own error for the join, unless it has one already. */
void join_own_error(join_t *j, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A shard's ErrorResponse body as the join's error, unless it has one already. */
void join_keep_error(join_t *j, const uint8_t *body, size_t len);
bool join_failed(const join_t *j);
/* The n-th field of a DataRow body: its bytes and length (-1 NULL). 0, or -1. */
int join_field_at(const uint8_t *body, size_t len, int n, const uint8_t **v, int32_t *vlen);
/* The text the join holds: rows, keys, subqueries' rows and answers. */
size_t join_held_bytes(const join_t *j);
/* Whether len more bytes fit under merge_memory; else the join's error is 54000. */
bool join_room_for(join_t *j, size_t len);

/* ---- join_keys.c: the probe keys ---- */

/* Whether keys of this type are split into batches (each key text once), not one batch. */
bool join_keys_batched(uint32_t type);
/* 1 when the key is new (now kept), 0 when it was there, -1 when memory runs out. */
int join_keyset_add(keyset_t *s, const uint8_t *v, size_t len);
void join_keyset_free(keyset_t *s);

/* ---- join_msg.c: statements ---- */

/* A text value of ours as a parameter. */
route_param_t join_text_param(const char *v);
/*
 * A statement's parameters: the client's whose numbers are in map (n of
 * them), as the client sent them, or a subquery's answer for a number past
 * the client's, then `first` of ours. 0, or -1 when the client gave fewer
 * or memory ran out (join_params_short says which).
 */
int join_params_of(join_t *j, stmt_params_t *sp, const route_param_t *first, int n_first,
                   const int *map, int n);
/* join_params_of failed: 1 when the client gave fewer parameters, -1 when memory ran out. */
int join_params_short(const join_t *j);
void join_put_parse(wire_buf_t *b, const char *sql, const stmt_params_t *sp);
/* A Bind of the unnamed statement; results NULL: every column in text. */
void join_put_bind(wire_buf_t *b, const stmt_params_t *sp, const uint8_t *results,
                   size_t results_len);
/* Describe (or not), Execute and Sync after b's messages, sent on m, its reply marked. */
int join_send_run(client_t *c, member_t *m, wire_buf_t *b, uint8_t mark, bool describe);

/* ---- subq.c: the subqueries run first ---- */

/*
 * The next statements of the subqueries that run first (the next one's
 * rows, or itself, then its answer kept). 0, 1 when the client gave fewer
 * parameters, -1 when memory runs out.
 */
int subq_stage(client_t *c, join_t *j);
/* A row of the running subquery's table (PEND_SUB_ROWS), of its answer (PEND_SUB_RUN). */
void subq_row(join_t *j, const uint8_t *body, size_t len);
void subq_answer_row(join_t *j, const uint8_t *body, size_t len);
/* The type of the first column of a RowDescription, 0 when it has none. */
uint32_t subq_first_type(const uint8_t *body, size_t len);
/* A shard's error for the running subquery: 42703 said as what it likely means (0A000). */
void subq_error(join_t *j, const uint8_t *body, size_t len);

#endif
