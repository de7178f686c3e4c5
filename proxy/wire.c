/*
 * wire.c — the PostgreSQL v3 wire protocol codec (see wire.h).
 *
 * Pure: no I/O and no globals. The proxy hands it bytes it has received and
 * gets back message boundaries and decoded fields, or gets bytes to send.
 */
#include "proxy/wire.h"

#include <stdlib.h>
#include <string.h>

/* ---- reading ---- */

void wire_reader_init(wire_reader_t *r, const void *data, size_t len)
{
	r->p = data;
	r->len = len;
	r->pos = 0;
	r->failed = false;
}

size_t wire_remaining(const wire_reader_t *r)
{
	return r->len - r->pos;
}

static int reader_fail(wire_reader_t *r)
{
	r->failed = true;
	return -1;
}

int wire_get_u8(wire_reader_t *r, uint8_t *out)
{
	if (r->failed || wire_remaining(r) < 1)
		return reader_fail(r);
	*out = r->p[r->pos++];
	return 0;
}

int wire_get_i16(wire_reader_t *r, int16_t *out)
{
	if (r->failed || wire_remaining(r) < 2)
		return reader_fail(r);
	*out = wire_be16(r->p + r->pos);
	r->pos += 2;
	return 0;
}

int wire_get_i32(wire_reader_t *r, int32_t *out)
{
	if (r->failed || wire_remaining(r) < 4)
		return reader_fail(r);
	*out = wire_be32(r->p + r->pos);
	r->pos += 4;
	return 0;
}

int wire_get_bytes(wire_reader_t *r, size_t n, const uint8_t **out)
{
	if (r->failed || wire_remaining(r) < n)
		return reader_fail(r);
	*out = r->p + r->pos;
	r->pos += n;
	return 0;
}

int wire_get_cstring(wire_reader_t *r, const char **out)
{
	const uint8_t *start, *nul;

	if (r->failed)
		return -1;
	start = r->p + r->pos;
	nul = memchr(start, '\0', wire_remaining(r));
	if (nul == NULL)
		return reader_fail(r);
	*out = (const char *)start;
	r->pos += (size_t)(nul - start) + 1;
	return 0;
}

/* ---- framing ---- */

wire_frame_status_t wire_frame(const uint8_t *data, size_t avail, size_t max, uint8_t *type,
                               size_t *total)
{
	int32_t len;

	if (avail < WIRE_HEADER_LEN)
		return WIRE_FRAME_NEED_MORE;
	*type = data[0];
	len = wire_be32(data + 1);
	/* don't believe nonsense: the length counts itself, and has a ceiling */
	if (len < 4)
		return WIRE_FRAME_BAD_LENGTH;
	if ((size_t)len > max)
		return WIRE_FRAME_TOO_LONG;
	*total = (size_t)len + 1;
	return avail >= *total ? WIRE_FRAME_OK : WIRE_FRAME_NEED_MORE;
}

wire_frame_status_t wire_frame_startup(const uint8_t *data, size_t avail, size_t *total)
{
	int32_t len;

	if (avail < 4)
		return WIRE_FRAME_NEED_MORE;
	len = wire_be32(data);
	if (len < 8)
		return WIRE_FRAME_BAD_LENGTH;
	if (len > WIRE_STARTUP_MAX)
		return WIRE_FRAME_TOO_LONG;
	*total = (size_t)len;
	return avail >= *total ? WIRE_FRAME_OK : WIRE_FRAME_NEED_MORE;
}

/* ---- decoding ---- */

int wire_parse_startup(const uint8_t *data, size_t len, wire_startup_t *out)
{
	wire_reader_t r;
	int32_t plen;

	memset(out, 0, sizeof(*out));
	wire_reader_init(&r, data, len);
	if (wire_get_i32(&r, &plen) < 0 || (size_t)plen != len || wire_get_i32(&r, &out->code) < 0)
		return -1;

	switch (out->code) {
	case WIRE_CANCEL_CODE:
		if (wire_get_i32(&r, &out->cancel_pid) < 0 ||
		    wire_get_i32(&r, &out->cancel_key) < 0 || wire_remaining(&r) != 0)
			return -1;
		return 0;
	case WIRE_SSL_CODE:
	case WIRE_GSSENC_CODE:
		return wire_remaining(&r) == 0 ? 0 : -1;
	default:
		break;
	}

	/* StartupMessage: name/value pairs, terminated by an empty name */
	for (;;) {
		const char *name, *value;

		if (wire_get_cstring(&r, &name) < 0)
			return -1;
		if (name[0] == '\0')
			break;
		if (wire_get_cstring(&r, &value) < 0)
			return -1;
		if (out->n_params == WIRE_STARTUP_MAX_PARAMS)
			return -1;
		out->params[out->n_params].name = name;
		out->params[out->n_params].value = value;
		out->n_params++;
	}
	return wire_remaining(&r) == 0 ? 0 : -1;
}

