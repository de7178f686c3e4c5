/*
 * mask.c — the plan cache's masking (see mask.h).
 *
 * Masking is lexical (route_next_token cuts the text as PostgreSQL's
 * scanner does) and conservative: a literal is replaced only where the
 * grammar takes any expression, so that a parameter there parses to the
 * same tree. What the rules below miss, the comparison of the masked
 * tree with the original catches (route_parsed_match), once per key.
 *
 * Why one check per key is enough: the key is the masked text plus how
 * each literal was written (integer, other number, string, with a folded
 * minus sign). Two texts with one key differ only in the values of
 * literals of the same token kinds, and PostgreSQL's grammar sees token
 * kinds, not values: their trees differ only in those constants. The depth
 * estimate does not look at literal values either.
 */
#include "router/mask.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "router/numtext.h"
#include "router/sqlchars.h"

/* Room for tokens mask_t keeps between statements; a longer text's go after it. */
#define MASK_TOKENS_KEPT 1024

/* PostgreSQL takes at most this many parameters. */
#define MAX_PARAMS 65535

void *mask_grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return p;
	while (n < need)
		n *= 2;
	q = realloc(p, n * elem);
	if (q != NULL)
		*cap = n;
	return q;
}

/* n bytes of s after the *len in *buf, with room for `spare` more: 0, or -1. */
static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n, size_t spare)
{
	char *b = *buf;

	if (*len + n + spare > *cap && (b = mask_grow(*buf, cap, *len + n + spare, 1)) == NULL)
		return -1;
	*buf = b;
	memcpy(b + *len, s, n);
	*len += n;
	return 0;
}

/* To the key (room for its '\0' kept), and to the literals' values. */
static int put(mask_t *m, const char *s, size_t n)
{
	return append(&m->key, &m->key_len, &m->key_cap, s, n, 1);
}

static int put_val(mask_t *m, const char *s, size_t n)
{
	return append(&m->vals, &m->vals_len, &m->vals_cap, s, n, 0);
}

static bool ident_char(char c)
{
	return sql_is((unsigned char)c, SQLCH_IDENT);
}

static bool tok_punct(const char *s, const route_token_t *t, const char *chars)
{
	return t->kind == ROUTE_TOK_PUNCT && strchr(chars, s[t->start]) != NULL;
}

/*
 * Statements whose literals may become parameters: queries and DML. Not
 * SET/SHOW (no parameters in their grammar), COPY, DDL, PREPARE (whose $n
 * are its own), EXPLAIN (whose options are not expressions), ...
 */
static const char *const maskable_heads[] = {"select", "insert", "update", "delete", "with",
                                             "values", "table",  "merge",  NULL};

/*
 * Whether every statement of the text is maskable; *max_param: the highest
 * $n it uses. false also for a text with an unterminated string or comment.
 * m->toks: the tokens looked at, all of them (END last) when true.
 */
static bool maskable(mask_t *m, const char *sql, size_t len, int *max_param)
{
	route_token_t t;
	size_t pos = 0;
	bool head = true, any = false;
	int depth = 0;

	*max_param = 0;
	m->n_toks = 0;
	for (;;) {
		route_token_t *kept = mask_grow(m->toks, &m->toks_cap, m->n_toks + 1, sizeof *kept);

		if (kept == NULL)
			return false;
		m->toks = kept;
		pos = route_next_token(sql, len, pos, &t);
		m->toks[m->n_toks++] = t;
		if (t.unterminated)
			return false;
		if (t.kind == ROUTE_TOK_END)
			return any;
		if (t.kind == ROUTE_TOK_PARAM) {
			long v = t.len > 6 ? MAX_PARAMS + 1 : strtol(sql + t.start + 1, NULL, 10);

			if (v > MAX_PARAMS)
				return false;
			if (v > *max_param)
				*max_param = (int)v;
		}
		if (head && tok_punct(sql, &t, "(")) {
			depth++;
			continue;
		}
		if (head) {
			if (!route_token_is(sql, &t, maskable_heads))
				return false;
			head = false;
			any = true;
		}
		if (tok_punct(sql, &t, "("))
			depth++;
		else if (tok_punct(sql, &t, ")") && depth > 0)
			depth--;
		else if (tok_punct(sql, &t, ";") && depth == 0)
			head = true;
	}
}

