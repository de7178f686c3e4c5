/*
 * route_lex.c — the lexical pass, before any parsing: tokens cut as
 * PostgreSQL's scanner cuts them, and the estimate of how deeply a
 * statement nests, which guards the parser (it has no stack depth check)
 * and the serialized tree's nesting, which guards unpacking.
 */
#include "router/route.h"

#include <limits.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/route_int.h"
#include "router/sqlchars.h"
#include "router/tree.h"
#include "router/tree_int.h"

/* ---- the lexical pass: tokens, and the depth guard ---- */

/*
 * libpg_query's parser has no stack depth check. Its grammar keeps the
 * nesting of parentheses, CASE and prefix operators on bison's own stack,
 * which stops at 10,000 entries with "memory exhausted"; but left-deep
 * chains (1+1+1..., a JOIN b JOIN c..., x::t::t..., UNION ...) cost bison
 * nothing and build a tree that pg_query_parse_protobuf then walks
 * recursively, overflowing an 8 MB stack at about 23,500 levels. So the
 * text is measured before it is parsed: parentheses, brackets and CASE ...
 * END open levels; operators, and the words that nest the same way, lengthen
 * a chain that commas, AND, OR and (inside CASE) WHEN/THEN/ELSE end.
 *
 * The tokens are cut the way PostgreSQL's scanner cuts them (scan.l), so
 * that a string or a comment hides exactly what the parser will not see. In
 * doubt, the lexer errs towards seeing code: that only overestimates.
 */

/* Where the figure stops being worth counting: well past the limit. */
#define DEPTH_STOP (1 << 20)

#define DEPTH_FRAMES_MAX (2 * ROUTE_MAX_SQL_DEPTH + 2)

static bool lex_ident_start(unsigned char c)
{
	return sql_is(c, SQLCH_START);
}

static bool lex_ident_char(unsigned char c)
{
	return sql_is(c, SQLCH_IDENT);
}

static bool lex_op_char(char c)
{
	return sql_is((unsigned char)c, SQLCH_OP);
}

/* E'', B'', X'' and N'' strings. */
static bool lex_string_prefix(char c)
{
	switch (sql_lower((unsigned char)c)) {
	case 'e':
	case 'b':
	case 'x':
	case 'n':
		return true;
	default:
		return false;
	}
}

static bool lex_digit(char c)
{
	return sql_is((unsigned char)c, SQLCH_DIGIT);
}

/* Past whitespace and comments (nested slash-star, and --); *open when a comment runs off. */
static size_t lex_blank(const char *s, size_t len, size_t i, bool *open)
{
	while (i < len) {
		if (sql_is((unsigned char)s[i], SQLCH_SPACE)) {
			i++;
		} else if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n' && s[i] != '\r')
				i++;
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			int depth = 1;

			for (i += 2; i < len && depth > 0;) {
				if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
					depth--;
					i += 2;
				} else {
					i++;
				}
			}
			*open |= depth > 0;
		} else {
			break;
		}
	}
	return i;
}

size_t route_skip_blank(const char *sql, size_t len, size_t pos)
{
	bool open = false;

	return lex_blank(sql, len, pos, &open);
}

bool route_may_be_insert(const char *sql, size_t len)
{
	route_token_t t;
	size_t i = 0;

	/* most texts start with another word: that is known without lexing */
	while (i < len && sql_is((unsigned char)sql[i], SQLCH_SPACE))
		i++;
	if (i < len && sql_is((unsigned char)sql[i], SQLCH_START) &&
	    sql_lower((unsigned char)sql[i]) != 'i' && sql_lower((unsigned char)sql[i]) != 'w')
		return false;
	route_next_token(sql, len, 0, &t);
	return t.kind == ROUTE_TOK_WORD &&
	       ((t.len == 6 && strncasecmp(sql + t.start, "insert", 6) == 0) ||
	        (t.len == 4 && strncasecmp(sql + t.start, "with", 4) == 0));
}

