/*
 * pending.c — the pending queue of a linked client/server pair (see
 * proxy.h): a ring buffer of the messages sent to a server that it will
 * answer, in order. Pure; tested in proxy/tests/test_pending.c.
 */
#include "proxy/pending.h"

#include <stdlib.h>

#include "proxy/stats.h"

int pending_push(pending_queue_t *q, uint8_t msg, pending_action_t action, uint8_t reply,
                 ps_entry_t *ps, char *str)
{
	pending_t *p;

	if (q->count == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 16;
		pending_t *items = malloc(sizeof(*items) * cap);

		if (items == NULL)
			return -1;
		for (uint32_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->cap = cap;
		q->head = 0;
	}
	p = &q->items[(q->head + q->count) % q->cap];
	p->msg = msg;
	p->action = (uint8_t)action;
	p->reply = reply;
	p->ps = ps;
	p->str = str;
	q->count++;
	/* a statement's latency counts from the first message the server will answer */
	if (q->started_us == 0 && action != PEND_SYNTHESIZE)
		q->started_us = stats_now_us();
	return 0;
}

const pending_t *pending_nth(const pending_queue_t *q, uint32_t i)
{
	return i < q->count ? &q->items[(q->head + i) % q->cap] : NULL;
}

void pending_pop(pending_queue_t *q)
{
	if (q->count == 0)
		return;
	free(q->items[q->head].str);
	q->head = (q->head + 1) % q->cap;
	q->count--;
}

void pending_clear(pending_queue_t *q)
{
	while (q->count)
		pending_pop(q);
	q->started_us = 0; /* what was under way is not answered: no latency to count */
}
