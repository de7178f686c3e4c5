/*
 * test_wire.c — the PostgreSQL v3 wire codec (proxy/wire.h), pinned with byte arrays.
 *
 * Every input here is written out byte by byte as PostgreSQL lays it out
 * (protocol.html, "Message Formats"), so that the codec is checked against
 * the protocol and not against itself. Only the round-trip tests at the end
 * feed the builder's output back to the parsers.
 *
 * String literals are used as byte arrays: `sizeof(x) - 1` drops the NUL the
 * compiler appends, and adjacent literals are split wherever a hex escape
 * would otherwise swallow the next character.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proxy/wire.h"

#define LEN(lit) (sizeof(lit) - 1)

/* A non-NULL pointer to zero bytes: "empty input" without NULL-pointer arithmetic. */
static const uint8_t nothing[1];

/* ---- reader getters ---- */

static void test_get_u8_reads_exactly_one_byte_and_advances(void **state)
{
	static const uint8_t data[] = {0xab};
	wire_reader_t r;
	uint8_t v = 0;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_u8(&r, &v), 0);
	assert_int_equal(v, 0xab);
	assert_int_equal(wire_remaining(&r), 0);
	assert_false(r.failed);
}

static void test_get_u8_on_empty_input_fails_and_leaves_out_alone(void **state)
{
	wire_reader_t r;
	uint8_t v = 0x5a;

	(void)state;
	wire_reader_init(&r, nothing, 0);
	assert_int_equal(wire_get_u8(&r, &v), -1);
	assert_true(r.failed);
	assert_int_equal(v, 0x5a);
}

static void test_get_i16_reads_big_endian_signed(void **state)
{
	static const uint8_t data[] = {0xff, 0xfe};
	wire_reader_t r;
	int16_t v = 0;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_i16(&r, &v), 0);
	assert_int_equal(v, -2);
	assert_int_equal(wire_remaining(&r), 0);
	assert_false(r.failed);
}

static void test_get_i16_on_one_byte_fails_without_advancing_or_writing(void **state)
{
	static const uint8_t data[] = {0x01};
	wire_reader_t r;
	int16_t v = 1234;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_i16(&r, &v), -1);
	assert_true(r.failed);
	assert_int_equal(v, 1234);
	assert_int_equal(wire_remaining(&r), 1);
}

static void test_get_i16_on_empty_input_fails_and_leaves_out_alone(void **state)
{
	wire_reader_t r;
	int16_t v = 1234;

	(void)state;
	wire_reader_init(&r, nothing, 0);
	assert_int_equal(wire_get_i16(&r, &v), -1);
	assert_true(r.failed);
	assert_int_equal(v, 1234);
}

static void test_get_i32_reads_big_endian_signed(void **state)
{
	static const uint8_t data[] = {0x80, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00};
	wire_reader_t r;
	int32_t v = 0;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_i32(&r, &v), 0);
	assert_int_equal(v, INT32_MIN + 1);
	assert_int_equal(wire_get_i32(&r, &v), 0);
	assert_int_equal(v, WIRE_PROTOCOL_3_0);
	assert_int_equal(wire_remaining(&r), 0);
	assert_false(r.failed);
}

static void test_get_i32_on_three_bytes_fails_and_leaves_out_alone(void **state)
{
	static const uint8_t data[] = {0x00, 0x00, 0x01};
	wire_reader_t r;
	int32_t v = 777;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_i32(&r, &v), -1);
	assert_true(r.failed);
	assert_int_equal(v, 777);
	assert_int_equal(wire_remaining(&r), 3);
}

static void test_get_i32_on_empty_input_fails_and_leaves_out_alone(void **state)
{
	wire_reader_t r;
	int32_t v = 777;

	(void)state;
	wire_reader_init(&r, nothing, 0);
	assert_int_equal(wire_get_i32(&r, &v), -1);
	assert_true(r.failed);
	assert_int_equal(v, 777);
}

static void test_get_bytes_of_exact_length_points_into_the_data(void **state)
{
	static const uint8_t data[] = {1, 2, 3};
	const uint8_t *p = NULL;
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_bytes(&r, 3, &p), 0);
	assert_ptr_equal(p, data);
	assert_int_equal(wire_remaining(&r), 0);
	/* a zero-length read at the end is not running out of data */
	assert_int_equal(wire_get_bytes(&r, 0, &p), 0);
	assert_false(r.failed);
}

static void test_get_bytes_longer_than_the_data_fails_and_leaves_out_alone(void **state)
{
	static const uint8_t data[] = {1, 2, 3};
	const uint8_t sentinel = 0;
	const uint8_t *p = &sentinel;
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_bytes(&r, 4, &p), -1);
	assert_true(r.failed);
	assert_ptr_equal(p, &sentinel);
	assert_int_equal(wire_remaining(&r), 3);
}

static void test_get_bytes_with_a_huge_count_fails_instead_of_wrapping(void **state)
{
	static const uint8_t data[] = {1, 2, 3};
	const uint8_t sentinel = 0;
	const uint8_t *p = &sentinel;
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_u8(&r, &(uint8_t){0}), 0);
	assert_int_equal(wire_get_bytes(&r, SIZE_MAX, &p), -1);
	assert_true(r.failed);
	assert_ptr_equal(p, &sentinel);
}

static void test_get_bytes_on_empty_input_fails_and_leaves_out_alone(void **state)
{
	const uint8_t sentinel = 0;
	const uint8_t *p = &sentinel;
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, nothing, 0);
	assert_int_equal(wire_get_bytes(&r, 1, &p), -1);
	assert_true(r.failed);
	assert_ptr_equal(p, &sentinel);
}

static void test_get_cstring_reads_up_to_and_past_its_nul(void **state)
{
	static const char data[] = "ab\0cd";
	const char *s = NULL;
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, data, LEN(data) + 1); /* both NULs */
	assert_int_equal(wire_get_cstring(&r, &s), 0);
	assert_string_equal(s, "ab");
	assert_ptr_equal(s, data);
	assert_int_equal(wire_get_cstring(&r, &s), 0);
	assert_string_equal(s, "cd");
	assert_int_equal(wire_remaining(&r), 0);
	assert_false(r.failed);
}

static void test_get_cstring_without_a_nul_inside_the_data_fails(void **state)
{
	/* the NUL the compiler appends is outside the length given to the reader */
	static const char data[] = "abc";
	const char *s = "untouched";
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, data, LEN(data));
	assert_int_equal(wire_get_cstring(&r, &s), -1);
	assert_true(r.failed);
	assert_string_equal(s, "untouched");
	assert_int_equal(wire_remaining(&r), 3);
}

static void test_get_cstring_on_empty_input_fails_and_leaves_out_alone(void **state)
{
	const char *s = "untouched";
	wire_reader_t r;

	(void)state;
	wire_reader_init(&r, nothing, 0);
	assert_int_equal(wire_get_cstring(&r, &s), -1);
	assert_true(r.failed);
	assert_string_equal(s, "untouched");
}

