/*
 * pending.h — the pending queue of a linked client/server pair (pending.c;
 * the queue and its entries are in proxy.h).
 */
#ifndef PGSHARD_PROXY_PENDING_H
#define PGSHARD_PROXY_PENDING_H

#include "proxy/proxy.h"

int pending_push(pending_queue_t *q, uint8_t msg, pending_action_t action, uint8_t reply,
                 ps_entry_t *ps, char *str);
/* The oldest entry, NULL when none (inline: the relay asks for every message). */
static inline pending_t *pending_head(pending_queue_t *q)
{
	return q->count ? &q->items[q->head] : NULL;
}

/* The entry i places behind the head (0: the head); NULL past the last. */
const pending_t *pending_nth(const pending_queue_t *q, uint32_t i);
void pending_pop(pending_queue_t *q);
void pending_clear(pending_queue_t *q);

#endif