/*
 * Type modifiers PostgreSQL's grammar wants as integer constants, not
 * expressions: varchar(10), timestamp(3), interval second(3), float(24).
 */
static const char *const iconst_types[] = {
    "char",         "character",         "varchar",        "varying", "nchar", "float",
    "time",         "timestamp",         "interval",       "second",  "bit",   "localtime",
    "current_time", "current_timestamp", "localtimestamp", NULL};

/*
 * Words after which a string is an expression, never the type name of a
 * typed literal (date '...'): reserved keywords that end an expression's
 * left side or start one.
 */
static const char *const string_after[] = {
    "and",   "or",     "not",       "then", "else", "when",     "select", "where", "having",
    "limit", "offset", "returning", "case", "from", "distinct", "on",     NULL};

enum {
	LIT_NO,   /* leave it in the text */
	LIT_YES,  /* mask the literal itself */
	LIT_SIGN, /* mask the minus sign before it too: PostgreSQL folds -5 into one constant */
};

/* Whether to mask the number t, after tokens prev and prev2 and before next. */
static int number_rule(const char *s, size_t len, const route_token_t *t, const route_token_t *prev,
                       const route_token_t *prev2, const route_token_t *next)
{
	size_t end = t->start + t->len;
	char last;

	/* 1abc is 1 and a column alias; 1..2 is a slice: keep such text as it is */
	if (end < len && (ident_char(s[end]) || s[end] == '.'))
		return LIT_NO;
	/* x.5 and the like: glued to the token before */
	if (prev->kind != ROUTE_TOK_END && prev->start + prev->len == t->start &&
	    (prev->kind == ROUTE_TOK_WORD || prev->kind == ROUTE_TOK_NUMBER ||
	     prev->kind == ROUTE_TOK_PARAM || prev->kind == ROUTE_TOK_QIDENT))
		return LIT_NO;
	if (tok_punct(s, prev, "(") && route_token_is(s, prev2, iconst_types))
		return LIT_NO;
	if (prev->kind != ROUTE_TOK_OP || prev->len != 1 || s[prev->start] != '-')
		return LIT_YES;
	/* -5::int8 is -(5::int8), not folded: :: and [ bind tighter than the sign */
	if (next->kind == ROUTE_TOK_CAST || tok_punct(s, next, "["))
		return LIT_YES;
	/* a lone minus: unary (folded into the constant) or binary? */
	switch (prev2->kind) {
	case ROUTE_TOK_END:
		return LIT_SIGN;
	case ROUTE_TOK_OP:
		last = s[prev2->start + prev2->len - 1];
		/*
		 * a + -5 and a * -5 fold the sign (pgbench's deltas); - -5 is 5
		 * again, and a lone minus before may be unary: keep
		 */
		return prev2->len == 1 && last == '-' ? LIT_NO : LIT_SIGN;
	case ROUTE_TOK_PUNCT:
		if (tok_punct(s, prev2, "(,[;"))
			return LIT_SIGN;
		if (tok_punct(s, prev2, ")]"))
			return LIT_YES; /* (a) - 5 */
		return LIT_NO;
	case ROUTE_TOK_NUMBER:
	case ROUTE_TOK_STRING:
	case ROUTE_TOK_XSTRING:
	case ROUTE_TOK_PARAM:
	case ROUTE_TOK_QIDENT:
		return LIT_YES; /* binary: a - 5 */
	default:
		/* a word: SELECT -5 (unary) or a -5 (binary); keep */
		return LIT_NO;
	}
}

static bool string_rule(const char *s, const route_token_t *t, const route_token_t *prev)
{
	if (t->unterminated)
		return false;
	switch (prev->kind) {
	case ROUTE_TOK_END:
	case ROUTE_TOK_OP:
		return true;
	case ROUTE_TOK_PUNCT:
		return tok_punct(s, prev, "(,[");
	case ROUTE_TOK_WORD:
		return route_token_is(s, prev, string_after);
	default:
		return false;
	}
}