static void test_reader_failure_is_sticky_for_every_getter(void **state)
{
	/* enough for a u8, an i16 and a cstring, but not for an i32 + 1 */
	static const uint8_t data[] = {0x00, 0x01, 0x02, 'x', 0x00};
	const uint8_t *p = NULL;
	const char *s = NULL;
	wire_reader_t r;
	uint8_t u8 = 9;
	int16_t i16 = 9;
	int32_t i32 = 9;

	(void)state;
	wire_reader_init(&r, data, sizeof(data));
	assert_int_equal(wire_get_bytes(&r, 6, &p), -1);
	assert_true(r.failed);

	/* every later read fails although the data would have been enough */
	assert_int_equal(wire_get_u8(&r, &u8), -1);
	assert_int_equal(wire_get_i16(&r, &i16), -1);
	assert_int_equal(wire_get_i32(&r, &i32), -1);
	assert_int_equal(wire_get_bytes(&r, 0, &p), -1);
	assert_int_equal(wire_get_cstring(&r, &s), -1);
	assert_int_equal(u8, 9);
	assert_int_equal(i16, 9);
	assert_int_equal(i32, 9);
	assert_null(p);
	assert_null(s);
	assert_true(r.failed);
	assert_int_equal(wire_remaining(&r), sizeof(data));
}

/* ---- wire_frame ---- */

static void test_frame_needs_more_until_the_five_byte_header_is_in(void **state)
{
	static const uint8_t msg[] = {'Z', 0, 0, 0, 5, 'I'};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	for (size_t avail = 0; avail < WIRE_HEADER_LEN; avail++)
		assert_int_equal(wire_frame(msg, avail, 1024, &type, &total), WIRE_FRAME_NEED_MORE);
}

static void test_frame_of_an_exact_message_is_ok_with_type_and_total(void **state)
{
	static const uint8_t msg[] = {'Z', 0, 0, 0, 5, 'I'};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(msg, sizeof(msg), 1024, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, 'Z');
	assert_int_equal(total, 6);
}

static void test_frame_with_the_next_message_behind_counts_only_the_first(void **state)
{
	static const uint8_t msgs[] = {'1', 0, 0, 0, 4, 'Z', 0, 0, 0, 5, 'I'};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(msgs, sizeof(msgs), 1024, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, '1');
	assert_int_equal(total, 5);
	assert_int_equal(wire_frame(msgs + 5, sizeof(msgs) - 5, 1024, &type, &total),
	                 WIRE_FRAME_OK);
	assert_int_equal(type, 'Z');
	assert_int_equal(total, 6);
}

static void test_frame_with_header_but_partial_body_needs_more_and_says_total(void **state)
{
	static const uint8_t msg[] = {'Q', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(msg, 9, 1024, &type, &total), WIRE_FRAME_NEED_MORE);
	assert_int_equal(type, 'Q');
	assert_int_equal(total, sizeof(msg));
	assert_int_equal(wire_frame(msg, sizeof(msg), 1024, &type, &total), WIRE_FRAME_OK);
}

static void test_frame_length_below_four_is_bad_length(void **state)
{
	static const uint8_t three[] = {'Z', 0, 0, 0, 3, 'I', 'I', 'I'};
	static const uint8_t zero[] = {'Z', 0, 0, 0, 0};
	static const uint8_t negative[] = {'Z', 0x80, 0, 0, 0};
	static const uint8_t minus_one[] = {'Z', 0xff, 0xff, 0xff, 0xff};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(three, sizeof(three), 1024, &type, &total),
	                 WIRE_FRAME_BAD_LENGTH);
	assert_int_equal(wire_frame(zero, sizeof(zero), 1024, &type, &total),
	                 WIRE_FRAME_BAD_LENGTH);
	assert_int_equal(wire_frame(negative, sizeof(negative), SIZE_MAX, &type, &total),
	                 WIRE_FRAME_BAD_LENGTH);
	assert_int_equal(wire_frame(minus_one, sizeof(minus_one), SIZE_MAX, &type, &total),
	                 WIRE_FRAME_BAD_LENGTH);
}

static void test_frame_length_of_exactly_four_is_an_empty_body(void **state)
{
	static const uint8_t msg[] = {'1', 0, 0, 0, 4};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(msg, sizeof(msg), 1024, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, '1');
	assert_int_equal(total, 5);
}

static void test_frame_over_max_is_too_long_before_the_body_arrives(void **state)
{
	/* only the header is here: the proxy must refuse without buffering the body */
	static const uint8_t hdr[] = {'Q', 0x00, 0x10, 0x00, 0x01};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(hdr, sizeof(hdr), 0x100000, &type, &total),
	                 WIRE_FRAME_TOO_LONG);
	assert_int_equal(type, 'Q');
}

static void test_frame_length_equal_to_max_is_accepted(void **state)
{
	static const uint8_t hdr[] = {'Q', 0x00, 0x10, 0x00, 0x00};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(hdr, sizeof(hdr), 0x100000, &type, &total),
	                 WIRE_FRAME_NEED_MORE);
	assert_int_equal(total, 0x100001);
}

static void test_frame_length_int32_max_is_total_two_to_the_31(void **state)
{
	static const uint8_t hdr[] = {'d', 0x7f, 0xff, 0xff, 0xff};
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame(hdr, sizeof(hdr), SIZE_MAX, &type, &total),
	                 WIRE_FRAME_NEED_MORE);
	assert_int_equal(type, 'd');
	assert_true(total == (size_t)1 << 31);
	/* and under a real limit it is refused at the header */
	assert_int_equal(wire_frame(hdr, sizeof(hdr), WIRE_STARTUP_MAX, &type, &total),
	                 WIRE_FRAME_TOO_LONG);
}

/* ---- wire_frame_startup ---- */

static const uint8_t ssl_request[] = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f};

static void test_frame_startup_needs_more_until_the_length_word_is_in(void **state)
{
	size_t total = 0;

	(void)state;
	for (size_t avail = 0; avail < 4; avail++)
		assert_int_equal(wire_frame_startup(ssl_request, avail, &total),
		                 WIRE_FRAME_NEED_MORE);
	assert_int_equal(wire_frame_startup(ssl_request, 4, &total), WIRE_FRAME_NEED_MORE);
	assert_int_equal(total, 8);
}

static void test_frame_startup_of_an_exact_packet_is_ok(void **state)
{
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame_startup(ssl_request, sizeof(ssl_request), &total),
	                 WIRE_FRAME_OK);
	assert_int_equal(total, 8);
}

static void test_frame_startup_over_10000_is_too_long_from_the_length_word(void **state)
{
	static const uint8_t over[] = {0x00, 0x00, 0x27, 0x11};   /* 10001 */
	static const uint8_t at_max[] = {0x00, 0x00, 0x27, 0x10}; /* 10000 */
	static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff};
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame_startup(over, sizeof(over), &total), WIRE_FRAME_TOO_LONG);
	assert_int_equal(wire_frame_startup(huge, sizeof(huge), &total), WIRE_FRAME_TOO_LONG);
	assert_int_equal(wire_frame_startup(at_max, sizeof(at_max), &total), WIRE_FRAME_NEED_MORE);
	assert_int_equal(total, WIRE_STARTUP_MAX);
}

