/*
 * verify.c — read-only consistency checks: the connections to the shards'
 * primaries, the walk down the tree of a reference table's ranges, the
 * row-by-row merge of the shards' streams, and the placement scan of a
 * sharded table (see verify.h; the SQL is router/verify_sql.c's, the
 * decisions proxy/verify_rules.c's).
 *
 * Why hashed ranges and a walk. A reference table of millions of rows
 * cannot be brought into the proxy, nor sorted in it. Each shard instead
 * sums its rows' hashes per range of the key hash (level 1: 256 ranges),
 * which is one pass over the table with a hash aggregate and no sort, and
 * answers 256 small rows. Equal summaries mean equal rows (up to 128-bit
 * hash sums). Ranges that differ are split 256 ways at the next level, the
 * others never looked at again; once the differing ranges hold few rows
 * (--leaf-rows), their rows' keys and hashes are streamed from every shard
 * in one order and merged, naming each key that is missing, extra or
 * changed. Every level is a pass over the table on the shard (the hash is
 * not indexed), so the walk stops splitting as soon as fetching is cheaper.
 */
#include "proxy/verify.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/nodes.h"
#include "proxy/verify_rules.h"
#include "router/shardmap.h"
#include "router/verify_sql.h"

#define VERIFY_APPLICATION_NAME "pgshard verify"
#define VERIFY_TEXT_MAX         256 /* longest key text in a report line */

typedef struct verify {
	const cfg_t *cfg;
	const verify_opts_t *o;
	nodes_table_t *nodes;
	PGconn **conns; /* by shard */
	int n;
} verify_t;

/* One table under check: what every shard's catalog says of it. */
typedef struct vtable {
	const cfg_table_t *cfg;
	char *rel; /* schema-qualified, quoted */
	char *pk;  /* "t.col, ..." or NULL */
	int n_pk;
	char *key;     /* the key text expression */
	bool *present; /* by shard: the shard has the table */
	int n_present;
	int first;     /* the first shard that has it */
	int64_t found; /* differing or misplaced rows */
	int64_t rows;  /* rows looked at */
	int deepest;   /* reference tables: the deepest level of ranges asked for */
	int64_t fetched;
} vtable_t;

static void fail(const verify_t *v, const char *table, int shard, const char *what)
{
	size_t len = strlen(what);

	while (len > 0 && (what[len - 1] == '\n' || what[len - 1] == ' '))
		len--;
	if (shard >= 0)
		fprintf(v->o->err, "pgshard: %s: shard %d: %.*s\n", table, shard, (int)len, what);
	else
		fprintf(v->o->err, "pgshard: %s: %.*s\n", table, (int)len, what);
}

/*
 * Log in to shard s's primary in the database asked for: as the conninfo's
 * user, else as the health check's (the users file's first user).
 */
