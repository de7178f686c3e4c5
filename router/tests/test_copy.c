/*
 * test_copy.c — COPY FROM STDIN statements and the row splitter (router/copy.h), pinned.
 *
 * A row cut in the wrong place reaches a shard as two rows, or as half a
 * row glued to another: so every data case here is run three ways, whole,
 * one byte per copy_feed call, and split in two at every byte, and must give
 * the same pieces each time. The pieces must also be the client's bytes, in
 * order: check() verifies that their concatenation is the input (up to the
 * end marker, after which PostgreSQL ignores the data).
 *
 * The expected results follow PostgreSQL 15's copyfromparse.c. The splitter
 * was also compared with a PostgreSQL 15 server on random inputs (rows, keys,
 * NULLs, errors and their line numbers, and each shard's stream loading the
 * same rows); these cases pin what that showed, without a server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/copy.h"

#define NO_LIMIT SIZE_MAX

/* ---- running the splitter ---- */

/* What the splitter handed out, as text: "A:<bytes>" for a piece every shard
 * gets, "R:<bytes>=<key>" for a row ('value' or NULL), "E:<sqlstate>" for an
 * error; separated by " | ". Bytes are shown C-escaped. */
typedef struct out {
	char text[16384];
	size_t len;
	bool brief;        /* rows as their length only (binary) */
	uint8_t raw[8192]; /* the bytes of all pieces, in order */
	size_t raw_len;
	char err[512];
	uint64_t row_numbers[64], line_numbers[64];
	int n_pieces;
	int stop_after; /* callback returns nonzero after this many pieces (0: never) */
} out_t;

static void put_text(out_t *o, const char *s)
{
	size_t n = strlen(s);

	assert_true(o->len + n < sizeof o->text);
	memcpy(o->text + o->len, s, n + 1);
	o->len += n;
}

static void put_bytes(out_t *o, const uint8_t *d, size_t n)
{
	char b[8];

	for (size_t i = 0; i < n; i++) {
		switch (d[i]) {
		case '\n':
			put_text(o, "\\n");
			break;
		case '\r':
			put_text(o, "\\r");
			break;
		case '\t':
			put_text(o, "\\t");
			break;
		case '\\':
			put_text(o, "\\\\");
			break;
		default:
			if (d[i] >= 0x20 && d[i] < 0x7f) {
				b[0] = (char)d[i];
				b[1] = '\0';
			} else {
				snprintf(b, sizeof b, "\\x%02x", d[i]);
			}
			put_text(o, b);
		}
	}
}

static int collect(void *arg, const copy_piece_t *p)
{
	out_t *o = arg;
	char b[32];

	if (o->len > 0)
		put_text(o, " | ");
	put_text(o, p->kind == COPY_PIECE_ALL ? "A:" : "R:");
	if (o->brief) {
		snprintf(b, sizeof b, "(%zu)", p->len);
		put_text(o, b);
	} else {
		put_bytes(o, p->data, p->len);
	}
	if (p->kind == COPY_PIECE_ROW) {
		if (p->key == NULL) {
			assert_int_equal(p->key_len, 0);
			put_text(o, "=NULL");
		} else {
			put_text(o, "='");
			put_bytes(o, p->key, p->key_len);
			put_text(o, "'");
		}
	}
	assert_true(o->raw_len + p->len <= sizeof o->raw);
	memcpy(o->raw + o->raw_len, p->data, p->len);
	o->raw_len += p->len;
	if (o->n_pieces < 64) {
		o->row_numbers[o->n_pieces] = p->row_number;
		o->line_numbers[o->n_pieces] = p->line_number;
	}
	o->n_pieces++;
	return o->stop_after > 0 && o->n_pieces >= o->stop_after;
}

static copy_opts_t opts_of(const char *sql)
{
	copy_opts_t o;
	char err[256];

	if (copy_parse_statement(sql, &o, err, sizeof err) != 0)
		fail_msg("\"%s\": %s", sql, err);
	return o;
}

/* Feed data[0..n) cut at each of cuts[0..ncuts) (ascending), then finish. */
static void run_cut(const copy_opts_t *o, int key, size_t max_row, const uint8_t *data, size_t n,
                    const size_t *cuts, int ncuts, out_t *out)
{
	copy_splitter_t *s = copy_splitter_new(o, key, max_row);
	char state[6];
	size_t at = 0;
	int rc = 0;

	assert_non_null(s);
	for (int i = 0; i <= ncuts && rc == 0; i++) {
		size_t to = i < ncuts ? cuts[i] : n;

		rc = copy_feed(s, data + at, to - at, collect, out, state, out->err,
		               sizeof out->err);
		at = to;
	}
	if (rc == 0)
		rc = copy_finish(s, collect, out, state, out->err, sizeof out->err);
	if (rc != 0) {
		assert_int_equal(rc, -1);
		assert_int_equal(strlen(state), 5);
		put_text(out, out->len > 0 ? " | E:" : "E:");
		put_text(out, state);
	}
	copy_splitter_free(s);
}

static void run_whole(const copy_opts_t *o, int key, size_t max_row, const uint8_t *data, size_t n,
                      bool brief, out_t *out)
{
	memset(out, 0, sizeof *out);
	out->brief = brief;
	run_cut(o, key, max_row, data, n, NULL, 0, out);
}

/*
 * Run the splitter on data whole, one byte at a time, and cut in two at every
 * byte; each must give `expect`. Returns the whole run's error message.
 */