static void test_frame_startup_under_8_is_bad_length(void **state)
{
	static const uint8_t seven[] = {0x00, 0x00, 0x00, 0x07, 0x04, 0xd2, 0x16, 0x2f};
	static const uint8_t negative[] = {0xff, 0xff, 0xff, 0xf8};
	size_t total = 0;

	(void)state;
	assert_int_equal(wire_frame_startup(seven, sizeof(seven), &total), WIRE_FRAME_BAD_LENGTH);
	assert_int_equal(wire_frame_startup(negative, sizeof(negative), &total),
	                 WIRE_FRAME_BAD_LENGTH);
}

/* ---- wire_parse_startup ---- */

/* What psql sends: length 55, protocol 3.0, three parameters, final terminator. */
static const char startup_pkt[] = "\x00\x00\x00\x37"
                                  "\x00\x03\x00\x00"
                                  "user\0alice\0"
                                  "database\0app\0"
                                  "application_name\0psql\0"
                                  "\0";
_Static_assert(sizeof(startup_pkt) - 1 == 55, "startup_pkt length word");

static void test_parse_startup_decodes_a_real_startup_message(void **state)
{
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup((const uint8_t *)startup_pkt, LEN(startup_pkt), &st),
	                 0);
	assert_int_equal(st.code, WIRE_PROTOCOL_3_0);
	assert_int_equal(st.n_params, 3);
	assert_string_equal(st.params[0].name, "user");
	assert_string_equal(st.params[0].value, "alice");
	assert_string_equal(st.params[1].name, "database");
	assert_string_equal(st.params[1].value, "app");
	assert_string_equal(st.params[2].name, "application_name");
	assert_string_equal(st.params[2].value, "psql");
	/* strings point into the packet */
	assert_ptr_equal(st.params[0].name, startup_pkt + 8);
	assert_string_equal(wire_startup_get(&st, "database"), "app");
	assert_string_equal(wire_startup_get(&st, "application_name"), "psql");
	assert_null(wire_startup_get(&st, "options"));
	assert_null(wire_startup_get(&st, "User"));
}

static void test_parse_startup_decodes_ssl_request(void **state)
{
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(ssl_request, sizeof(ssl_request), &st), 0);
	assert_int_equal(st.code, WIRE_SSL_CODE);
	assert_int_equal(st.n_params, 0);
}

static void test_parse_startup_decodes_gssenc_request(void **state)
{
	static const uint8_t pkt[] = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x30};
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(pkt, sizeof(pkt), &st), 0);
	assert_int_equal(st.code, WIRE_GSSENC_CODE);
	assert_int_equal(st.n_params, 0);
}

static void test_parse_startup_rejects_ssl_request_with_extra_bytes(void **state)
{
	static const uint8_t pkt[] = {0x00, 0x00, 0x00, 0x09, 0x04, 0xd2, 0x16, 0x2f, 0x00};
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(pkt, sizeof(pkt), &st), -1);
}

static void test_parse_startup_decodes_cancel_request_pid_and_key(void **state)
{
	static const uint8_t pkt[] = {0x00, 0x00, 0x00, 0x10, 0x04, 0xd2, 0x16, 0x2e,
	                              0x00, 0x00, 0x30, 0x39, 0xde, 0xad, 0xbe, 0xef};
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(pkt, sizeof(pkt), &st), 0);
	assert_int_equal(st.code, WIRE_CANCEL_CODE);
	assert_int_equal(st.cancel_pid, 12345);
	assert_int_equal(st.cancel_key, (int32_t)0xdeadbeefu);
	assert_int_equal(st.n_params, 0);
}

static void test_parse_startup_rejects_cancel_request_without_its_key(void **state)
{
	static const uint8_t pkt[] = {0x00, 0x00, 0x00, 0x0c, 0x04, 0xd2,
	                              0x16, 0x2e, 0x00, 0x00, 0x30, 0x39};
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(pkt, sizeof(pkt), &st), -1);
}

static void test_parse_startup_rejects_a_packet_missing_its_final_terminator(void **state)
{
	static const char pkt[] = "\x00\x00\x00\x36"
	                          "\x00\x03\x00\x00"
	                          "user\0alice\0"
	                          "database\0app\0"
	                          "application_name\0psql\0";
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup((const uint8_t *)pkt, LEN(pkt), &st), -1);
}

static void test_parse_startup_rejects_a_name_without_a_value(void **state)
{
	/* "database" has no value: the byte that looks like the terminator is its value */
	static const char pkt[] = "\x00\x00\x00\x1d"
	                          "\x00\x03\x00\x00"
	                          "user\0alice\0"
	                          "database\0"
	                          "\0";
	wire_startup_t st;

	(void)state;
	_Static_assert(sizeof(pkt) - 1 == 29, "pkt length word");
	assert_int_equal(wire_parse_startup((const uint8_t *)pkt, LEN(pkt), &st), -1);
}

static void test_parse_startup_rejects_bytes_after_the_terminator(void **state)
{
	static const char pkt[] = "\x00\x00\x00\x15"
	                          "\x00\x03\x00\x00"
	                          "user\0alice\0"
	                          "\0"
	                          "x";
	wire_startup_t st;

	(void)state;
	_Static_assert(sizeof(pkt) - 1 == 21, "pkt length word");
	assert_int_equal(wire_parse_startup((const uint8_t *)pkt, LEN(pkt), &st), -1);
}

/* A StartupMessage with n parameters "pNN" = "v". */
static size_t make_startup(uint8_t *buf, size_t cap, int n)
{
	size_t k = 8;

	for (int i = 0; i < n; i++) {
		int w = snprintf((char *)buf + k, cap - k, "p%02d", i);

		assert_true(w > 0 && (size_t)w + 3 < cap - k);
		k += (size_t)w + 1;
		buf[k++] = 'v';
		buf[k++] = 0;
	}
	buf[k++] = 0;
	buf[0] = (uint8_t)(k >> 24);
	buf[1] = (uint8_t)(k >> 16);
	buf[2] = (uint8_t)(k >> 8);
	buf[3] = (uint8_t)k;
	buf[4] = 0x00;
	buf[5] = 0x03;
	buf[6] = 0x00;
	buf[7] = 0x00;
	return k;
}

static void test_parse_startup_accepts_exactly_the_maximum_param_count(void **state)
{
	uint8_t buf[1024];
	size_t len = make_startup(buf, sizeof(buf), WIRE_STARTUP_MAX_PARAMS);
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(buf, len, &st), 0);
	assert_int_equal(st.n_params, WIRE_STARTUP_MAX_PARAMS);
	assert_string_equal(st.params[WIRE_STARTUP_MAX_PARAMS - 1].name, "p63");
}

static void test_parse_startup_rejects_more_than_the_maximum_param_count(void **state)
{
	uint8_t buf[1024];
	size_t len = make_startup(buf, sizeof(buf), WIRE_STARTUP_MAX_PARAMS + 1);
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(buf, len, &st), -1);
}

