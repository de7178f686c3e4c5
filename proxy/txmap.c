/*
 * txmap.c — snapshots of distributed transactions and their backends, and
 * the worker's mailbox to and from the deadlock detector (see txmap.h).
 */
#include "proxy/txmap.h"

#include <stdlib.h>
#include <string.h>

void txmap_init(txmap_t *m)
{
	memset(m, 0, sizeof(*m));
}

void txmap_free(txmap_t *m)
{
	free(m->txs);
	free(m->links);
	free(m->index);
	txmap_init(m);
}

void txmap_clear(txmap_t *m)
{
	m->n_txs = m->n_links = 0;
	free(m->index);
	m->index = NULL;
	m->n_index = 0;
}

static int grow(void **v, int *cap, int need, size_t size)
{
	int cap2;
	void *p;

	if (need <= *cap)
		return 0;
	cap2 = *cap > 0 ? *cap : 8;
	while (cap2 < need)
		cap2 *= 2;
	p = realloc(*v, (size_t)cap2 * size);
	if (p == NULL)
		return -1;
	*v = p;
	*cap = cap2;
	return 0;
}

int txmap_add(txmap_t *m, const txmap_tx_t *tx, const txmap_link_t *links, int n_links)
{
	if (grow((void **)&m->txs, &m->cap_txs, m->n_txs + 1, sizeof(*m->txs)) < 0 ||
	    grow((void **)&m->links, &m->cap_links, m->n_links + n_links, sizeof(*m->links)) < 0)
		return -1;
	m->txs[m->n_txs] = *tx;
	m->txs[m->n_txs].first = m->n_links;
	m->txs[m->n_txs].n = n_links;
	m->n_txs++;
	if (n_links > 0)
		memcpy(m->links + m->n_links, links, (size_t)n_links * sizeof(*links));
	m->n_links += n_links;
	return 0;
}

int txmap_append(txmap_t *dst, const txmap_t *src)
{
	for (int i = 0; i < src->n_txs; i++)
		if (txmap_add(dst, &src->txs[i], src->links + src->txs[i].first, src->txs[i].n) < 0)
			return -1;
	return 0;
}

int txmap_key_cmp(const void *a, const void *b)
{
	const txmap_key_t *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return 0;
}

int txmap_index(txmap_t *m)
{
	int k = 0;

	free(m->index);
	m->n_index = 0;
	m->index = malloc((size_t)(m->n_links > 0 ? m->n_links : 1) * sizeof(*m->index));
	if (m->index == NULL)
		return -1;
	for (int i = 0; i < m->n_txs; i++)
		for (int j = 0; j < m->txs[i].n; j++) {
			const txmap_link_t *l = &m->links[m->txs[i].first + j];

			m->index[k].shard = l->shard;
			m->index[k].pid = l->pid;
			m->index[k++].tx = i;
		}
	qsort(m->index, (size_t)k, sizeof(*m->index), txmap_key_cmp);
	m->n_index = k;
	return 0;
}

int txmap_find(const txmap_t *m, int shard, int32_t pid)
{
	txmap_key_t key = {shard, pid, -1};
	const txmap_key_t *hit;

	if (m->index == NULL)
		return -1;
	hit = bsearch(&key, m->index, (size_t)m->n_index, sizeof(key), txmap_key_cmp);
	return hit != NULL ? hit->tx : -1;
}

const txmap_link_t *txmap_links(const txmap_t *m, int tx)
{
	return m->links + m->txs[tx].first;
}

/* ---- the mailbox ---- */

void txmap_box_init(txmap_box_t *b)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->lock, NULL);
	txmap_init(&b->snap);
}

void txmap_box_destroy(txmap_box_t *b)
{
	txmap_free(&b->snap);
	pthread_mutex_destroy(&b->lock);
}

void txmap_box_publish(txmap_box_t *b, txmap_t *snap)
{
	txmap_t old;

	pthread_mutex_lock(&b->lock);
	old = b->snap;
	b->snap = *snap;
	pthread_mutex_unlock(&b->lock);
	*snap = old;
	txmap_clear(snap);
}

int txmap_box_read(txmap_box_t *b, txmap_t *into)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = txmap_append(into, &b->snap);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

bool txmap_box_post(txmap_box_t *b, const txmap_victim_t *v)
{
	bool ok;

	pthread_mutex_lock(&b->lock);
	ok = b->n_inbox < TXMAP_INBOX_MAX;
	if (ok)
		b->inbox[b->n_inbox++] = *v;
	pthread_mutex_unlock(&b->lock);
	return ok;
}

int txmap_box_take(txmap_box_t *b, txmap_victim_t *out, int max)
{
	int n;

	pthread_mutex_lock(&b->lock);
	n = b->n_inbox < max ? b->n_inbox : max;
	memcpy(out, b->inbox, (size_t)n * sizeof(*out));
	memmove(b->inbox, b->inbox + n, (size_t)(b->n_inbox - n) * sizeof(*out));
	b->n_inbox -= n;
	pthread_mutex_unlock(&b->lock);
	return n;
}