static const char *check_bytes(const char *sql, int key, size_t max_row, const void *data, size_t n,
                               bool brief, const char *expect)
{
	static out_t whole;
	static char err[512];
	copy_opts_t o = opts_of(sql);
	size_t *cuts = calloc(n + 1, sizeof *cuts);
	out_t *other = malloc(sizeof *other);

	assert_non_null(cuts);
	assert_non_null(other);
	run_whole(&o, key, max_row, data, n, brief, &whole);
	if (strcmp(whole.text, expect) != 0)
		fail_msg("%s\nexpected: %s\n     got: %s", sql, expect, whole.text);
	/* the pieces are the client's bytes, in order, with nothing left out */
	assert_true(whole.raw_len <= n);
	assert_memory_equal(whole.raw, data, whole.raw_len);
	if (strstr(expect, "E:") == NULL && strstr(expect, "\\\\.") == NULL)
		assert_int_equal(whole.raw_len, n);

	for (size_t i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	memset(other, 0, sizeof *other);
	other->brief = brief;
	run_cut(&o, key, max_row, data, n, cuts, n > 0 ? (int)n - 1 : 0, other);
	if (strcmp(other->text, expect) != 0)
		fail_msg("%s, one byte at a time\nexpected: %s\n     got: %s", sql, expect,
		         other->text);
	/* the error message too (its line number) does not depend on the cutting */
	if (strcmp(other->err, whole.err) != 0)
		fail_msg("%s, one byte at a time\nerror: %s\nwhole: %s", sql, other->err,
		         whole.err);
	for (size_t i = 1; i < n; i++) {
		memset(other, 0, sizeof *other);
		other->brief = brief;
		run_cut(&o, key, max_row, data, n, &i, 1, other);
		if (strcmp(other->text, expect) != 0)
			fail_msg("%s, cut at %zu\nexpected: %s\n     got: %s", sql, i, expect,
			         other->text);
		if (strcmp(other->err, whole.err) != 0)
			fail_msg("%s, cut at %zu\nerror: %s\nwhole: %s", sql, i, other->err,
			         whole.err);
	}
	snprintf(err, sizeof err, "%s", whole.err);
	free(other);
	free(cuts);
	copy_opts_free(&o);
	return err;
}

#define CHECK(sql, key, data, expect)                                                              \
	check_bytes(sql, key, NO_LIMIT, data, sizeof(data) - 1, false, expect)

static void assert_contains(const char *s, const char *part)
{
	if (strstr(s, part) == NULL)
		fail_msg("\"%s\" does not contain \"%s\"", s, part);
}

/* ---- binary data ---- */

typedef struct bin {
	uint8_t d[1024];
	size_t n;
} bin_t;

static void bin_put(bin_t *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof b->d);
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void bin_put16(bin_t *b, int v)
{
	uint8_t x[2] = {(uint8_t)((unsigned)v >> 8), (uint8_t)v};

	bin_put(b, x, 2);
}

static void bin_put32(bin_t *b, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};

	bin_put(b, x, 4);
}

static void bin_header(bin_t *b, int32_t ext)
{
	bin_put(b, "PGCOPY\n\377\r\n\0", 11);
	bin_put32(b, 0);
	bin_put32(b, ext);
	for (int32_t i = 0; i < ext; i++)
		bin_put(b, "e", 1);
}

/* A tuple of text fields; NULL for SQL NULL. */
static void bin_tuple(bin_t *b, int n, ...)
{
	va_list ap;

	bin_put16(b, n);
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *v = va_arg(ap, const char *);

		if (v == NULL) {
			bin_put32(b, -1);
		} else {
			bin_put32(b, (int32_t)strlen(v));
			bin_put(b, v, strlen(v));
		}
	}
	va_end(ap);
}

static const char *check_bin(int key, size_t max_row, const bin_t *b, const char *expect)
{
	return check_bytes("COPY t FROM STDIN BINARY", key, max_row, b->d, b->n, true, expect);
}

/* ---- statements ---- */

static void test_parse_pgbench_copy_with_freeze_is_text_with_defaults(void **state)
{
	copy_opts_t o;
	char err[256];

	assert_int_equal(copy_parse_statement("copy pgbench_accounts from stdin with (freeze on)",
	                                      &o, err, sizeof err),
	                 0);
	assert_int_equal(o.format, COPY_TEXT);
	assert_int_equal(o.delimiter, '\t');
	assert_string_equal(o.null_string, "\\N");
	assert_int_equal(o.quote, '\0');
	assert_false(o.header);
	assert_null(o.schemaname);
	assert_string_equal(o.relname, "pgbench_accounts");
	assert_null(o.columns);
	assert_int_equal(o.n_columns, 0);
	assert_null(o.encoding);
	copy_opts_free(&o);
}

static void test_parse_csv_options_qualified_name_and_column_list(void **state)
{
	copy_opts_t o;
	char err[256];

	assert_int_equal(copy_parse_statement("COPY s.t (b, a) FROM STDIN WITH (FORMAT csv, HEADER "
	                                      "true, DELIMITER ';', NULL 'x')",
	                                      &o, err, sizeof err),
	                 0);
	assert_int_equal(o.format, COPY_CSV);
	assert_int_equal(o.delimiter, ';');
	assert_int_equal(o.quote, '"');
	assert_int_equal(o.escape, '"');
	assert_string_equal(o.null_string, "x");
	assert_true(o.header);
	assert_false(o.header_match);
	assert_string_equal(o.schemaname, "s");
	assert_string_equal(o.relname, "t");
	assert_int_equal(o.n_columns, 2);
	assert_string_equal(o.columns[0], "b");
	assert_string_equal(o.columns[1], "a");
	copy_opts_free(&o);

	assert_int_equal(copy_parse_statement("COPY t FROM STDIN (FORMAT csv, QUOTE '''', ESCAPE "
	                                      "'\\', HEADER match, FORCE_NOT_NULL (a, \"B\"), "
	                                      "FORCE_NULL (c), ENCODING 'utf8')",
	                                      &o, err, sizeof err),
	                 0);
	assert_int_equal(o.quote, '\'');
	assert_int_equal(o.escape, '\\');
	assert_string_equal(o.null_string, "");
	assert_int_equal(o.delimiter, ',');
	assert_true(o.header);
	assert_true(o.header_match);
	assert_int_equal(o.n_force_not_null, 2);
	assert_string_equal(o.force_not_null[0], "a");
	assert_string_equal(o.force_not_null[1], "B");
	assert_int_equal(o.n_force_null, 1);
	assert_string_equal(o.force_null[0], "c");
	assert_string_equal(o.encoding, "utf8");
	copy_opts_free(&o);
}

static void test_parse_binary_in_new_and_old_syntax(void **state)
{
	static const char *const sqls[] = {"COPY t FROM STDIN BINARY", "COPY BINARY t FROM STDIN",
	                                   "COPY t FROM STDIN (FORMAT binary)",
	                                   "copy t from stdin with binary"};
	copy_opts_t o;
	char err[256];

	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		assert_int_equal(copy_parse_statement(sqls[i], &o, err, sizeof err), 0);
		assert_int_equal(o.format, COPY_BINARY);
		assert_null(o.null_string);
		assert_false(o.header);
		copy_opts_free(&o);
	}
}

