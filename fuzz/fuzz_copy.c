/*
 * fuzz_copy.c — the COPY FROM STDIN splitter (router/copy.h) on fuzzed data.
 *
 * Input: a selector byte (which COPY statement, below; or, for 8 and up, the
 * statement is fuzzed text up to a NUL byte), the key column index, a chunk
 * size and a row limit, then the CopyData bytes.
 *
 * The data is split twice: in one copy_feed call, and in chunks of the
 * fuzzed size (each chunk its own allocation, so a read past a chunk's end
 * is caught). Both must hand out the same pieces (kind, bytes, key, row and
 * line numbers) and end the same way (SQLSTATE and message). The pieces,
 * concatenated, must be a prefix of the data: all of it, unless the text
 * ended at an end marker "\." that the last piece holds. Row numbers count
 * up from 1 and line numbers never go back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "router/copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const statements[8] = {
    "COPY users (id, name, note) FROM STDIN",
    "COPY users (id, name, note) FROM STDIN WITH (DELIMITER ',', NULL 'NULL')",
    "COPY public.users FROM STDIN WITH (HEADER true)",
    "COPY users (id, name, note) FROM STDIN WITH (FORMAT csv)",
    "COPY users (id, name, note) FROM STDIN WITH (FORMAT csv, HEADER true, FORCE_NOT_NULL (id))",
    ("COPY users (name, id) FROM STDIN WITH (FORMAT csv, QUOTE '''', ESCAPE '\\', "
     "DELIMITER ';', NULL 'N', FORCE_NULL (id))"),
    "COPY users FROM STDIN WITH (FORMAT csv, HEADER match, ENCODING 'UTF8')",
    "COPY users (id, name, note) FROM STDIN WITH (FORMAT binary)",
};

typedef struct run {
	const uint8_t *input; /* the whole data, for the prefix check */
	size_t input_len;
	size_t consumed; /* bytes of all pieces so far */
	uint64_t digest; /* of every field of every piece */
	uint64_t rows, last_line;
	int n_pieces;
	bool last_is_marker;
	int rc;
	char sqlstate[6];
	char err[256];
} run_t;

static void mix(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		*h = (*h ^ b[i]) * 0x100000001b3ULL;
}

static int on_piece(void *arg, const copy_piece_t *pc)
{
	run_t *r = arg;
	uint8_t null = pc->key == NULL;

	fuzz_check(pc->kind == COPY_PIECE_ALL || pc->kind == COPY_PIECE_ROW);
	fuzz_check(pc->len > 0);
	fuzz_check(pc->len <= r->input_len - r->consumed);
	fuzz_check(memcmp(pc->data, r->input + r->consumed, pc->len) == 0);
	r->consumed += pc->len;
	r->n_pieces++;
	r->last_is_marker =
	    pc->kind == COPY_PIECE_ALL && pc->len >= 2 && pc->data[0] == '\\' && pc->data[1] == '.';
	fuzz_check(pc->line_number >= r->last_line);
	r->last_line = pc->line_number;

	mix(&r->digest, &pc->kind, sizeof(pc->kind));
	mix(&r->digest, &pc->len, sizeof(pc->len));
	mix(&r->digest, &pc->line_number, sizeof(pc->line_number));
	if (pc->kind == COPY_PIECE_ROW) {
		fuzz_check(pc->row_number == ++r->rows);
		mix(&r->digest, &null, 1);
		mix(&r->digest, &pc->key_binary, sizeof(pc->key_binary));
		if (pc->key != NULL) {
			uint8_t *k = fuzz_dup(pc->key, pc->key_len); /* readable, all of it */

			mix(&r->digest, k, pc->key_len);
			free(k);
			if (pc->key_binary)
				fuzz_check(pc->key >= pc->data &&
				           pc->key + pc->key_len <= pc->data + pc->len);
		}
	}
	return 0;
}

