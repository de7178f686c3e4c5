/*
 * tx.c — a client's transaction: state, participants, the prefix a joining
 * shard replays, and the one decision about transaction control for both
 * protocols (see tx.h).
 */
#include "proxy/tx.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void tx_init(tx_t *t)
{
	memset(t, 0, sizeof(*t));
}

static void tx_reset(tx_t *t)
{
	free(t->prefix);
	t->prefix = NULL;
	t->n_parts = 0;
	t->state = TX_IDLE;
	t->implicit = false;
	t->began_ms = 0;
	t->dist_id = 0;
	t->dist_since_ms = 0;
	free(t->deadlock_detail);
	t->deadlock_detail = NULL;
}

void tx_free(tx_t *t)
{
	tx_reset(t);
	free(t->parts);
	tx_init(t);
}

bool tx_open(const tx_t *t)
{
	return t->state != TX_IDLE;
}

bool tx_failed(const tx_t *t)
{
	return t->state == TX_FAILED;
}

char tx_status(const tx_t *t)
{
	switch (t->state) {
	case TX_IDLE:
		return 'I';
	case TX_FAILED:
		return 'E';
	default:
		return 'T';
	}
}

static int tx_begin(tx_t *t, const char *sql)
{
	char *p = strdup(sql);
	struct timespec ts;

	if (p == NULL)
		return -1;
	tx_reset(t);
	t->prefix = p;
	t->state = TX_OPEN;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t->began_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return 0;
}

int tx_begin_implicit(tx_t *t)
{
	if (tx_begin(t, "BEGIN") < 0)
		return -1;
	t->implicit = true;
	return 0;
}

bool tx_implicit(const tx_t *t)
{
	return t->implicit;
}

/* A SAVEPOINT, RELEASE or ROLLBACK TO is replayed on shards that join later, in order. */
static int tx_append(tx_t *t, const char *sql)
{
	size_t a = t->prefix ? strlen(t->prefix) : 0, b = strlen(sql);
	char *p = realloc(t->prefix, a + b + 3);

	if (p == NULL)
		return -1;
	if (a > 0) {
		memcpy(p + a, ";\n", 2);
		a += 2;
	}
	memcpy(p + a, sql, b + 1);
	t->prefix = p;
	return 0;
}

/*
 * Why each case is what it is:
 * - BEGIN outside a block is answered at once; no shard sees it until the
 *   transaction touches one (most transactions touch one shard). BEGIN
 *   inside a block goes to a shard, which warns as PostgreSQL does.
 * - COMMIT or ROLLBACK of a block that touched no shard is answered; of a
 *   failed block it is a ROLLBACK, tagged so, as PostgreSQL does.
 *   Otherwise it runs where the transaction is: its one participant, or all
 *   of them at once.
 * - A savepoint statement joins the prefix and runs on every participant
 *   (none yet: answered).
 * - Anything else in a failed block is 25P02, like PostgreSQL.
 */
int tx_control(tx_t *t, route_txn_t txn, const char *sql, const char *savepoint_tag, int n_links,
               tx_decision_t *d)
{
	bool failed = tx_failed(t);

	d->action = TX_ROUTE;
	d->tag = NULL;
	d->sql = sql;
	d->as_rollback = false;
	d->two_phase = false;
	switch (txn) {
	case ROUTE_TXN_BEGIN:
		if (tx_open(t))
			break;
		if (tx_begin(t, sql) < 0)
			return -1;
		d->action = TX_ANSWER;
		d->tag = "BEGIN";
		return 0;
	case ROUTE_TXN_COMMIT:
	case ROUTE_TXN_ROLLBACK:
		if (!tx_open(t))
			break;
		if (txn == ROUTE_TXN_COMMIT && failed) {
			d->sql = "ROLLBACK";
			d->as_rollback = true;
		}
		if (n_links == 0) {
			d->action = TX_ANSWER;
			d->tag = txn == ROUTE_TXN_COMMIT && !failed ? "COMMIT" : "ROLLBACK";
			tx_reset(t);
			return 0;
		}
		d->action = n_links > 1 ? TX_ON_ALL : TX_ON_ONE;
		d->two_phase =
		    txn == ROUTE_TXN_COMMIT && !failed && n_links > 1 && tx_writers(t) > 1;
		return 0;
	case ROUTE_TXN_SAVEPOINT:
		if (!tx_open(t))
			break;
		if (tx_append(t, sql) < 0)
			return -1;
		if (n_links == 0) {
			d->action = TX_ANSWER;
			d->tag = savepoint_tag;
			return 0;
		}
		d->action = n_links > 1 ? TX_ON_ALL : TX_ON_ONE;
		return 0;
	default:
		break;
	}
	if (failed)
		d->action = TX_REJECTED;
	return 0;
}

static tx_participant_t *find(const tx_t *t, int shard)
{
	for (int i = 0; i < t->n_parts; i++)
		if (t->parts[i].shard == shard)
			return &t->parts[i];
	return NULL;
}

const tx_participant_t *tx_participant(const tx_t *t, int shard)
{
	return find(t, shard);
}

int tx_join(tx_t *t, int shard)
{
	if (find(t, shard) != NULL)
		return 0;
	if (t->n_parts == t->cap_parts) {
		int cap = t->cap_parts > 0 ? t->cap_parts * 2 : 4;
		tx_participant_t *p = realloc(t->parts, sizeof(*p) * (size_t)cap);

		if (p == NULL)
			return -1;
		t->parts = p;
		t->cap_parts = cap;
	}
	t->parts[t->n_parts].shard = shard;
	t->parts[t->n_parts].wrote = false;
	t->n_parts++;
	return 0;
}

void tx_note_write(tx_t *t, int shard)
{
	tx_participant_t *p = find(t, shard);

	if (p == NULL && tx_join(t, shard) == 0)
		p = find(t, shard);
	if (p != NULL)
		p->wrote = true;
}

bool tx_wrote(const tx_t *t, int shard)
{
	const tx_participant_t *p = find(t, shard);

	return p != NULL && p->wrote;
}

int tx_writers(const tx_t *t)
{
	int n = 0;

	for (int i = 0; i < t->n_parts; i++)
		n += t->parts[i].wrote;
	return n;
}

void tx_fail(tx_t *t)
{
	if (tx_open(t))
		t->state = TX_FAILED;
}

int tx_note_status(tx_t *t, char status)
{
	switch (status) {
	case 'I':
		tx_reset(t);
		return 0;
	case 'E':
	case 'T':
		if (!tx_open(t) && tx_begin(t, "BEGIN") < 0)
			return -1;
		t->state = status == 'E' ? TX_FAILED : TX_OPEN;
		return 0;
	default:
		return 0;
	}
}

int tx_decider(const tx_t *t)
{
	int d = -1;

	for (int i = 0; i < t->n_parts; i++)
		if (t->parts[i].wrote && (d < 0 || t->parts[i].shard < d))
			d = t->parts[i].shard;
	return d;
}

int tx_mark_deadlock(tx_t *t, const char *detail)
{
	char *d = strdup(detail);

	if (d == NULL)
		return -1;
	free(t->deadlock_detail);
	t->deadlock_detail = d;
	return 0;
}

char *tx_take_deadlock(tx_t *t)
{
	char *d = t->deadlock_detail;

	t->deadlock_detail = NULL;
	return d;
}