static void test_parse_old_csv_header_syntax(void **state)
{
	copy_opts_t o;
	char err[256];

	assert_int_equal(
	    copy_parse_statement("COPY t FROM STDIN WITH CSV HEADER", &o, err, sizeof err), 0);
	assert_int_equal(o.format, COPY_CSV);
	assert_true(o.header);
	assert_int_equal(o.delimiter, ',');
	copy_opts_free(&o);

	assert_int_equal(copy_parse_statement("COPY t FROM STDIN WITH DELIMITER AS '|' NULL AS '' "
	                                      "CSV QUOTE AS '''' FORCE NOT NULL a",
	                                      &o, err, sizeof err),
	                 0);
	assert_int_equal(o.delimiter, '|');
	assert_string_equal(o.null_string, "");
	assert_int_equal(o.quote, '\'');
	assert_int_equal(o.escape, '\'');
	assert_int_equal(o.n_force_not_null, 1);
	copy_opts_free(&o);

	/* HEADER 0 / off is no header */
	assert_int_equal(
	    copy_parse_statement("COPY t FROM STDIN (FORMAT csv, HEADER 0)", &o, err, sizeof err),
	    0);
	assert_false(o.header);
	copy_opts_free(&o);
}

static void test_parse_copy_to_files_and_other_statements_are_not_copy_from_stdin(void **state)
{
	static const char *const sqls[] = {
	    "COPY t TO STDOUT",
	    "COPY (select 1) TO STDOUT",
	    "COPY t FROM '/file'",
	    "COPY t FROM PROGRAM 'cat'",
	    "SELECT 1",
	    "select 'copy'",
	    "COPY t FROM STDIN WITH (((",
	    "",
	};
	copy_opts_t o;
	char err[256];

	for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
		err[0] = '\0';
		if (copy_parse_statement(sqls[i], &o, err, sizeof err) != 1)
			fail_msg("\"%s\" should not be a COPY FROM STDIN", sqls[i]);
		assert_null(o.relname);
		assert_null(o.null_string);
	}
}

static void assert_refused(const char *sql, const char *why)
{
	copy_opts_t o;
	char err[256];

	err[0] = '\0';
	if (copy_parse_statement(sql, &o, err, sizeof err) != -1)
		fail_msg("\"%s\" should be refused", sql);
	assert_contains(err, why);
	assert_null(o.relname);
	assert_null(o.null_string);
}

static void test_parse_refuses_what_the_splitter_or_postgres_cannot_do(void **state)
{
	assert_refused("COPY t FROM STDIN WHERE a > 1", "WHERE");
	assert_refused("COPY t FROM STDIN (DELIMITER ';;')", "single one-byte character");
	assert_refused("COPY t FROM STDIN (DELIMITER 'é')", "single one-byte character");
	assert_refused("COPY t FROM STDIN (DEFAULT 'd')", "\"default\" is not supported");
	assert_refused("COPY t FROM STDIN (ON_ERROR ignore)", "\"on_error\" is not supported");
	assert_refused("COPY t FROM STDIN (FORMAT CSV, FORCE_QUOTE *)",
	               "only available using COPY TO");
	assert_refused("COPY t FROM STDIN (FORMAT 'CSV')", "COPY format \"CSV\" not recognized");
	assert_refused("COPY t FROM STDIN (FORMAT binary, DELIMITER ',')", "BINARY");
	assert_refused("COPY t FROM STDIN (FORMAT binary, HEADER)", "BINARY");
	assert_refused("COPY t FROM STDIN (FORMAT csv, FORMAT csv)", "conflicting");
	assert_refused("COPY t FROM STDIN (QUOTE '\"')", "only in CSV mode");
	assert_refused("COPY t FROM STDIN (FORCE_NOT_NULL (a))", "only in CSV mode");
	assert_refused("COPY t FROM STDIN (FORMAT csv, FORCE_NULL *)", "list of column names");
	assert_refused("COPY t FROM STDIN (DELIMITER 'a')", "COPY delimiter cannot be \"a\"");
	assert_refused("COPY t FROM STDIN (FORMAT csv, DELIMITER '\"')", "must be different");
	assert_refused("COPY t FROM STDIN (NULL 'a|b', DELIMITER '|')", "NULL specification");
	assert_refused("COPY t FROM STDIN (FREEZE maybe)", "Boolean");
	assert_refused("COPY t FROM STDIN (HEADER 2)", "Boolean value or \"match\"");
	assert_refused("COPY t FROM STDIN; SELECT 1", "query of its own");
	assert_refused("SELECT 1; COPY t FROM STDIN", "query of its own");
}

static void test_parse_long_statements_are_not_parsed(void **state)
{
	size_t n = 70 * 1024;
	char *sql = malloc(n + 64);
	copy_opts_t o;
	char err[256];

	assert_non_null(sql);
	/* a long statement that only mentions copy is not one */
	strcpy(sql, "SELECT 'copy");
	memset(sql + 12, 'x', n);
	strcpy(sql + 12 + n, "'");
	assert_int_equal(copy_parse_statement(sql, &o, err, sizeof err), 1);
	/* a long COPY is refused rather than parsed */
	strcpy(sql, "/* c */ COPY t (");
	memset(sql + 16, 'a', n);
	strcpy(sql + 16 + n, ") FROM STDIN");
	assert_int_equal(copy_parse_statement(sql, &o, err, sizeof err), -1);
	assert_contains(err, "longer than");
	free(sql);
}

static void test_check_encoding_refuses_other_and_client_only_encodings(void **state)
{
	copy_opts_t o;
	char err[256];

	o = opts_of("COPY t FROM STDIN");
	assert_int_equal(copy_check_encoding(&o, "UTF8", err, sizeof err), 0);
	assert_int_equal(copy_check_encoding(&o, "LATIN1", err, sizeof err), 0);
	assert_int_equal(copy_check_encoding(&o, "SJIS", err, sizeof err), -1);
	assert_contains(err, "SJIS");
	copy_opts_free(&o);

	o = opts_of("COPY t FROM STDIN (ENCODING 'utf-8')");
	assert_int_equal(copy_check_encoding(&o, "UTF8", err, sizeof err), 0);
	assert_int_equal(copy_check_encoding(&o, "LATIN1", err, sizeof err), -1);
	assert_contains(err, "SET client_encoding");
	copy_opts_free(&o);

	o = opts_of("COPY t FROM STDIN (ENCODING 'iso-8859-1')");
	assert_int_equal(copy_check_encoding(&o, "LATIN1", err, sizeof err), 0);
	assert_int_equal(copy_check_encoding(&o, "UTF8", err, sizeof err), -1);
	copy_opts_free(&o);
}

/* ---- text ---- */