static void split(const copy_opts_t *o, int key, size_t max_row, const uint8_t *data, size_t len,
                  size_t chunk, run_t *r)
{
	copy_splitter_t *s = copy_splitter_new(o, key, max_row);
	size_t pos = 0;

	memset(r, 0, sizeof(*r));
	r->input = data;
	r->input_len = len;
	r->digest = 0xcbf29ce484222325ULL;
	fuzz_check(s != NULL);
	if (o->columns == NULL)
		fuzz_check(copy_splitter_set_key_name(s, "id") == 0);
	do {
		size_t n = len - pos < chunk ? len - pos : chunk;
		uint8_t *c = fuzz_dup(data + pos, n);

		r->rc = copy_feed(s, c, n, on_piece, r, r->sqlstate, r->err, sizeof(r->err));
		free(c);
		pos += n;
	} while (r->rc == 0 && pos < len);
	if (r->rc == 0)
		r->rc = copy_finish(s, on_piece, r, r->sqlstate, r->err, sizeof(r->err));
	if (r->rc == 0) {
		fuzz_check(copy_splitter_rows(s) == r->rows);
		fuzz_check(r->consumed == len || r->last_is_marker);
		if (o->format == COPY_BINARY)
			fuzz_check(r->consumed == len);
	} else {
		fuzz_check(r->rc == -1);
		fuzz_check(strcmp(r->sqlstate, "22P04") == 0 || strcmp(r->sqlstate, "54000") == 0);
		/* errors are sticky */
		{
			char st2[6], err2[256];

			fuzz_check(copy_feed(s, (const uint8_t *)"x", 1, on_piece, r, st2, err2,
			                     sizeof(err2)) == -1);
			fuzz_check(strcmp(st2, r->sqlstate) == 0);
		}
	}
	copy_splitter_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_in_t in = {data, size};
	uint8_t which = fuzz_u8(&in), key = fuzz_u8(&in) % 4, chunk = fuzz_u8(&in);
	uint8_t limit = fuzz_u8(&in);
	size_t max_row = limit == 0 ? SIZE_MAX : (size_t)limit * 4;
	char *sql = which >= 8 ? fuzz_take_string(&in, 0) : strdup(statements[which]);
	copy_opts_t o;
	char err[512];
	uint8_t *copy;
	size_t len;
	run_t whole, chunked;
	int rc;

	rc = copy_parse_statement(sql, &o, err, sizeof(err));
	free(sql);
	if (rc != 0) {
		fuzz_check(rc == 1 || (rc == -1 && err[0] != '\0'));
		return 0;
	}
	fuzz_check(o.relname != NULL);
	fuzz_check(o.format != COPY_BINARY || o.null_string == NULL);
	(void)copy_check_encoding(&o, which & 1 ? "UTF8" : "SJIS", err, sizeof(err));

	copy = fuzz_take_rest(&in, &len);
	split(&o, key, max_row, copy, len, len > 0 ? len : 1, &whole);
	split(&o, key, max_row, copy, len, chunk == 0 ? 1 : chunk, &chunked);
	fuzz_check(whole.rc == chunked.rc);
	fuzz_check(whole.n_pieces == chunked.n_pieces && whole.digest == chunked.digest);
	fuzz_check(whole.consumed == chunked.consumed);
	/* A row that is too long and also malformed further on may be told as either:
	 * fed in pieces, its length is checked before the rest of it arrives. */
	if (whole.rc != 0 && strcmp(whole.sqlstate, "54000") != 0 &&
	    strcmp(chunked.sqlstate, "54000") != 0)
		fuzz_check(strcmp(whole.sqlstate, chunked.sqlstate) == 0);
	if (whole.rc != 0 && strcmp(whole.sqlstate, chunked.sqlstate) == 0) {
		if (strcmp(whole.err, chunked.err) != 0)
			fprintf(stderr, "whole: %s\nchunked: %s\n", whole.err, chunked.err);
		fuzz_check(strcmp(whole.err, chunked.err) == 0);
	}
	free(copy);
	copy_opts_free(&o);
	return 0;
}
