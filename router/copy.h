/*
 * copy.h — split COPY ... FROM STDIN data row by row, for routing by key.
 *
 * A client loading a sharded table (pgbench -i does
 * `copy pgbench_accounts from stdin with (freeze on)`) sends one stream of
 * CopyData messages whose boundaries mean nothing: a message may end in the
 * middle of a row or hold thousands of rows. The proxy opens the same COPY
 * on every shard and must hand each shard exactly the rows whose key lives
 * there. This module finds the rows and their key values the way
 * PostgreSQL 15's COPY FROM does (copyfromparse.c), so that each shard,
 * parsing the bytes it receives, sees exactly the rows the client meant:
 *
 *   text    lines end at \n, \r\n or \r (the first line decides); fields
 *           split at the delimiter; backslash escapes; a field equal to the
 *           NULL string before de-escaping is NULL; "\." ends the data
 *   csv     quoted fields may hold delimiters, quotes and newlines (a row
 *           then spans lines); an unquoted field equal to the NULL string
 *           is NULL; "\." alone on a line ends the data
 *   binary  file header, tuples of length-prefixed fields, trailer -1
 *
 * The bytes handed out are the client's bytes, unchanged: rows with their
 * line terminators (binary: whole tuples), and the pieces every shard needs
 * (header line, binary file header and trailer, the "\." line). Sent on in
 * order, they make each shard's stream a valid COPY of its own rows.
 *
 * Pure: no sockets, no globals; cmocka tests feed it byte arrays.
 */
#ifndef PGSHARD_ROUTER_COPY_H
#define PGSHARD_ROUTER_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum copy_format { COPY_TEXT, COPY_CSV, COPY_BINARY } copy_format_t;

typedef struct copy_opts {
	copy_format_t format;
	char delimiter;     /* text: '\t', csv: ',' by default; binary: '\0' */
	char quote, escape; /* csv: '"' and (default) the quote char; '\0' otherwise */
	char *null_string;  /* text: "\\N", csv: "" by default; binary: NULL */
	bool header;        /* HEADER (true/on/1, or MATCH: the shards check the names) */
	bool header_match;  /* HEADER MATCH */
	char *schemaname;   /* NULL when not qualified */
	char *relname;
	char **columns; /* the column list, NULL/0 when none */
	int n_columns;
	char **force_not_null; /* csv FORCE_NOT_NULL (col, ...): NULL/0 when none */
	int n_force_not_null;
	char **force_null; /* csv FORCE_NULL (col, ...): NULL/0 when none */
	int n_force_null;
	char *encoding; /* ENCODING 'name' as written, NULL when not given: see
	                   copy_check_encoding */
} copy_opts_t;

/*
 * Parse one COPY statement.
 *  0: a COPY ... FROM STDIN that can be split (fills *out; free with copy_opts_free).
 *  1: not a COPY FROM STDIN at all (COPY TO, COPY FROM a file or program, another
 *     statement, a string that does not parse: the server reports the error).
 * -1: a COPY FROM STDIN the splitter cannot handle, or one PostgreSQL rejects
 *     (WHERE, an unknown option, a multi-byte delimiter, a COPY among other
 *     statements, ...), with a message in err that says what to change.
 * FREEZE, FORCE_NOT_NULL, FORCE_NULL and CONVERT_SELECTIVELY are accepted.
 * *out is zeroed first and needs no freeing unless 0 is returned.
 */
int copy_parse_statement(const char *sql, copy_opts_t *out, char *err, size_t errlen);

/*
 * Whether the first word of sql, after white space and comments, is COPY:
 * the cheap test before copy_parse_statement, for a statement that may be
 * a COPY.
 */
bool copy_starts_statement(const char *sql);

/*
 * The catalog query that lists the columns of the COPY's table, in order:
 * rows of (attname, atttypid), the table named by o->schemaname and
 * o->relname as they are (quoted identifiers, then a string literal for
 * to_regclass), every object schema-qualified, so that nothing in the
 * session's search_path changes the answer. malloc'd; NULL when memory
 * runs out.
 */
char *copy_columns_sql(const copy_opts_t *o);
void copy_opts_free(copy_opts_t *o);