/* A plain '...' string's value: '' is ', and continued pieces are joined. */
static int string_value(mask_t *m, const char *s, const route_token_t *t)
{
	size_t i = t->start, end = t->start + t->len;

	while (i < end) {
		if (s[i] != '\'') {
			i++; /* the whitespace between continued pieces */
			continue;
		}
		for (i++; i < end; i++) {
			if (s[i] == '\'' && i + 1 < end && s[i + 1] == '\'') {
				i++;
			} else if (s[i] == '\'') {
				i++;
				break;
			}
			if (put_val(m, s + i, 1) < 0)
				return -1;
		}
		/* skip to the next piece, past any -- comment between */
		while (i < end && s[i] != '\'') {
			if (s[i] == '-' && i + 1 < end && s[i + 1] == '-')
				while (i < end && s[i] != '\n' && s[i] != '\r')
					i++;
			else
				i++;
		}
	}
	return 0;
}

/* Room in m for n literals' offsets, parameters and kinds: 0, or -1. */
static int lits_room(mask_t *m, int n)
{
	size_t cap;
	size_t *o;
	route_param_t *p;
	char *k;

	if (n <= m->cap)
		return 0;
	cap = (size_t)m->cap * 2 + 16;
	if (cap < (size_t)n)
		cap = (size_t)n;
	o = realloc(m->val_off, cap * sizeof *o);
	p = o != NULL ? realloc(m->params, cap * sizeof *p) : NULL;
	k = p != NULL ? realloc(m->kinds, cap) : NULL;
	if (o != NULL)
		m->val_off = o;
	if (p != NULL)
		m->params = p;
	if (k == NULL)
		return -1;
	m->kinds = k;
	m->cap = (int)cap;
	return 0;
}

/* Record one literal's value and kind; its parameter number is first + index. */
static int add_literal(mask_t *m, const char *s, const route_token_t *t, bool neg, char *sig)
{
	size_t off = m->vals_len;
	long iv = 0;

	if (lits_room(m, m->n + 1) < 0)
		return -1;
	/* as PostgreSQL's scanner: digits that fit in int4 make an integer (ival) */
	if (t->kind == ROUTE_TOK_NUMBER && t->integer && t->len <= 10)
		for (size_t i = 0; i < t->len; i++)
			iv = iv * 10 + (s[t->start + i] - '0'); /* digits only: the lexer said so */
	if (t->kind == ROUTE_TOK_STRING) {
		if (string_value(m, s, t) < 0)
			return -1;
		m->kinds[m->n] = *sig = 's';
	} else if (t->integer && t->len <= 10 && iv <= 2147483647L) {
		char buf[21];
		int n = num_text(buf, neg ? -iv : iv);

		if (put_val(m, buf, (size_t)n) < 0)
			return -1;
		m->kinds[m->n] = 'i';
		*sig = neg ? 'I' : 'i';
	} else {
		/* any other number keeps its text (fval), with a folded minus in front */
		if ((neg && put_val(m, "-", 1) < 0) || put_val(m, s + t->start, t->len) < 0)
			return -1;
		m->kinds[m->n] = 'f';
		*sig = neg ? 'F' : 'f';
	}
	m->val_off[m->n] = off;
	m->n++;
	return 0;
}

/* A long text's tokens are not kept between statements. */
static void toks_trim(mask_t *m)
{
	if (m->toks_cap > MASK_TOKENS_KEPT) {
		free(m->toks);
		m->toks = NULL;
		m->toks_cap = 0;
	}
}

/* The values buffer has stopped moving: point the parameters into it. */
static void params_point(mask_t *m)
{
	for (int i = 0; i < m->n; i++) {
		size_t end_off = i + 1 < m->n ? m->val_off[i + 1] : m->vals_len;

		/* every masked value may be '' (no bytes at all, vals still NULL) */
		m->params[i].data = m->vals != NULL ? (const uint8_t *)(m->vals + m->val_off[i])
		                                    : (const uint8_t *)"";
		m->params[i].len = (int32_t)(end_off - m->val_off[i]);
		m->params[i].format = 0;
		m->params[i].type_oid = 0;
	}
}