static void test_parse_startup_rejects_length_word_disagreeing_with_the_buffer(void **state)
{
	uint8_t longer[sizeof(startup_pkt)];
	wire_startup_t st;

	(void)state;
	/* one byte short of what the length word says */
	assert_int_equal(
	    wire_parse_startup((const uint8_t *)startup_pkt, LEN(startup_pkt) - 1, &st), -1);
	/* one byte more than the length word says */
	memcpy(longer, startup_pkt, sizeof(longer));
	assert_int_equal(wire_parse_startup(longer, sizeof(longer), &st), -1);
	/* a length word of -1 must not pass as a huge size_t */
	memcpy(longer, startup_pkt, LEN(startup_pkt));
	memset(longer, 0xff, 4);
	assert_int_equal(wire_parse_startup(longer, LEN(startup_pkt), &st), -1);
}

static void test_parse_startup_rejects_a_packet_shorter_than_its_code(void **state)
{
	static const uint8_t pkt[] = {0x00, 0x00, 0x00, 0x06, 0x00, 0x03};
	wire_startup_t st;

	(void)state;
	assert_int_equal(wire_parse_startup(pkt, sizeof(pkt), &st), -1);
	assert_int_equal(wire_parse_startup(nothing, 0, &st), -1);
}

/* ---- wire_parse_parse ---- */

static void test_parse_parse_decodes_name_query_and_param_types(void **state)
{
	/* Parse "s1", "SELECT $1", one type: int4 (oid 23) */
	static const char body[] = "s1\0"
	                           "SELECT $1\0"
	                           "\x00\x01"
	                           "\x00\x00\x00\x17";
	wire_parse_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_parse((const uint8_t *)body, LEN(body), &m), 0);
	assert_string_equal(m.name, "s1");
	assert_string_equal(m.query, "SELECT $1");
	assert_int_equal(m.n_types, 1);
	assert_ptr_equal(m.types, (const uint8_t *)body + 15);
	assert_int_equal(wire_be32(m.types), 23);
	assert_int_equal(m.tail_off, 13);
}

static void test_parse_parse_decodes_unnamed_statement_without_types(void **state)
{
	static const char body[] = "\0"
	                           "SELECT 1\0"
	                           "\x00\x00";
	wire_parse_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_parse((const uint8_t *)body, LEN(body), &m), 0);
	assert_string_equal(m.name, "");
	assert_string_equal(m.query, "SELECT 1");
	assert_int_equal(m.n_types, 0);
	assert_int_equal(m.tail_off, 10);
}

static void test_parse_parse_rejects_negative_type_count(void **state)
{
	static const char body[] = "\0"
	                           "SELECT 1\0"
	                           "\xff\xff";
	wire_parse_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_parse((const uint8_t *)body, LEN(body), &m), -1);
}

static void test_parse_parse_rejects_types_cut_off(void **state)
{
	/* two types announced, one and a half present */
	static const char body[] = "\0"
	                           "SELECT $1, $2\0"
	                           "\x00\x02"
	                           "\x00\x00\x00\x17"
	                           "\x00\x00";
	wire_parse_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_parse((const uint8_t *)body, LEN(body), &m), -1);
}

static void test_parse_parse_rejects_trailing_garbage(void **state)
{
	static const char body[] = "\0"
	                           "SELECT 1\0"
	                           "\x00\x00"
	                           "x";
	wire_parse_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_parse((const uint8_t *)body, LEN(body), &m), -1);
}

static void test_parse_parse_rejects_missing_type_count_or_unterminated_query(void **state)
{
	static const char no_count[] = "\0"
	                               "SELECT 1\0";
	static const char no_nul[] = "\0"
	                             "SELECT 1";
	wire_parse_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_parse((const uint8_t *)no_count, LEN(no_count), &m), -1);
	assert_int_equal(wire_parse_parse((const uint8_t *)no_nul, LEN(no_nul), &m), -1);
	assert_int_equal(wire_parse_parse(nothing, 0, &m), -1);
}

/* ---- wire_parse_bind ---- */

/* Bind portal "p1" to "s1": one format code (binary), params '42' and NULL,
 * one result format (text). */
static const char bind_body[] = "p1\0"
                                "s1\0"
                                "\x00\x01"
                                "\x00\x01"
                                "\x00\x02"
                                "\x00\x00\x00\x02"
                                "42"
                                "\xff\xff\xff\xff"
                                "\x00\x01"
                                "\x00\x00";
_Static_assert(sizeof(bind_body) - 1 == 26, "bind_body size");

static void test_parse_bind_decodes_named_portal_and_statement(void **state)
{
	wire_bind_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_bind((const uint8_t *)bind_body, LEN(bind_body), &m), 0);
	assert_string_equal(m.portal, "p1");
	assert_string_equal(m.stmt, "s1");
	/* right after "s1\0": where a proxy splices in a renamed statement */
	assert_int_equal(m.tail_off, 6);
}

static void test_parse_bind_decodes_unnamed_portal_and_statement(void **state)
{
	static const char body[] = "\0"
	                           "\0"
	                           "\x00\x00"
	                           "\x00\x00"
	                           "\x00\x00";
	wire_bind_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_bind((const uint8_t *)body, LEN(body), &m), 0);
	assert_string_equal(m.portal, "");
	assert_string_equal(m.stmt, "");
	assert_int_equal(m.tail_off, 2);
}

static void test_bind_params_give_values_and_formats(void **state)
{
	/* two format codes (text, binary), three values would not match: use two */
	static const char body[] = "\0"
	                           "s\0"
	                           "\x00\x02\x00\x00\x00\x01"
	                           "\x00\x03"
	                           "\x00\x00\x00\x02"
	                           "42"
	                           "\xff\xff\xff\xff"
	                           "\x00\x00\x00\x00"
	                           "\x00\x00";
	static const char one_format[] = "\0"
	                                 "s\0"
	                                 "\x00\x01\x00\x01"
	                                 "\x00\x02"
	                                 "\x00\x00\x00\x04"
	                                 "\x00\x00\x00\x07"
	                                 "\x00\x00\x00\x00"
	                                 "\x00\x00";
	wire_bind_msg_t m;
	wire_bind_param_t p[4];
	int n;

	(void)state;
	/* three values but two format codes: malformed */
	assert_int_equal(wire_parse_bind((const uint8_t *)body, LEN(body), &m), 0);
	assert_int_equal(wire_bind_params((const uint8_t *)body, LEN(body), &m, p, 4, &n), -1);

	assert_int_equal(wire_parse_bind((const uint8_t *)one_format, LEN(one_format), &m), 0);
	assert_int_equal(
	    wire_bind_params((const uint8_t *)one_format, LEN(one_format), &m, p, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].format, 1);
	assert_int_equal(p[0].len, 4);
	assert_memory_equal(p[0].data, "\x00\x00\x00\x07", 4);
	assert_int_equal(p[1].format, 1);
	assert_int_equal(p[1].len, 0);
	assert_non_null(p[1].data); /* empty, not NULL */

	/* only as many as fit are filled; n still counts all */
	assert_int_equal(
	    wire_bind_params((const uint8_t *)one_format, LEN(one_format), &m, p, 1, &n), 0);
	assert_int_equal(n, 2);
}