static int connect_shard(verify_t *v, int s)
{
	const node_t *n = nodes_primary(v->nodes, s);
	const char *db = v->o->dbname != NULL ? v->o->dbname : n->dbname;
	nodes_login_t l;
	PGresult *res;

	if (db == NULL) {
		fail(v, "connect", s, "the conninfo names no database: give --dbname");
		return -1;
	}
	if (n->user != NULL) {
		nodes_login_in(&l, n, db, VERIFY_APPLICATION_NAME, NULL);
	} else {
		nodes_login(&l, n, NODES_LOGIN_CHECK, VERIFY_APPLICATION_NAME, NULL);
		for (int k = 0; l.keys[k] != NULL; k++) {
			if (k > 0 && strcmp(l.keys[k], "dbname") == 0)
				l.vals[k] = db; /* the second dbname is a plain name */
		}
	}
	v->conns[s] = PQconnectdbParams(l.keys, l.vals, 1);
	if (v->conns[s] == NULL || PQstatus(v->conns[s]) != CONNECTION_OK) {
		fail(v, "connect", s,
		     v->conns[s] != NULL ? PQerrorMessage(v->conns[s]) : "out of memory");
		if (l.withheld_password)
			fail(v, "connect", s,
			     "the users file holds only a hash of the password, which libpq cannot "
			     "log in with (give the plain password there or in the conninfo)");
		return -1;
	}
	res = PQexec(v->conns[s], verify_sql_session);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fail(v, "connect", s, PQerrorMessage(v->conns[s]));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/*
 * Run sql on every shard in `on` (NULL: all) at once, and wait for each: its
 * one result in res[s] (NULL for the others). 0, or -1 after telling why.
 */
static int run_all(verify_t *v, const char *table, const char *sql, const bool *on, PGresult **res)
{
	int rc = 0;

	for (int s = 0; s < v->n; s++) {
		res[s] = NULL;
		if ((on == NULL || on[s]) && !PQsendQuery(v->conns[s], sql)) {
			fail(v, table, s, PQerrorMessage(v->conns[s]));
			return -1; /* the ones sent are drained by the next PQexec */
		}
	}
	for (int s = 0; s < v->n; s++) {
		PGresult *r;

		if (on != NULL && !on[s])
			continue;
		while ((r = PQgetResult(v->conns[s])) != NULL) {
			ExecStatusType st = PQresultStatus(r);

			if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && rc == 0) {
				fail(v, table, s, PQresultErrorMessage(r));
				rc = -1;
			}
			PQclear(res[s]);
			res[s] = r;
		}
	}
	if (rc < 0) {
		for (int s = 0; s < v->n; s++) {
			PQclear(res[s]);
			res[s] = NULL;
		}
	}
	return rc;
}

static int exec_all(verify_t *v, const char *table, const char *sql, const bool *on)
{
	PGresult *res[v->n];

	if (run_all(v, table, sql, on, res) < 0)
		return -1;
	for (int s = 0; s < v->n; s++)
		PQclear(res[s]);
	return 0;
}

static void vtable_free(vtable_t *t)
{
	free(t->rel);
	free(t->pk);
	free(t->key);
	free(t->present);
}

static void print_shard_list(FILE *f, const bool *in, int n, bool want)
{
	const char *sep = "";

	for (int s = 0; s < n; s++) {
		if (in[s] == want) {
			fprintf(f, "%s%d", sep, s);
			sep = ", ";
		}
	}
}

/*
 * What the shards' catalogs say of the table. -1: an error (told); 0:
 * checkable on the shards that have it (a shard that lacks it is a
 * difference, reported here); 1: not checkable (no shard has it, or the
 * shards disagree on its name or primary key; reported).
 */
static int describe(verify_t *v, vtable_t *t)
{
	PGresult *res[v->n];
	char *sql = verify_sql_table(t->cfg->name);
	int first = -1, rc = 0;

	t->present = calloc((size_t)v->n, sizeof(bool));
	if (sql == NULL || t->present == NULL) {
		free(sql);
		fail(v, t->cfg->name, -1, "out of memory");
		return -1;
	}
	rc = run_all(v, t->cfg->name, sql, NULL, res);
	free(sql);
	if (rc < 0)
		return -1;
	for (int s = 0; s < v->n; s++) {
		if (PQntuples(res[s]) != 1)
			continue;
		t->present[s] = true;
		t->n_present++;
		if (first < 0) {
			first = s;
			t->first = s;
			t->rel = strdup(PQgetvalue(res[s], 0, 0));
			t->pk = PQgetisnull(res[s], 0, 1) ? NULL : strdup(PQgetvalue(res[s], 0, 1));
			t->n_pk = t->pk != NULL ? atoi(PQgetvalue(res[s], 0, 2)) : 0;
		} else if (strcmp(PQgetvalue(res[s], 0, 0), PQgetvalue(res[first], 0, 0)) != 0 ||
		           strcmp(PQgetvalue(res[s], 0, 1), PQgetvalue(res[first], 0, 1)) != 0 ||
		           PQgetisnull(res[s], 0, 1) != PQgetisnull(res[first], 0, 1)) {
			fprintf(v->o->out,
			        "%s: shards %d and %d disagree on the table or its primary key: %s "
			        "(%s) "
			        "and %s (%s); not compared\n",
			        t->cfg->name, first, s, PQgetvalue(res[first], 0, 0),
			        PQgetvalue(res[first], 0, 1), PQgetvalue(res[s], 0, 0),
			        PQgetvalue(res[s], 0, 1));
			t->found++;
			rc = 1;
		}
	}
	for (int s = 0; s < v->n; s++)
		PQclear(res[s]);
	if (t->n_present == 0) {
		fprintf(v->o->out, "%s: no shard has this table; skipped\n", t->cfg->name);
		return 1;
	}
	if (t->n_present < v->n) {
		fprintf(v->o->out, "%s: table missing on shard%s ", t->cfg->name,
		        v->n - t->n_present == 1 ? "" : "s");
		print_shard_list(v->o->out, t->present, v->n, false);
		fprintf(v->o->out, " (present on ");
		print_shard_list(v->o->out, t->present, v->n, true);
		fprintf(v->o->out, ")\n");
		t->found++;
	}
	t->key = verify_sql_key_expr(t->pk, t->n_pk);
	if (t->rel == NULL || t->key == NULL) {
		fail(v, t->cfg->name, -1, "out of memory");
		return -1;
	}
	return rc;
}

