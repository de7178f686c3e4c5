/*
 * copy.c — COPY FROM STDIN: the data split into rows (see copy.h; the
 * statement and its options are copy_stmt.c's).
 *
 * The splitter must find row boundaries exactly where PostgreSQL 15 finds
 * them, or a shard would receive half a row, or two rows glued into one, and
 * either fail or, worse, store something else than the client sent. So the
 * line scanner below follows copyfromparse.c's CopyReadLineText rule by rule,
 * including its oddities:
 *
 *   - the first line ending decides the style (\n, \r\n or \r); a bare \r
 *     or \n that does not fit it later is an error, not data;
 *   - in text format a backslash takes the next byte with it, whatever it
 *     is (so backslash-newline is data), and "\." anywhere on a line ends
 *     the data, the bytes before it on that line forming a last row;
 *   - in csv only "\." at the very start of a line, followed by the line
 *     ending, ends the data; elsewhere it is a value;
 *   - after the end marker, the rest of the data is ignored.
 *
 * PostgreSQL scans with look-ahead of up to three bytes and, when its buffer
 * runs out in the middle of a look-ahead, undoes the fetch of the current
 * byte and tries again with more data. The scanner here does the same with
 * the data it has been fed: it remembers where it stopped and the quoting
 * state at that byte, and resumes there. Each byte is therefore judged with
 * the same look-ahead whatever the CopyData boundaries are, which is what
 * makes the result independent of the chunking.
 *
 * Rows are handed out as views into the caller's buffer when a row lies
 * whole inside one copy_feed call; only a row cut by a call boundary is
 * copied into the splitter's own buffer.
 *
 * The key field is then found by the same rules as CopyReadAttributesText /
 * CopyReadAttributesCSV (NULL is decided on the raw bytes, before
 * de-escaping; a quoted csv value is never NULL), and csv FORCE_NOT_NULL /
 * FORCE_NULL are applied to it as NextCopyFrom does.
 */
#include "router/copy.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/hexdigit.h"

/* How far past a byte the scanner may look to judge it ("\." and then
 * "\r\n"): an unfinished piece is at least the bytes kept for it minus this. */
#define COPY_LOOKAHEAD 3

/* Buffers grown past this are released when they empty again. */
#define COPY_KEEP_BUF (1024 * 1024)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- the splitter ---- */

typedef enum eol_type {
	EOL_UNKNOWN, /* no line has ended yet */
	EOL_NL,
	EOL_CR,
	EOL_CRNL,
} eol_type_t;

typedef enum copy_phase {
	PHASE_HEADER, /* text/csv HEADER line, binary file header still to come */
	PHASE_ROWS,
	PHASE_DONE,   /* after "\." or the binary trailer */
	PHASE_FAILED, /* an error was reported; it is repeated */
} copy_phase_t;

struct copy_splitter {
	copy_format_t format;
	uint8_t delim, quote, escape;
	int line_escape; /* csv escape while looking for line ends; -1 when it is the quote */
	char *null_string;
	size_t null_len;
	int key_index;
	size_t max_row;
	bool key_force_not_null, key_force_null;
	char **force_not_null, **force_null;
	int n_force_not_null, n_force_null;
	bool special[256]; /* bytes the line scanner must look at */

	copy_phase_t phase;
	eol_type_t eol;
	uint64_t rows;  /* data rows handed out */
	uint64_t lines; /* PostgreSQL's cur_lineno at the end of the last piece */

	/* the unfinished piece (and any bytes fed after it) */
	uint8_t *buf;
	size_t len, cap;

	/* text/csv: where the scan of the current line stopped and the state there */
	size_t pos;
	bool in_quote, last_was_esc, first_char;
	uint64_t quoted_newlines;

	/* binary: the tuple being read */
	int nfields, field;
	size_t fpos; /* offset of the next field (0: the field count is not read yet) */
	size_t key_off;
	int32_t key_len; /* -1: NULL */

	uint8_t *key; /* de-escaped key of the current text/csv row */
	size_t key_cap;