static void test_bind_params_per_value_formats_and_null(void **state)
{
	static const char body[] = "\0"
	                           "s\0"
	                           "\x00\x02\x00\x00\x00\x01"
	                           "\x00\x02"
	                           "\x00\x00\x00\x02"
	                           "42"
	                           "\xff\xff\xff\xff"
	                           "\x00\x00";
	wire_bind_msg_t m;
	wire_bind_param_t p[2];
	int n;

	(void)state;
	assert_int_equal(wire_parse_bind((const uint8_t *)body, LEN(body), &m), 0);
	assert_int_equal(wire_bind_params((const uint8_t *)body, LEN(body), &m, p, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].format, 0);
	assert_memory_equal(p[0].data, "42", 2);
	assert_int_equal(p[1].format, 1);
	assert_null(p[1].data);
	assert_int_equal(p[1].len, -1);
}

static void test_parse_bind_accepts_only_null_parameters(void **state)
{
	static const char body[] = "\0"
	                           "stmt\0"
	                           "\x00\x00"
	                           "\x00\x02"
	                           "\xff\xff\xff\xff"
	                           "\xff\xff\xff\xff"
	                           "\x00\x00";
	wire_bind_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_bind((const uint8_t *)body, LEN(body), &m), 0);
	assert_string_equal(m.stmt, "stmt");
	assert_int_equal(m.tail_off, 6);
}

static void test_parse_bind_rejects_every_cut_off_prefix(void **state)
{
	wire_bind_msg_t m;

	(void)state;
	/* cut in the portal, the statement, the formats, a value, the NULL, the result formats */
	for (size_t len = 0; len < LEN(bind_body); len++) {
		if (wire_parse_bind((const uint8_t *)bind_body, len, &m) != -1)
			fail_msg("a Bind cut to %zu of %zu bytes was accepted", len,
			         LEN(bind_body));
	}
}

static void test_parse_bind_rejects_a_value_longer_than_the_message(void **state)
{
	static const char body[] = "\0"
	                           "\0"
	                           "\x00\x00"
	                           "\x00\x01"
	                           "\x00\x00\x00\x09"
	                           "42"
	                           "\x00\x00";
	wire_bind_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_bind((const uint8_t *)body, LEN(body), &m), -1);
}

static void test_parse_bind_rejects_negative_counts_and_lengths(void **state)
{
	static const char neg_formats[] = "\0\0"
	                                  "\xff\xff"
	                                  "\x00\x00"
	                                  "\x00\x00";
	static const char neg_params[] = "\0\0"
	                                 "\x00\x00"
	                                 "\xff\xff"
	                                 "\x00\x00";
	static const char neg_value_len[] = "\0\0"
	                                    "\x00\x00"
	                                    "\x00\x01"
	                                    "\xff\xff\xff\xfe"
	                                    "\x00\x00";
	static const char neg_results[] = "\0\0"
	                                  "\x00\x00"
	                                  "\x00\x00"
	                                  "\xff\xff";
	wire_bind_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_bind((const uint8_t *)neg_formats, LEN(neg_formats), &m), -1);
	assert_int_equal(wire_parse_bind((const uint8_t *)neg_params, LEN(neg_params), &m), -1);
	assert_int_equal(wire_parse_bind((const uint8_t *)neg_value_len, LEN(neg_value_len), &m),
	                 -1);
	assert_int_equal(wire_parse_bind((const uint8_t *)neg_results, LEN(neg_results), &m), -1);
}

static void test_parse_bind_rejects_trailing_garbage(void **state)
{
	char body[sizeof(bind_body)];
	wire_bind_msg_t m;

	(void)state;
	memcpy(body, bind_body, sizeof(body)); /* the extra byte is the literal's NUL */
	assert_int_equal(wire_parse_bind((const uint8_t *)body, sizeof(body), &m), -1);
}

/* ---- wire_parse_target (Describe, Close) ---- */

static void test_parse_target_decodes_statement_and_portal(void **state)
{
	static const char stmt[] = "Ss1\0";
	static const char portal[] = "P\0";
	wire_target_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_target((const uint8_t *)stmt, LEN(stmt), &m), 0);
	assert_int_equal(m.kind, 'S');
	assert_string_equal(m.name, "s1");
	assert_int_equal(wire_parse_target((const uint8_t *)portal, LEN(portal), &m), 0);
	assert_int_equal(m.kind, 'P');
	assert_string_equal(m.name, "");
}

static void test_parse_target_rejects_bad_kind(void **state)
{
	static const char body[] = "Xs1\0";
	static const char lower[] = "ss1\0";
	wire_target_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_target((const uint8_t *)body, LEN(body), &m), -1);
	assert_int_equal(wire_parse_target((const uint8_t *)lower, LEN(lower), &m), -1);
}

static void test_parse_target_rejects_missing_nul_empty_body_and_garbage(void **state)
{
	static const char no_nul[] = "Ss1";
	static const char garbage[] = "Ss1\0x";
	static const char kind_only[] = "S";
	wire_target_msg_t m;

	(void)state;
	assert_int_equal(wire_parse_target((const uint8_t *)no_nul, LEN(no_nul), &m), -1);
	assert_int_equal(wire_parse_target((const uint8_t *)garbage, LEN(garbage), &m), -1);
	assert_int_equal(wire_parse_target((const uint8_t *)kind_only, LEN(kind_only), &m), -1);
	assert_int_equal(wire_parse_target(nothing, 0, &m), -1);
}

/* ---- wire_parse_query ---- */

static void test_parse_query_accepts_a_nul_at_the_end_only(void **state)
{
	static const char body[] = "SELECT 1\0";
	const char *q = NULL;

	(void)state;
	assert_int_equal(wire_parse_query((const uint8_t *)body, LEN(body), &q), 0);
	assert_ptr_equal(q, body);
	assert_string_equal(q, "SELECT 1");
}

static void test_parse_query_accepts_the_empty_query_string(void **state)
{
	/* PostgreSQL answers "" with EmptyQueryResponse: a valid message */
	static const char body[] = "\0";
	const char *q = NULL;

	(void)state;
	assert_int_equal(wire_parse_query((const uint8_t *)body, LEN(body), &q), 0);
	assert_string_equal(q, "");
}

static void test_parse_query_rejects_an_embedded_nul(void **state)
{
	/* the server would stop at the first NUL: the proxy must not see more than it */
	static const char body[] = "SELECT 1\0; SET x.y = 1\0";
	const char *q = "untouched";

	(void)state;
	assert_int_equal(wire_parse_query((const uint8_t *)body, LEN(body), &q), -1);
	assert_string_equal(q, "untouched");
}

static void test_parse_query_rejects_missing_nul_and_empty_body(void **state)
{
	static const char body[] = "SELECT 1";
	const char *q = "untouched";

	(void)state;
	assert_int_equal(wire_parse_query((const uint8_t *)body, LEN(body), &q), -1);
	assert_int_equal(wire_parse_query(nothing, 0, &q), -1);
	assert_string_equal(q, "untouched");
}