/* ---- reference tables ---------------------------------------------------------------- */

/* One shard's stream of rows from the cursor: the FETCH result at hand and its next row. */
typedef struct stream {
	PGresult *res;
	int row, n;
	bool done;
} stream_t;

static int stream_head(verify_t *v, vtable_t *t, int s, stream_t *st)
{
	if (st->done || st->row < st->n)
		return 0;
	PQclear(st->res);
	st->res = PQexec(v->conns[s], verify_sql_fetch);
	if (PQresultStatus(st->res) != PGRES_TUPLES_OK) {
		fail(v, t->cfg->name, s, PQerrorMessage(v->conns[s]));
		return -1;
	}
	st->row = 0;
	st->n = PQntuples(st->res);
	st->done = st->n == 0;
	return 0;
}

/* Negative, zero or positive as shard a's head sorts before, with or after b's. */
static int head_cmp(const stream_t *a, const stream_t *b)
{
	long long ha = strtoll(PQgetvalue(a->res, a->row, 0), NULL, 10);
	long long hb = strtoll(PQgetvalue(b->res, b->row, 0), NULL, 10);

	if (ha != hb)
		return ha < hb ? -1 : 1;
	return strcmp(PQgetvalue(a->res, a->row, 1), PQgetvalue(b->res, b->row, 1));
}

/* Merge the shards' streams of the rows of the given ranges, and report the keys that differ. */
static int compare_rows(verify_t *v, vtable_t *t, int level, const int64_t *ranges, int n)
{
	char *sql = verify_sql_rows_cursor(t->rel, t->key, t->pk != NULL, level, ranges, n);
	stream_t st[v->n];
	verify_row_t rows[v->n];
	int rc = 0;

	memset(st, 0, sizeof(st));
	if (sql == NULL) {
		fail(v, t->cfg->name, -1, "out of memory");
		return -1;
	}
	rc = exec_all(v, t->cfg->name, sql, t->present);
	free(sql);
	for (int s = 0; s < v->n; s++)
		st[s].done = !t->present[s];
	while (rc == 0) {
		int min = -1, k = 0;
		char desc[512], key[VERIFY_TEXT_MAX];

		for (int s = 0; s < v->n && rc == 0; s++)
			rc = stream_head(v, t, s, &st[s]);
		if (rc < 0)
			break;
		for (int s = 0; s < v->n; s++) {
			if (!st[s].done && (min < 0 || head_cmp(&st[s], &st[min]) < 0))
				min = s;
		}
		if (min < 0)
			break;
		for (int s = 0; s < v->n; s++) {
			if (!t->present[s])
				continue;
			rows[k].shard = s;
			rows[k].present =
			    !st[s].done && (s == min || head_cmp(&st[s], &st[min]) == 0);
			rows[k].hash = rows[k].present ? PQgetvalue(st[s].res, st[s].row, 2) : "";
			rows[k].copies =
			    rows[k].present ? strtoll(PQgetvalue(st[s].res, st[s].row, 3), NULL, 10)
			                    : 0;
			k++;
		}
		t->fetched++;
		if (verify_row_describe(rows, k, desc, sizeof(desc))) {
			verify_escape(PQgetvalue(st[min].res, st[min].row, 1), key, sizeof(key));
			fprintf(v->o->out, "%s: %s %s: %s\n", t->cfg->name,
			        t->pk != NULL ? "key" : "row", key, desc);
			t->found++;
		}
		/* advance every shard that held this key; min last, the others compare with it */
		for (int i = 0; i < k; i++) {
			if (rows[i].present && rows[i].shard != min)
				st[rows[i].shard].row++;
		}
		st[min].row++;
	}
	for (int s = 0; s < v->n; s++)
		PQclear(st[s].res);
	if (rc == 0)
		rc = exec_all(v, t->cfg->name, verify_sql_close, t->present);
	return rc;
}

