/*
 * wire.h — the PostgreSQL v3 wire protocol, as a pure codec.
 *
 * Bytes in, messages out, and the reverse; no I/O. Every read goes through a
 * bounds-checked reader that fails instead of reading past the end, and every
 * declared length is checked against a limit before anything is buffered.
 * Outgoing messages are built with begin / put / end on a growable buffer
 * that back-patches the length and carries a sticky failure flag, so a
 * sequence of puts needs one check at the end.
 *
 * Message layout: a type byte, an int32 length that counts itself but not
 * the type byte, then the body. The startup-phase packets (StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest) have no type byte.
 */
#ifndef PGSHARD_WIRE_H
#define PGSHARD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_PROTOCOL_3_0       196608 /* 3 << 16 */
#define WIRE_CANCEL_CODE        80877102
#define WIRE_SSL_CODE           80877103
#define WIRE_GSSENC_CODE        80877104
#define WIRE_STARTUP_MAX        10000 /* PostgreSQL's MAX_STARTUP_PACKET_LENGTH */
#define WIRE_STARTUP_MAX_PARAMS 64
#define WIRE_HEADER_LEN         5

/* ---- reading ---- */

typedef struct wire_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool failed; /* sticky: set by the first getter that ran out of data */
} wire_reader_t;

void wire_reader_init(wire_reader_t *r, const void *data, size_t len);
/* Each getter returns 0 and advances, or returns -1, sets r->failed and leaves *out alone. */
int wire_get_u8(wire_reader_t *r, uint8_t *out);
int wire_get_i16(wire_reader_t *r, int16_t *out);
int wire_get_i32(wire_reader_t *r, int32_t *out);
int wire_get_bytes(wire_reader_t *r, size_t n, const uint8_t **out);
/* A NUL-terminated string that must end inside the data; *out points into it. */
int wire_get_cstring(wire_reader_t *r, const char **out);
size_t wire_remaining(const wire_reader_t *r);

/* ---- framing ---- */

typedef enum wire_frame_status {
	WIRE_FRAME_OK,         /* a whole message is available */
	WIRE_FRAME_NEED_MORE,  /* header or body not complete yet */
	WIRE_FRAME_BAD_LENGTH, /* length field < 4 */
	WIRE_FRAME_TOO_LONG,   /* length field over the limit */
} wire_frame_status_t;

/*
 * Look at the first `avail` bytes of a typed message stream. On OK or
 * NEED_MORE with a full header, *type and *total (type byte + length field +
 * body) are set. `max` is the largest accepted body+length value.
 */
wire_frame_status_t wire_frame(const uint8_t *data, size_t avail, size_t max, uint8_t *type,
                               size_t *total);

/* Same for an untyped startup-phase packet (length first). max is WIRE_STARTUP_MAX. */
wire_frame_status_t wire_frame_startup(const uint8_t *data, size_t avail, size_t *total);

/* ---- decoding messages (body = after type byte and length) ---- */

typedef struct wire_param {
	const char *name;
	const char *value;
} wire_param_t;

typedef struct wire_startup {
	int32_t
	    code; /* WIRE_PROTOCOL_3_0, WIRE_SSL_CODE, WIRE_GSSENC_CODE, WIRE_CANCEL_CODE, ... */
	/* StartupMessage */
	wire_param_t params[WIRE_STARTUP_MAX_PARAMS];
	int n_params;
	/* CancelRequest */
	int32_t cancel_pid;
	int32_t cancel_key;
} wire_startup_t;

/* Decode a whole startup-phase packet (including its length word). Strings
 * point into `data`. -1 if malformed (missing terminators, too many params). */
int wire_parse_startup(const uint8_t *data, size_t len, wire_startup_t *out);
const char *wire_startup_get(const wire_startup_t *s, const char *name);

typedef struct wire_parse_msg { /* 'P' Parse */
	const char *name;
	const char *query;
	int16_t n_types;
	const uint8_t *types; /* n_types big-endian int32 OIDs */
	size_t tail_off;      /* offset of the n_types field in the body */
} wire_parse_msg_t;
int wire_parse_parse(const uint8_t *body, size_t len, wire_parse_msg_t *out);

