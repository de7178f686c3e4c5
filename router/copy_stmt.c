/*
 * copy_stmt.c — COPY FROM STDIN statements (see copy.h): the options
 * PostgreSQL 15 accepts and what they mean for splitting, the client
 * encodings the splitter can read, and the catalog query that finds the
 * table's columns.
 */
#include "router/copy.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/classify.h"
#include "router/tree_int.h"

/*
 * libpg_query recurses once per nesting level and has no stack depth
 * check (see classify.c); a COPY statement has no reason to be long, so a
 * longer one is not parsed.
 */
#define COPY_MAX_PARSE_LEN (64 * 1024)

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

static bool empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* ---- the statement ---- */

/* What PostgreSQL's defGetString makes of an option argument; NULL when it
 * has none (or one that is no single value). */
static const char *opt_string(const PgQuery__Node *arg, char *buf, size_t size)
{
	if (arg == NULL)
		return NULL;
	switch (arg->node_case) {
	case PG_QUERY__NODE__NODE_STRING:
		return arg->string->sval;
	case PG_QUERY__NODE__NODE_INTEGER:
		snprintf(buf, size, "%d", (int)arg->integer->ival);
		return buf;
	case PG_QUERY__NODE__NODE_FLOAT:
		return arg->float_->fval;
	case PG_QUERY__NODE__NODE_BOOLEAN:
		return arg->boolean->boolval ? "true" : "false";
	case PG_QUERY__NODE__NODE_A_STAR:
		return "*";
	default:
		return NULL;
	}
}

/* PostgreSQL's defGetBoolean, and with `match` its HEADER variant:
 * 0 false, 1 true, 2 match, -1 not a boolean. */
static int opt_bool(const PgQuery__Node *arg, bool match)
{
	char buf[32];
	const char *s;

	if (arg == NULL)
		return 1;
	if (arg->node_case == PG_QUERY__NODE__NODE_INTEGER) {
		if (arg->integer->ival == 0 || arg->integer->ival == 1)
			return arg->integer->ival;
		return -1;
	}
	s = opt_string(arg, buf, sizeof buf);
	if (s == NULL)
		return -1;
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0)
		return 1;
	if (strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0)
		return 0;
	if (match && strcasecmp(s, "match") == 0)
		return 2;
	return -1;
}

static char **dup_names(PgQuery__Node *const *items, size_t n, int *count)
{
	char **names;

	*count = 0;
	if (n == 0)
		return NULL;
	names = calloc(n, sizeof *names);
	if (names == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *s = items[i]->node_case == PG_QUERY__NODE__NODE_STRING
		                    ? items[i]->string->sval
		                    : "";

		names[i] = strdup(s);
		if (names[i] == NULL) {
			for (size_t k = 0; k < i; k++)
				free(names[k]);
			free(names);
			return NULL;
		}
	}
	*count = (int)n;
	return names;
}

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The raw option values of a COPY, as written. */
typedef struct raw_opts {
	const char *format, *delimiter, *null, *quote, *escape, *encoding;
	char numbers[6][32]; /* the text of integer arguments */
	int header;          /* -1 not given, else opt_bool's answer */
	const PgQuery__List *force_not_null, *force_null;
	bool force_quote;
} raw_opts_t;

static const struct {
	const char *name;
	size_t offset;
} string_options[] = {
    {"format", offsetof(raw_opts_t, format)}, {"delimiter", offsetof(raw_opts_t, delimiter)},
    {"null", offsetof(raw_opts_t, null)},     {"quote", offsetof(raw_opts_t, quote)},
    {"escape", offsetof(raw_opts_t, escape)}, {"encoding", offsetof(raw_opts_t, encoding)},
};

static bool is_list(const PgQuery__Node *arg)
{
	return arg != NULL && arg->node_case == PG_QUERY__NODE__NODE_LIST;
}

/*
 * Collect the options the way ProcessCopyOptions does: each at most once,
 * with the argument types it accepts. Options that do not change how the
 * data is read (FREEZE, CONVERT_SELECTIVELY) are checked and dropped.
 * Anything else is refused: an option of a later PostgreSQL (DEFAULT,
 * ON_ERROR, ...) may change which fields are NULL or which rows exist.
 */