/* mask_text by lexing the text; m->spans: where its literals were. */
static int mask_lexed(mask_t *m, const char *sql, size_t len)
{
	route_token_t prev, prev2;
	size_t copied = 0;
	int max_param, rc = -1;

	m->key_len = 0;
	m->vals_len = 0;
	m->n = 0;
	if (!maskable(m, sql, len, &max_param)) {
		toks_trim(m);
		if (put(m, sql, len) < 0 || put(m, "\0\0", 2) < 0)
			return -1;
		m->text_len = len;
		m->first = 0;
		return 0;
	}
	m->first = max_param + 1;
	memset(&prev, 0, sizeof prev);
	memset(&prev2, 0, sizeof prev2);
	/* maskable's tokens end with END: each before it has a next */
	for (size_t ti = 0; m->toks[ti].kind != ROUTE_TOK_END; ti++) {
		const route_token_t t = m->toks[ti];
		size_t start = 0, end;
		bool neg = false, mask = false;

		end = t.start + t.len;
		if (m->first + m->n < MAX_PARAMS) {
			if (t.kind == ROUTE_TOK_NUMBER) {
				int r = number_rule(sql, len, &t, &prev, &prev2, &m->toks[ti + 1]);

				mask = r != LIT_NO;
				neg = r == LIT_SIGN;
				start = neg ? prev.start : t.start;
			} else if (t.kind == ROUTE_TOK_STRING) {
				mask = string_rule(sql, &t, &prev);
				start = t.start;
			}
		}
		if (mask) {
			char num[22];
			int n;

			if (put(m, sql + copied, start - copied) < 0)
				goto out;
			/* keep the tokens apart: select'x' is not select$1 */
			if (m->key_len > 0 && ident_char(m->key[m->key_len - 1]) &&
			    put(m, " ", 1) < 0)
				goto out;
			num[0] = '$';
			n = 1 + num_text(num + 1, m->first + m->n);
			if (put(m, num, (size_t)n) < 0)
				goto out;
			if (end < len && ident_char(sql[end]) && put(m, " ", 1) < 0)
				goto out;
			copied = end;
			char *g = mask_grow(m->sigs, &m->sigs_cap, (size_t)m->n + 2, 1);
			size_t *sp =
			    mask_grow(m->spans, &m->spans_cap, 2 * (size_t)m->n + 2, sizeof *sp);

			if (g != NULL)
				m->sigs = g;
			if (sp != NULL)
				m->spans = sp;
			if (g == NULL || sp == NULL)
				goto out;
			sp[2 * m->n] = start;
			sp[2 * m->n + 1] = end;
			if (add_literal(m, sql, &t, neg, &m->sigs[m->n]) < 0)
				goto out;
		}
		prev2 = prev;
		prev = t;
	}
	if (put(m, sql + copied, len - copied) < 0)
		goto out;
	m->text_len = m->key_len;
	if (put(m, "\0", 1) < 0 || put(m, m->n > 0 ? m->sigs : "", (size_t)m->n) < 0 ||
	    put(m, "\0", 1) < 0)
		goto out;
	params_point(m);
	rc = 0;
out:
	toks_trim(m);
	return rc;
}

/* ---- shapes: texts recognised without lexing ---- */

/*
 * A text masked before leaves its shape: the text (raw), where its literals
 * were in it (spans), and what masking made of it (the key, with each
 * literal's sig after the masked text, its hash and first), all in one
 * allocation. A shape's literals are integers and plain strings only: each
 * one's kind is its sig's, 'i' (also for 'I') or 's'.
 */
typedef struct mask_shape {
	void *block; /* the allocation; NULL: an empty way */
	const char *raw;
	size_t raw_len;
	const size_t *spans;
	const char *key, *sigs;
	size_t key_len, text_len;
	int n, first;
	uint64_t hash;
	unsigned used; /* m->clock when last made or matched: the older way goes */
} mask_shape_t;

/* m keeps MASK_SHAPES shapes: sets of ways, a text's set found by shape_set. */
#define MASK_SHAPE_SETS 32
#define MASK_SHAPE_WAYS 4
#define MASK_SHAPES     (MASK_SHAPE_SETS * MASK_SHAPE_WAYS)

/* Longer texts, and texts with more literals, are lexed every time. */
#define MASK_SHAPE_MAX_TEXT 1024
#define MASK_SHAPE_MAX_LITS 64

/* How many of a text's first bytes choose its set. */
#define MASK_SHAPE_LEAD 32

/*
 * The bytes of w (eight of a text, the first lowest) that may start a
 * literal: 0x80 in each. Only the lowest is exact (a byte above a true one
 * may be marked falsely, from the borrow), and only the lowest is used.
 */
