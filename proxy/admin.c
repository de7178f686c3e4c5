/*
 * admin.c — the admin console: a client of database `pgshard` whose user
 * the config names in admin_users talks to the proxy itself, over the
 * simple query protocol, as PgBouncer's `pgbouncer` database works:
 * SHOW SHARDS, POOLS, CLIENTS, SERVERS, STATS, LOAD, HOT KEYS, TABLES,
 * TRANSACTIONS, CONFIG, ROUTE <sql>, VERSION, STATE; RELOAD, PAUSE, RESUME
 * (lifecycle.c), SHUTDOWN. Results are one row per object, with plain
 * column names.
 *
 * What the workers own (clients, pools, servers, the counters in their
 * pools) is read on each worker's own thread: a SHOW of it is a job posted
 * to every worker (adminbox.c), each fills in its part, and the console's
 * worker puts the parts together when the last is in. The counters (SHOW
 * STATS, LOAD, HOT KEYS, TABLES) are gathered that way by figures.c, which
 * the metrics endpoint shares. What is not worker state (the config, the
 * nodes' health as control.c last published it) is read on the console's
 * own worker. The client is found again by its id when the answer comes
 * back, so a client that closes meanwhile leaves nothing dangling.
 */
#include "proxy/admin.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy/adminbox.h"
#include "proxy/admincmd.h"
#include "proxy/cancel.h"
#include "proxy/commit.h"
#include "proxy/context.h"
#include "proxy/figures.h"
#include "proxy/lifecycle.h"
#include "proxy/log.h"
#include "proxy/pool.h"
#include "proxy/recovery.h"
#include "proxy/routeshow.h"
#include "proxy/session.h"
#include "proxy/stats.h"
#include "proxy/tx.h"
#include "proxy/version.h"
#include "proxy/wire.h"
#include "proxy/worker.h"

#define OID_INT8    20
#define OID_TEXT    25
#define OID_NUMERIC 1700

/* ---- result sets ---- */

typedef struct column {
	const char *name;
	uint32_t type; /* OID_INT8 or OID_TEXT: psql aligns numbers right */
} column_t;

/* Rows of text cells (NULL: SQL NULL), ncols per row. */
typedef struct table {
	int ncols;
	char **cells;
	int nrows, cap;
	bool nomem;
} table_t;

static void table_free(table_t *t)
{
	for (int i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* One row: t->ncols strings (NULL for NULL), copied. */
static void table_add(table_t *t, const char *const *cells)
{
	if (t->nomem)
		return;
	if (t->nrows == t->cap) {
		int cap = t->cap ? t->cap * 2 : 16;
		char **a = realloc(t->cells, sizeof(*a) * (size_t)cap * (size_t)t->ncols);

		if (a == NULL) {
			t->nomem = true;
			return;
		}
		t->cells = a;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++) {
		char **cell = &t->cells[t->nrows * t->ncols + i];

		*cell = cells[i] != NULL ? strdup(cells[i]) : NULL;
		if (cells[i] != NULL && *cell == NULL)
			t->nomem = true;
	}
	t->nrows++;
}

static void put_columns(wire_buf_t *b, const column_t *cols, int n)
{
	wire_begin(b, 'T');
	wire_put_i16(b, (int16_t)n);
	for (int i = 0; i < n; i++) {
		wire_put_cstring(b, cols[i].name);
		wire_put_i32(b, 0); /* no table */
		wire_put_i16(b, 0);
		wire_put_i32(b, (int32_t)cols[i].type);
		wire_put_i16(b, cols[i].type == OID_INT8 ? 8 : -1);
		wire_put_i32(b, -1);
		wire_put_i16(b, 0); /* text format */
	}
	wire_end(b);
}

static void put_rows(wire_buf_t *b, const table_t *t)
{
	for (int r = 0; r < t->nrows; r++) {
		wire_begin(b, 'D');
		wire_put_i16(b, (int16_t)t->ncols);
		for (int i = 0; i < t->ncols; i++) {
			const char *v = t->cells[r * t->ncols + i];

			if (v == NULL) {
				wire_put_i32(b, -1);
			} else {
				wire_put_i32(b, (int32_t)strlen(v));
				wire_put_bytes(b, v, strlen(v));
			}
		}
		wire_end(b);
	}
}

static void put_tag(wire_buf_t *b, const char *tag)
{
	wire_begin(b, 'C');
	wire_put_cstring(b, tag);
	wire_end(b);
}

/* Send what b holds, then ReadyForQuery: the end of every answer. */
static void send_ready(client_t *c, wire_buf_t *b)
{
	wire_put_ready(b, 'I');
	if (b->failed) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	session_send_buf(c, b);
}

static void reply_table(client_t *c, const column_t *cols, const table_t *t)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	if (t->nomem) {
		wire_put_error(b, "ERROR", "53200", "pgshard: out of memory");
	} else {
		put_columns(b, cols, t->ncols);
		put_rows(b, t);
		put_tag(b, "SHOW");
	}
	send_ready(c, b);
}

static void reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(client_t *c, const char *sqlstate, const char *fmt, ...)
{
	wire_buf_t *b = &c->worker->scratch;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_INFO, c->id, 0, "admin console: ERROR %s: %s", sqlstate, msg);
	wire_buf_reset(b);
	wire_put_error(b, "ERROR", sqlstate, msg);
	send_ready(c, b);
}

