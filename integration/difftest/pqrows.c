/*
 * pqrows: runs the queries of a file through libpq and prints every result in a canonical,
 * diffable form, so that two servers' answers (plain PostgreSQL and pgshard) can be compared
 * query by query by integration/tests/test_gather.py.
 *
 *   pqrows MODE CONNINFO QUERYFILE
 *
 * MODE: simple  PQsendQuery (simple protocol, text results)
 *       text    PQsendQueryParams, no parameters, text results (extended protocol)
 *       binary  PQsendQueryParams, no parameters, binary results (extended protocol)
 *
 * QUERYFILE: queries end at a line whose last non-blank character is ';' (the ';' is not
 * sent; a literal may not end a line with ';'). Lines whose first non-blank characters are
 * "--" are left out, so annotations never reach the server. Blank text between queries is
 * ignored. A line "--$ V1 | V2 | ..." gives the next query its parameters $1, $2, ...:
 * text values, types left to the server (\N is NULL), sent with PQsendQueryParams in the
 * text and binary modes; the simple mode prints "skipped (parameters)" for such a query.
 *
 * Output, per query (N counts from 1, in file order):
 *   === query N
 *   columns K
 *   column "name" OID
 *   row F1 F2 ...          one line per row; a field is NULL, "text" or x"hex"
 *   tag SELECT 5           the command tag
 * or, for a query that failed:
 *   error SQLSTATE "message"
 * A query whose text gives several results prints each in turn. Text is written between
 * double quotes with '"', '\' and bytes below 0x20 or 0x7f escaped (\" \\ \xHH); other bytes,
 * UTF-8 included, as they are. A lost connection prints "error 08006 ..." and is reset.
 * Exit status: 0 when every query was sent (failed queries included), 1 on a usage, file or
 * connection error, before any query ran.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mode { MODE_SIMPLE, MODE_TEXT, MODE_BINARY };

static void put_text(const char *s, size_t len)
{
	size_t i;

	putchar('"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void put_hex(const char *s, size_t len)
{
	size_t i;

	fputs("x\"", stdout);
	for (i = 0; i < len; i++)
		printf("%02x", (unsigned char)s[i]);
	putchar('"');
}

static void print_result(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	int ncols, nrows, r, c;

	if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (text == NULL)
			text = PQresultErrorMessage(res);
		printf("error %s ", state != NULL ? state : "-----");
		put_text(text, strlen(text));
		putchar('\n');
		return;
	}
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		printf("status %s\n", PQresStatus(st));
		return;
	}
	ncols = PQnfields(res);
	nrows = PQntuples(res);
	if (st == PGRES_TUPLES_OK) {
		printf("columns %d\n", ncols);
		for (c = 0; c < ncols; c++) {
			const char *name = PQfname(res, c);

			fputs("column ", stdout);
			put_text(name, strlen(name));
			printf(" %u\n", PQftype(res, c));
		}
		for (r = 0; r < nrows; r++) {
			fputs("row", stdout);
			for (c = 0; c < ncols; c++) {
				putchar(' ');
				if (PQgetisnull(res, r, c))
					fputs("NULL", stdout);
				else if (PQfformat(res, c) == 1)
					put_hex(PQgetvalue(res, r, c),
					        (size_t)PQgetlength(res, r, c));
				else
					put_text(PQgetvalue(res, r, c),
					         (size_t)PQgetlength(res, r, c));
			}
			putchar('\n');
		}
	}
	printf("tag %s\n", PQcmdStatus((PGresult *)res));
}

#define MAX_PARAMS 16

/* The parameters of the next query ("--$" line), or none. */
static char *params[MAX_PARAMS];
static int n_params;

static void set_params(const char *p, const char *end)
{
	while (n_params > 0)
		free(params[--n_params]);
	while (p < end && n_params < MAX_PARAMS) {
		const char *bar = memchr(p, '|', (size_t)(end - p)),
		           *stop = bar != NULL ? bar : end;
		const char *a = p, *b = stop;

		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		params[n_params++] = strndup(a, (size_t)(b - a));
		p = bar != NULL ? bar + 1 : end;
	}
}

static void run_query(PGconn *conn, enum mode mode, int n, const char *sql)
{
	const char *values[MAX_PARAMS];
	PGresult *res;
	int sent;

	printf("=== query %d\n", n);
	for (int i = 0; i < n_params; i++)
		values[i] = strcmp(params[i], "\\N") == 0 ? NULL : params[i];
	if (mode == MODE_SIMPLE && n_params > 0) {
		printf("skipped (parameters)\n");
		set_params(NULL, NULL);
		return;
	}
	if (mode == MODE_SIMPLE)
		sent = PQsendQuery(conn, sql);
	else
		sent = PQsendQueryParams(conn, sql, n_params, NULL, values, NULL, NULL,
		                         mode == MODE_BINARY ? 1 : 0);
	set_params(NULL, NULL);
	if (!sent) {
		const char *text = PQerrorMessage(conn);

		fputs("error 08006 ", stdout);
		put_text(text, strlen(text));
		putchar('\n');
	} else {
		while ((res = PQgetResult(conn)) != NULL) {
			print_result(res);
			PQclear(res);
		}
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		const char *text = PQerrorMessage(conn);

		fputs("error 08006 ", stdout);
		put_text(text, strlen(text));
		putchar('\n');
		PQreset(conn);
	}
	fflush(stdout);
}

/* Reads the whole file; NULL on failure. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, got;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			char *more = realloc(buf, cap + 65536);

			if (more == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = more;
			cap += 65536;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		if (got == 0)
			break;
		len += got;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	enum mode mode;
	PGconn *conn;
	char *text, *line, *next, *query;
	size_t qlen = 0;
	int n = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: pqrows simple|text|binary CONNINFO QUERYFILE\n");
		return 1;
	}
	if (strcmp(argv[1], "simple") == 0)
		mode = MODE_SIMPLE;
	else if (strcmp(argv[1], "text") == 0)
		mode = MODE_TEXT;
	else if (strcmp(argv[1], "binary") == 0)
		mode = MODE_BINARY;
	else {
		fprintf(stderr, "pqrows: unknown mode %s\n", argv[1]);
		return 1;
	}
	text = read_file(argv[3]);
	if (text == NULL) {
		fprintf(stderr, "pqrows: cannot read %s\n", argv[3]);
		return 1;
	}
	query = malloc(strlen(text) + 1);
	if (query == NULL)
		return 1;
	conn = PQconnectdb(argv[2]);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "pqrows: %s", PQerrorMessage(conn));
		return 1;
	}

	for (line = text; *line != '\0'; line = next) {
		char *end = strchr(line, '\n'), *p = line, *last;

		next = end != NULL ? end + 1 : line + strlen(line);
		if (end == NULL)
			end = next;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (end - p >= 3 && p[0] == '-' && p[1] == '-' && p[2] == '$')
			set_params(p + 3, end);
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			continue;
		last = end;
		while (last > p && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r'))
			last--;
		if (qlen == 0 && last == p)
			continue; /* blank line between queries */
		if (last > p && last[-1] == ';') {
			memcpy(query + qlen, line, (size_t)(last - 1 - line));
			qlen += (size_t)(last - 1 - line);
			query[qlen] = '\0';
			run_query(conn, mode, ++n, query);
			qlen = 0;
			continue;
		}
		memcpy(query + qlen, line, (size_t)(next - line));
		qlen += (size_t)(next - line);
	}
	if (qlen > 0) {
		query[qlen] = '\0';
		run_query(conn, mode, ++n, query);
	}
	PQfinish(conn);
	free(query);
	free(text);
	return 0;
}