static uint64_t literal_bytes(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t quote = w ^ (ones * '\''), minus = w ^ (ones * '-'), digit = w ^ (ones * '0');

	return (((quote - ones) & ~quote) | ((minus - ones) & ~minus) |
	        ((digit - ones * 10) & ~digit)) &
	       highs;
}

/*
 * The set of a text, from its first bytes up to the first that may start a
 * literal (a digit, a quote, a minus sign), at most MASK_SHAPE_LEAD: every
 * text of a shape has those bytes, which come before its first literal.
 * Eight bytes at a time: the word holding the first such byte counts only
 * up to it.
 */
static unsigned shape_set(const char *sql, size_t len)
{
	size_t n = len < MASK_SHAPE_LEAD ? len : MASK_SHAPE_LEAD;
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t w = 0, hit;

		/* little-endian: sql[i] lowest; a whole word is one load */
		if (n - i >= 8)
			memcpy(&w, sql + i, 8);
		else
			memcpy(&w, sql + i, n - i);
		hit = literal_bytes(w);
		if (hit != 0) {
			int bits = __builtin_ctzll(hit) & ~7; /* the bytes below the first */

			w = bits == 0 ? 0 : w & (~0ull >> (64 - bits));
		}
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		if (hit != 0)
			break;
	}
	return (unsigned)(h % MASK_SHAPE_SETS);
}

/*
 * An integer literal of sh at sql + *pos: digits that make an int4 (after a
 * minus sign where sh's had one), ending where sh's did (before a byte that
 * is neither an identifier's nor '.', so that the scanner cuts it there).
 * Its value goes to m. (The byte after it is also compared as the start of
 * the text after the literal, which in sh followed a masked integer and so
 * starts with no such byte: the check here does not rest on that.)
 */
static bool shape_integer(mask_t *m, const char *sql, size_t len, size_t *pos, bool neg)
{
	size_t i = *pos, from;
	long iv = 0;
	char buf[21];

	if (neg && (i >= len || sql[i++] != '-'))
		return false;
	for (from = i; i < len && i - from <= 10 && sql_is((unsigned char)sql[i], SQLCH_DIGIT); i++)
		iv = iv * 10 + (sql[i] - '0');
	if (i == from || i - from > 10 || iv > 2147483647L ||
	    (i < len && (ident_char(sql[i]) || sql[i] == '.')))
		return false;
	*pos = i;
	/* written as it is when that is how num_text writes it: no leading zero, no -0 */
	if ((sql[from] != '0' || i - from == 1) && !(neg && iv == 0))
		return put_val(m, sql + from - neg, i - from + neg) == 0;
	return put_val(m, buf, (size_t)num_text(buf, neg ? -iv : iv)) == 0;
}

/*
 * A plain string literal at sql + *pos: '...' with no quote inside (a ''
 * in it, and what follows, are left to the lexer). Its value goes to m.
 * (As for integers, the text after it in sh cannot start with a quote
 * either; the check does not rest on that.)
 */
static bool shape_string(mask_t *m, const char *sql, size_t len, size_t *pos)
{
	size_t i = *pos;
	const char *q;

	if (i >= len || sql[i] != '\'' || (q = memchr(sql + i + 1, '\'', len - i - 1)) == NULL)
		return false;
	*pos = (size_t)(q - sql) + 1;
	if (*pos < len && sql[*pos] == '\'')
		return false;
	return put_val(m, sql + i + 1, (size_t)(q - sql) - i - 1) == 0;
}

/*
 * Whether sql has shape sh, its literals' values put in m: its bytes
 * between the literals are sh's, and each literal is of its kind written
 * the same way (shape_integer, shape_string). The scanner then cuts sql
 * into sh's tokens but for those literals' text (it cuts each where sh's
 * was cut, and it cuts the bytes around them as in sh, from the same
 * start), and masking, which looks at the tokens around a literal and not
 * at its value, masks the same ones: the key is sh's.
 */