typedef struct wire_bind_msg { /* 'B' Bind: only the names are decoded */
	const char *portal;
	const char *stmt;
	size_t tail_off; /* offset of what follows the statement name in the body */
} wire_bind_msg_t;
int wire_parse_bind(const uint8_t *body, size_t len, wire_bind_msg_t *out);

typedef struct wire_bind_param { /* one parameter value of a Bind */
	const uint8_t *data;     /* NULL for SQL NULL */
	int32_t len;
	int16_t format; /* 0 text, 1 binary */
} wire_bind_param_t;

/* The parameter values of a Bind that wire_parse_bind accepted, with the format
 * each one has (no format codes: text; one: all; else one each). Fills at most
 * max entries and sets *n to the number the Bind holds. -1 if malformed. */
int wire_bind_params(const uint8_t *body, size_t len, const wire_bind_msg_t *m,
                     wire_bind_param_t *out, int max, int *n);

typedef struct wire_target_msg { /* 'D' Describe and 'C' Close */
	uint8_t kind;            /* 'S' statement or 'P' portal */
	const char *name;
} wire_target_msg_t;
int wire_parse_target(const uint8_t *body, size_t len, wire_target_msg_t *out);

/* 'Q' Query: the query string, which must be NUL-terminated at the end of the body. */
int wire_parse_query(const uint8_t *body, size_t len, const char **query);

/* 'E' ErrorResponse / 'N' NoticeResponse: look up one field (e.g. 'C' SQLSTATE, 'M'). */
const char *wire_error_field(const uint8_t *body, size_t len, char field);

/* 'R' Authentication: the request code (0 ok, 3 cleartext, 5 md5, 10 SASL, 11, 12). */
int wire_parse_auth(const uint8_t *body, size_t len, int32_t *code, const uint8_t **data,
                    size_t *data_len);

/* ---- building ---- */

typedef struct wire_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t msg_start; /* where the message being built starts */
	bool msg_typed;   /* it has a type byte before its length */
	bool in_msg;      /* between wire_begin and wire_end */
	bool failed;      /* sticky: allocation failed or put outside a message */
} wire_buf_t;

void wire_buf_init(wire_buf_t *b);
void wire_buf_free(wire_buf_t *b);
void wire_buf_reset(wire_buf_t *b);

/* type 0 begins an untyped (startup-phase) packet. */
void wire_begin(wire_buf_t *b, uint8_t type);
void wire_put_u8(wire_buf_t *b, uint8_t v);
void wire_put_i16(wire_buf_t *b, int16_t v);
void wire_put_i32(wire_buf_t *b, int32_t v);
void wire_put_bytes(wire_buf_t *b, const void *p, size_t n);
void wire_put_cstring(wire_buf_t *b, const char *s);
/* Back-patch the length of the message begun last. Returns 0, or -1 if anything failed. */
int wire_end(wire_buf_t *b);

/* Whole messages, appended to b. */
/* 'N' NoticeResponse with the same fields. */
void wire_put_notice(wire_buf_t *b, const char *severity, const char *sqlstate,
                     const char *message);
void wire_put_error(wire_buf_t *b, const char *severity, const char *sqlstate, const char *message);
void wire_put_auth(wire_buf_t *b, int32_t code, const void *data, size_t len);
void wire_put_parameter_status(wire_buf_t *b, const char *name, const char *value);
void wire_put_backend_key(wire_buf_t *b, int32_t pid, int32_t key);
void wire_put_ready(wire_buf_t *b, char status);
void wire_put_empty(wire_buf_t *b, uint8_t type); /* '1' ParseComplete, '3' CloseComplete, ... */
/* After a Bind of the unnamed portal: Describe of it (describe), Execute of all its rows
 * (execute), Sync. wire_end's result: -1 when memory ran out. */
int wire_put_run_unnamed(wire_buf_t *b, bool describe, bool execute);

/* Read a big-endian int32/int16 from raw bytes (caller has checked the length). */
static inline int32_t wire_be32(const uint8_t *p)
{
	return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
	                 (uint32_t)p[3]);
}

static inline int16_t wire_be16(const uint8_t *p)
{
	return (int16_t)(((uint16_t)p[0] << 8) | (uint16_t)p[1]);
}

#endif