const char *wire_startup_get(const wire_startup_t *s, const char *name)
{
	for (int i = 0; i < s->n_params; i++)
		if (strcmp(s->params[i].name, name) == 0)
			return s->params[i].value;
	return NULL;
}

int wire_parse_parse(const uint8_t *body, size_t len, wire_parse_msg_t *out)
{
	wire_reader_t r;

	wire_reader_init(&r, body, len);
	if (wire_get_cstring(&r, &out->name) < 0 || wire_get_cstring(&r, &out->query) < 0)
		return -1;
	out->tail_off = r.pos;
	if (wire_get_i16(&r, &out->n_types) < 0 || out->n_types < 0 ||
	    wire_get_bytes(&r, (size_t)out->n_types * 4, &out->types) < 0)
		return -1;
	return wire_remaining(&r) == 0 ? 0 : -1;
}

int wire_parse_bind(const uint8_t *body, size_t len, wire_bind_msg_t *out)
{
	wire_reader_t r;
	int16_t n;
	const uint8_t *skip;

	wire_reader_init(&r, body, len);
	if (wire_get_cstring(&r, &out->portal) < 0 || wire_get_cstring(&r, &out->stmt) < 0)
		return -1;
	out->tail_off = r.pos;

	/* Check the rest is well formed too, so that a server never sees a cut-off Bind. */
	if (wire_get_i16(&r, &n) < 0 || n < 0 || wire_get_bytes(&r, (size_t)n * 2, &skip) < 0)
		return -1;
	if (wire_get_i16(&r, &n) < 0 || n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		int32_t plen;

		if (wire_get_i32(&r, &plen) < 0)
			return -1;
		if (plen == -1)
			continue;
		if (plen < 0 || wire_get_bytes(&r, (size_t)plen, &skip) < 0)
			return -1;
	}
	if (wire_get_i16(&r, &n) < 0 || n < 0 || wire_get_bytes(&r, (size_t)n * 2, &skip) < 0)
		return -1;
	return wire_remaining(&r) == 0 ? 0 : -1;
}

int wire_bind_params(const uint8_t *body, size_t len, const wire_bind_msg_t *m,
                     wire_bind_param_t *out, int max, int *n)
{
	wire_reader_t r;
	int16_t n_formats, n_values;
	const uint8_t *formats;

	wire_reader_init(&r, body, len);
	r.pos = m->tail_off;
	if (wire_get_i16(&r, &n_formats) < 0 || n_formats < 0 ||
	    wire_get_bytes(&r, (size_t)n_formats * 2, &formats) < 0)
		return -1;
	if (wire_get_i16(&r, &n_values) < 0 || n_values < 0)
		return -1;
	if (n_formats > 1 && n_formats != n_values)
		return -1;
	*n = n_values;
	for (int i = 0; i < n_values; i++) {
		int32_t plen;
		const uint8_t *data = NULL;
		int16_t format = 0;

		if (wire_get_i32(&r, &plen) < 0)
			return -1;
		if (plen < -1 || (plen > 0 && wire_get_bytes(&r, (size_t)plen, &data) < 0))
			return -1;
		if (plen == 0)
			data = body + r.pos; /* an empty value is not NULL */
		if (n_formats == 1)
			format = wire_be16(formats);
		else if (n_formats > 1)
			format = wire_be16(formats + 2 * i);
		if (i < max) {
			out[i].data = plen == -1 ? NULL : data;
			out[i].len = plen;
			out[i].format = format;
		}
	}
	return 0;
}

int wire_parse_target(const uint8_t *body, size_t len, wire_target_msg_t *out)
{
	wire_reader_t r;

	wire_reader_init(&r, body, len);
	if (wire_get_u8(&r, &out->kind) < 0 || (out->kind != 'S' && out->kind != 'P') ||
	    wire_get_cstring(&r, &out->name) < 0)
		return -1;
	return wire_remaining(&r) == 0 ? 0 : -1;
}

int wire_parse_query(const uint8_t *body, size_t len, const char **query)
{
	if (len == 0 || body[len - 1] != '\0' || memchr(body, '\0', len) != body + len - 1)
		return -1;
	*query = (const char *)body;
	return 0;
}

const char *wire_error_field(const uint8_t *body, size_t len, char field)
{
	wire_reader_t r;
	uint8_t code;
	const char *value;

	wire_reader_init(&r, body, len);
	while (wire_get_u8(&r, &code) == 0 && code != 0) {
		if (wire_get_cstring(&r, &value) < 0)
			return NULL;
		if (code == (uint8_t)field)
			return value;
	}
	return NULL;
}