static int collect_options(const PgQuery__CopyStmt *c, raw_opts_t *r, char *err, size_t errlen)
{
	bool seen_freeze = false, seen_convert = false, seen_header = false;

	memset(r, 0, sizeof *r);
	r->header = -1;
	for (size_t i = 0; i < c->n_options; i++) {
		const PgQuery__DefElem *d;
		const char *name;
		size_t k, n_string = sizeof string_options / sizeof string_options[0];

		if (c->options[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
			continue;
		d = c->options[i]->def_elem;
		name = d->defname;
		for (k = 0; k < n_string && strcmp(name, string_options[k].name) != 0; k++)
			;
		if (k < n_string) {
			const char **slot = (const char **)((char *)r + string_options[k].offset);

			if (*slot != NULL)
				goto conflict;
			*slot = opt_string(d->arg, r->numbers[k], sizeof r->numbers[k]);
			if (*slot == NULL) {
				set_err(err, errlen, "%s requires a parameter", name);
				return -1;
			}
		} else if (strcmp(name, "freeze") == 0) {
			if (seen_freeze)
				goto conflict;
			seen_freeze = true;
			if (opt_bool(d->arg, false) < 0) {
				set_err(err, errlen, "%s requires a Boolean value", name);
				return -1;
			}
		} else if (strcmp(name, "header") == 0) {
			if (seen_header)
				goto conflict;
			seen_header = true;
			r->header = opt_bool(d->arg, true);
			if (r->header < 0) {
				set_err(err, errlen, "%s requires a Boolean value or \"match\"",
				        name);
				return -1;
			}
		} else if (strcmp(name, "force_quote") == 0) {
			if (r->force_quote)
				goto conflict;
			r->force_quote = true;
		} else if (strcmp(name, "force_not_null") == 0 || strcmp(name, "force_null") == 0) {
			const PgQuery__List **list =
			    strcmp(name, "force_null") == 0 ? &r->force_null : &r->force_not_null;

			if (*list != NULL)
				goto conflict;
			if (!is_list(d->arg))
				goto not_a_list;
			*list = d->arg->list;
		} else if (strcmp(name, "convert_selectively") == 0) {
			if (seen_convert)
				goto conflict;
			seen_convert = true;
			if (!is_list(d->arg))
				goto not_a_list;
		} else {
			set_err(
			    err, errlen,
			    "COPY option \"%s\" is not supported by pgshard's COPY splitter (it "
			    "knows PostgreSQL 15's options); load without it",
			    name);
			return -1;
		}
		continue;
	not_a_list:
		set_err(err, errlen, "argument to option \"%s\" must be a list of column names",
		        name);
		return -1;
	}
	return 0;
conflict:
	set_err(err, errlen, "conflicting or redundant options");
	return -1;
}

/* ProcessCopyOptions' checks and defaults, for COPY FROM. */
static int check_options(const raw_opts_t *r, copy_opts_t *o, char *err, size_t errlen)
{
	bool csv, binary;
	const char *delim, *null, *quote = r->quote, *escape = r->escape;

	if (r->format == NULL || strcmp(r->format, "text") == 0) {
		o->format = COPY_TEXT;
	} else if (strcmp(r->format, "csv") == 0) {
		o->format = COPY_CSV;
	} else if (strcmp(r->format, "binary") == 0) {
		o->format = COPY_BINARY;
	} else {
		set_err(err, errlen, "COPY format \"%s\" not recognized", r->format);
		return -1;
	}
	csv = o->format == COPY_CSV;
	binary = o->format == COPY_BINARY;
	if (binary && r->delimiter != NULL) {
		set_err(err, errlen, "cannot specify DELIMITER in BINARY mode");
		return -1;
	}
	if (binary && r->null != NULL) {
		set_err(err, errlen, "cannot specify NULL in BINARY mode");
		return -1;
	}
	if (binary && r->header > 0) {
		set_err(err, errlen, "cannot specify HEADER in BINARY mode");
		return -1;
	}
	o->header = r->header > 0;
	o->header_match = r->header == 2;
	if (binary) {
		if (r->quote != NULL || r->escape != NULL || r->force_not_null != NULL ||
		    r->force_null != NULL || r->force_quote) {
			set_err(err, errlen, "COPY %s available only in CSV mode",
			        r->quote != NULL            ? "quote"
			        : r->escape != NULL         ? "escape"
			        : r->force_not_null != NULL ? "force not null"
			        : r->force_null != NULL     ? "force null"
			                                    : "force quote");
			return -1;
		}
		return 0;
	}
	delim = r->delimiter != NULL ? r->delimiter : csv ? "," : "\t";
	null = r->null != NULL ? r->null : csv ? "" : "\\N";
	if (csv) {
		if (quote == NULL)
			quote = "\"";
		if (escape == NULL)
			escape = quote;
	}
	if (strlen(delim) != 1) {
		set_err(
		    err, errlen,
		    "COPY delimiter must be a single one-byte character (pgshard splits rows at "
		    "that byte)");
		return -1;
	}
	if (delim[0] == '\r' || delim[0] == '\n') {
		set_err(err, errlen, "COPY delimiter cannot be newline or carriage return");
		return -1;
	}
	if (strchr(null, '\r') != NULL || strchr(null, '\n') != NULL) {
		set_err(err, errlen,
		        "COPY null representation cannot use newline or carriage return");
		return -1;
	}
	if (!csv && strchr("\\.abcdefghijklmnopqrstuvwxyz0123456789", delim[0]) != NULL) {
		set_err(err, errlen, "COPY delimiter cannot be \"%s\"", delim);
		return -1;
	}
	if (!csv && quote != NULL) {
		set_err(err, errlen, "COPY quote available only in CSV mode");
		return -1;
	}
	if (csv && strlen(quote) != 1) {
		set_err(err, errlen, "COPY quote must be a single one-byte character");
		return -1;
	}
	if (csv && delim[0] == quote[0]) {
		set_err(err, errlen, "COPY delimiter and quote must be different");
		return -1;
	}
	if (!csv && escape != NULL) {
		set_err(err, errlen, "COPY escape available only in CSV mode");
		return -1;
	}
	if (csv && strlen(escape) != 1) {
		set_err(err, errlen, "COPY escape must be a single one-byte character");
		return -1;
	}
	if (r->force_quote) {
		set_err(err, errlen, "COPY force quote %s",
		        csv ? "only available using COPY TO" : "available only in CSV mode");
		return -1;
	}
	if (!csv && r->force_not_null != NULL) {
		set_err(err, errlen, "COPY force not null available only in CSV mode");
		return -1;
	}
	if (!csv && r->force_null != NULL) {
		set_err(err, errlen, "COPY force null available only in CSV mode");
		return -1;
	}
	if (strchr(null, delim[0]) != NULL) {
		set_err(err, errlen, "COPY delimiter must not appear in the NULL specification");
		return -1;
	}
	if (csv && strchr(null, quote[0]) != NULL) {
		set_err(err, errlen,
		        "CSV quote character must not appear in the NULL specification");
		return -1;
	}
	o->delimiter = delim[0];
	if (csv) {
		o->quote = quote[0];
		o->escape = escape[0];
	}
	o->null_string = strdup(null);
	if (o->null_string == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static bool mentions_copy(const char *sql)
{
	for (const char *p = sql; *p != '\0'; p++)
		if (strncasecmp(p, "copy", 4) == 0)
			return true;
	return false;
}

bool copy_starts_statement(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
		       *p == '\v')
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			int depth = 1;

			for (p += 2; *p != '\0' && depth > 0; p++) {
				if (p[0] == '/' && p[1] == '*') {
					depth++;
					p++;
				} else if (p[0] == '*' && p[1] == '/') {
					depth--;
					p++;
				}
			}
		} else {
			break;
		}
	}
	return strncasecmp(p, "copy", 4) == 0 &&
	       !((p[4] >= 'a' && p[4] <= 'z') || (p[4] >= 'A' && p[4] <= 'Z') ||
	         (p[4] >= '0' && p[4] <= '9') || p[4] == '_' || p[4] == '$' ||
	         (unsigned char)p[4] >= 0x80);
}

static bool is_copy_from_stdin(const PgQuery__Node *n)
{
	const PgQuery__CopyStmt *c;

	if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_COPY_STMT)
		return false;
	c = n->copy_stmt;
	return c->is_from && empty(c->filename) && !c->is_program;
}