static void test_text_rows_are_lines_and_keys_are_fields(void **state)
{
	CHECK("COPY t FROM STDIN", 0, "1\ta\n22\tb\n", "R:1\\ta\\n='1' | R:22\\tb\\n='22'");
	CHECK("COPY t FROM STDIN", 1, "1\ta\n22\tb\n", "R:1\\ta\\n='a' | R:22\\tb\\n='b'");
	/* pgbench's accounts rows: aid, bid, abalance, filler */
	CHECK("copy pgbench_accounts from stdin with (freeze on)", 0,
	      "1\t1\t0\t\n2\t1\t0\t\n100000\t1\t0\t\n",
	      "R:1\\t1\\t0\\t\\n='1' | R:2\\t1\\t0\\t\\n='2' | R:100000\\t1\\t0\\t\\n='100000'");
	/* an empty line is a row of one empty field */
	CHECK("COPY t FROM STDIN", 0, "\n5\n", "R:\\n='' | R:5\\n='5'");
	CHECK("COPY t FROM STDIN (DELIMITER '|')", 2, "a|b|c|d\n", "R:a|b|c|d\\n='c'");
	CHECK("COPY t FROM STDIN", 0, "", "");
}

static void test_text_escapes_in_the_key_field_are_decoded(void **state)
{
	CHECK("COPY t FROM STDIN", 0, "a\\tb\\nc\\\\d\t1\n",
	      "R:a\\\\tb\\\\nc\\\\\\\\d\\t1\\n='a\\tb\\nc\\\\d'");
	CHECK("COPY t FROM STDIN", 0, "\\b\\f\\r\\v\n",
	      "R:\\\\b\\\\f\\\\r\\\\v\\n='\\x08\\x0c\\r\\x0b'");
	/* octal: up to three digits; hex: up to two */
	CHECK("COPY t FROM STDIN", 0, "\\101\\1018\\7\n", "R:\\\\101\\\\1018\\\\7\\n='AA8\\x07'");
	CHECK("COPY t FROM STDIN", 0, "\\x41\\x4a2\\xg\n", "R:\\\\x41\\\\x4a2\\\\xg\\n='AJ2xg'");
	/* any other byte after a backslash is itself, the delimiter included */
	CHECK("COPY t FROM STDIN", 1, "x\t\\a\\\t\\qb\n", "R:x\\t\\\\a\\\\\\t\\\\qb\\n='a\\tqb'");
	/* a hex escape can swallow a byte that is the delimiter elsewhere */
	CHECK("COPY t FROM STDIN (DELIMITER 'A')", 1, "\\x4A1A2\n", "R:\\\\x4A1A2\\n='2'");
	/* a backslash at the end of the line is dropped */
	CHECK("COPY t FROM STDIN", 0, "7\\", "R:7\\\\='7'");
}

static void test_text_null_is_decided_before_de_escaping(void **state)
{
	CHECK("COPY t FROM STDIN", 0, "\\N\t1\n\\\\N\t2\n\\Nx\t3\n\t4\n",
	      "R:\\\\N\\t1\\n=NULL | R:\\\\\\\\N\\t2\\n='\\\\N' | R:\\\\Nx\\t3\\n='Nx' | "
	      "R:\\t4\\n=''");
	CHECK("COPY t FROM STDIN (NULL 'x')", 1, "1\tx\n2\t\\x78\n3\t\\N\n",
	      "R:1\\tx\\n=NULL | R:2\\t\\\\x78\\n='x' | R:3\\t\\\\N\\n='N'");
	CHECK("COPY t FROM STDIN (NULL '')", 1, "1\t\n2\t\\N\n",
	      "R:1\\t\\n=NULL | R:2\\t\\\\N\\n='N'");
}

static void test_text_crlf_and_cr_line_endings_follow_the_first_line(void **state)
{
	CHECK("COPY t FROM STDIN", 0, "1\tx\r\n2\ty\r\n", "R:1\\tx\\r\\n='1' | R:2\\ty\\r\\n='2'");
	CHECK("COPY t FROM STDIN", 0, "1\r2\r", "R:1\\r='1' | R:2\\r='2'");
	/* a bare \r at the very end, in \r mode and as the first line */
	CHECK("COPY t FROM STDIN", 0, "1\r", "R:1\\r='1'");
	/* escaped, a carriage return or newline is data */
	CHECK("COPY t FROM STDIN", 0, "a\\\rb\\\nc\r", "R:a\\\\\\rb\\\\\\nc\\r='a\\rb\\nc'");
}

static void test_text_line_ending_that_does_not_match_the_first_line_is_22P04(void **state)
{
	const char *err;

	err = CHECK("COPY t FROM STDIN", 0, "1\n2\r\n", "R:1\\n='1' | E:22P04");
	assert_contains(err, "literal carriage return found in data (line 2)");
	err = CHECK("COPY t FROM STDIN", 0, "1\r\n2\n", "R:1\\r\\n='1' | E:22P04");
	assert_contains(err, "literal newline found in data (line 2)");
	err = CHECK("COPY t FROM STDIN", 0, "1\r2\n", "R:1\\r='1' | E:22P04");
	assert_contains(err, "literal newline");
	err = CHECK("COPY t FROM STDIN", 0, "1\r\n2\rx\r\n", "R:1\\r\\n='1' | E:22P04");
	assert_contains(err, "literal carriage return");
	/* a lone \r at the end of \r\n data */
	CHECK("COPY t FROM STDIN", 0, "1\r\n2\r", "R:1\\r\\n='1' | E:22P04");
	err = CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "1\n2\r3\n", "R:1\\n='1' | E:22P04");
	assert_contains(err, "unquoted carriage return found in data (line 2)");
}

static void test_text_end_marker_ends_the_data_and_the_rest_is_ignored(void **state)
{
	CHECK("COPY t FROM STDIN", 0, "1\n\\.\n2\ngarbage\\.\r\r", "R:1\\n='1' | A:\\\\.\\n");
	CHECK("COPY t FROM STDIN", 0, "1\r\n\\.\r\n", "R:1\\r\\n='1' | A:\\\\.\\r\\n");
	CHECK("COPY t FROM STDIN", 0, "1\r\\.\r", "R:1\\r='1' | A:\\\\.\\r");
	CHECK("COPY t FROM STDIN", 0, "\\.\n1\n", "A:\\\\.\\n");
	/* an escaped backslash before the dot is data */
	CHECK("COPY t FROM STDIN", 0, "\\\\.\n", "R:\\\\\\\\.\\n='\\\\.'");
}

static void test_text_end_marker_after_data_ends_a_last_row(void **state)
{
	/* PostgreSQL takes the bytes before "\." as a last line; so does each shard that
	 * gets the row and then the marker */
	CHECK("COPY t FROM STDIN", 1, "1\tx\n2\ty\\.\n3\tz\n",
	      "R:1\\tx\\n='x' | R:2\\ty='y' | A:\\\\.\\n");
}