/* ---- wire_error_field ---- */

/* An ErrorResponse body as PostgreSQL 15 sends it (fields trimmed). */
static const char error_body[] = "SERROR\0"
                                 "VERROR\0"
                                 "C42P01\0"
                                 "Mrelation \"t\" does not exist\0"
                                 "P15\0"
                                 "\0";

static void test_error_field_finds_sqlstate_and_message(void **state)
{
	(void)state;
	assert_string_equal(wire_error_field((const uint8_t *)error_body, LEN(error_body), 'C'),
	                    "42P01");
	assert_string_equal(wire_error_field((const uint8_t *)error_body, LEN(error_body), 'M'),
	                    "relation \"t\" does not exist");
	assert_string_equal(wire_error_field((const uint8_t *)error_body, LEN(error_body), 'S'),
	                    "ERROR");
	assert_string_equal(wire_error_field((const uint8_t *)error_body, LEN(error_body), 'P'),
	                    "15");
}

static void test_error_field_missing_field_is_null(void **state)
{
	(void)state;
	assert_null(wire_error_field((const uint8_t *)error_body, LEN(error_body), 'D'));
	assert_null(wire_error_field((const uint8_t *)error_body, LEN(error_body), 'H'));
	assert_null(wire_error_field(nothing, 0, 'C'));
}

static void test_error_field_truncated_body_is_null(void **state)
{
	/* cut inside the message text: M has no NUL within the body */
	size_t cut = 7 + 7 + 7 + 10;

	(void)state;
	assert_null(wire_error_field((const uint8_t *)error_body, cut, 'M'));
	/* a field after the cut is not invented either */
	assert_null(wire_error_field((const uint8_t *)error_body, cut, 'P'));
	/* a field before the cut is still found */
	assert_string_equal(wire_error_field((const uint8_t *)error_body, cut, 'C'), "42P01");
	/* cut right after a field code */
	assert_null(wire_error_field((const uint8_t *)error_body, 15, 'C'));
}

/* ---- wire_parse_auth ---- */

static void test_parse_auth_decodes_ok_with_no_data(void **state)
{
	static const uint8_t body[] = {0, 0, 0, 0};
	const uint8_t *data = NULL;
	size_t dlen = 99;
	int32_t code = -1;

	(void)state;
	assert_int_equal(wire_parse_auth(body, sizeof(body), &code, &data, &dlen), 0);
	assert_int_equal(code, 0);
	assert_int_equal(dlen, 0);
}

static void test_parse_auth_decodes_md5_salt(void **state)
{
	static const uint8_t body[] = {0, 0, 0, 5, 0x01, 0x02, 0x03, 0x04};
	const uint8_t *data = NULL;
	size_t dlen = 0;
	int32_t code = -1;

	(void)state;
	assert_int_equal(wire_parse_auth(body, sizeof(body), &code, &data, &dlen), 0);
	assert_int_equal(code, 5);
	assert_int_equal(dlen, 4);
	assert_ptr_equal(data, body + 4);
}

static void test_parse_auth_decodes_sasl_mechanism_list(void **state)
{
	static const char body[] = "\x00\x00\x00\x0a"
	                           "SCRAM-SHA-256\0"
	                           "\0";
	const uint8_t *data = NULL;
	size_t dlen = 0;
	int32_t code = -1;

	(void)state;
	assert_int_equal(wire_parse_auth((const uint8_t *)body, LEN(body), &code, &data, &dlen), 0);
	assert_int_equal(code, 10);
	assert_int_equal(dlen, 15);
	assert_string_equal((const char *)data, "SCRAM-SHA-256");
}

static void test_parse_auth_rejects_a_body_shorter_than_the_code(void **state)
{
	static const uint8_t body[] = {0, 0, 0};
	const uint8_t *data = NULL;
	size_t dlen = 0;
	int32_t code = -1;

	(void)state;
	assert_int_equal(wire_parse_auth(body, sizeof(body), &code, &data, &dlen), -1);
	assert_int_equal(wire_parse_auth(nothing, 0, &code, &data, &dlen), -1);
	assert_int_equal(code, -1);
}

/* ---- builders ---- */

static void assert_buf_is(const wire_buf_t *b, const void *want, size_t want_len)
{
	assert_false(b->failed);
	assert_int_equal(b->len, want_len);
	assert_memory_equal(b->data, want, want_len);
}

static void test_put_error_lays_out_s_v_c_m_and_terminator_like_postgres(void **state)
{
	static const char want[] = "E"
	                           "\x00\x00\x00\x1f"
	                           "SFATAL\0"
	                           "VFATAL\0"
	                           "C08P01\0"
	                           "Mbad\0"
	                           "\0";
	wire_buf_t b;

	(void)state;
	_Static_assert(sizeof(want) - 1 == 32, "ErrorResponse size");
	wire_buf_init(&b);
	wire_put_error(&b, "FATAL", "08P01", "bad");
	assert_buf_is(&b, want, LEN(want));
	/* and the reader agrees */
	assert_string_equal(wire_error_field(b.data + 5, b.len - 5, 'C'), "08P01");
	wire_buf_free(&b);
}