/*
 * 'ab'<newline>'cd' is one literal, 'abcd': whitespace holding a newline (and
 * -- comments) between the quotes, no slash-star comment. The position of
 * the opening quote that continues the string ending before i, or 0.
 * Vertical tab counts as space here even if the scanner disagrees: taking
 * a continuation for one only makes the lexer see more code, never less.
 */
static size_t lex_continues(const char *s, size_t len, size_t i)
{
	bool newline = false;

	while (i < len) {
		char c = s[i];

		if (c == '\n' || c == '\r') {
			newline = true;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
			i++;
		} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n' && s[i] != '\r')
				i++;
		} else {
			return c == '\'' && newline ? i : 0;
		}
	}
	return 0;
}

/* The end of a '...' string whose body starts at i, continuations included. */
static size_t lex_string(const char *s, size_t len, size_t i, bool backslash, bool *open)
{
	for (;;) {
		size_t next;

		while (i < len && s[i] != '\'') {
			if (backslash && s[i] == '\\' && i + 1 < len)
				i++;
			i++;
		}
		if (i >= len) {
			*open = true;
			return len;
		}
		if (i + 1 < len && s[i + 1] == '\'') {
			i += 2; /* '' stands for ' */
			continue;
		}
		next = lex_continues(s, len, i + 1);
		if (next == 0)
			return i + 1;
		i = next + 1;
	}
}

/* The end of a "quoted identifier" whose body starts at i. */
static size_t lex_qident(const char *s, size_t len, size_t i, bool *open)
{
	while (i < len) {
		if (s[i] == '"') {
			if (i + 1 < len && s[i + 1] == '"') {
				i += 2;
				continue;
			}
			return i + 1;
		}
		i++;
	}
	*open = true;
	return len;
}

/* $tag$ ... $tag$ starting at i (s[i] == '$'): its end, or 0 when s[i] starts none. */
static size_t lex_dollar(const char *s, size_t len, size_t i, bool *open)
{
	size_t t = i + 1, taglen;

	if (t < len && lex_ident_start((unsigned char)s[t]))
		while (t < len && lex_ident_char((unsigned char)s[t]) && s[t] != '$')
			t++;
	if (t >= len || s[t] != '$')
		return 0;
	taglen = t - i + 1;
	for (size_t k = t + 1; k + taglen <= len; k++)
		if (s[k] == '$' && memcmp(s + k, s + i, taglen) == 0)
			return k + taglen;
	*open = true;
	return len;
}