/*
 * The ranges of `level` under parents (everything at level 1): compare the
 * shards' summaries, then split or fetch the ones that differ.
 */
static int walk(verify_t *v, vtable_t *t, int level, const int64_t *parents, int n_parents)
{
	char *sql = verify_sql_level(t->rel, t->key, level, parents, n_parents);
	PGresult *res[v->n];
	verify_range_t *ranges[v->n];
	int n[v->n], total = 0, n_diff = 0, rc;
	int64_t *diff = NULL, rows = 0;

	if (sql == NULL) {
		fail(v, t->cfg->name, -1, "out of memory");
		return -1;
	}
	if (level > t->deepest)
		t->deepest = level;
	rc = run_all(v, t->cfg->name, sql, t->present, res);
	free(sql);
	if (rc < 0)
		return -1;
	for (int s = 0; s < v->n; s++) {
		n[s] = res[s] != NULL ? PQntuples(res[s]) : 0;
		total += n[s];
		ranges[s] = calloc((size_t)n[s] + 1, sizeof(verify_range_t));
		if (ranges[s] == NULL)
			rc = -1;
		for (int i = 0; i < n[s] && rc == 0; i++) {
			ranges[s][i].range = strtoll(PQgetvalue(res[s], i, 0), NULL, 10);
			ranges[s][i].count = strtoll(PQgetvalue(res[s], i, 1), NULL, 10);
			ranges[s][i].sum1 = PQgetvalue(res[s], i, 2);
			ranges[s][i].sum2 = PQgetvalue(res[s], i, 3);
			if (level == 1 && s == t->first)
				t->rows += ranges[s][i].count;
		}
	}
	diff = rc == 0 ? malloc(((size_t)total + 1) * sizeof(int64_t)) : NULL;
	if (diff == NULL) {
		rc = -1;
		fail(v, t->cfg->name, -1, "out of memory");
	} else {
		/* a shard without the table takes part as one without rows: it is reported already
		 */
		const verify_range_t *only[v->n];
		int n_only[v->n], k = 0;

		for (int s = 0; s < v->n; s++) {
			if (t->present[s]) {
				only[k] = ranges[s];
				n_only[k++] = n[s];
			}
		}
		n_diff = verify_ranges_diff(only, n_only, k, diff, &rows);
	}
	for (int s = 0; s < v->n; s++) {
		free(ranges[s]);
		PQclear(res[s]); /* one level at a time: the summaries go before the next */
	}
	if (rc == 0) {
		switch (verify_next(level, n_diff, rows, v->o->leaf_rows)) {
		case VERIFY_NEXT_DONE:
			break;
		case VERIFY_NEXT_FETCH:
			rc = compare_rows(v, t, level, diff, n_diff);
			break;
		case VERIFY_NEXT_SPLIT:
			rc = walk(v, t, level + 1, diff, n_diff);
			break;
		}
	}
	free(diff);
	return rc;
}