static void test_put_auth_ok_is_r_length_8_code_0(void **state)
{
	static const uint8_t want[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_auth(&b, 0, NULL, 0);
	assert_buf_is(&b, want, sizeof(want));
	wire_buf_free(&b);
}

static void test_put_auth_md5_carries_the_salt(void **state)
{
	static const uint8_t salt[] = {0xaa, 0xbb, 0xcc, 0xdd};
	static const uint8_t want[] = {'R', 0, 0, 0, 12, 0, 0, 0, 5, 0xaa, 0xbb, 0xcc, 0xdd};
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_auth(&b, 5, salt, sizeof(salt));
	assert_buf_is(&b, want, sizeof(want));
	wire_buf_free(&b);
}

static void test_put_parameter_status_is_name_and_value_cstrings(void **state)
{
	static const char want[] = "S"
	                           "\x00\x00\x00\x19"
	                           "client_encoding\0"
	                           "UTF8\0";
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_parameter_status(&b, "client_encoding", "UTF8");
	assert_buf_is(&b, want, LEN(want));
	wire_buf_free(&b);
}

static void test_put_backend_key_is_big_endian_pid_and_key(void **state)
{
	static const uint8_t want[] = {'K',  0,    0,    0,    12,   0x01, 0x02,
	                               0x03, 0x04, 0xff, 0xff, 0xff, 0xfe};
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_backend_key(&b, 0x01020304, -2);
	assert_buf_is(&b, want, sizeof(want));
	wire_buf_free(&b);
}

static void test_put_ready_is_z_length_5_and_status(void **state)
{
	static const uint8_t want[] = {'Z', 0, 0, 0, 5, 'T'};
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_ready(&b, 'T');
	assert_buf_is(&b, want, sizeof(want));
	wire_buf_free(&b);
}

static void test_put_empty_is_type_and_length_4(void **state)
{
	static const uint8_t want[] = {'1', 0, 0, 0, 4};
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_empty(&b, '1');
	assert_buf_is(&b, want, sizeof(want));
	wire_buf_free(&b);
}

static void test_untyped_packet_gets_a_leading_length_counting_itself(void **state)
{
	wire_startup_t st;
	wire_buf_t b;
	size_t total = 0;

	(void)state;
	wire_buf_init(&b);
	wire_begin(&b, 0);
	wire_put_i32(&b, WIRE_PROTOCOL_3_0);
	wire_put_cstring(&b, "user");
	wire_put_cstring(&b, "alice");
	wire_put_cstring(&b, "database");
	wire_put_cstring(&b, "app");
	wire_put_cstring(&b, "application_name");
	wire_put_cstring(&b, "psql");
	wire_put_u8(&b, 0);
	assert_int_equal(wire_end(&b), 0);

	/* byte for byte what psql sends */
	assert_buf_is(&b, startup_pkt, LEN(startup_pkt));
	assert_int_equal(wire_frame_startup(b.data, b.len, &total), WIRE_FRAME_OK);
	assert_int_equal(total, b.len);
	assert_int_equal(wire_parse_startup(b.data, b.len, &st), 0);
	assert_string_equal(wire_startup_get(&st, "user"), "alice");
	wire_buf_free(&b);
}

static void test_two_messages_back_to_back_each_get_their_own_length(void **state)
{
	static const char want[] = "S"
	                           "\x00\x00\x00\x11"
	                           "TimeZone\0"
	                           "UTC\0"
	                           "Z"
	                           "\x00\x00\x00\x05"
	                           "I";
	wire_buf_t b;
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	wire_buf_init(&b);
	wire_put_parameter_status(&b, "TimeZone", "UTC");
	wire_put_ready(&b, 'I');
	assert_buf_is(&b, want, LEN(want));

	assert_int_equal(wire_frame(b.data, b.len, 1024, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, 'S');
	assert_int_equal(total, 18);
	assert_int_equal(wire_frame(b.data + 18, b.len - 18, 1024, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, 'Z');
	assert_int_equal(total, 6);
	wire_buf_free(&b);
}

static void test_hand_built_message_after_another_back_patches_only_its_own_length(void **state)
{
	static const char want[] = "Z"
	                           "\x00\x00\x00\x05"
	                           "I"
	                           "Q"
	                           "\x00\x00\x00\x0d"
	                           "SELECT 1\0";
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_ready(&b, 'I');
	wire_begin(&b, 'Q');
	wire_put_cstring(&b, "SELECT 1");
	assert_int_equal(wire_end(&b), 0);
	assert_buf_is(&b, want, LEN(want));
	wire_buf_free(&b);
}

static void test_buffer_grows_past_its_first_allocation(void **state)
{
	char big[5000];
	const char *q = NULL;
	wire_buf_t b;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	wire_buf_init(&b);
	wire_put_ready(&b, 'I');
	wire_begin(&b, 'Q');
	wire_put_cstring(&b, big);
	assert_int_equal(wire_end(&b), 0);
	assert_int_equal(b.len, 6 + 5 + sizeof(big));
	assert_int_equal(wire_be32(b.data + 7), 4 + (int32_t)sizeof(big));
	assert_int_equal(wire_parse_query(b.data + 11, b.len - 11, &q), 0);
	assert_int_equal(strlen(q), sizeof(big) - 1);
	wire_buf_free(&b);
}

static void test_buf_reset_empties_the_buffer_for_reuse(void **state)
{
	static const uint8_t want[] = {'3', 0, 0, 0, 4};
	wire_buf_t b;

	(void)state;
	wire_buf_init(&b);
	wire_put_parameter_status(&b, "a", "b");
	wire_buf_reset(&b);
	assert_int_equal(b.len, 0);
	wire_put_empty(&b, '3');
	assert_buf_is(&b, want, sizeof(want));
	wire_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

/*
 * Regression test for a bug once in proxy/wire.c.
 * wire.h documents wire_buf_t.failed as "sticky: allocation failed or put
 * outside a message", but wire.c never tracks whether a message is open:
 * a put before any wire_begin succeeds silently and `failed` stays false.
 */
static void test_put_before_any_begin_sets_the_sticky_failure(void **state)
{
	wire_buf_t b;
	bool failed;

	(void)state;
	wire_buf_init(&b);
	wire_put_u8(&b, 'x');
	failed = b.failed;
	wire_buf_free(&b);
	assert_true(failed);
}

/* ---- round trips ---- */

static void test_built_parse_parses_back(void **state)
{
	wire_parse_msg_t m;
	wire_buf_t b;
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	wire_buf_init(&b);
	wire_begin(&b, 'P');
	wire_put_cstring(&b, "stmt_7");
	wire_put_cstring(&b, "SELECT $1::int + $2");
	wire_put_i16(&b, 2);
	wire_put_i32(&b, 23);
	wire_put_i32(&b, 20);
	assert_int_equal(wire_end(&b), 0);

	assert_int_equal(wire_frame(b.data, b.len, 1 << 20, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, 'P');
	assert_int_equal(total, b.len);
	assert_int_equal(wire_parse_parse(b.data + 5, b.len - 5, &m), 0);
	assert_string_equal(m.name, "stmt_7");
	assert_string_equal(m.query, "SELECT $1::int + $2");
	assert_int_equal(m.n_types, 2);
	assert_int_equal(wire_be32(m.types), 23);
	assert_int_equal(wire_be32(m.types + 4), 20);
	assert_int_equal(m.tail_off, 7 + 20);
	wire_buf_free(&b);
}

static void test_built_bind_parses_back(void **state)
{
	wire_bind_msg_t m;
	wire_buf_t b;
	uint8_t type = 0;
	size_t total = 0;

	(void)state;
	wire_buf_init(&b);
	wire_begin(&b, 'B');
	wire_put_cstring(&b, "");
	wire_put_cstring(&b, "stmt_7");
	wire_put_i16(&b, 0);
	wire_put_i16(&b, 2);
	wire_put_i32(&b, 1);
	wire_put_bytes(&b, "5", 1);
	wire_put_i32(&b, -1);
	wire_put_i16(&b, 1);
	wire_put_i16(&b, 1);
	assert_int_equal(wire_end(&b), 0);

	assert_int_equal(wire_frame(b.data, b.len, 1 << 20, &type, &total), WIRE_FRAME_OK);
	assert_int_equal(type, 'B');
	assert_int_equal(total, b.len);
	assert_int_equal(wire_parse_bind(b.data + 5, b.len - 5, &m), 0);
	assert_string_equal(m.portal, "");
	assert_string_equal(m.stmt, "stmt_7");
	assert_int_equal(m.tail_off, 8);
	/* what follows the statement name is the format count */
	assert_int_equal(wire_be16(b.data + 5 + m.tail_off), 0);
	wire_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_u8_reads_exactly_one_byte_and_advances),
	    cmocka_unit_test(test_get_u8_on_empty_input_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_get_i16_reads_big_endian_signed),
	    cmocka_unit_test(test_get_i16_on_one_byte_fails_without_advancing_or_writing),
	    cmocka_unit_test(test_get_i16_on_empty_input_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_get_i32_reads_big_endian_signed),
	    cmocka_unit_test(test_get_i32_on_three_bytes_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_get_i32_on_empty_input_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_get_bytes_of_exact_length_points_into_the_data),
	    cmocka_unit_test(test_get_bytes_longer_than_the_data_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_get_bytes_with_a_huge_count_fails_instead_of_wrapping),
	    cmocka_unit_test(test_get_bytes_on_empty_input_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_get_cstring_reads_up_to_and_past_its_nul),
	    cmocka_unit_test(test_get_cstring_without_a_nul_inside_the_data_fails),
	    cmocka_unit_test(test_get_cstring_on_empty_input_fails_and_leaves_out_alone),
	    cmocka_unit_test(test_reader_failure_is_sticky_for_every_getter),

	    cmocka_unit_test(test_frame_needs_more_until_the_five_byte_header_is_in),
	    cmocka_unit_test(test_frame_of_an_exact_message_is_ok_with_type_and_total),
	    cmocka_unit_test(test_frame_with_the_next_message_behind_counts_only_the_first),
	    cmocka_unit_test(test_frame_with_header_but_partial_body_needs_more_and_says_total),
	    cmocka_unit_test(test_frame_length_below_four_is_bad_length),
	    cmocka_unit_test(test_frame_length_of_exactly_four_is_an_empty_body),
	    cmocka_unit_test(test_frame_over_max_is_too_long_before_the_body_arrives),
	    cmocka_unit_test(test_frame_length_equal_to_max_is_accepted),
	    cmocka_unit_test(test_frame_length_int32_max_is_total_two_to_the_31),
	    cmocka_unit_test(test_frame_startup_needs_more_until_the_length_word_is_in),
	    cmocka_unit_test(test_frame_startup_of_an_exact_packet_is_ok),
	    cmocka_unit_test(test_frame_startup_over_10000_is_too_long_from_the_length_word),
	    cmocka_unit_test(test_frame_startup_under_8_is_bad_length),

	    cmocka_unit_test(test_parse_startup_decodes_a_real_startup_message),
	    cmocka_unit_test(test_parse_startup_decodes_ssl_request),
	    cmocka_unit_test(test_parse_startup_decodes_gssenc_request),
	    cmocka_unit_test(test_parse_startup_rejects_ssl_request_with_extra_bytes),
	    cmocka_unit_test(test_parse_startup_decodes_cancel_request_pid_and_key),
	    cmocka_unit_test(test_parse_startup_rejects_cancel_request_without_its_key),
	    cmocka_unit_test(test_parse_startup_rejects_a_packet_missing_its_final_terminator),
	    cmocka_unit_test(test_parse_startup_rejects_a_name_without_a_value),
	    cmocka_unit_test(test_parse_startup_rejects_bytes_after_the_terminator),
	    cmocka_unit_test(test_parse_startup_accepts_exactly_the_maximum_param_count),
	    cmocka_unit_test(test_parse_startup_rejects_more_than_the_maximum_param_count),
	    cmocka_unit_test(test_parse_startup_rejects_length_word_disagreeing_with_the_buffer),
	    cmocka_unit_test(test_parse_startup_rejects_a_packet_shorter_than_its_code),

	    cmocka_unit_test(test_parse_parse_decodes_name_query_and_param_types),
	    cmocka_unit_test(test_parse_parse_decodes_unnamed_statement_without_types),
	    cmocka_unit_test(test_parse_parse_rejects_negative_type_count),
	    cmocka_unit_test(test_parse_parse_rejects_types_cut_off),
	    cmocka_unit_test(test_parse_parse_rejects_trailing_garbage),
	    cmocka_unit_test(test_parse_parse_rejects_missing_type_count_or_unterminated_query),

	    cmocka_unit_test(test_parse_bind_decodes_named_portal_and_statement),
	    cmocka_unit_test(test_parse_bind_decodes_unnamed_portal_and_statement),
	    cmocka_unit_test(test_bind_params_give_values_and_formats),
	    cmocka_unit_test(test_bind_params_per_value_formats_and_null),
	    cmocka_unit_test(test_parse_bind_accepts_only_null_parameters),
	    cmocka_unit_test(test_parse_bind_rejects_every_cut_off_prefix),
	    cmocka_unit_test(test_parse_bind_rejects_a_value_longer_than_the_message),
	    cmocka_unit_test(test_parse_bind_rejects_negative_counts_and_lengths),
	    cmocka_unit_test(test_parse_bind_rejects_trailing_garbage),

	    cmocka_unit_test(test_parse_target_decodes_statement_and_portal),
	    cmocka_unit_test(test_parse_target_rejects_bad_kind),
	    cmocka_unit_test(test_parse_target_rejects_missing_nul_empty_body_and_garbage),

	    cmocka_unit_test(test_parse_query_accepts_a_nul_at_the_end_only),
	    cmocka_unit_test(test_parse_query_accepts_the_empty_query_string),
	    cmocka_unit_test(test_parse_query_rejects_an_embedded_nul),
	    cmocka_unit_test(test_parse_query_rejects_missing_nul_and_empty_body),

	    cmocka_unit_test(test_error_field_finds_sqlstate_and_message),
	    cmocka_unit_test(test_error_field_missing_field_is_null),
	    cmocka_unit_test(test_error_field_truncated_body_is_null),

	    cmocka_unit_test(test_parse_auth_decodes_ok_with_no_data),
	    cmocka_unit_test(test_parse_auth_decodes_md5_salt),
	    cmocka_unit_test(test_parse_auth_decodes_sasl_mechanism_list),
	    cmocka_unit_test(test_parse_auth_rejects_a_body_shorter_than_the_code),

	    cmocka_unit_test(test_put_error_lays_out_s_v_c_m_and_terminator_like_postgres),
	    cmocka_unit_test(test_put_auth_ok_is_r_length_8_code_0),
	    cmocka_unit_test(test_put_auth_md5_carries_the_salt),
	    cmocka_unit_test(test_put_parameter_status_is_name_and_value_cstrings),
	    cmocka_unit_test(test_put_backend_key_is_big_endian_pid_and_key),
	    cmocka_unit_test(test_put_ready_is_z_length_5_and_status),
	    cmocka_unit_test(test_put_empty_is_type_and_length_4),
	    cmocka_unit_test(test_untyped_packet_gets_a_leading_length_counting_itself),
	    cmocka_unit_test(test_two_messages_back_to_back_each_get_their_own_length),
	    cmocka_unit_test(
	        test_hand_built_message_after_another_back_patches_only_its_own_length),
	    cmocka_unit_test(test_buffer_grows_past_its_first_allocation),
	    cmocka_unit_test(test_buf_reset_empties_the_buffer_for_reuse),
	    cmocka_unit_test(test_put_before_any_begin_sets_the_sticky_failure),

	    cmocka_unit_test(test_built_parse_parses_back),
	    cmocka_unit_test(test_built_bind_parses_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