static void test_text_corrupt_end_marker_is_22P04(void **state)
{
	const char *err;

	err = CHECK("COPY t FROM STDIN", 0, "1\n\\.x\n", "R:1\\n='1' | E:22P04");
	assert_contains(err, "end-of-copy marker corrupt (line 2)");
	/* at the very end, without a line ending */
	CHECK("COPY t FROM STDIN", 0, "1\n\\.", "R:1\\n='1' | E:22P04");
	err = CHECK("COPY t FROM STDIN", 0, "1\r\n\\.\n", "R:1\\r\\n='1' | E:22P04");
	assert_contains(err, "does not match previous newline style");
	err = CHECK("COPY t FROM STDIN", 0, "1\n\\.\r\n", "R:1\\n='1' | E:22P04");
	assert_contains(err, "does not match previous newline style");
}

static void test_last_row_without_line_ending_is_handed_out_at_finish(void **state)
{
	CHECK("COPY t FROM STDIN", 1, "1\ta\n2\tb", "R:1\\ta\\n='a' | R:2\\tb='b'");
	CHECK("COPY t FROM STDIN (FORMAT csv)", 1, "1,\"a\nb\"", "R:1,\"a\\nb\"='a\\nb'");
}

static void test_header_line_goes_to_every_shard(void **state)
{
	CHECK("COPY t FROM STDIN (HEADER)", 0, "id\tname\n1\tx\n",
	      "A:id\\tname\\n | R:1\\tx\\n='1'");
	CHECK("COPY t FROM STDIN WITH CSV HEADER", 0, "id,name\r\n1,x\r\n",
	      "A:id,name\\r\\n | R:1,x\\r\\n='1'");
	/* a csv header is a csv line: a quoted newline does not end it */
	CHECK("COPY t FROM STDIN (FORMAT csv, HEADER match)", 0, "\"i\nd\",n\n1,x\n",
	      "A:\"i\\nd\",n\\n | R:1,x\\n='1'");
	/* a header without rows, with or without its line ending */
	CHECK("COPY t FROM STDIN (HEADER)", 0, "id\n", "A:id\\n");
	CHECK("COPY t FROM STDIN (HEADER)", 0, "id", "A:id");
	/* the end marker in place of the header */
	CHECK("COPY t FROM STDIN (HEADER)", 0, "\\.\n1\n", "A:\\\\.\\n");
}

/* ---- csv ---- */

static void test_csv_quoted_key_with_delimiter_newline_and_quotes(void **state)
{
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "\"a,b\",1\n\"x\"\"y\",2\n\"l1\nl2\",3\n",
	      "R:\"a,b\",1\\n='a,b' | R:\"x\"\"y\",2\\n='x\"y' | R:\"l1\\nl2\",3\\n='l1\\nl2'");
	/* quotes may open and close anywhere in a field; \r\n inside quotes is data */
	CHECK("COPY t FROM STDIN (FORMAT csv)", 1, "1,ab\"c,d\"e\"\r\n\"\r\n2,x\r\n",
	      "R:1,ab\"c,d\"e\"\\r\\n\"\\r\\n='abc,de\\r\\n' | R:2,x\\r\\n='x'");
	/* backslashes are data in csv */
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "a\\,1\n\\N,2\n",
	      "R:a\\\\,1\\n='a\\\\' | R:\\\\N,2\\n='\\\\N'");
}

static void test_csv_only_unquoted_null_string_is_null(void **state)
{
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, ",1\n\"\",2\n", "R:,1\\n=NULL | R:\"\",2\\n=''");
	CHECK("COPY t FROM STDIN (FORMAT csv, NULL 'N')", 1, "1,N\n2,\"N\"\n3,\n",
	      "R:1,N\\n=NULL | R:2,\"N\"\\n='N' | R:3,\\n=''");
}

static void test_csv_escape_distinct_from_quote(void **state)
{
	/* ESCAPE escapes only a quote or itself, and only inside quotes */
	CHECK("COPY t FROM STDIN (FORMAT csv, ESCAPE '\\')", 0, "\"a\\\"b\\\\c\\d\",1\nx\\\\,2\n",
	      "R:\"a\\\\\"b\\\\\\\\c\\\\d\",1\\n='a\"b\\\\c\\\\d' | R:x\\\\\\\\,2\\n='x\\\\\\\\'");
	CHECK("COPY t FROM STDIN (FORMAT csv, QUOTE '''')", 0, "'a''b,c',1\n\"x\",2\n",
	      "R:'a''b,c',1\\n='a'b,c' | R:\"x\",2\\n='\"x\"'");
}

static void test_csv_end_marker_only_alone_at_line_start(void **state)
{
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "\\.x,1\na,\\.\n\\.\nzz\n",
	      "R:\\\\.x,1\\n='\\\\.x' | R:a,\\\\.\\n='a' | A:\\\\.\\n");
	/* inside a quoted value a line starting with "\." is data */
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "\"a\n\\.\n\",1\n",
	      "R:\"a\\n\\\\.\\n\",1\\n='a\\n\\\\.\\n'");
	/* "\.\n" in \r\n data is no marker in csv, and its newline is then an error */
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "1\r\n\\.\n\r\n", "R:1\\r\\n='1' | E:22P04");
	/* "\." at the very end without a line ending is a value too */
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "1\n\\.", "R:1\\n='1' | R:\\\\.='\\\\.'");
}

static void test_csv_unterminated_quote_at_end_is_22P04(void **state)
{
	const char *err;

	err = CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "1,a\n\"2,b\n3,c\n",
	            "R:1,a\\n='1' | E:22P04");
	assert_contains(err, "unterminated CSV quoted field");
	/* also when the open quote is after the key field */
	CHECK("COPY t FROM STDIN (FORMAT csv)", 0, "1,\"a", "E:22P04");
	/* PostgreSQL discards a header line without looking into it */
	CHECK("COPY t FROM STDIN (FORMAT csv, HEADER)", 0, "\"id", "A:\"id");
}

static void test_csv_force_not_null_and_force_null_apply_to_the_key(void **state)
{
	CHECK("COPY t (a, b) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (a))", 0, ",1\n\"\",2\n",
	      "R:,1\\n='' | R:\"\",2\\n=''");
	CHECK("COPY t (a, b) FROM STDIN (FORMAT csv, FORCE_NULL (a))", 0, ",1\n\"\",2\nx,3\n",
	      "R:,1\\n=NULL | R:\"\",2\\n=NULL | R:x,3\\n='x'");
	CHECK("COPY t (a, b) FROM STDIN (FORMAT csv, NULL 'n', FORCE_NOT_NULL (a))", 0, "n,1\n",
	      "R:n,1\\n='n'");
	/* naming another column changes nothing for the key */
	CHECK("COPY t (a, b) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (b))", 0, ",1\n",
	      "R:,1\\n=NULL");
}

