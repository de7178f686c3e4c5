/*
 * txwatch.h — a worker's side of distributed deadlock detection
 * (txwatch.c): it publishes which of its clients' backends belong to which
 * distributed transaction (txmap.h), and ends a victim the detector
 * (deadlock.c) chose by cancelling its waiting statement, whose 57014 the
 * client then hears as 40P01.
 */
#ifndef PGSHARD_PROXY_TXWATCH_H
#define PGSHARD_PROXY_TXWATCH_H

#include "proxy/proxy.h"

/* On the janitor tick: publish the worker's distributed transactions into w->txbox. */
void txwatch_publish(worker_t *w);
/* w->txwatch_ev: the detector posted victims into w->txbox. */
void txwatch_victims_cb(evutil_socket_t fd, short what, void *arg);
/*
 * An ErrorResponse (its body) on its way to c: when c is a deadlock victim
 * and this is its statement's cancel (57014), put the fields of a 40P01
 * instead into b (a message the caller has begun) and return true; the mark
 * is then used up. Otherwise put nothing and return false.
 */
bool txwatch_deadlock_body(client_t *c, const uint8_t *body, size_t len, wire_buf_t *b);

#endif