static int fill_opts(const PgQuery__CopyStmt *c, copy_opts_t *out, char *err, size_t errlen)
{
	raw_opts_t r;

	if (c->query != NULL || c->relation == NULL) {
		set_err(err, errlen, "COPY FROM STDIN into a query: only a table can be split");
		return -1;
	}
	if (c->where_clause != NULL) {
		set_err(
		    err, errlen,
		    "COPY ... FROM STDIN WHERE is not supported by pgshard's COPY splitter: rows "
		    "are routed as the client sends them; filter the data before loading, or "
		    "COPY into a staging table and INSERT ... SELECT from it");
		return -1;
	}
	if (collect_options(c, &r, err, errlen) != 0 || check_options(&r, out, err, errlen) != 0)
		return -1;
	if (!empty(c->relation->schemaname)) {
		out->schemaname = strdup(c->relation->schemaname);
		if (out->schemaname == NULL)
			goto nomem;
	}
	out->relname = strdup(c->relation->relname);
	if (out->relname == NULL)
		goto nomem;
	out->columns = dup_names(c->attlist, c->n_attlist, &out->n_columns);
	if (c->n_attlist > 0 && out->columns == NULL)
		goto nomem;
	if (r.force_not_null != NULL) {
		out->force_not_null = dup_names(r.force_not_null->items, r.force_not_null->n_items,
		                                &out->n_force_not_null);
		if (r.force_not_null->n_items > 0 && out->force_not_null == NULL)
			goto nomem;
	}
	if (r.force_null != NULL) {
		out->force_null =
		    dup_names(r.force_null->items, r.force_null->n_items, &out->n_force_null);
		if (r.force_null->n_items > 0 && out->force_null == NULL)
			goto nomem;
	}
	if (r.encoding != NULL) {
		out->encoding = strdup(r.encoding);
		if (out->encoding == NULL)
			goto nomem;
	}
	return 0;
nomem:
	set_err(err, errlen, "out of memory");
	return -1;
}