static void test_force_not_null_without_column_list_needs_the_key_name(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN (FORMAT csv, FORCE_NOT_NULL (id))");
	copy_splitter_t *s = copy_splitter_new(&o, 1, NO_LIMIT);
	out_t out;
	char st[6], err[256];

	memset(&out, 0, sizeof out);
	assert_int_equal(
	    copy_feed(s, (const uint8_t *)"x,\n", 3, collect, &out, st, err, sizeof err), 0);
	assert_int_equal(copy_splitter_set_key_name(s, "id"), 0);
	assert_int_equal(
	    copy_feed(s, (const uint8_t *)"y,\n", 3, collect, &out, st, err, sizeof err), 0);
	assert_int_equal(copy_finish(s, collect, &out, st, err, sizeof err), 0);
	assert_string_equal(out.text, "R:x,\\n=NULL | R:y,\\n=''");
	copy_splitter_free(s);
	copy_opts_free(&o);
}

/* ---- errors common to text and csv ---- */

static void test_row_with_fewer_fields_than_the_key_is_22P04(void **state)
{
	const char *err;

	err = CHECK("COPY t FROM STDIN", 2, "1\t2\t3\n1\t2\n", "R:1\\t2\\t3\\n='3' | E:22P04");
	assert_contains(err, "missing data for the key column");
	assert_contains(err, "line 2");
	CHECK("COPY t FROM STDIN (FORMAT csv)", 1, "\"a,b\"\n", "E:22P04");
}

static void test_row_over_max_row_is_54000(void **state)
{
	const char *err;

	/* 6 bytes allowed: "12345\n" fits, "123456\n" does not */
	err = check_bytes("COPY t FROM STDIN", 0, 6, "12345\n123456\n1\n", 15, false,
	                  "R:12345\\n='12345' | E:54000");
	assert_contains(err, "line 2");
	check_bytes("COPY t FROM STDIN", 0, 6, "12345\n1234567890", 16, false,
	            "R:12345\\n='12345' | E:54000");
	check_bytes("COPY t FROM STDIN (HEADER)", 0, 4, "header\n1\n", 9, false, "E:54000");
}

/* Found by fuzz/fuzz_copy.c: fed whole, the row below was reported at its last
 * line (4); fed in pieces, at the line the scan had reached when the bytes
 * kept passed the limit. Both now name the line the row starts on. */
static void test_row_over_max_row_names_its_first_line_however_it_is_cut(void **state)
{
	static const char data[] = "1\n\"a\nb\nc\nddddddddddd\"\n";
	const char *err;

	err = check_bytes("COPY t FROM STDIN (FORMAT csv)", 0, 12, data, sizeof data - 1, false,
	                  "R:1\\n='1' | E:54000");
	assert_contains(err, "line 2 ");
}

static void test_long_row_is_told_before_it_is_buffered_whole(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN");
	copy_splitter_t *s = copy_splitter_new(&o, 0, 100);
	uint8_t chunk[64];
	out_t out;
	char st[6], err[256];
	int rc = 0, calls = 0;

	memset(chunk, 'x', sizeof chunk);
	memset(&out, 0, sizeof out);
	while (rc == 0 && calls < 100) {
		rc = copy_feed(s, chunk, sizeof chunk, collect, &out, st, err, sizeof err);
		calls++;
	}
	assert_int_equal(rc, -1);
	assert_string_equal(st, "54000");
	assert_true(calls <= 3);
	/* the error stays */
	assert_int_equal(copy_feed(s, (const uint8_t *)"\n", 1, collect, &out, st, err, sizeof err),
	                 -1);
	assert_int_equal(copy_finish(s, collect, &out, st, err, sizeof err), -1);
	assert_string_equal(st, "54000");
	copy_splitter_free(s);
	copy_opts_free(&o);
}

/* ---- binary ---- */

static void test_binary_header_tuples_trailer_and_null_fields(void **state)
{
	bin_t b = {0};

	bin_header(&b, 0);
	bin_tuple(&b, 2, "42", "abc");
	bin_tuple(&b, 2, NULL, "x");
	bin_tuple(&b, 2, "7", NULL);
	bin_put16(&b, -1);
	check_bin(0, NO_LIMIT, &b, "A:(19) | R:(15)='42' | R:(11)=NULL | R:(11)='7' | A:(2)");
	check_bin(1, NO_LIMIT, &b, "A:(19) | R:(15)='abc' | R:(11)='x' | R:(11)=NULL | A:(2)");
}

static const uint8_t int8_42[] = {0, 0, 0, 0, 0, 0, 0, 42};

/* Keeps the last piece, and checks the key of a row against int8_42. */
static int grab(void *arg, const copy_piece_t *p)
{
	copy_piece_t *last = arg;

	*last = *p;
	if (p->kind == COPY_PIECE_ROW) {
		assert_int_equal(p->key_len, sizeof int8_42);
		assert_memory_equal(p->key, int8_42, sizeof int8_42);
	}
	return 0;
}

static void test_binary_key_is_the_raw_field_bytes(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN BINARY");
	copy_splitter_t *s = copy_splitter_new(&o, 0, NO_LIMIT);
	copy_piece_t last;
	bin_t b = {0};
	char st[6], err[256];

	bin_header(&b, 3);
	bin_put16(&b, 1);
	bin_put32(&b, 8);
	bin_put(&b, int8_42, 8);
	memset(&last, 0, sizeof last);
	assert_int_equal(copy_feed(s, b.d, b.n, grab, &last, st, err, sizeof err), 0);
	assert_int_equal(last.kind, COPY_PIECE_ROW);
	assert_true(last.key_binary);
	assert_int_equal(last.len, 14);
	assert_int_equal(last.row_number, 1);
	assert_int_equal(copy_finish(s, grab, &last, st, err, sizeof err), 0);
	assert_int_equal(copy_splitter_rows(s), 1);
	copy_splitter_free(s);
	copy_opts_free(&o);
}

static void test_binary_header_extension_is_part_of_the_header_piece(void **state)
{
	bin_t b = {0};

	bin_header(&b, 5);
	bin_tuple(&b, 1, "k");
	bin_put16(&b, -1);
	check_bin(0, NO_LIMIT, &b, "A:(24) | R:(7)='k' | A:(2)");
}