	char sqlstate[6];
	char err[320];
};

typedef struct feed {
	copy_piece_cb cb;
	void *arg;
} feed_t;

static const uint8_t binary_signature[11] = {'P',  'G',  'C',  'O',  'P', 'Y',
                                             '\n', 0377, '\r', '\n', 0};

static int fail(copy_splitter_t *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(copy_splitter_t *s, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	s->phase = PHASE_FAILED;
	memcpy(s->sqlstate, sqlstate, 6);
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	return -1;
}

static int report(const copy_splitter_t *s, char sqlstate[6], char *err, size_t errlen)
{
	if (sqlstate != NULL)
		memcpy(sqlstate, s->sqlstate, 6);
	set_err(err, errlen, "%s", s->err);
	return -1;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static bool names_have(char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static char **copy_names(char *const *names, int n)
{
	char **out;

	if (n <= 0)
		return NULL;
	out = calloc((size_t)n, sizeof *out);
	if (out == NULL)
		return NULL;
	for (int i = 0; i < n; i++) {
		out[i] = strdup(names[i]);
		if (out[i] == NULL) {
			free_names(out, i);
			return NULL;
		}
	}
	return out;
}

copy_splitter_t *copy_splitter_new(const copy_opts_t *o, int key_index, size_t max_row)
{
	copy_splitter_t *s;
	const char *null;

	if (o == NULL || key_index < 0)
		return NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	s->format = o->format;
	s->key_index = key_index;
	s->max_row = max_row;
	s->phase = o->format == COPY_BINARY || o->header ? PHASE_HEADER : PHASE_ROWS;
	s->first_char = true;
	s->line_escape = -1;
	if (o->format != COPY_BINARY) {
		bool csv = o->format == COPY_CSV;

		s->delim = (uint8_t)(o->delimiter != '\0' ? o->delimiter : csv ? ',' : '\t');
		null = o->null_string != NULL ? o->null_string : csv ? "" : "\\N";
		s->null_string = strdup(null);
		if (s->null_string == NULL)
			goto nomem;
		s->null_len = strlen(null);
		s->special['\r'] = s->special['\n'] = s->special['\\'] = true;
		if (csv) {
			s->quote = (uint8_t)(o->quote != '\0' ? o->quote : '"');
			s->escape = (uint8_t)(o->escape != '\0' ? o->escape : s->quote);
			if (s->escape != s->quote)
				s->line_escape = s->escape;
			s->special[s->quote] = s->special[s->escape] = true;
		}
		if (csv && (o->n_force_not_null > 0 || o->n_force_null > 0)) {
			s->force_not_null = copy_names(o->force_not_null, o->n_force_not_null);
			s->force_null = copy_names(o->force_null, o->n_force_null);
			if ((o->n_force_not_null > 0 && s->force_not_null == NULL) ||
			    (o->n_force_null > 0 && s->force_null == NULL))
				goto nomem;
			s->n_force_not_null = o->n_force_not_null;
			s->n_force_null = o->n_force_null;
			if (o->columns != NULL && key_index < o->n_columns)
				copy_splitter_set_key_name(s, o->columns[key_index]);
		}
	}
	return s;
nomem:
	copy_splitter_free(s);
	return NULL;
}

void copy_splitter_free(copy_splitter_t *s)
{
	if (s == NULL)
		return;
	free(s->null_string);
	free_names(s->force_not_null, s->n_force_not_null);
	free_names(s->force_null, s->n_force_null);
	free(s->buf);
	free(s->key);
	free(s);
}

int copy_splitter_set_key_name(copy_splitter_t *s, const char *name)
{
	s->key_force_not_null = names_have(s->force_not_null, s->n_force_not_null, name);
	s->key_force_null = names_have(s->force_null, s->n_force_null, name);
	return 0;
}

uint64_t copy_splitter_rows(const copy_splitter_t *s)
{
	return s->rows;
}

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	size_t c = *cap > 0 ? *cap : 256;
	uint8_t *nb;

	if (need <= *cap)
		return 0;
	while (c < need)
		c = c > SIZE_MAX / 2 ? need : c * 2;
	nb = realloc(*buf, c);
	if (nb == NULL)
		return -1;
	*buf = nb;
	*cap = c;
	return 0;
}

static void release_if_big(uint8_t **buf, size_t *cap)
{
	if (*cap > COPY_KEEP_BUF) {
		free(*buf);
		*buf = NULL;
		*cap = 0;
	}
}

static bool over_limit(const copy_splitter_t *s, size_t n)
{
	return n > s->max_row;
}

static int too_long(copy_splitter_t *s, uint64_t line)
{
	return fail(s, "54000",
	            "COPY row at line %llu is longer than %zu bytes, the most pgshard buffers to "
	            "route one row; split the value or raise the limit",
	            (unsigned long long)line, s->max_row);
}

static int emit(copy_splitter_t *s, const feed_t *f, const copy_piece_t *p)
{
	if (f->cb(f->arg, p) != 0)
		return fail(s, "57014", "stopped");
	return 0;
}

static int emit_all(copy_splitter_t *s, const feed_t *f, const uint8_t *d, size_t n, uint64_t line)
{
	copy_piece_t p;

	memset(&p, 0, sizeof p);
	p.kind = COPY_PIECE_ALL;
	p.data = d;
	p.len = n;
	p.line_number = line;
	return emit(s, f, &p);
}

/* ---- text and csv: lines ---- */

typedef enum scan_result {
	SCAN_MORE,   /* the line goes on past the data fed so far */
	SCAN_LINE,   /* a line: out->content bytes, then its terminator up to out->end */
	SCAN_MARKER, /* out->content bytes, then "\." and its terminator up to out->end */
	SCAN_ERROR,
} scan_result_t;

typedef struct line_span {
	size_t content;
	size_t end;
} line_span_t;

static uint64_t current_line(const copy_splitter_t *s)
{
	return s->lines + 1 + s->quoted_newlines;
}

static scan_result_t bad_line_end(copy_splitter_t *s, bool cr)
{
	bool csv = s->format == COPY_CSV;

	fail(s, "22P04", "%s %s found in data (line %llu). %s", csv ? "unquoted" : "literal",
	     cr ? "carriage return" : "newline", (unsigned long long)current_line(s),
	     csv  ? (cr ? "Use quoted CSV field to represent carriage return."
	                : "Use quoted CSV field to represent newline.")
	     : cr ? "Use \"\\r\" to represent carriage return."
	          : "Use \"\\n\" to represent newline.");
	return SCAN_ERROR;
}

static scan_result_t bad_marker(copy_splitter_t *s, bool style)
{
	fail(s, "22P04", "%s (line %llu)",
	     style ? "end-of-copy marker does not match previous newline style"
	           : "end-of-copy marker corrupt",
	     (unsigned long long)current_line(s));
	return SCAN_ERROR;
}

/*
 * Find the end of the line that starts at d[0], resuming at s->pos. With
 * eof, d[0..n) is all the data there will be (PostgreSQL reads past its end
 * as '\0').
 */
static scan_result_t scan_line(copy_splitter_t *s, const uint8_t *d, size_t n, bool eof,
                               line_span_t *out)
{
	bool csv = s->format == COPY_CSV;
	size_t p = s->pos;

	while (p < n) {
		bool was_in_quote = s->in_quote, was_esc = s->last_was_esc;
		uint64_t was_newlines = s->quoted_newlines;
		uint8_t c = d[p];

		if (!s->special[c]) {
			do
				p++;
			while (p < n && !s->special[d[p]]);
			s->first_char = false;
			s->last_was_esc = false;
			continue;
		}
		if (csv) {
			/* look ahead before the quote state changes, as PostgreSQL does */
			if ((c == '\\' || c == '\r') && p + 1 >= n && !eof)
				goto more;
			if (s->in_quote && c == s->line_escape)
				s->last_was_esc = !s->last_was_esc;
			if (c == s->quote && !s->last_was_esc)
				s->in_quote = !s->in_quote;
			if (c != s->line_escape)
				s->last_was_esc = false;
			if (s->in_quote && c == (s->eol == EOL_NL ? '\n' : '\r'))
				s->quoted_newlines++;
		}
		if (c == '\r' && (!csv || !s->in_quote)) {
			if (s->eol == EOL_UNKNOWN || s->eol == EOL_CRNL) {
				if (p + 1 >= n && !eof)
					goto more;
				if (p + 1 < n && d[p + 1] == '\n') {
					s->eol = EOL_CRNL;
					out->content = p;
					out->end = p + 2;
					return SCAN_LINE;
				}
				if (s->eol == EOL_CRNL)
					return bad_line_end(s, true);
				s->eol = EOL_CR;
			} else if (s->eol == EOL_NL) {
				return bad_line_end(s, true);
			}
			out->content = p;
			out->end = p + 1;
			return SCAN_LINE;
		}
		if (c == '\n' && (!csv || !s->in_quote)) {
			if (s->eol == EOL_CR || s->eol == EOL_CRNL)
				return bad_line_end(s, false);
			s->eol = EOL_NL;
			out->content = p;
			out->end = p + 1;
			return SCAN_LINE;
		}
		if (c == '\\' && (!csv || s->first_char)) {
			size_t q = p + 2;
			bool end_marker = true;
			int c2;

			if (p + 1 >= n) {
				if (!eof)
					goto more;
				/* a backslash just before the end is data */
				p = n;
				break;
			}
			if (d[p + 1] != '.') {
				/* text: the byte after a backslash is data, whatever it is */
				s->first_char = false;
				p += csv ? 1 : 2;
				continue;
			}
			if (s->eol == EOL_CRNL) {
				if (q >= n && !eof)
					goto more;
				c2 = q < n ? d[q] : '\0';
				q++;
				if (c2 != '\r') {
					if (!csv)
						return bad_marker(s, c2 == '\n');
					end_marker = false;
				}
			}
			if (end_marker) {
				if (q >= n && !eof)
					goto more;
				c2 = q < n ? d[q] : '\0';
				q++;
				if (c2 != '\r' && c2 != '\n') {
					if (!csv)
						return bad_marker(s, false);
					end_marker = false;
				} else if ((s->eol == EOL_NL && c2 != '\n') ||
				           (s->eol == EOL_CRNL && c2 != '\n') ||
				           (s->eol == EOL_CR && c2 != '\r')) {
					return bad_marker(s, true);
				}
			}
			if (end_marker) {
				out->content = p;
				out->end = q;
				return SCAN_MARKER;
			}
			/* csv: "\." that starts a value; go on after the backslash */
		}
		s->first_char = false;
		p++;
		continue;
	more:
		/* judge this byte again, from the same state, when more data has come */
		s->in_quote = was_in_quote;
		s->last_was_esc = was_esc;
		s->quoted_newlines = was_newlines;
		s->pos = p;
		return SCAN_MORE;
	}
	if (!eof) {
		s->pos = p;
		return SCAN_MORE;
	}
	out->content = n;
	out->end = n;
	return SCAN_LINE;
}

/* ---- text and csv: the key field ---- */

static bool is_octal(uint8_t c)
{
	return c >= '0' && c <= '7';
}

typedef enum key_result {
	KEY_FOUND,
	KEY_MISSING,      /* the line has fewer fields */
	KEY_UNTERMINATED, /* csv: a quoted field runs to the end of the line */
} key_result_t;

/*
 * Field s->key_index of a text-format line, de-escaped into s->key (whose
 * capacity is at least n). Every field before it is de-escaped too, without
 * keeping the result: an escape can swallow a byte that would otherwise be
 * the delimiter (\x4A with DELIMITER 'A').
 */
static key_result_t text_key(copy_splitter_t *s, const uint8_t *d, size_t n, bool *null,
                             size_t *klen)
{
	size_t i = 0;

	for (int field = 0;; field++) {
		bool want = field == s->key_index, found_delim = false;
		size_t start = i, end, olen = 0;

		for (;;) {
			uint8_t c;

			end = i;
			if (i >= n)
				break;
			c = d[i++];
			if (c == s->delim) {
				found_delim = true;
				break;
			}
			if (c == '\\') {
				if (i >= n)
					break; /* a trailing backslash is dropped */
				c = d[i++];
				switch (c) {
				case '0':
				case '1':
				case '2':
				case '3':
				case '4':
				case '5':
				case '6':
				case '7': {
					int val = c - '0';

					if (i < n && is_octal(d[i])) {
						val = (val << 3) + (d[i++] - '0');
						if (i < n && is_octal(d[i]))
							val = (val << 3) + (d[i++] - '0');
					}
					c = (uint8_t)(val & 0xff);
					break;
				}
				case 'x':
					if (i < n && hex_value(d[i]) >= 0) {
						int val = hex_value(d[i++]);

						if (i < n && hex_value(d[i]) >= 0)
							val = (val << 4) + hex_value(d[i++]);
						c = (uint8_t)val;
					}
					break;
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				case 'v':
					c = '\v';
					break;
				default:
					break; /* any other byte stands for itself */
				}
			}
			if (want)
				s->key[olen++] = c;
		}
		if (want) {
			/* NULL is decided on the raw bytes, before de-escaping */
			*null = end - start == s->null_len &&
			        memcmp(d + start, s->null_string, s->null_len) == 0;
			*klen = olen;
			return KEY_FOUND;
		}
		if (!found_delim)
			return KEY_MISSING;
	}
}

/* Field s->key_index of a csv line (which may hold quoted newlines), unquoted into s->key. */
static key_result_t csv_key(copy_splitter_t *s, const uint8_t *d, size_t n, bool *null,
                            size_t *klen)
{
	size_t i = 0;

	for (int field = 0;; field++) {
		bool want = field == s->key_index, found_delim = false, saw_quote = false;
		size_t start = i, end, olen = 0;

		for (;;) {
			uint8_t c;

			end = i;
			if (i >= n)
				break;
			c = d[i++];
			if (c == s->delim) {
				found_delim = true;
				break;
			}
			if (c != s->quote) {
				if (want)
					s->key[olen++] = c;
				continue;
			}
			saw_quote = true;
			for (;;) {
				if (i >= n)
					return KEY_UNTERMINATED;
				c = d[i++];
				/* the escape takes a following escape or quote with it */
				if (c == s->escape && i < n &&
				    (d[i] == s->escape || d[i] == s->quote)) {
					if (want)
						s->key[olen++] = d[i];
					i++;
					continue;
				}
				if (c == s->quote)
					break;
				if (want)
					s->key[olen++] = c;
			}
		}
		if (want) {
			/* only an unquoted field can be NULL: "" is an empty string */
			*null = !saw_quote && end - start == s->null_len &&
			        memcmp(d + start, s->null_string, s->null_len) == 0;
			*klen = olen;
			return KEY_FOUND;
		}
		if (!found_delim)
			return KEY_MISSING;
	}
}

/* One data row: `len` bytes from d, of which the first `content` are the line. */
static int emit_text_row(copy_splitter_t *s, const feed_t *f, const uint8_t *d, size_t len,
                         size_t content, uint64_t line)
{
	copy_piece_t p;
	key_result_t r;
	bool null = false;
	size_t klen = 0;

	if (grow(&s->key, &s->key_cap, content + 1) != 0)
		return fail(s, "53200", "out of memory");
	if (s->format == COPY_CSV)
		r = csv_key(s, d, content, &null, &klen);
	else
		r = text_key(s, d, content, &null, &klen);
	if (r == KEY_MISSING)
		return fail(s, "22P04",
		            "missing data for the key column, field %d of each row (line %llu)",
		            s->key_index + 1, (unsigned long long)line);
	if (r == KEY_UNTERMINATED)
		return fail(s, "22P04", "unterminated CSV quoted field (line %llu)",
		            (unsigned long long)line);
	if (s->format == COPY_CSV) {
		/* as NextCopyFrom: FORCE_NOT_NULL reads a NULL as the NULL string, FORCE_NULL a
		 * (quoted) value equal to the NULL string as NULL */
		if (null && s->key_force_not_null) {
			memcpy(s->key, s->null_string, s->null_len);
			klen = s->null_len;
			null = false;
		} else if (!null && s->key_force_null && klen == s->null_len &&
		           memcmp(s->key, s->null_string, klen) == 0) {
			null = true;
		}
	}
	memset(&p, 0, sizeof p);
	p.kind = COPY_PIECE_ROW;
	p.data = d;
	p.len = len;
	p.key = null ? NULL : s->key;
	p.key_len = null ? 0 : klen;
	p.row_number = ++s->rows;
	p.line_number = line;
	return emit(s, f, &p);
}

static void reset_line_scan(copy_splitter_t *s)
{
	s->pos = 0;
	s->in_quote = false;
	s->last_was_esc = false;
	s->first_char = true;
	s->quoted_newlines = 0;
}

/* One line (header, row or end marker) from the front of d[0..n). */
static int text_step(copy_splitter_t *s, const uint8_t *d, size_t n, bool eof, const feed_t *f,
                     size_t *used)
{
	line_span_t l;
	scan_result_t r = scan_line(s, d, n, eof, &l);
	bool unterminated = s->in_quote;
	uint64_t line, first;
	size_t len;

	if (r == SCAN_ERROR)
		return -1;
	if (r == SCAN_MORE)
		return 0;
	line = current_line(s);
	reset_line_scan(s);
	if (l.end == 0)
		return 0; /* the end of the data, at the start of a line */
	first = s->lines + 1;
	s->lines = line;
	len = r == SCAN_MARKER ? l.content : l.end;
	*used = l.end;
	if (len > 0 || r == SCAN_LINE) {
		if (over_limit(s, len))
			return too_long(s, first);
		if (s->phase == PHASE_HEADER) {
			/* PostgreSQL reads the header line whole and throws it away (HEADER MATCH
			 * compares it on each shard) */
			s->phase = PHASE_ROWS;
			if (emit_all(s, f, d, len, line) != 0)
				return -1;
		} else {
			if (unterminated && eof)
				return fail(s, "22P04", "unterminated CSV quoted field (line %llu)",
				            (unsigned long long)line);
			if (emit_text_row(s, f, d, len, l.content, line) != 0)
				return -1;
		}
	}
	if (r == SCAN_MARKER) {
		s->phase = PHASE_DONE;
		return emit_all(s, f, d + l.content, l.end - l.content, line);
	}
	return 0;
}

/* ---- binary ---- */

static uint32_t get32(const uint8_t *d)
{
	return (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
}

/* Signature, flags, header extension: one piece for every shard. */
static int binary_header_step(copy_splitter_t *s, const uint8_t *d, size_t n, bool eof,
                              const feed_t *f, size_t *used)
{
	uint32_t flags;
	int32_t ext;
	size_t total;

	if ((n > 0 && memcmp(d, binary_signature, n < 11 ? n : 11) != 0) || (eof && n < 11))
		return fail(s, "22P04", "COPY file signature not recognized");
	if (n < 19) {
		if (!eof)
			return 0;
		return fail(s, "22P04", "invalid COPY file header (missing %s)",
		            n < 15 ? "flags" : "length");
	}
	flags = get32(d + 11);
	if (flags & (1u << 16))
		return fail(s, "22P04", "invalid COPY file header (WITH OIDS)");
	if ((flags & ~(1u << 16)) >> 16 != 0)
		return fail(s, "22P04", "unrecognized critical flags in COPY file header");
	ext = (int32_t)get32(d + 15);
	if (ext < 0)
		return fail(s, "22P04", "invalid COPY file header (missing length)");
	total = 19 + (size_t)ext;
	if (over_limit(s, total))
		return fail(
		    s, "54000",
		    "COPY file header of %zu bytes (with an extension of %d bytes) is longer "
		    "than the %zu bytes pgshard buffers",
		    total, (int)ext, s->max_row);
	if (n < total) {
		if (!eof)
			return 0;
		return fail(s, "22P04", "invalid COPY file header (wrong length)");
	}
	s->phase = PHASE_ROWS;
	*used = total;
	return emit_all(s, f, d, total, 0);
}

/* One tuple (or the trailer) from the front of d[0..n), resuming at s->fpos. */
static int binary_tuple_step(copy_splitter_t *s, const uint8_t *d, size_t n, bool eof,
                             const feed_t *f, size_t *used)
{
	uint64_t line = s->lines + 1;
	copy_piece_t p;

	if (s->fpos == 0) {
		int16_t count;

		if (n < 2) {
			if (!eof || n == 0)
				return 0;
			/* PostgreSQL takes a field count cut short at the end for the end of the
			 * data, without an error: every shard gets the byte and does the same */
			s->phase = PHASE_DONE;
			*used = n;
			return emit_all(s, f, d, n, line);
		}
		count = (int16_t)((uint16_t)d[0] << 8 | d[1]);
		if (count == -1) {
			s->lines = line;
			s->phase = PHASE_DONE;
			*used = 2;
			return emit_all(s, f, d, 2, line);
		}
		if (count <= s->key_index)
			return fail(
			    s, "22P04",
			    "row field count is %d, but the key column is field %d of each row "
			    "(line %llu)",
			    count, s->key_index + 1, (unsigned long long)line);
		s->nfields = count;
		s->field = 0;
		s->fpos = 2;
		s->key_len = -1;
	}
	while (s->field < s->nfields) {
		int32_t flen;
		size_t next;

		if (n - s->fpos < 4) {
			if (!eof)
				return 0;
			return fail(s, "22P04", "unexpected EOF in COPY data (line %llu)",
			            (unsigned long long)line);
		}
		flen = (int32_t)get32(d + s->fpos);
		if (flen < -1)
			return fail(s, "22P04", "invalid field size (line %llu)",
			            (unsigned long long)line);
		next = s->fpos + 4 + (flen > 0 ? (size_t)flen : 0);
		if (over_limit(s, next))
			return too_long(s, line);
		if (next > n) {
			if (!eof)
				return 0;
			return fail(s, "22P04", "unexpected EOF in COPY data (line %llu)",
			            (unsigned long long)line);
		}
		if (s->field == s->key_index) {
			s->key_off = s->fpos + 4;
			s->key_len = flen;
		}
		s->field++;
		s->fpos = next;
	}
	memset(&p, 0, sizeof p);
	p.kind = COPY_PIECE_ROW;
	p.data = d;
	p.len = s->fpos;
	p.key = s->key_len >= 0 ? d + s->key_off : NULL;
	p.key_len = s->key_len >= 0 ? (size_t)s->key_len : 0;
	p.key_binary = true;
	p.row_number = ++s->rows;
	p.line_number = line;
	*used = s->fpos;
	s->lines = line;
	s->fpos = 0;
	return emit(s, f, &p);
}

/* ---- feeding ---- */

/*
 * Hand out at most one piece from the front of d[0..n). *used is its length,
 * or 0 when the piece goes on past n (the scan state remembers how far it
 * got). With eof, n is the end of the data.
 */
static int step(copy_splitter_t *s, const uint8_t *d, size_t n, bool eof, const feed_t *f,
                size_t *used)
{
	*used = 0;
	if (s->format != COPY_BINARY)
		return text_step(s, d, n, eof, f, used);
	if (s->phase == PHASE_HEADER)
		return binary_header_step(s, d, n, eof, f, used);
	return binary_tuple_step(s, d, n, eof, f, used);
}

/*
 * Bytes kept for an unfinished piece: the piece is at least this long minus
 * the look-ahead, so this is the earliest a too-long row can be told.
 */
static bool pending_too_long(const copy_splitter_t *s)
{
	return s->len > COPY_LOOKAHEAD && over_limit(s, s->len - COPY_LOOKAHEAD);
}

/* Keep bytes of an unfinished piece for the next call. */
static int keep(copy_splitter_t *s, const uint8_t *data, size_t len)
{
	if (grow(&s->buf, &s->cap, s->len + len) != 0)
		return fail(s, "53200", "out of memory");
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

/*
 * A row found too long here, before its end arrived, is reported at the line
 * it starts on, as text_step reports a whole one: the message must not depend
 * on how the client cut its CopyData (the line the scan has reached, inside a
 * CSV row with quoted newlines, would).
 */
static int check_pending(copy_splitter_t *s)
{
	/* The binary file header is not a row: binary_header_step checks its length
	 * itself once it has read it (and never keeps more than that length). */
	if (s->format == COPY_BINARY && s->phase == PHASE_HEADER)
		return 0;
	if (pending_too_long(s))
		return too_long(s, s->lines + 1);
	return 0;
}

static int after_end(copy_splitter_t *s, size_t len)
{
	/* text and csv ignore what follows "\."; binary refuses data after the trailer */
	if (len > 0 && s->format == COPY_BINARY)
		return fail(s, "22P04", "received copy data after EOF marker");
	return 0;
}

int copy_feed(copy_splitter_t *s, const uint8_t *data, size_t len, copy_piece_cb cb, void *arg,
              char sqlstate[6], char *err, size_t errlen)
{
	feed_t f = {cb, arg};
	size_t used;

	if (s->phase == PHASE_FAILED)
		return report(s, sqlstate, err, errlen);
	if (s->phase == PHASE_DONE)
		return after_end(s, len) == 0 ? 0 : report(s, sqlstate, err, errlen);
	if (len == 0)
		return 0;
	if (s->len > 0) {
		/* finish the piece that an earlier call cut, then go on in place */
		size_t old = s->len;

		if (keep(s, data, len) != 0 || step(s, s->buf, s->len, false, &f, &used) != 0)
			return report(s, sqlstate, err, errlen);
		if (used == 0)
			return check_pending(s) == 0 ? 0 : report(s, sqlstate, err, errlen);
		if (used < old) {
			fail(s, "XX000",
			     "internal error: COPY piece ended in data already scanned");
			return report(s, sqlstate, err, errlen);
		}
		data += used - old;
		len -= used - old;
		s->len = 0;
		release_if_big(&s->buf, &s->cap);
	}
	while (len > 0 && s->phase != PHASE_DONE) {
		if (step(s, data, len, false, &f, &used) != 0)
			return report(s, sqlstate, err, errlen);
		if (used == 0) {
			if (keep(s, data, len) != 0 || check_pending(s) != 0)
				return report(s, sqlstate, err, errlen);
			return 0;
		}
		data += used;
		len -= used;
	}
	if (s->phase == PHASE_DONE && after_end(s, len) != 0)
		return report(s, sqlstate, err, errlen);
	return 0;
}

int copy_finish(copy_splitter_t *s, copy_piece_cb cb, void *arg, char sqlstate[6], char *err,
                size_t errlen)
{
	feed_t f = {cb, arg};
	const uint8_t *d = s->buf;
	size_t n = s->len, used;

	if (s->phase == PHASE_FAILED)
		return report(s, sqlstate, err, errlen);
	while (s->phase != PHASE_DONE) {
		if (step(s, d, n, true, &f, &used) != 0)
			return report(s, sqlstate, err, errlen);
		if (used == 0)
			break;
		d += used;
		n -= used;
	}
	if (s->phase == PHASE_DONE && after_end(s, n) != 0)
		return report(s, sqlstate, err, errlen);
	s->len = 0;
	s->phase = PHASE_DONE;
	release_if_big(&s->buf, &s->cap);
	release_if_big(&s->key, &s->key_cap);
	return 0;
}