/*
 * Whether the data can be split byte by byte as the client sends it: 0, or
 * -1 with a message. The proxy calls it with the session's client_encoding
 * (as the server reported it in ParameterStatus). Refused: an ENCODING option
 * naming another encoding than client_encoding (key bytes would not be the
 * client's spelling of the key, so rows would land elsewhere than INSERTs of
 * the same key), and the client-only encodings SJIS, SHIFT_JIS_2004, BIG5,
 * GBK, UHC, GB18030 and JOHAB, whose multibyte characters can contain the
 * bytes of '\\', '\n' or a delimiter (PostgreSQL converts such data to the
 * server encoding before it looks for those).
 */
int copy_check_encoding(const copy_opts_t *o, const char *client_encoding, char *err,
                        size_t errlen);

/*
 * Whether text a client sends in client_encoding reaches the database as
 * the same bytes (server_encoding, both as ParameterStatus reports them):
 * the same encoding, or SQL_ASCII on either side (no conversion). Only
 * then is a non-ASCII text key hashed as the row is stored. Unknown (NULL
 * or empty) names agree.
 */
bool copy_encodings_agree(const char *client_encoding, const char *server_encoding);

typedef enum copy_piece_kind {
	COPY_PIECE_ALL, /* bytes every shard's COPY needs: the header line (text/csv HEADER), the
	                   binary file header (signature, flags, extension area), the binary
	                   trailer (-1), the end marker "\\." with its line terminator */
	COPY_PIECE_ROW, /* one whole row (with its line terminator / its binary tuple), to route
	                   by key */
} copy_piece_kind_t;

typedef struct copy_piece {
	copy_piece_kind_t kind;
	const uint8_t *data; /* valid only during the callback */
	size_t len;
	/* COPY_PIECE_ROW: the key column's value: NULL for SQL NULL; text formats: the
	   de-escaped / unquoted value (e.g. "42", "abc\tdef"); binary: the raw field bytes */
	const uint8_t *key;
	size_t key_len;
	bool key_binary;
	uint64_t row_number;  /* COPY_PIECE_ROW: 1-based data row (the header does not count) */
	uint64_t line_number; /* PostgreSQL's "COPY t, line N" for this piece: counts the header
	                         line, and in csv the newlines inside quoted fields */
} copy_piece_t;

/* Nonzero stops feeding: copy_feed returns -1 with sqlstate 57014 and err "stopped". */
typedef int (*copy_piece_cb)(void *arg, const copy_piece_t *piece);

typedef struct copy_splitter copy_splitter_t;

/*
 * key_index: 0-based position of the key column among the fields of each data
 * row (must be >= 0). max_row: a row (or header) longer than this many bytes is
 * an error (SQLSTATE 54000); SIZE_MAX for no limit. The options are copied:
 * *o may be freed afterwards. NULL on a bad argument or out of memory.
 *
 * FORCE_NOT_NULL / FORCE_NULL apply to the key when they name it: with a
 * column list the splitter knows the key's name (o->columns[key_index]);
 * without one, the proxy tells it with copy_splitter_set_key_name.
 */
copy_splitter_t *copy_splitter_new(const copy_opts_t *o, int key_index, size_t max_row);
void copy_splitter_free(copy_splitter_t *s);
/* 0, or -1 when out of memory. */
int copy_splitter_set_key_name(copy_splitter_t *s, const char *name);

/*
 * Feed CopyData payload bytes in order, in any chunking (a row may span many
 * calls; one call may hold many rows). Pieces are reported through cb in
 * stream order. Returns 0, or -1 with sqlstate (6 bytes incl. NUL) and err
 * filled: 22P04 for malformed data (binary signature wrong, truncated tuple, a
 * row with fewer fields than key_index+1, a carriage return or newline that
 * does not match the first line's ending, a corrupt "\." marker, ...), 54000
 * for a row over max_row. Errors are sticky: later calls repeat them.
 *
 * After the end marker "\." PostgreSQL ignores the rest of the data, and so
 * does the splitter. After the binary trailer, more data is an error.
 */
int copy_feed(copy_splitter_t *s, const uint8_t *data, size_t len, copy_piece_cb cb, void *arg,
              char sqlstate[6], char *err, size_t errlen);

/*
 * CopyDone: hand out a last row without a line terminator (PostgreSQL accepts
 * that), and check that nothing is left half-done (binary: a missing or cut
 * file header, a tuple cut short; csv: an open quote). Same returns.
 */
int copy_finish(copy_splitter_t *s, copy_piece_cb cb, void *arg, char sqlstate[6], char *err,
                size_t errlen);

/* Data rows handed out so far. */
uint64_t copy_splitter_rows(const copy_splitter_t *s);

#endif