static void test_binary_without_trailer_or_with_a_lone_last_byte_ends_like_postgres(void **state)
{
	bin_t b = {0};

	bin_header(&b, 0);
	check_bin(0, NO_LIMIT, &b, "A:(19)");
	bin_tuple(&b, 1, "k");
	check_bin(0, NO_LIMIT, &b, "A:(19) | R:(7)='k'");
	/* PostgreSQL reads a field count cut to one byte as the end of the data */
	bin_put(&b, "\0", 1);
	check_bin(0, NO_LIMIT, &b, "A:(19) | R:(7)='k' | A:(1)");
}

static void test_binary_malformed_data_is_22P04(void **state)
{
	bin_t b = {0};
	const char *err;

	err = check_bin(0, NO_LIMIT, &b, "E:22P04");
	assert_contains(err, "COPY file signature not recognized");

	bin_put(&b, "1\t2\n", 4);
	err = check_bin(0, NO_LIMIT, &b, "E:22P04");
	assert_contains(err, "signature");

	memset(&b, 0, sizeof b);
	bin_put(&b, "PGCOPY\n\377\r\n\0", 11);
	bin_put32(&b, 1 << 16);
	bin_put32(&b, 0);
	err = check_bin(0, NO_LIMIT, &b, "E:22P04");
	assert_contains(err, "WITH OIDS");

	memset(&b, 0, sizeof b);
	bin_put(&b, "PGCOPY\n\377\r\n\0", 11);
	bin_put32(&b, 0);
	err = check_bin(0, NO_LIMIT, &b, "E:22P04");
	assert_contains(err, "missing length");

	memset(&b, 0, sizeof b);
	bin_header(&b, 0);
	bin_tuple(&b, 1, "k");
	bin_put16(&b, 1);
	bin_put32(&b, 5);
	bin_put(&b, "ab", 2);
	err = check_bin(0, NO_LIMIT, &b, "A:(19) | R:(7)='k' | E:22P04");
	assert_contains(err, "unexpected EOF in COPY data (line 2)");

	memset(&b, 0, sizeof b);
	bin_header(&b, 0);
	bin_put16(&b, 1);
	bin_put32(&b, -2);
	err = check_bin(0, NO_LIMIT, &b, "A:(19) | E:22P04");
	assert_contains(err, "invalid field size");

	memset(&b, 0, sizeof b);
	bin_header(&b, 0);
	bin_tuple(&b, 1, "k");
	err = check_bin(1, NO_LIMIT, &b, "A:(19) | E:22P04");
	assert_contains(err, "row field count is 1");

	memset(&b, 0, sizeof b);
	bin_header(&b, 0);
	bin_put16(&b, -2);
	check_bin(0, NO_LIMIT, &b, "A:(19) | E:22P04");

	memset(&b, 0, sizeof b);
	bin_header(&b, 0);
	bin_put16(&b, -1);
	bin_put(&b, "x", 1);
	err = check_bin(0, NO_LIMIT, &b, "A:(19) | A:(2) | E:22P04");
	assert_contains(err, "received copy data after EOF marker");
}

/* Found by fuzz/fuzz_copy.c: with a limit below the header's 19 bytes, the
 * header fed in pieces was reported as a row too long, and whole as a header
 * extension too long. It is the header, however it is cut. */
static void test_binary_header_over_max_row_is_told_as_the_header(void **state)
{
	bin_t b = {0};
	const char *err;

	bin_header(&b, 0);
	bin_put16(&b, -1);
	err = check_bin(0, 8, &b, "E:54000");
	assert_contains(err, "COPY file header of 19 bytes");
}

static void test_binary_tuple_over_max_row_is_54000_from_its_length(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN BINARY");
	copy_splitter_t *s = copy_splitter_new(&o, 0, 1000);
	bin_t b = {0};
	out_t out;
	char st[6], err[256];

	bin_header(&b, 0);
	bin_put16(&b, 1);
	bin_put32(&b, 1 << 20); /* the megabyte itself never comes */
	memset(&out, 0, sizeof out);
	assert_int_equal(copy_feed(s, b.d, b.n, collect, &out, st, err, sizeof err), -1);
	assert_string_equal(st, "54000");
	copy_splitter_free(s);
	copy_opts_free(&o);

	/* the tuple is 2 + (4 + 10) + (4 + 9) = 29 bytes */
	memset(&b, 0, sizeof b);
	bin_header(&b, 0);
	bin_tuple(&b, 2, "1234567890", "123456789");
	check_bin(0, 28, &b, "A:(19) | E:54000");
	check_bin(0, 29, &b, "A:(19) | R:(29)='1234567890'");
	/* and the file header counts too */
	check_bin(0, 18, &b, "E:54000");
}

/* ---- feeding ---- */

static void test_callback_can_stop_feeding(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN");
	copy_splitter_t *s = copy_splitter_new(&o, 0, NO_LIMIT);
	out_t out;
	char st[6], err[256];

	memset(&out, 0, sizeof out);
	out.stop_after = 2;
	assert_int_equal(
	    copy_feed(s, (const uint8_t *)"1\n2\n3\n", 6, collect, &out, st, err, sizeof err), -1);
	assert_string_equal(err, "stopped");
	assert_int_equal(out.n_pieces, 2);
	assert_int_equal(copy_finish(s, collect, &out, st, err, sizeof err), -1);
	copy_splitter_free(s);
	copy_opts_free(&o);
}

static void test_row_and_line_numbers_count_like_postgres(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN (FORMAT csv, HEADER)");
	out_t out;
	static const char data[] = "h\n1\n\"a\nb\nc\",2\n3\n";

	run_whole(&o, 0, NO_LIMIT, (const uint8_t *)data, sizeof data - 1, false, &out);
	assert_string_equal(out.text, "A:h\\n | R:1\\n='1' | R:\"a\\nb\\nc\",2\\n='a\\nb\\nc' | "
	                              "R:3\\n='3'");
	assert_int_equal(out.row_numbers[0], 0);
	assert_int_equal(out.line_numbers[0], 1);
	assert_int_equal(out.row_numbers[1], 1);
	assert_int_equal(out.line_numbers[1], 2);
	/* PostgreSQL counts the newlines inside quotes: the row ends on line 5 */
	assert_int_equal(out.row_numbers[2], 2);
	assert_int_equal(out.line_numbers[2], 5);
	assert_int_equal(out.row_numbers[3], 3);
	assert_int_equal(out.line_numbers[3], 6);
	copy_opts_free(&o);
}

static void test_splitter_needs_a_key_index(void **state)
{
	copy_opts_t o = opts_of("COPY t FROM STDIN");

	assert_null(copy_splitter_new(&o, -1, NO_LIMIT));
	assert_null(copy_splitter_new(NULL, 0, NO_LIMIT));
	copy_opts_free(&o);
}