int copy_parse_statement(const char *sql, copy_opts_t *out, char *err, size_t errlen)
{
	PgQueryProtobufParseResult res;
	PgQuery__ParseResult *tree;
	size_t len = strlen(sql), n_copy = 0;
	int rc = 1;

	memset(out, 0, sizeof *out);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* the cheap answer for the statements that are not a COPY at all */
	if (!mentions_copy(sql))
		return 1;
	if (len > COPY_MAX_PARSE_LEN) {
		if (!copy_starts_statement(sql))
			return 1;
		set_err(
		    err, errlen,
		    "a COPY statement longer than %d bytes is not parsed by pgshard; shorten it",
		    COPY_MAX_PARSE_LEN);
		return -1;
	}
	route_parse_counted();
	res = pg_query_parse_protobuf(sql);
	if (res.error != NULL) {
		/* not a COPY we can start: the server reports the syntax error */
		pg_query_free_protobuf_parse_result(res);
		return 1;
	}
	tree = pg_query__parse_result__unpack(NULL, res.parse_tree.len,
	                                      (const uint8_t *)res.parse_tree.data);
	if (tree == NULL) {
		pg_query_free_protobuf_parse_result(res);
		set_err(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < tree->n_stmts; i++)
		if (is_copy_from_stdin(tree->stmts[i]->stmt))
			n_copy++;
	if (n_copy > 0 && tree->n_stmts > 1) {
		/* the rows would have to be split in the middle of a multi-statement query */
		set_err(err, errlen,
		        "COPY ... FROM STDIN must be sent as a query of its own, not with other "
		        "statements");
		rc = -1;
	} else if (n_copy == 1) {
		rc = fill_opts(tree->stmts[0]->stmt->copy_stmt, out, err, errlen);
		if (rc != 0)
			copy_opts_free(out);
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(res);
	return rc;
}

void copy_opts_free(copy_opts_t *o)
{
	if (o == NULL)
		return;
	free(o->null_string);
	free(o->schemaname);
	free(o->relname);
	free_names(o->columns, o->n_columns);
	free_names(o->force_not_null, o->n_force_not_null);
	free_names(o->force_null, o->n_force_null);
	free(o->encoding);
	memset(o, 0, sizeof *o);
}

/* ---- encodings ---- */

/* PostgreSQL compares encoding names with everything but letters and
 * digits dropped, case folded (clean_encoding_name). */
static void clean_encoding_name(const char *in, char *out, size_t size)
{
	size_t k = 0;

	for (; *in != '\0' && k + 1 < size; in++) {
		char c = *in;

		if (c >= 'A' && c <= 'Z')
			out[k++] = (char)(c - 'A' + 'a');
		else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[k++] = c;
	}
	out[k] = '\0';
}

/* The other spellings PostgreSQL accepts (encnames.c), cleaned, with the
 * cleaned canonical name they stand for. */
static const char *const encoding_aliases[][2] = {
    {"unicode", "utf8"},        {"iso88591", "latin1"},     {"iso88592", "latin2"},
    {"iso88593", "latin3"},     {"iso88594", "latin4"},     {"iso88599", "latin5"},
    {"iso885910", "latin6"},    {"iso885913", "latin7"},    {"iso885914", "latin8"},
    {"iso885915", "latin9"},    {"iso885916", "latin10"},   {"koi8", "koi8r"},
    {"mskanji", "sjis"},        {"shiftjis", "sjis"},       {"win932", "sjis"},
    {"windows932", "sjis"},     {"win936", "gbk"},          {"windows936", "gbk"},
    {"win949", "uhc"},          {"windows949", "uhc"},      {"win950", "big5"},
    {"windows950", "big5"},     {"abc", "win1258"},         {"tcvn", "win1258"},
    {"tcvn5712", "win1258"},    {"vscii", "win1258"},       {"alt", "win866"},
    {"windows866", "win866"},   {"win", "win1251"},         {"windows874", "win874"},
    {"windows1250", "win1250"}, {"windows1251", "win1251"}, {"windows1252", "win1252"},
    {"windows1253", "win1253"}, {"windows1254", "win1254"}, {"windows1255", "win1255"},
    {"windows1256", "win1256"}, {"windows1257", "win1257"}, {"windows1258", "win1258"},
};

static void canonical_encoding(const char *name, char *out, size_t size)
{
	clean_encoding_name(name, out, size);
	for (size_t i = 0; i < sizeof encoding_aliases / sizeof encoding_aliases[0]; i++) {
		if (strcmp(out, encoding_aliases[i][0]) == 0) {
			snprintf(out, size, "%s", encoding_aliases[i][1]);
			return;
		}
	}
}

bool copy_encodings_agree(const char *client_encoding, const char *server_encoding)
{
	char client[64], server[64];

	if (client_encoding == NULL || server_encoding == NULL || client_encoding[0] == '\0' ||
	    server_encoding[0] == '\0')
		return true;
	canonical_encoding(client_encoding, client, sizeof client);
	canonical_encoding(server_encoding, server, sizeof server);
	return strcmp(client, server) == 0 || strcmp(client, "sqlascii") == 0 ||
	       strcmp(server, "sqlascii") == 0;
}

int copy_check_encoding(const copy_opts_t *o, const char *client_encoding, char *err, size_t errlen)
{
	static const char *const client_only[] = {"sjis", "shiftjis2004", "big5", "gbk",
	                                          "uhc",  "gb18030",      "johab"};
	char client[64], data[64];

	canonical_encoding(client_encoding != NULL ? client_encoding : "", client, sizeof client);
	if (o->encoding != NULL) {
		canonical_encoding(o->encoding, data, sizeof data);
		if (strcmp(data, client) != 0) {
			set_err(err, errlen,
			        "COPY ... ENCODING '%s' is not supported by pgshard when "
			        "client_encoding is %s: rows are routed by their key bytes as "
			        "the client sends them; drop the ENCODING option and SET "
			        "client_encoding TO '%s' instead",
			        o->encoding, client_encoding != NULL ? client_encoding : "unknown",
			        o->encoding);
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof client_only / sizeof client_only[0]; i++) {
		if (strcmp(client, client_only[i]) == 0 && o->format != COPY_BINARY) {
			set_err(err, errlen,
			        "COPY FROM STDIN in client_encoding %s is not supported by "
			        "pgshard: its multibyte characters can contain the bytes of "
			        "'\\', newline or the delimiter; send the data in UTF8",
			        client_encoding);
			return -1;
		}
	}
	return 0;
}

/* ---- the table's columns ---- */

char *copy_columns_sql(const copy_opts_t *o)
{
	char *rel = route_quote_relation(o->schemaname, o->relname);
	char *sql = rel != NULL ? route_columns_sql(rel, true, false, false) : NULL;

	free(rel);
	return sql;
}