/* ---- sharded tables ------------------------------------------------------------------ */

static void print_key(FILE *f, const PGresult *res, int row)
{
	char key[VERIFY_TEXT_MAX];

	if (PQgetisnull(res, row, 0)) {
		fputs("NULL", f);
		return;
	}
	verify_escape(PQgetvalue(res, row, 0), key, sizeof(key));
	fputs(key, f);
}

/* Shard s's rows of table t whose key the map places elsewhere. */
static int check_placement_on(verify_t *v, vtable_t *t, const shard_map_t *map, int s)
{
	char *sql = verify_sql_placement_cursor(t->rel, t->cfg->key, map->cfg, s);
	bool on[v->n];
	stream_t st = {0};
	int rc;

	if (sql == NULL) {
		fail(v, t->cfg->name, -1, "out of memory");
		return -1;
	}
	memset(on, 0, sizeof(on));
	on[s] = true;
	rc = exec_all(v, t->cfg->name, sql, on);
	free(sql);
	while (rc == 0) {
		shard_key_t key;
		const char *why = NULL;
		int belongs = -1;

		rc = stream_head(v, t, s, &st);
		if (rc < 0 || st.done)
			break;
		if (map->cfg->kind == CFG_MAP_HASH)
			t->rows++; /* range maps: only the misplaced rows come back */
		if (PQgetisnull(st.res, st.row, 0)) {
			why = "a NULL key has no shard";
		} else if (shard_key_from_text(map->cfg->key, PQgetvalue(st.res, st.row, 0),
		                               (size_t)PQgetlength(st.res, st.row, 0), &key) < 0) {
			why = "not a valid key of the map";
		} else {
			belongs = shard_map_lookup(map, &key);
			if (belongs < 0)
				why = "no range of the map holds it";
		}
		if (why != NULL || belongs != s) {
			fprintf(v->o->out, "%s: key ", t->cfg->name);
			print_key(v->o->out, st.res, st.row);
			fprintf(v->o->out, ": on shard %d", s);
			if (why != NULL)
				fprintf(v->o->out, ", %s (map %s)\n", why, map->cfg->name);
			else
				fprintf(v->o->out, ", belongs on shard %d (map %s)\n", belongs,
				        map->cfg->name);
			t->found++;
		}
		st.row++;
	}
	PQclear(st.res);
	if (rc == 0)
		rc = exec_all(v, t->cfg->name, verify_sql_close, on);
	return rc;
}

static int check_placement(verify_t *v, vtable_t *t)
{
	const cfg_map_t *mc = &v->cfg->maps[t->cfg->map];
	shard_map_t map;
	char err[256];
	int rc = 0;

	if (shard_map_build(&map, mc, err, sizeof(err)) < 0) {
		fail(v, t->cfg->name, -1, err);
		return -1;
	}
	for (int s = 0; s < v->n && rc == 0; s++) {
		if (t->present[s])
			rc = check_placement_on(v, t, &map, s);
	}
	if (rc == 0 && mc->kind == CFG_MAP_RANGE) {
		/* the rows the pushed-down check let through were not counted: count them all */
		PGresult *res[v->n];
		char *sql = verify_sql_count(t->rel);

		rc = sql != NULL ? run_all(v, t->cfg->name, sql, t->present, res) : -1;
		free(sql);
		if (rc == 0) {
			t->rows = 0;
			for (int s = 0; s < v->n; s++) {
				if (res[s] != NULL)
					t->rows += strtoll(PQgetvalue(res[s], 0, 0), NULL, 10);
				PQclear(res[s]);
			}
		}
	}
	shard_map_free(&map);
	return rc;
}