static void test_statement_starts_with_copy_after_blanks_and_comments(void **state)
{
	(void)state;
	assert_true(copy_starts_statement("COPY t FROM STDIN"));
	assert_true(copy_starts_statement("  \n\tcopy t from stdin"));
	assert_true(
	    copy_starts_statement("-- load\n/* a /* nested */ comment */ CoPy(x) TO STDOUT"));
	assert_false(copy_starts_statement("copyright"));
	assert_false(copy_starts_statement("copy_t"));
	assert_false(copy_starts_statement("SELECT 'copy'"));
	assert_false(copy_starts_statement("/* copy */ SELECT 1"));
	assert_false(copy_starts_statement(""));
}

static void test_columns_query_quotes_names_and_qualifies_every_object(void **state)
{
	copy_opts_t o;
	char err[256], *sql;

	(void)state;
	assert_int_equal(
	    copy_parse_statement("COPY pgbench_accounts FROM STDIN", &o, err, sizeof err), 0);
	sql = copy_columns_sql(&o);
	assert_string_equal(sql, "SELECT attname, atttypid FROM pg_catalog.pg_attribute WHERE "
	                         "attrelid OPERATOR(pg_catalog.=) "
	                         "pg_catalog.to_regclass('\"pgbench_accounts\"')::pg_catalog.oid "
	                         "AND attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2 AND NOT "
	                         "attisdropped ORDER BY attnum");
	free(sql);
	copy_opts_free(&o);

	/* case, quotes and backslashes reach the catalog as they are in the names */
	assert_int_equal(copy_parse_statement("COPY \"My \"\"S\"\"\".\"it's\\t\" FROM STDIN", &o,
	                                      err, sizeof err),
	                 0);
	assert_string_equal(o.schemaname, "My \"S\"");
	assert_string_equal(o.relname, "it's\\t");
	sql = copy_columns_sql(&o);
	assert_non_null(strstr(sql, "pg_catalog.to_regclass(E'\"My \"\"S\"\"\".\"it''s\\\\t\"')"
	                            "::pg_catalog.oid"));
	free(sql);
	copy_opts_free(&o);
}

static void test_encodings_agree_when_the_database_stores_the_bytes_sent(void **state)
{
	(void)state;
	assert_true(copy_encodings_agree("UTF8", "UTF8"));
	assert_true(copy_encodings_agree("unicode", "UTF8"));
	assert_true(copy_encodings_agree("latin1", "ISO_8859_1"));
	assert_true(copy_encodings_agree("SQL_ASCII", "UTF8"));
	assert_true(copy_encodings_agree("LATIN1", "SQL_ASCII"));
	assert_true(copy_encodings_agree(NULL, "UTF8"));
	assert_true(copy_encodings_agree("LATIN1", ""));
	assert_false(copy_encodings_agree("LATIN1", "UTF8"));
	assert_false(copy_encodings_agree("UTF8", "LATIN1"));
	assert_false(copy_encodings_agree("WIN1252", "LATIN1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statement_starts_with_copy_after_blanks_and_comments),
	    cmocka_unit_test(test_columns_query_quotes_names_and_qualifies_every_object),
	    cmocka_unit_test(test_parse_pgbench_copy_with_freeze_is_text_with_defaults),
	    cmocka_unit_test(test_parse_csv_options_qualified_name_and_column_list),
	    cmocka_unit_test(test_parse_binary_in_new_and_old_syntax),
	    cmocka_unit_test(test_parse_old_csv_header_syntax),
	    cmocka_unit_test(test_parse_copy_to_files_and_other_statements_are_not_copy_from_stdin),
	    cmocka_unit_test(test_parse_refuses_what_the_splitter_or_postgres_cannot_do),
	    cmocka_unit_test(test_parse_long_statements_are_not_parsed),
	    cmocka_unit_test(test_check_encoding_refuses_other_and_client_only_encodings),
	    cmocka_unit_test(test_text_rows_are_lines_and_keys_are_fields),
	    cmocka_unit_test(test_text_escapes_in_the_key_field_are_decoded),
	    cmocka_unit_test(test_text_null_is_decided_before_de_escaping),
	    cmocka_unit_test(test_text_crlf_and_cr_line_endings_follow_the_first_line),
	    cmocka_unit_test(test_text_line_ending_that_does_not_match_the_first_line_is_22P04),
	    cmocka_unit_test(test_text_end_marker_ends_the_data_and_the_rest_is_ignored),
	    cmocka_unit_test(test_text_end_marker_after_data_ends_a_last_row),
	    cmocka_unit_test(test_text_corrupt_end_marker_is_22P04),
	    cmocka_unit_test(test_last_row_without_line_ending_is_handed_out_at_finish),
	    cmocka_unit_test(test_header_line_goes_to_every_shard),
	    cmocka_unit_test(test_csv_quoted_key_with_delimiter_newline_and_quotes),
	    cmocka_unit_test(test_csv_only_unquoted_null_string_is_null),
	    cmocka_unit_test(test_csv_escape_distinct_from_quote),
	    cmocka_unit_test(test_csv_end_marker_only_alone_at_line_start),
	    cmocka_unit_test(test_csv_unterminated_quote_at_end_is_22P04),
	    cmocka_unit_test(test_csv_force_not_null_and_force_null_apply_to_the_key),
	    cmocka_unit_test(test_force_not_null_without_column_list_needs_the_key_name),
	    cmocka_unit_test(test_row_with_fewer_fields_than_the_key_is_22P04),
	    cmocka_unit_test(test_row_over_max_row_is_54000),
	    cmocka_unit_test(test_row_over_max_row_names_its_first_line_however_it_is_cut),
	    cmocka_unit_test(test_long_row_is_told_before_it_is_buffered_whole),
	    cmocka_unit_test(test_binary_header_tuples_trailer_and_null_fields),
	    cmocka_unit_test(test_binary_key_is_the_raw_field_bytes),
	    cmocka_unit_test(test_binary_header_extension_is_part_of_the_header_piece),
	    cmocka_unit_test(
	        test_binary_without_trailer_or_with_a_lone_last_byte_ends_like_postgres),
	    cmocka_unit_test(test_binary_malformed_data_is_22P04),
	    cmocka_unit_test(test_binary_header_over_max_row_is_told_as_the_header),
	    cmocka_unit_test(test_binary_tuple_over_max_row_is_54000_from_its_length),
	    cmocka_unit_test(test_callback_can_stop_feeding),
	    cmocka_unit_test(test_row_and_line_numbers_count_like_postgres),
	    cmocka_unit_test(test_splitter_needs_a_key_index),
	    cmocka_unit_test(test_encodings_agree_when_the_database_stores_the_bytes_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