static bool shape_match(mask_t *m, const mask_shape_t *sh, const char *sql, size_t len)
{
	size_t pos = 0, at = 0;

	m->vals_len = 0;
	for (int i = 0; i < sh->n; i++) {
		size_t seg = sh->spans[2 * i] - at;
		bool ok;

		if (len - pos < seg || memcmp(sql + pos, sh->raw + at, seg) != 0)
			return false;
		pos += seg;
		at = sh->spans[2 * i + 1];
		m->val_off[i] = m->vals_len;
		ok = sh->sigs[i] == 's' ? shape_string(m, sql, len, &pos)
		                        : shape_integer(m, sql, len, &pos, sh->sigs[i] == 'I');
		if (!ok)
			return false;
	}
	return len - pos == sh->raw_len - at && memcmp(sql + pos, sh->raw + at, len - pos) == 0;
}

/* m as masking would make it for a text of shape sh, whose values m has. */
static int shape_take(mask_t *m, const mask_shape_t *sh)
{
	m->key_len = 0;
	if (put(m, sh->key, sh->key_len) < 0)
		return -1;
	m->text_len = sh->text_len;
	m->n = sh->n;
	m->first = sh->first;
	m->hash = sh->hash;
	for (int i = 0; i < sh->n; i++)
		m->kinds[i] = sh->sigs[i] == 's' ? 's' : 'i';
	params_point(m);
	return 0;
}

/* The shape of sql, just masked by lexing into m, kept in its set (when it can be). */
static void shape_keep(mask_t *m, const char *sql, size_t len, unsigned set)
{
	mask_shape_t *ways, *sh;
	size_t spans_size = 2 * (size_t)m->n * sizeof(size_t);
	char *block;

	if (len > MASK_SHAPE_MAX_TEXT || m->n > MASK_SHAPE_MAX_LITS)
		return;
	for (int i = 0; i < m->n; i++)
		if (m->sigs[i] != 'i' && m->sigs[i] != 'I' && m->sigs[i] != 's')
			return; /* other numbers: lexed every time */
	if (m->shapes == NULL && (m->shapes = calloc(MASK_SHAPES, sizeof *m->shapes)) == NULL)
		return;
	ways = &m->shapes[set * MASK_SHAPE_WAYS];
	sh = &ways[0];
	for (int w = 1; w < MASK_SHAPE_WAYS && sh->block != NULL; w++)
		if (ways[w].block == NULL || ways[w].used < sh->used)
			sh = &ways[w];
	/* spans first, where size_t is aligned; then the texts */
	block = malloc(spans_size + len + m->key_len);
	if (block == NULL)
		return;
	free(sh->block);
	sh->block = block;
	if (m->n > 0)
		memcpy(block, m->spans, spans_size);
	sh->spans = (const size_t *)(void *)block;
	sh->raw = block + spans_size;
	memcpy(block + spans_size, sql, len);
	sh->key = block + spans_size + len;
	memcpy(block + spans_size + len, m->key, m->key_len);
	sh->raw_len = len;
	sh->key_len = m->key_len;
	sh->text_len = m->text_len;
	sh->sigs = sh->key + m->text_len + 1;
	sh->n = m->n;
	sh->first = m->first;
	sh->hash = m->hash;
	sh->used = ++m->clock;
}

int mask_text(mask_t *m, const char *sql, size_t len)
{
	unsigned set = shape_set(sql, len);

	for (int w = 0; m->shapes != NULL && w < MASK_SHAPE_WAYS; w++) {
		mask_shape_t *sh = &m->shapes[set * MASK_SHAPE_WAYS + w];

		if (sh->block == NULL || lits_room(m, sh->n) < 0 || !shape_match(m, sh, sql, len))
			continue;
		if (shape_take(m, sh) < 0)
			return -1;
		sh->used = ++m->clock;
		m->shape_hits++;
		return 0;
	}
	if (mask_lexed(m, sql, len) < 0)
		return -1;
	m->hash = XXH3_64bits(m->key, m->key_len);
	shape_keep(m, sql, len, set);
	return 0;
}

void mask_free(mask_t *m)
{
	if (m->shapes != NULL)
		for (int i = 0; i < MASK_SHAPES; i++)
			free(m->shapes[i].block);
	free(m->shapes);
	free(m->spans);
	free(m->key);
	free(m->vals);
	free(m->val_off);
	free(m->params);
	free(m->kinds);
	free(m->toks);
	free(m->sigs);
}