static void reply_tag(client_t *c, const char *tag)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	put_tag(b, tag);
	send_ready(c, b);
}

/* ---- formatting cells ---- */

typedef struct cellbuf {
	char s[16][96];
	int n;
} cellbuf_t;

static const char *fmt_cell(cellbuf_t *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A cell formatted into one of cb's slots (a row has at most 16 columns). */
static const char *fmt_cell(cellbuf_t *cb, const char *fmt, ...)
{
	char *s = cb->s[cb->n++ % 16];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s, sizeof(cb->s[0]), fmt, ap);
	va_end(ap);
	return s;
}

static const char *fmt_u64(cellbuf_t *cb, uint64_t v)
{
	return fmt_cell(cb, "%llu", (unsigned long long)v);
}

static const char *fmt_time(cellbuf_t *cb, time_t t)
{
	char *s = cb->s[cb->n++ % 16];
	struct tm tm;

	if (t == 0 || localtime_r(&t, &tm) == NULL)
		return NULL;
	strftime(s, sizeof(cb->s[0]), "%Y-%m-%d %H:%M:%S", &tm);
	return s;
}

static const char *fmt_node(cellbuf_t *cb, const char *host, int port)
{
	return fmt_cell(cb, strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
}

/* ---- the jobs that every worker answers ---- */

typedef struct part {
	table_t rows;
} part_t;

typedef struct admin_job {
	adminbox_job_t box; /* first: the mailboxes handle jobs by it */
	admin_cmd_kind_t kind;
	uint64_t client_id; /* found again by id: it may have closed meanwhile */
	int n_parts;
	part_t parts[]; /* by worker index */
} admin_job_t;

static const column_t pools_cols[] = {
    {"worker", OID_INT8},    {"database", OID_TEXT},      {"user", OID_TEXT},
    {"shard", OID_INT8},     {"role", OID_TEXT},          {"node", OID_TEXT},
    {"cl_active", OID_INT8}, {"cl_waiting", OID_INT8},    {"sv_active", OID_INT8},
    {"sv_idle", OID_INT8},   {"sv_connecting", OID_INT8}, {"pool_size", OID_INT8},
};

static const column_t clients_cols[] = {
    {"worker", OID_INT8}, {"id", OID_INT8},     {"user", OID_TEXT},     {"database", OID_TEXT},
    {"state", OID_TEXT},  {"addr", OID_TEXT},   {"port", OID_INT8},     {"connect_time", OID_TEXT},
    {"tx", OID_TEXT},     {"shards", OID_TEXT}, {"bytes_in", OID_INT8}, {"bytes_out", OID_INT8},
};

static const column_t servers_cols[] = {
    {"worker", OID_INT8},    {"id", OID_INT8},          {"shard", OID_INT8}, {"role", OID_TEXT},
    {"node", OID_TEXT},      {"database", OID_TEXT},    {"user", OID_TEXT},  {"state", OID_TEXT},
    {"client", OID_INT8},    {"backend_pid", OID_INT8}, {"tx", OID_TEXT},    {"bytes_in", OID_INT8},
    {"bytes_out", OID_INT8},
};

static const column_t transactions_cols[] = {
    {"worker", OID_INT8},   {"client", OID_INT8},   {"user", OID_TEXT},
    {"database", OID_TEXT}, {"state", OID_TEXT},    {"shards", OID_TEXT},
    {"wrote", OID_TEXT},    {"implicit", OID_TEXT}, {"distributed_id", OID_INT8},
    {"gid", OID_TEXT},      {"age", OID_NUMERIC},   {"reason", OID_TEXT},
};
#define TRANSACTIONS_GID 9 /* the column of the gid */

static const column_t stats_cols[] = {
    {"shard", OID_INT8},      {"role", OID_TEXT},         {"node", OID_TEXT},
    {"statements", OID_INT8}, {"transactions", OID_INT8}, {"errors", OID_INT8},
    {"bytes_in", OID_INT8},   {"bytes_out", OID_INT8},    {"avg_us", OID_INT8},
    {"p99_us", OID_INT8},
};

#define NCOLS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *client_state_name(client_state_t s)
{
	static const char *const names[] = {"login", "idle", "waiting", "active", "closed"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static const char *server_state_name(server_state_t s)
{
	static const char *const names[] = {"connecting", "idle", "active", "closed"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static const char *tx_name(char status)
{
	return status == 'T' ? "in transaction" : status == 'E' ? "failed" : "idle";
}

/* "0, 2": the shards a client holds a server of. */
static const char *client_shards(cellbuf_t *cb, const client_t *c)
{
	char *s = cb->s[cb->n++ % 16];
	size_t used = 0;

	s[0] = '\0';
	for (int i = 0; i < c->links_cap && used < sizeof(cb->s[0]); i++) {
		if (c->links[i] != NULL) {
			int n = snprintf(s + used, sizeof(cb->s[0]) - used, "%s%d",
			                 used ? ", " : "", i);
			if (n < 0)
				break;
			used += (size_t)n;
		}
	}
	return s;
}

static void client_row(table_t *t, const worker_t *w, const client_t *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "";
	int port = 0;
	cellbuf_t cb = {.n = 0};

	if (c->sb.fd >= 0 && getpeername(c->sb.fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
			port = ntohs(in6->sin6_port);
		}
	}
	table_add(t,
	          (const char *const[]){
	              fmt_cell(&cb, "%d", w->index), fmt_u64(&cb, c->id), c->user, c->database,
	              client_state_name(c->state), addr[0] ? addr : NULL,
	              port ? fmt_cell(&cb, "%d", port) : NULL, fmt_time(&cb, c->accepted_at),
	              c->state == CL_LOGIN ? NULL : tx_name(tx_status(&c->tx)),
	              client_shards(&cb, c), fmt_u64(&cb, c->sb.n_in), fmt_u64(&cb, c->sb.n_out)});
}

static void fill_clients(worker_t *w, table_t *t)
{
	const client_t *c;
	const pool_t *p;

	TAILQ_FOREACH(c, &w->login_clients, link)
	client_row(t, w, c);
	TAILQ_FOREACH(c, &w->idle_clients, link)
	client_row(t, w, c);
	TAILQ_FOREACH(p, &w->pools, link)
	{
		TAILQ_FOREACH(c, &p->waiting, link)
		client_row(t, w, c);
		TAILQ_FOREACH(c, &p->active_clients, link)
		client_row(t, w, c);
	}
}

static void server_row(table_t *t, const worker_t *w, const pool_t *p, const server_t *s)
{
	cellbuf_t cb = {.n = 0};

	table_add(t, (const char *const[]){fmt_cell(&cb, "%d", w->index), fmt_u64(&cb, s->id),
	                                   fmt_cell(&cb, "%d", p->shard), nodes_role_name(p->role),
	                                   fmt_node(&cb, p->host, p->port), p->dbname, p->user,
	                                   server_state_name(s->state),
	                                   s->client != NULL ? fmt_u64(&cb, s->client->id) : NULL,
	                                   s->backend_pid ? fmt_cell(&cb, "%d", (int)s->backend_pid)
	                                                  : NULL,
	                                   s->state == SV_CONNECT ? NULL : tx_name(s->tx_status),
	                                   fmt_u64(&cb, s->sb.n_in), fmt_u64(&cb, s->sb.n_out)});
}

static void fill_servers(worker_t *w, table_t *t)
{
	const pool_t *p;
	const server_t *s;

	TAILQ_FOREACH(p, &w->pools, link)
	{
		TAILQ_FOREACH(s, &p->connecting, link)
		server_row(t, w, p, s);
		TAILQ_FOREACH(s, &p->idle, link)
		server_row(t, w, p, s);
		TAILQ_FOREACH(s, &p->active, link)
		server_row(t, w, p, s);
	}
}

static void fill_pools(worker_t *w, table_t *t)
{
	const pool_t *p;

	TAILQ_FOREACH(p, &w->pools, link)
	{
		cellbuf_t cb = {.n = 0};

		table_add(t, (const char *const[]){
		                 fmt_cell(&cb, "%d", w->index), p->dbname, p->user,
		                 fmt_cell(&cb, "%d", p->shard), nodes_role_name(p->role),
		                 fmt_node(&cb, p->host, p->port),
		                 fmt_cell(&cb, "%d", pool_count_clients(&p->active_clients)),
		                 fmt_cell(&cb, "%d", pool_count_clients(&p->waiting)),
		                 fmt_cell(&cb, "%d", pool_count_servers(&p->active)),
		                 fmt_cell(&cb, "%d", pool_count_servers(&p->idle)),
		                 fmt_cell(&cb, "%d", pool_count_servers(&p->connecting)),
		                 fmt_cell(&cb, "%d", p->max_servers)});
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "1, 2": the shards of x (all, or those it wrote on) into buf. */
static void shard_list(const tx_t *x, bool wrote_only, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < x->n_parts; i++) {
		int k;

		if (wrote_only && !x->parts[i].wrote)
			continue;
		k = snprintf(buf + n, size - n, "%s%d", n ? ", " : "", x->parts[i].shard);
		if (k > 0 && (size_t)k < size - n)
			n += (size_t)k;
	}
}

/* A client in a transaction, and where its commit is when it commits (commit.h). */
static void transaction_row(table_t *t, const worker_t *w, const client_t *c)
{
	const tx_t *x = &c->tx;
	char shards[96], wrote[96];
	const char *state = tx_failed(x) ? "failed" : "open";
	cellbuf_t cb = {.n = 0};

	if (!tx_open(x) && x->n_parts == 0)
		return;
	shard_list(x, false, shards, sizeof(shards));
	shard_list(x, true, wrote, sizeof(wrote));
	if (c->commit != NULL)
		state = commit_state_name(c->commit);
	table_add(
	    t,
	    (const char *const[]){
	        fmt_cell(&cb, "%d", w->index), fmt_u64(&cb, c->id), c->user, c->database, state,
	        shards, wrote, tx_implicit(x) ? "yes" : "no",
	        x->dist_id ? fmt_u64(&cb, x->dist_id) : NULL,
	        c->commit != NULL ? commit_gid(c->commit) : NULL,
	        x->began_ms ? fmt_cell(&cb, "%.3f", (double)(mono_ms() - x->began_ms) / 1e3) : NULL,
	        NULL});
}

static void fill_transactions(worker_t *w, table_t *t)
{
	const client_t *c;
	const pool_t *p;

	TAILQ_FOREACH(c, &w->idle_clients, link)
	transaction_row(t, w, c);
	TAILQ_FOREACH(p, &w->pools, link)
	{
		TAILQ_FOREACH(c, &p->waiting, link)
		transaction_row(t, w, c);
		TAILQ_FOREACH(c, &p->active_clients, link)
		transaction_row(t, w, c);
	}
}

static void fill_part(worker_t *w, adminbox_job_t *j)
{
	admin_job_t *job = (admin_job_t *)j;
	part_t *part = &job->parts[w->index];

	switch (job->kind) {
	case ADMIN_SHOW_POOLS:
		part->rows.ncols = NCOLS(pools_cols);
		fill_pools(w, &part->rows);
		break;
	case ADMIN_SHOW_CLIENTS:
		part->rows.ncols = NCOLS(clients_cols);
		fill_clients(w, &part->rows);
		break;
	case ADMIN_SHOW_SERVERS:
		part->rows.ncols = NCOLS(servers_cols);
		fill_servers(w, &part->rows);
		break;
	case ADMIN_SHOW_TRANSACTIONS:
		part->rows.ncols = NCOLS(transactions_cols);
		fill_transactions(w, &part->rows);
		break;
	default:
		break;
	}
}

static void job_free(adminbox_job_t *j)
{
	admin_job_t *job = (admin_job_t *)j;

	for (int i = 0; i < job->n_parts; i++)
		table_free(&job->parts[i].rows);
	free(job);
}

/* ---- answers put together ---- */

/* The parts' rows one after the other, worker by worker. */
static void reply_rows(client_t *c, admin_job_t *job, const column_t *cols, int ncols)
{
	table_t t = {.ncols = ncols};

	for (int i = 0; i < job->n_parts; i++) {
		const table_t *p = &job->parts[i].rows;

		t.nomem |= p->nomem;
		for (int r = 0; r < p->nrows && !t.nomem; r++)
			table_add(&t, (const char *const *)&p->cells[r * ncols]);
	}
	reply_table(c, cols, &t);
	table_free(&t);
}

static bool has_gid(const table_t *t, const char *gid)
{
	for (int r = 0; r < t->nrows; r++) {
		const char *g = t->cells[r * t->ncols + TRANSACTIONS_GID];

		if (g != NULL && strcmp(g, gid) == 0)
			return true;
	}
	return false;
}

/*
 * The clients' transactions, then what recovery left in doubt: one row per
 * gid, with every shard that holds it prepared. A gid a client here is
 * still committing is that client's row (recovery saw it only because the
 * commit takes longer than recovery_grace).
 */
static void reply_transactions(client_t *c, admin_job_t *job)
{
	int ncols = NCOLS(transactions_cols);
	table_t t = {.ncols = ncols};
	recovery_doubt_t *d = NULL;
	int n;
	time_t now = time(NULL);

	for (int i = 0; i < job->n_parts; i++) {
		const table_t *p = &job->parts[i].rows;

		t.nomem |= p->nomem;
		for (int r = 0; r < p->nrows && !t.nomem; r++)
			table_add(&t, (const char *const *)&p->cells[r * ncols]);
	}
	n = recovery_doubts(&d);
	if (n < 0)
		t.nomem = true;
	for (int i = 0; i < n && !t.nomem; i++) {
		char shards[96];
		size_t len = 0;
		time_t oldest = d[i].prepared_at;
		cellbuf_t cb = {.n = 0};

		if (has_gid(&t, d[i].gid))
			continue; /* a later shard of a gid listed already, or a client's own */
		for (int j = i; j < n; j++) {
			int k;

			if (strcmp(d[j].gid, d[i].gid) != 0)
				continue;
			k = snprintf(shards + len, sizeof(shards) - len, "%s%d", len ? ", " : "",
			             d[j].shard);
			if (k > 0 && (size_t)k < sizeof(shards) - len)
				len += (size_t)k;
			if (d[j].prepared_at < oldest)
				oldest = d[j].prepared_at;
		}
		table_add(&t, (const char *const[]){
		                  NULL, NULL, NULL, d[i].db, "in doubt", shards, shards, NULL, NULL,
		                  d[i].gid, fmt_cell(&cb, "%lld", (long long)(now - oldest)),
		                  d[i].reason});
	}
	free(d);
	reply_table(c, transactions_cols, &t);
	table_free(&t);
}

static client_t *find_console_client(worker_t *w, uint64_t id)
{
	client_t *c;

	TAILQ_FOREACH(c, &w->idle_clients, link)
	if (c->id == id)
		return c;
	return NULL;
}

/* On the console client's worker: every worker's part is in. */
static void deliver(worker_t *w, adminbox_job_t *j)
{
	admin_job_t *job = (admin_job_t *)j;
	client_t *c = find_console_client(w, job->client_id);

	if (c == NULL || c->closing)
		return; /* it left meanwhile */
	c->admin_busy = false;
	switch (job->kind) {
	case ADMIN_SHOW_POOLS:
		reply_rows(c, job, pools_cols, NCOLS(pools_cols));
		break;
	case ADMIN_SHOW_CLIENTS:
		reply_rows(c, job, clients_cols, NCOLS(clients_cols));
		break;
	case ADMIN_SHOW_SERVERS:
		reply_rows(c, job, servers_cols, NCOLS(servers_cols));
		break;
	case ADMIN_SHOW_TRANSACTIONS:
		reply_transactions(c, job);
		break;
	default:
		break;
	}
	if (!c->closing)
		session_resume(c); /* the messages that waited for this answer */
}

/* Ask every worker; the answer comes when the last one is done (deliver). */
static int ask_workers(client_t *c, admin_cmd_kind_t kind)
{
	int n = adminbox_workers();
	admin_job_t *job = calloc(1, sizeof(*job) + sizeof(part_t) * (size_t)n);

	if (job == NULL) {
		c->status = PX_NOMEM;
		return STEP_FAIL;
	}
	job->kind = kind;
	job->client_id = c->id;
	job->n_parts = n;
	c->admin_busy = true;
	adminbox_ask_all(&job->box, c->worker->index);
	return STEP_NEXT;
}

static const adminbox_ops_t job_ops = {
    .fill = fill_part,
    .deliver = deliver,
    .free = job_free,
};

int admin_init(int n_workers)
{
	return adminbox_init(n_workers, &job_ops);
}

/* ---- what the workers' figures answer (figures.c) ---- */

static const column_t hot_keys_cols[] = {
    {"table", OID_TEXT}, {"key", OID_TEXT},   {"shard", OID_INT8},
    {"count", OID_INT8}, {"error", OID_INT8}, {"share", OID_NUMERIC},
};

static const column_t tables_cols[] = {
    {"table", OID_TEXT},         {"shard", OID_INT8},    {"statements", OID_INT8},
    {"per_second", OID_NUMERIC}, {"share", OID_NUMERIC},
};

static void reply_stats(client_t *c, const figures_t *f)
{
	table_t t = {.ncols = NCOLS(stats_cols), .nomem = f->nomem};

	for (int k = 0; k < f->n_nodes; k++) {
		const figures_node_t *r = &f->nodes[k];
		cellbuf_t cb = {.n = 0};

		table_add(&t, (const char *const[]){
		                  fmt_cell(&cb, "%d", r->shard), nodes_role_name(r->role),
		                  fmt_node(&cb, r->host, r->port), fmt_u64(&cb, r->c.statements),
		                  fmt_u64(&cb, r->c.transactions), fmt_u64(&cb, r->c.errors),
		                  fmt_u64(&cb, r->c.bytes_in), fmt_u64(&cb, r->c.bytes_out),
		                  fmt_u64(&cb, stats_hist_avg(&r->c.latency)),
		                  fmt_u64(&cb, stats_hist_quantile(&r->c.latency, 0.99))});
	}
	reply_table(c, stats_cols, &t);
	table_free(&t);
}

/* part of whole in percent, two decimals; NULL when whole is 0 */
static const char *fmt_share(cellbuf_t *cb, uint64_t part, uint64_t whole)
{
	double pct;

	if (whole == 0)
		return NULL;
	pct = 100.0 * (double)part / (double)whole;
	return fmt_cell(cb, "%.2f", pct > 100.0 ? 100.0 : pct);
}

/*
 * The heaviest keys of late, largest first, with their share of their
 * shard's routed statements over the same (halved) window.
 */
static void reply_hot_keys(client_t *c, const figures_t *f)
{
	const hotkeys_sketch_t *s = &f->hot.sketch;
	table_t t = {.ncols = NCOLS(hot_keys_cols), .nomem = f->nomem};

	for (int i = 0; i < s->n; i++) {
		const hotkey_t *k = &s->items[i];
		uint64_t load =
		    k->shard >= 0 && k->shard < SHARD_MAX ? f->hot.shard_recent[k->shard] : 0;
		cellbuf_t cb = {.n = 0};

		table_add(&t, (const char *const[]){k->table, k->key, fmt_cell(&cb, "%d", k->shard),
		                                    fmt_u64(&cb, k->count), fmt_u64(&cb, k->error),
		                                    fmt_share(&cb, k->count, load)});
	}
	reply_table(c, hot_keys_cols, &t);
	table_free(&t);
}

static int table_row_cmp(const void *a, const void *b)
{
	const hotkeys_table_t *x = a, *y = b;
	int c = strcmp(x->table, y->table);

	return c != 0 ? c : (x->shard > y->shard) - (x->shard < y->shard);
}

/* Statements per table and shard, their rate since start and share of the shard's. */
static void reply_tables(client_t *c, const figures_t *f)
{
	hotkeys_table_t rows[HOTKEYS_TABLES];
	int n = f->hot.n_tables;
	uint64_t now = stats_now_us();
	double secs = f->hot.since_us != 0 && now > f->hot.since_us
	                  ? (double)(now - f->hot.since_us) / 1e6
	                  : 0;
	table_t t = {.ncols = NCOLS(tables_cols), .nomem = f->nomem};

	memcpy(rows, f->hot.tables, sizeof(rows[0]) * (size_t)n);
	qsort(rows, (size_t)n, sizeof(rows[0]), table_row_cmp);
	for (int i = 0; i < n; i++) {
		const hotkeys_table_t *r = &rows[i];
		cellbuf_t cb = {.n = 0};

		table_add(&t,
		          (const char *const[]){
		              r->table, fmt_cell(&cb, "%d", r->shard), fmt_u64(&cb, r->statements),
		              secs > 0 ? fmt_cell(&cb, "%.2f", (double)r->statements / secs) : NULL,
		              fmt_share(&cb, r->statements, f->hot.shard_statements[r->shard])});
	}
	reply_table(c, tables_cols, &t);
	table_free(&t);
}

static const column_t load_cols[] = {
    {"shard", OID_INT8},
    {"statements", OID_INT8},
    {"per_second", OID_NUMERIC},
    {"share", OID_NUMERIC},
};

/* Routed statements per shard since start, their rate, and each shard's part of them all. */
static void reply_load(client_t *c, const figures_t *f)
{
	const uint64_t *per = f->hot.shard_statements;
	uint64_t now = stats_now_us(), all = 0;
	double secs = f->hot.since_us != 0 && now > f->hot.since_us
	                  ? (double)(now - f->hot.since_us) / 1e6
	                  : 0;
	table_t t = {.ncols = NCOLS(load_cols), .nomem = f->nomem};

	for (int s = 0; s < SHARD_MAX; s++)
		all += per[s];
	for (int s = 0; s < SHARD_MAX; s++) {
		cellbuf_t cb = {.n = 0};

		if (per[s] == 0 && s >= context_cfg(c->worker)->n_shards)
			continue;
		table_add(&t, (const char *const[]){
		                  fmt_cell(&cb, "%d", s), fmt_u64(&cb, per[s]),
		                  secs > 0 ? fmt_cell(&cb, "%.2f", (double)per[s] / secs) : NULL,
		                  fmt_share(&cb, per[s], all)});
	}
	reply_table(c, load_cols, &t);
	table_free(&t);
}

static void figures_done(worker_t *w, const figures_t *f, uint64_t id, int what)
{
	client_t *c = find_console_client(w, id);

	if (c == NULL || c->closing)
		return; /* it left meanwhile */
	c->admin_busy = false;
	if (f == NULL)
		reply_error(c, "53200", "pgshard: out of memory");
	else if (what == ADMIN_SHOW_STATS)
		reply_stats(c, f);
	else if (what == ADMIN_SHOW_HOT_KEYS)
		reply_hot_keys(c, f);
	else if (what == ADMIN_SHOW_LOAD)
		reply_load(c, f);
	else
		reply_tables(c, f);
	if (!c->closing)
		session_resume(c); /* the messages that waited for this answer */
}

static int ask_figures(client_t *c, admin_cmd_kind_t kind)
{
	c->admin_busy = true;
	if (figures_gather(c->worker->index, figures_done, c->id, (int)kind) < 0) {
		c->admin_busy = false;
		c->status = PX_NOMEM;
		return STEP_FAIL;
	}
	return STEP_NEXT;
}

/* ---- what the console's own worker answers ---- */

static void show_shards(client_t *c)
{
	static const column_t cols[] = {
	    {"shard", OID_INT8},      {"role", OID_TEXT},       {"replica", OID_INT8},
	    {"node", OID_TEXT},       {"state", OID_TEXT},      {"in_recovery", OID_TEXT},
	    {"checked_at", OID_TEXT}, {"changed_at", OID_TEXT}, {"error", OID_TEXT},
	    {"wal_lsn", OID_TEXT},    {"lag_bytes", OID_INT8},  {"lag_ms", OID_INT8},
	};
	const nodes_view_t *v = c->worker->nodes;
	const nodes_table_t *nt = c->worker->cfg->nodes;
	table_t t = {.ncols = NCOLS(cols)};

	for (int i = 0; i < nt->n; i++) {
		const node_t *n = &nt->nodes[i];
		const node_state_t *st = nodes_view_state(v, n);
		cellbuf_t cb = {.n = 0};

		table_add(
		    &t,
		    (const char *const[]){
		        fmt_cell(&cb, "%d", n->shard), nodes_role_name(n->role),
		        n->replica >= 0 ? fmt_cell(&cb, "%d", n->replica) : NULL,
		        fmt_node(&cb, n->host, n->port),
		        nodes_health_name(st != NULL ? st->health : NODE_UNKNOWN),
		        st == NULL || st->in_recovery < 0 ? NULL
		        : st->in_recovery                 ? "yes"
		                                          : "no",
		        st != NULL ? fmt_time(&cb, (time_t)(st->checked_at_ms / 1000)) : NULL,
		        st != NULL ? fmt_time(&cb, (time_t)(st->changed_at_ms / 1000)) : NULL,
		        st != NULL && st->error[0] ? st->error : NULL,
		        st != NULL && st->lsn != 0
		            ? fmt_cell(&cb, "%X/%X", (unsigned)(st->lsn >> 32), (unsigned)st->lsn)
		            : NULL,
		        n->role == NODE_REPLICA && st != NULL && st->lag_bytes >= 0
		            ? fmt_cell(&cb, "%lld", (long long)st->lag_bytes)
		            : NULL,
		        n->role == NODE_REPLICA && st != NULL && st->lag_ms >= 0
		            ? fmt_cell(&cb, "%lld", (long long)st->lag_ms)
		            : NULL});
	}
	reply_table(c, cols, &t);
	table_free(&t);
}

static void show_config(client_t *c)
{
	static const column_t cols[] = {
	    {"section", OID_TEXT}, {"key", OID_TEXT}, {"value", OID_TEXT}};
	const cfg_t *cfg = context_cfg(c->worker);
	table_t t = {.ncols = NCOLS(cols)};
	const char *section, *name;
	char value[512];

	for (int i = 0; cfg_setting_show(cfg, i, &section, &name, value, sizeof(value)); i++)
		table_add(&t, (const char *const[]){section, name, value});
	reply_table(c, cols, &t);
	table_free(&t);
}

/* Two-phase-commit recovery's counts (recovery.c keeps them under its lock). */
static void show_recovery(client_t *c)
{
	static const column_t cols[] = {
	    {"committed", OID_INT8}, {"rolled_back", OID_INT8}, {"in_doubt", OID_INT8},
	    {"rounds", OID_INT8},    {"shards_off", OID_INT8},
	};
	table_t t = {.ncols = NCOLS(cols)};
	recovery_stats_t st;
	cellbuf_t cb = {.n = 0};

	recovery_stats(&st);
	table_add(&t,
	          (const char *const[]){fmt_u64(&cb, st.committed), fmt_u64(&cb, st.rolled_back),
	                                fmt_cell(&cb, "%d", st.in_doubt), fmt_u64(&cb, st.rounds),
	                                fmt_cell(&cb, "%d", st.shards_off)});
	reply_table(c, cols, &t);
	table_free(&t);
}

static void show_version(client_t *c)
{
	static const column_t cols[] = {{"version", OID_TEXT}};
	table_t t = {.ncols = 1};

	table_add(&t, (const char *const[]){"pgshard " PGSHARD_VERSION});
	reply_table(c, cols, &t);
	table_free(&t);
}

/* Running, pausing, paused or shutting down (lifecycle.c), and who waits. */
static void show_state(client_t *c)
{
	static const column_t cols[] = {
	    {"state", OID_TEXT}, {"busy", OID_INT8}, {"held", OID_INT8}};
	table_t t = {.ncols = NCOLS(cols)};
	lifecycle_state_t st;
	cellbuf_t cb = {.n = 0};

	lifecycle_state(&st);
	table_add(&t, (const char *const[]){st.state, fmt_cell(&cb, "%d", st.busy),
	                                    fmt_cell(&cb, "%d", st.held)});
	reply_table(c, cols, &t);
	table_free(&t);
}

/* What `pgshard --route` prints, a row per line: "label: text" as (item, value). */
static void show_route(client_t *c, const char *sql, size_t len)
{
	static const column_t cols[] = {{"item", OID_TEXT}, {"value", OID_TEXT}};
	table_t t = {.ncols = NCOLS(cols)};
	char *stmt = strndup(sql, len), *out = NULL, *line, *save = NULL;
	size_t out_len = 0;
	FILE *f = open_memstream(&out, &out_len);

	if (stmt == NULL || f == NULL) {
		t.nomem = true;
	} else {
		routeshow_print(f, context_cfg(c->worker), &stmt, 1);
		fclose(f);
		f = NULL;
		for (line = strtok_r(out, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char *colon = strchr(line, ':');
			char *value = colon != NULL ? colon + 1 : line;

			if (colon != NULL)
				*colon = '\0';
			while (*value == ' ')
				value++;
			table_add(&t, (const char *const[]){colon != NULL ? line : "", value});
		}
	}
	if (f != NULL)
		fclose(f);
	reply_table(c, cols, &t);
	table_free(&t);
	free(out);
	free(stmt);
}

/*
 * RELOAD and SHUTDOWN do what SIGHUP and SIGTERM do, by sending them: the
 * main thread owns the config swap and the shutdown, and its signal handler
 * is the one way in. RELOAD answers before the reload is done (as the
 * signal does); SHOW CONFIG shows when it is.
 */
static void signal_self(client_t *c, int sig, const char *tag)
{
	log_msg(LOG_INFO, c->id, 0, "admin console: %s by user %s", tag, c->user);
	reply_tag(c, tag);
	kill(getpid(), sig);
}

static int run_query(client_t *c, const char *sql)
{
	admin_cmd_t cmd;

	admincmd_parse(sql, &cmd);
	switch (cmd.kind) {
	case ADMIN_EMPTY: {
		wire_buf_t *b = &c->worker->scratch;

		wire_buf_reset(b);
		wire_put_empty(b, 'I');
		send_ready(c, b);
		return STEP_NEXT;
	}
	case ADMIN_SHOW_SHARDS:
		show_shards(c);
		return STEP_NEXT;
	case ADMIN_SHOW_CONFIG:
		show_config(c);
		return STEP_NEXT;
	case ADMIN_SHOW_VERSION:
		show_version(c);
		return STEP_NEXT;
	case ADMIN_SHOW_RECOVERY:
		show_recovery(c);
		return STEP_NEXT;
	case ADMIN_SHOW_ROUTE:
		show_route(c, cmd.arg, cmd.arg_len);
		return STEP_NEXT;
	case ADMIN_SHOW_STATE:
		show_state(c);
		return STEP_NEXT;
	case ADMIN_SHOW_POOLS:
	case ADMIN_SHOW_CLIENTS:
	case ADMIN_SHOW_SERVERS:
	case ADMIN_SHOW_TRANSACTIONS:
		return ask_workers(c, cmd.kind);
	case ADMIN_SHOW_STATS:
	case ADMIN_SHOW_HOT_KEYS:
	case ADMIN_SHOW_TABLES:
	case ADMIN_SHOW_LOAD:
		return ask_figures(c, cmd.kind);
	case ADMIN_RELOAD:
		signal_self(c, SIGHUP, "RELOAD");
		return STEP_NEXT;
	case ADMIN_SHUTDOWN:
		signal_self(c, SIGTERM, "SHUTDOWN");
		return STEP_NEXT;
	case ADMIN_PAUSE:
		return lifecycle_pause(c);
	case ADMIN_RESUME:
		return lifecycle_resume(c);
	case ADMIN_SHOW_UNKNOWN:
		reply_error(
		    c, "0A000",
		    "pgshard: unknown SHOW \"%.*s\" (the admin console shows SHARDS, POOLS, "
		    "CLIENTS, SERVERS, STATS, LOAD, HOT KEYS, TABLES, TRANSACTIONS, RECOVERY, "
		    "CONFIG, ROUTE <statement>, VERSION or STATE)",
		    (int)(cmd.word_len > 64 ? 64 : cmd.word_len), cmd.word);
		return STEP_NEXT;
	case ADMIN_UNKNOWN:
		reply_error(c, "0A000",
		            "pgshard: unknown admin console command \"%.*s\" (expected SHOW ..., "
		            "RELOAD, PAUSE, RESUME or SHUTDOWN)",
		            (int)(cmd.word_len > 64 ? 64 : cmd.word_len), cmd.word);
		return STEP_NEXT;
	}
	return STEP_NEXT;
}

/* ---- the session ---- */

void admin_login(client_t *c)
{
	static const char *const params[][2] = {
	    {"server_version", "16.0 (pgshard " PGSHARD_VERSION ")"},
	    {"server_encoding", "UTF8"},
	    {"client_encoding", "UTF8"},
	    {"DateStyle", "ISO, MDY"},
	    {"integer_datetimes", "on"},
	    {"standard_conforming_strings", "on"},
	    {"application_name", ""},
	};
	wire_buf_t *b = &c->worker->scratch;

	if (!cfg_is_admin(context_cfg(c->worker), c->user)) {
		log_msg(LOG_WARNING, c->id, 0, "admin console refused to user %s", c->user);
		session_fail(c, "FATAL", "42501",
		             "pgshard: permission denied for the admin console: user \"%s\" is not "
		             "in admin_users",
		             c->user);
		return;
	}
	c->admin = true;
	wire_buf_reset(b);
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		wire_put_parameter_status(b, params[i][0], params[i][1]);
	wire_put_backend_key(b, c->cancel_pid, c->cancel_key);
	wire_put_ready(b, 'I');
	session_send_buf(c, b);
	c->login_step = LOGIN_DONE;
	log_msg(LOG_INFO, c->id, 0, "admin console: user=%s", c->user);
	session_logged_in(c);
}

int admin_message(client_t *c, uint8_t type, pbuf_t *in, size_t total)
{
	const uint8_t *msg;
	const char *sql;
	int rc;

	if (c->admin_busy)
		return STEP_WAIT; /* the workers have not all answered the last one */
	switch (type) {
	case 'Q':
		msg = pbuf_pullup(in, (ev_ssize_t)total);
		if (msg == NULL) {
			c->status = PX_NOMEM;
			return STEP_FAIL;
		}
		if (wire_parse_query(msg + WIRE_HEADER_LEN, total - WIRE_HEADER_LEN, &sql) < 0) {
			pbuf_drain(in, total);
			session_protocol_violation(c, "invalid Query message");
			return STEP_WAIT;
		}
		c->skip_until_sync = false;
		rc = run_query(c, sql);
		pbuf_drain(in, total);
		return rc;
	case 'S':
		pbuf_drain(in, total);
		c->skip_until_sync = false;
		{
			wire_buf_t *b = &c->worker->scratch;

			wire_buf_reset(b);
			send_ready(c, b);
		}
		return STEP_NEXT;
	case 'F': {
		/* a FunctionCall is answered on its own, as a Query is */
		wire_buf_t *b = &c->worker->scratch;

		pbuf_drain(in, total);
		wire_buf_reset(b);
		wire_put_error(b, "ERROR", "0A000",
		               "pgshard: the admin console has no functions to call");
		send_ready(c, b);
		return STEP_NEXT;
	}
	case 'H':
	case 'd':
	case 'c':
	case 'f':
		pbuf_drain(in, total);
		return STEP_NEXT;
	default:
		/* Parse, Bind, Describe, Execute, Close, FunctionCall: one error per batch */
		pbuf_drain(in, total);
		if (!c->skip_until_sync) {
			wire_buf_t *b = &c->worker->scratch;

			wire_buf_reset(b);
			wire_put_error(b, "ERROR", "0A000",
			               "pgshard: the admin console speaks only the simple query "
			               "protocol (use psql, or your driver's simple query mode)");
			if (!b->failed)
				session_send_buf(c, b);
			c->skip_until_sync = true;
		}
		return STEP_NEXT;
	}
}