int wire_parse_auth(const uint8_t *body, size_t len, int32_t *code, const uint8_t **data,
                    size_t *data_len)
{
	wire_reader_t r;

	wire_reader_init(&r, body, len);
	if (wire_get_i32(&r, code) < 0)
		return -1;
	*data_len = wire_remaining(&r);
	*data = body + r.pos;
	return 0;
}

/* ---- building ---- */

void wire_buf_init(wire_buf_t *b)
{
	memset(b, 0, sizeof(*b));
}

void wire_buf_free(wire_buf_t *b)
{
	free(b->data);
	wire_buf_init(b);
}

void wire_buf_reset(wire_buf_t *b)
{
	b->len = 0;
	b->msg_start = 0;
	b->failed = false;
	b->in_msg = false;
}

static bool buf_reserve(wire_buf_t *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->failed)
		return false;
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void wire_put_bytes(wire_buf_t *b, const void *p, size_t n)
{
	if (!b->in_msg)
		b->failed = true; /* bytes outside a message would desynchronize the stream */
	if (!buf_reserve(b, n))
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void wire_put_u8(wire_buf_t *b, uint8_t v)
{
	wire_put_bytes(b, &v, 1);
}

void wire_put_i16(wire_buf_t *b, int16_t v)
{
	uint8_t x[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};

	wire_put_bytes(b, x, 2);
}

void wire_put_i32(wire_buf_t *b, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};

	wire_put_bytes(b, x, 4);
}

void wire_put_cstring(wire_buf_t *b, const char *s)
{
	wire_put_bytes(b, s, strlen(s) + 1);
}

void wire_begin(wire_buf_t *b, uint8_t type)
{
	b->msg_start = b->len;
	b->msg_typed = type != 0;
	b->in_msg = true;
	if (type != 0)
		wire_put_u8(b, type);
	wire_put_i32(b, 0); /* length, back-patched by wire_end */
}

int wire_end(wire_buf_t *b)
{
	size_t len_at;
	uint32_t len;

	if (b->failed || !b->in_msg)
		return -1;
	b->in_msg = false;
	len_at = b->msg_start + (b->msg_typed ? 1 : 0);
	if (b->len - len_at > INT32_MAX) {
		b->failed = true;
		return -1;
	}
	len = (uint32_t)(b->len - len_at);
	b->data[len_at] = (uint8_t)(len >> 24);
	b->data[len_at + 1] = (uint8_t)(len >> 16);
	b->data[len_at + 2] = (uint8_t)(len >> 8);
	b->data[len_at + 3] = (uint8_t)len;
	return 0;
}

static void put_fields(wire_buf_t *b, uint8_t type, const char *severity, const char *sqlstate,
                       const char *message)
{
	wire_begin(b, type);
	wire_put_u8(b, 'S');
	wire_put_cstring(b, severity);
	wire_put_u8(b, 'V');
	wire_put_cstring(b, severity);
	wire_put_u8(b, 'C');
	wire_put_cstring(b, sqlstate);
	wire_put_u8(b, 'M');
	wire_put_cstring(b, message);
	wire_put_u8(b, 0);
	wire_end(b);
}

void wire_put_error(wire_buf_t *b, const char *severity, const char *sqlstate, const char *message)
{
	put_fields(b, 'E', severity, sqlstate, message);
}

void wire_put_notice(wire_buf_t *b, const char *severity, const char *sqlstate, const char *message)
{
	put_fields(b, 'N', severity, sqlstate, message);
}

void wire_put_auth(wire_buf_t *b, int32_t code, const void *data, size_t len)
{
	wire_begin(b, 'R');
	wire_put_i32(b, code);
	wire_put_bytes(b, data, len);
	wire_end(b);
}

void wire_put_parameter_status(wire_buf_t *b, const char *name, const char *value)
{
	wire_begin(b, 'S');
	wire_put_cstring(b, name);
	wire_put_cstring(b, value);
	wire_end(b);
}

void wire_put_backend_key(wire_buf_t *b, int32_t pid, int32_t key)
{
	wire_begin(b, 'K');
	wire_put_i32(b, pid);
	wire_put_i32(b, key);
	wire_end(b);
}

void wire_put_ready(wire_buf_t *b, char status)
{
	wire_begin(b, 'Z');
	wire_put_u8(b, (uint8_t)status);
	wire_end(b);
}

void wire_put_empty(wire_buf_t *b, uint8_t type)
{
	wire_begin(b, type);
	wire_end(b);
}

int wire_put_run_unnamed(wire_buf_t *b, bool describe, bool execute)
{
	if (describe) {
		wire_begin(b, 'D');
		wire_put_u8(b, 'P');
		wire_put_cstring(b, "");
		wire_end(b);
	}
	if (execute) {
		wire_begin(b, 'E');
		wire_put_cstring(b, "");
		wire_put_i32(b, 0);
		wire_end(b);
	}
	wire_begin(b, 'S');
	return wire_end(b);
}
