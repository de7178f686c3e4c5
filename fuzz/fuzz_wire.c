/*
 * fuzz_wire.c — the wire codec (proxy/wire.h) on hostile bytes.
 *
 * The first input byte picks a mode:
 *   0  a stream of typed messages, as a client or a server sends them: each
 *      framed message's body goes through every decoder (the type byte of a
 *      client and of a server message can mean different things, and a
 *      decoder must be safe on anything), and what a decoder returns must
 *      lie inside the body
 *   1  a startup-phase packet: framed, decoded, and, when it decodes,
 *      built again with the builder, which must give back the same bytes
 *   2  builder round trips: messages built from fuzzed fields decode to the
 *      same fields (ErrorResponse, Authentication, ParameterStatus,
 *      BackendKeyData, ReadyForQuery, Parse, Bind, Describe, Query)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "proxy/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE (1 << 20)

static bool inside(const void *p, size_t n, const uint8_t *body, size_t len)
{
	const uint8_t *q = p;

	return q >= body && n <= len && q - body <= (ptrdiff_t)(len - n);
}

static void decode_body(uint8_t type, const uint8_t *body, size_t len)
{
	wire_parse_msg_t pm;
	wire_bind_msg_t bm;
	wire_bind_param_t params[8];
	wire_target_msg_t tm;
	const char *q;
	int32_t code;
	const uint8_t *adata;
	size_t alen;
	int n;
	static const char fields[] = "SVCMDHPpqWstcdnFLR";

	if (wire_parse_parse(body, len, &pm) == 0) {
		fuzz_check(inside(pm.name, strlen(pm.name) + 1, body, len));
		fuzz_check(inside(pm.query, strlen(pm.query) + 1, body, len));
		fuzz_check(pm.n_types >= 0);
		fuzz_check(inside(pm.types, (size_t)pm.n_types * 4, body, len));
		fuzz_check(pm.types + (size_t)pm.n_types * 4 == body + len);
		fuzz_check(pm.tail_off + 2 + (size_t)pm.n_types * 4 == len);
	}
	if (wire_parse_bind(body, len, &bm) == 0) {
		fuzz_check(inside(bm.portal, strlen(bm.portal) + 1, body, len));
		fuzz_check(inside(bm.stmt, strlen(bm.stmt) + 1, body, len));
		fuzz_check(bm.tail_off <= len);
		if (wire_bind_params(body, len, &bm, params, 8, &n) == 0) {
			fuzz_check(n >= 0);
			for (int i = 0; i < n && i < 8; i++) {
				if (params[i].data == NULL) {
					fuzz_check(params[i].len == -1);
					continue;
				}
				fuzz_check(params[i].len >= 0);
				fuzz_check(
				    inside(params[i].data, (size_t)params[i].len, body, len));
			}
		}
	}
	if (wire_parse_target(body, len, &tm) == 0) {
		fuzz_check(tm.kind == 'S' || tm.kind == 'P');
		fuzz_check(inside(tm.name, strlen(tm.name) + 1, body, len));
	}
	if (wire_parse_query(body, len, &q) == 0)
		fuzz_check(strlen(q) + 1 == len);
	for (const char *f = fields; *f != '\0'; f++) {
		const char *v = wire_error_field(body, len, *f);

		if (v != NULL)
			fuzz_check(inside(v, strlen(v) + 1, body, len));
	}
	if (wire_parse_auth(body, len, &code, &adata, &alen) == 0) {
		fuzz_check(len >= 4);
		fuzz_check(adata + alen == body + len);
	}
	(void)type;
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (pos < size) {
		uint8_t type = 0;
		size_t total = 0;
		wire_frame_status_t st =
		    wire_frame(data + pos, size - pos, MAX_MESSAGE, &type, &total);
		uint8_t *body;

		if (st != WIRE_FRAME_OK) {
			if (st == WIRE_FRAME_NEED_MORE && size - pos >= WIRE_HEADER_LEN)
				fuzz_check(total > size - pos && total <= MAX_MESSAGE + 1);
			return;
		}
		fuzz_check(total >= WIRE_HEADER_LEN && total <= size - pos);
		body = fuzz_dup(data + pos + WIRE_HEADER_LEN, total - WIRE_HEADER_LEN);
		decode_body(type, body, total - WIRE_HEADER_LEN);
		free(body);
		pos += total;
	}
}

static void fuzz_startup(const uint8_t *data, size_t size)
{
	wire_startup_t *s = malloc(sizeof(*s));
	size_t total = 0;
	uint8_t *pkt;
	wire_buf_t b;

	if (s == NULL)
		abort();
	if (wire_frame_startup(data, size, &total) == WIRE_FRAME_OK) {
		fuzz_check(total >= 8 && total <= WIRE_STARTUP_MAX && total <= size);
		size = total;
	}
	pkt = fuzz_dup(data, size);
	if (wire_parse_startup(pkt, size, s) != 0)
		goto out;

	/* What decoded builds again into the same bytes: the encoding is canonical. */
	wire_buf_init(&b);
	wire_begin(&b, 0);
	wire_put_i32(&b, s->code);
	switch (s->code) {
	case WIRE_CANCEL_CODE:
		wire_put_i32(&b, s->cancel_pid);
		wire_put_i32(&b, s->cancel_key);
		break;
	case WIRE_SSL_CODE:
	case WIRE_GSSENC_CODE:
		break;
	default:
		fuzz_check(s->n_params >= 0 && s->n_params <= WIRE_STARTUP_MAX_PARAMS);
		for (int i = 0; i < s->n_params; i++) {
			const char *v = wire_startup_get(s, s->params[i].name);

			fuzz_check(s->params[i].name[0] != '\0');
			fuzz_check(
			    inside(s->params[i].name, strlen(s->params[i].name) + 1, pkt, size));
			fuzz_check(
			    inside(s->params[i].value, strlen(s->params[i].value) + 1, pkt, size));
			/* the first parameter of that name wins */
			for (int j = 0; j < i; j++) {
				if (strcmp(s->params[j].name, s->params[i].name) == 0) {
					fuzz_check(v == s->params[j].value);
					goto next;
				}
			}
			fuzz_check(v == s->params[i].value);
		next:
			wire_put_cstring(&b, s->params[i].name);
			wire_put_cstring(&b, s->params[i].value);
		}
		wire_put_u8(&b, 0);
		break;
	}
	fuzz_check(wire_end(&b) == 0);
	fuzz_check(b.len == size && memcmp(b.data, pkt, size) == 0);
	wire_buf_free(&b);