/* ---- the run ------------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int check_table(verify_t *v, const cfg_table_t *ct)
{
	vtable_t t = {.cfg = ct};
	double start = now_s();
	int rc = exec_all(v, ct->name, verify_sql_begin, NULL);

	if (rc == 0)
		rc = describe(v, &t);
	if (rc == 0)
		rc = exec_all(v, ct->name, verify_sql_pin_path, NULL);
	if (rc == 0 && ct->reference)
		rc = walk(v, &t, 1, NULL, 0);
	else if (rc == 0)
		rc = check_placement(v, &t);
	if (rc == 0) {
		fprintf(v->o->out, "%s: ", ct->name);
		if (ct->reference)
			fprintf(v->o->out,
			        "reference table, %" PRId64
			        " rows on shard %d, %d level%s of ranges, "
			        "%" PRId64 " rows compared one by one",
			        t.rows, t.first, t.deepest, t.deepest == 1 ? "" : "s", t.fetched);
		else
			fprintf(v->o->out, "sharded by map %s, %" PRId64 " rows",
			        ct->map >= 0 ? v->cfg->maps[ct->map].name : "?", t.rows);
		fprintf(v->o->out, ": %" PRId64 " %s (%.1f s)\n", t.found,
		        ct->reference ? (t.found == 1 ? "difference" : "differences")
		                      : (t.found == 1 ? "row misplaced" : "rows misplaced"),
		        now_s() - start);
	}
	/* the transactions end whatever happened: a failed one ends with the same ROLLBACK */
	if (exec_all(v, ct->name, verify_sql_end, NULL) < 0)
		rc = -1;
	vtable_free(&t);
	if (rc < 0)
		return VERIFY_ERROR;
	return t.found > 0 ? VERIFY_DIFFERENT : VERIFY_CLEAN;
}

/* The tables to check, in config order: the named ones (each of the right kind), or all. */
static int pick_tables(const verify_t *v, const cfg_table_t **out)
{
	bool reference = v->o->kind == VERIFY_REFERENCE;
	int n = 0;

	if (v->o->n_tables == 0) {
		for (int i = 0; i < v->cfg->n_tables; i++) {
			if (v->cfg->tables[i].reference == reference)
				out[n++] = &v->cfg->tables[i];
		}
		return n;
	}
	for (int i = 0; i < v->o->n_tables; i++) {
		const cfg_table_t *t = cfg_find_table(v->cfg, v->o->tables[i]);

		if (t == NULL) {
			fail(v, v->o->tables[i], -1, "no such table in the config");
			return -1;
		}
		if (t->reference != reference) {
			fail(v, v->o->tables[i], -1,
			     reference ? "not a reference table (--check-placement checks it)"
			               : "not a sharded table (--check-reference checks it)");
			return -1;
		}
		out[n++] = t;
	}
	return n;
}

int verify_run(const cfg_t *cfg, const verify_opts_t *opts)
{
	verify_t v = {.cfg = cfg, .o = opts, .n = cfg->n_shards};
	const cfg_table_t **tables =
	    calloc((size_t)cfg->n_tables + (size_t)opts->n_tables + 1, sizeof(*tables));
	int n_tables, rc = VERIFY_CLEAN;

	v.nodes = nodes_table_new(cfg);
	v.conns = calloc((size_t)v.n, sizeof(PGconn *));
	if (tables == NULL || v.nodes == NULL || v.conns == NULL) {
		fail(&v, "verify", -1, "out of memory");
		rc = VERIFY_ERROR;
		goto out;
	}
	n_tables = pick_tables(&v, tables);
	if (n_tables < 0) {
		rc = VERIFY_ERROR;
		goto out;
	}
	for (int s = 0; s < v.n; s++) {
		if (connect_shard(&v, s) < 0) {
			rc = VERIFY_ERROR;
			goto out;
		}
	}
	for (int i = 0; i < n_tables; i++) {
		int t_rc = check_table(&v, tables[i]);

		fflush(opts->out);
		if (t_rc > rc)
			rc = t_rc;
		if (t_rc == VERIFY_ERROR)
			break;
	}
out:
	for (int s = 0; v.conns != NULL && s < v.n; s++)
		PQfinish(v.conns[s]);
	free(v.conns);
	if (v.nodes != NULL)
		nodes_table_put(v.nodes);
	free(tables);
	return rc;
}