/* A number at i (a digit, or '.' and a digit), as scan.l cuts it. */
static size_t lex_number(const char *s, size_t len, size_t i, bool *integer)
{
	*integer = true;
	while (i < len && lex_digit(s[i]))
		i++;
	/* 1..2 is 1 followed by "..", as in a slice */
	if (i < len && s[i] == '.' && !(i + 1 < len && s[i + 1] == '.')) {
		*integer = false;
		i++;
		while (i < len && lex_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t k = i + 1;

		if (k < len && (s[k] == '+' || s[k] == '-'))
			k++;
		if (k < len && lex_digit(s[k])) {
			*integer = false;
			for (i = k; i < len && lex_digit(s[i]);)
				i++;
		}
	}
	return i;
}

/*
 * A run of operator characters at i. As in scan.l, the run stops where a
 * comment starts, and loses trailing + and - unless it holds one of
 * ~ ! @ # % ^ & | ` ? (so that "=-5" is "=" then "-" then 5).
 */
static size_t lex_operator(const char *s, size_t len, size_t i)
{
	size_t j = i, n;

	while (j < len && lex_op_char(s[j])) {
		if (j > i &&
		    ((s[j] == '-' && s[j - 1] == '-') || (s[j] == '*' && s[j - 1] == '/'))) {
			j--;
			break;
		}
		j++;
	}
	n = j - i;
	if (n > 1 && (s[i + n - 1] == '+' || s[i + n - 1] == '-')) {
		bool special = false;

		for (size_t k = i; k + 1 < i + n; k++)
			special |= sql_is((unsigned char)s[k], SQLCH_SPECIAL);
		if (!special)
			do {
				n--;
			} while (n > 1 && (s[i + n - 1] == '+' || s[i + n - 1] == '-'));
	}
	return i + n;
}

size_t route_next_token(const char *sql, size_t len, size_t pos, route_token_t *tok)
{
	const char *s = sql;
	size_t i, end;
	char c;

	memset(tok, 0, sizeof *tok);
	i = lex_blank(s, len, pos, &tok->unterminated);
	tok->start = i;
	if (i >= len) {
		tok->kind = ROUTE_TOK_END;
		return len;
	}
	c = s[i];
	if (c == '\'') {
		tok->kind = ROUTE_TOK_STRING;
		end = lex_string(s, len, i + 1, false, &tok->unterminated);
	} else if (c == '"') {
		tok->kind = ROUTE_TOK_QIDENT;
		end = lex_qident(s, len, i + 1, &tok->unterminated);
	} else if (i + 1 < len && s[i + 1] == '\'' && lex_string_prefix(c)) {
		tok->kind = ROUTE_TOK_XSTRING; /* only E'' knows backslash escapes */
		end = lex_string(s, len, i + 2, c == 'e' || c == 'E', &tok->unterminated);
	} else if ((c == 'u' || c == 'U') && i + 2 < len && s[i + 1] == '&' &&
	           (s[i + 2] == '\'' || s[i + 2] == '"')) {
		if (s[i + 2] == '\'') {
			tok->kind = ROUTE_TOK_XSTRING;
			end = lex_string(s, len, i + 3, false, &tok->unterminated);
		} else {
			tok->kind = ROUTE_TOK_QIDENT;
			end = lex_qident(s, len, i + 3, &tok->unterminated);
		}
	} else if (lex_ident_start((unsigned char)c)) {
		tok->kind = ROUTE_TOK_WORD;
		for (end = i + 1; end < len && lex_ident_char((unsigned char)s[end]);)
			end++;
	} else if (lex_digit(c) || (c == '.' && i + 1 < len && lex_digit(s[i + 1]))) {
		tok->kind = ROUTE_TOK_NUMBER;
		end = lex_number(s, len, i, &tok->integer);
	} else if (c == '$' && i + 1 < len && lex_digit(s[i + 1])) {
		tok->kind = ROUTE_TOK_PARAM;
		for (end = i + 1; end < len && lex_digit(s[end]);)
			end++;
	} else if (c == '$' && (end = lex_dollar(s, len, i, &tok->unterminated)) != 0) {
		tok->kind = ROUTE_TOK_XSTRING;
	} else if (c == ':' && i + 1 < len && s[i + 1] == ':') {
		tok->kind = ROUTE_TOK_CAST;
		end = i + 2;
	} else if (c == '.' && i + 1 < len && s[i + 1] == '.') {
		tok->kind = ROUTE_TOK_PUNCT; /* "..", as in 1..2 */
		end = i + 2;
	} else if (lex_op_char(c)) {
		tok->kind = ROUTE_TOK_OP;
		end = lex_operator(s, len, i);
	} else {
		tok->kind = ROUTE_TOK_PUNCT;
		end = i + 1;
	}
	tok->len = end - i;
	return end;
}

bool route_token_is(const char *s, const route_token_t *t, const char *const *words)
{
	if (t->kind != ROUTE_TOK_WORD)
		return false;
	for (; *words != NULL; words++)
		if (strlen(*words) == t->len && strncasecmp(s + t->start, *words, t->len) == 0)
			return true;
	return false;
}

/*
 * One level of the estimate: the top level, a parenthesis, a bracket or a
 * CASE. Its depth is its JOIN/UNION count plus its deepest segment, where a
 * segment (between commas, ANDs, ORs, WHENs ...) is a chain of operators
 * over operands that may be levels of their own.
 */
typedef struct depth_frame {
	char close;   /* ')', ']', or 'E' for CASE ... END */
	int best;     /* the deepest finished statement (;) */
	int strct;    /* JOIN, UNION, INTERSECT, EXCEPT */
	int seg_best; /* the deepest finished segment */
	int chain;    /* operators of this segment */
	int sub;      /* the deepest level closed in this segment */
} depth_frame_t;

static int frame_depth(const depth_frame_t *f)
{
	int seg = f->chain + f->sub > f->seg_best ? f->chain + f->sub : f->seg_best;

	return f->strct + seg > f->best ? f->strct + seg : f->best;
}

static void frame_segment_end(depth_frame_t *f)
{
	if (f->chain + f->sub > f->seg_best)
		f->seg_best = f->chain + f->sub;
	f->chain = f->sub = 0;
}

static void frame_close(depth_frame_t *f, int *n)
{
	int d = frame_depth(&f[*n - 1]) + 1;

	(*n)--;
	if (d > f[*n - 1].sub)
		f[*n - 1].sub = d;
}

int route_sql_depth_estimate(const char *sql, size_t len)
{
	static const char *const chain_words[] = {
	    "not",     "is",      "isnull",  "notnull", "in",       "like",     "ilike",
	    "similar", "between", "collate", "at",      "operator", "overlaps", NULL};
	static const char *const struct_words[] = {"join", "union", "intersect", "except", NULL};
	static const char *const and_or[] = {"and", "or", NULL};
	static const char *const case_parts[] = {"when", "then", "else", NULL};
	static const char *const case_word[] = {"case", NULL};
	static const char *const end_word[] = {"end", NULL};
	depth_frame_t local[32], *f = local;
	int n = 1, cap = 32, depth;
	size_t pos = 0;
	route_token_t t;

	memset(&f[0], 0, sizeof f[0]);
	for (;;) {
		depth_frame_t *top;
		char c;

		pos = route_next_token(sql, len, pos, &t);
		if (t.kind == ROUTE_TOK_END)
			break;
		top = &f[n - 1];
		c = sql[t.start];
		if (t.kind == ROUTE_TOK_OP || t.kind == ROUTE_TOK_CAST ||
		    route_token_is(sql, &t, chain_words)) {
			top->chain++;
		} else if (route_token_is(sql, &t, struct_words)) {
			top->strct++;
			frame_segment_end(top);
		} else if (route_token_is(sql, &t, and_or) ||
		           (top->close == 'E' && route_token_is(sql, &t, case_parts)) ||
		           (t.kind == ROUTE_TOK_PUNCT && c == ',')) {
			frame_segment_end(top);
		} else if (t.kind == ROUTE_TOK_PUNCT && c == ';') {
			top->best = frame_depth(top);
			top->strct = top->seg_best = top->chain = top->sub = 0;
		} else if (route_token_is(sql, &t, end_word)) {
			if (top->close == 'E')
				frame_close(f, &n);
		} else if ((t.kind == ROUTE_TOK_PUNCT && (c == '(' || c == '[')) ||
		           route_token_is(sql, &t, case_word)) {
			if (n == cap) {
				depth_frame_t *g;

				if (cap >= DEPTH_FRAMES_MAX) {
					depth = n; /* deeper than the limit already */
					goto out;
				}
				g = malloc(sizeof *g * (size_t)cap * 2);
				if (g == NULL) {
					depth = INT_MAX;
					goto out;
				}
				memcpy(g, f, sizeof *g * (size_t)n);
				if (f != local)
					free(f);
				f = g;
				cap *= 2;
			}
			memset(&f[n], 0, sizeof f[n]);
			f[n].close = c == '(' ? ')' : c == '[' ? ']' : 'E';
			n++;
		} else if (t.kind == ROUTE_TOK_PUNCT && (c == ')' || c == ']')) {
			int k = n - 1;

			while (k > 0 && f[k].close != c)
				k--;
			while (k > 0 && n > k) /* a stray closer closes nothing */
				frame_close(f, &n);
		}
		if (n > 0 && frame_depth(&f[n - 1]) > DEPTH_STOP) {
			depth = frame_depth(&f[n - 1]);
			goto out;
		}
	}
	while (n > 1)
		frame_close(f, &n);
	depth = frame_depth(&f[0]);
out:
	if (f != local)
		free(f);
	return depth;
}