out:
	free(pkt);
	free(s);
}

/* Frame the one message in b (which must be exactly one) and return a copy of its body. */
static uint8_t *only_message(const wire_buf_t *b, uint8_t want_type, size_t *len)
{
	uint8_t type = 0;
	size_t total = 0;

	fuzz_check(!b->failed);
	fuzz_check(wire_frame(b->data, b->len, MAX_MESSAGE * 2u, &type, &total) == WIRE_FRAME_OK);
	fuzz_check(type == want_type && total == b->len);
	*len = total - WIRE_HEADER_LEN;
	return fuzz_dup(b->data + WIRE_HEADER_LEN, *len);
}

static void fuzz_build(fuzz_in_t *in)
{
	uint8_t which = fuzz_u8(in) % 8;
	wire_buf_t b;
	wire_reader_t r;
	uint8_t *body;
	size_t len;

	wire_buf_init(&b);
	switch (which) {
	case 0: { /* ErrorResponse */
		char *sev = fuzz_take_string(in, 0), *state = fuzz_take_string(in, 0);
		char *msg = fuzz_take_string(in, 0);

		wire_put_error(&b, sev, state, msg);
		body = only_message(&b, 'E', &len);
		fuzz_check(strcmp(wire_error_field(body, len, 'S'), sev) == 0);
		fuzz_check(strcmp(wire_error_field(body, len, 'V'), sev) == 0);
		fuzz_check(strcmp(wire_error_field(body, len, 'C'), state) == 0);
		fuzz_check(strcmp(wire_error_field(body, len, 'M'), msg) == 0);
		fuzz_check(wire_error_field(body, len, 'D') == NULL);
		free(sev);
		free(state);
		free(msg);
		break;
	}
	case 1: { /* Authentication */
		int32_t code = (int32_t)fuzz_u32(in), got;
		size_t dlen, glen;
		uint8_t *d = fuzz_take_rest(in, &dlen);
		const uint8_t *gd;

		wire_put_auth(&b, code, d, dlen);
		body = only_message(&b, 'R', &len);
		fuzz_check(wire_parse_auth(body, len, &got, &gd, &glen) == 0);
		fuzz_check(got == code && glen == dlen && memcmp(gd, d, dlen) == 0);
		free(d);
		break;
	}
	case 2: { /* ParameterStatus */
		char *name = fuzz_take_string(in, 0), *value = fuzz_take_string(in, 0);
		const char *gn, *gv;

		wire_put_parameter_status(&b, name, value);
		body = only_message(&b, 'S', &len);
		wire_reader_init(&r, body, len);
		fuzz_check(wire_get_cstring(&r, &gn) == 0 && wire_get_cstring(&r, &gv) == 0);
		fuzz_check(strcmp(gn, name) == 0 && strcmp(gv, value) == 0);
		fuzz_check(wire_remaining(&r) == 0);
		free(name);
		free(value);
		break;
	}
	case 3: { /* BackendKeyData */
		int32_t pid = (int32_t)fuzz_u32(in), key = (int32_t)fuzz_u32(in), gp, gk;

		wire_put_backend_key(&b, pid, key);
		body = only_message(&b, 'K', &len);
		wire_reader_init(&r, body, len);
		fuzz_check(wire_get_i32(&r, &gp) == 0 && wire_get_i32(&r, &gk) == 0);
		fuzz_check(gp == pid && gk == key && wire_remaining(&r) == 0);
		fuzz_check(wire_get_u8(&r, &(uint8_t){0}) == -1 && r.failed);
		break;
	}
	case 4: { /* ReadyForQuery */
		uint8_t st = fuzz_u8(in), got;

		wire_put_ready(&b, (char)st);
		body = only_message(&b, 'Z', &len);
		wire_reader_init(&r, body, len);
		fuzz_check(wire_get_u8(&r, &got) == 0 && got == st && wire_remaining(&r) == 0);
		break;
	}
	case 5: { /* Parse */
		char *name = fuzz_take_string(in, 0), *query = fuzz_take_string(in, 0);
		int16_t n = (int16_t)(fuzz_u8(in) % 16);
		int32_t oids[16];
		wire_parse_msg_t pm;

		wire_begin(&b, 'P');
		wire_put_cstring(&b, name);
		wire_put_cstring(&b, query);
		wire_put_i16(&b, n);
		for (int i = 0; i < n; i++) {
			oids[i] = (int32_t)fuzz_u32(in);
			wire_put_i32(&b, oids[i]);
		}
		fuzz_check(wire_end(&b) == 0);
		body = only_message(&b, 'P', &len);
		fuzz_check(wire_parse_parse(body, len, &pm) == 0);
		fuzz_check(strcmp(pm.name, name) == 0 && strcmp(pm.query, query) == 0);
		fuzz_check(pm.n_types == n);
		for (int i = 0; i < n; i++)
			fuzz_check(wire_be32(pm.types + 4 * i) == oids[i]);
		free(name);
		free(query);
		break;
	}
	case 6: { /* Bind */
		char *portal = fuzz_take_string(in, 0), *stmt = fuzz_take_string(in, 0);
		int n = fuzz_u8(in) % 12, n_formats = fuzz_u8(in) % 3, got_n = -1;
		int16_t formats[12];
		int32_t lens[12];
		const uint8_t *vals[12];
		wire_bind_msg_t bm;
		wire_bind_param_t got[12];

		/* 0 format codes (all text), 1 (all alike), or one per value */
		wire_begin(&b, 'B');
		wire_put_cstring(&b, portal);
		wire_put_cstring(&b, stmt);
		n_formats = n_formats == 2 ? n : n_formats;
		wire_put_i16(&b, (int16_t)n_formats);
		for (int i = 0; i < n_formats; i++) {
			formats[i] = fuzz_u8(in) & 1;
			wire_put_i16(&b, formats[i]);
		}
		wire_put_i16(&b, (int16_t)n);
		for (int i = 0; i < n; i++) {
			uint8_t l = fuzz_u8(in);

			lens[i] = l == 0xff ? -1 : (int32_t)(l % 16 <= in->n ? l % 16 : in->n);
			vals[i] = in->p;
			wire_put_i32(&b, lens[i]);
			if (lens[i] > 0) {
				wire_put_bytes(&b, in->p, (size_t)lens[i]);
				in->p += lens[i];
				in->n -= (size_t)lens[i];
			}
		}
		wire_put_i16(&b, 0); /* result formats */
		fuzz_check(wire_end(&b) == 0);
		body = only_message(&b, 'B', &len);
		fuzz_check(wire_parse_bind(body, len, &bm) == 0);
		fuzz_check(strcmp(bm.portal, portal) == 0 && strcmp(bm.stmt, stmt) == 0);
		fuzz_check(wire_bind_params(body, len, &bm, got, 12, &got_n) == 0 && got_n == n);
		for (int i = 0; i < n; i++) {
			int16_t f = n_formats == 0 ? 0 : n_formats == 1 ? formats[0] : formats[i];

			fuzz_check(got[i].len == lens[i] && got[i].format == f);
			fuzz_check((got[i].data == NULL) == (lens[i] == -1));
			if (lens[i] > 0)
				fuzz_check(memcmp(got[i].data, vals[i], (size_t)lens[i]) == 0);
		}
		free(portal);
		free(stmt);
		break;
	}
	default: { /* Describe and Query */
		char *name = fuzz_take_string(in, 0), *query = fuzz_take_string(in, 0);
		uint8_t kind = fuzz_u8(in) & 1 ? 'S' : 'P';
		wire_target_msg_t tm;
		const char *q;

		wire_begin(&b, 'D');
		wire_put_u8(&b, kind);
		wire_put_cstring(&b, name);
		fuzz_check(wire_end(&b) == 0);
		body = only_message(&b, 'D', &len);
		fuzz_check(wire_parse_target(body, len, &tm) == 0);
		fuzz_check(tm.kind == kind && strcmp(tm.name, name) == 0);
		free(body);
		wire_buf_reset(&b);
		wire_begin(&b, 'Q');
		wire_put_cstring(&b, query);
		fuzz_check(wire_end(&b) == 0);
		body = only_message(&b, 'Q', &len);
		fuzz_check(wire_parse_query(body, len, &q) == 0 && strcmp(q, query) == 0);
		free(name);
		free(query);
		break;
	}
	}
	free(body);
	wire_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_in_t in = {data, size};

	switch (fuzz_u8(&in) % 3) {
	case 0:
		fuzz_stream(in.p, in.n);
		break;
	case 1:
		fuzz_startup(in.p, in.n);
		break;
	default:
		fuzz_build(&in);
		break;
	}
	return 0;
}
