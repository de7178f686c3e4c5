/*
 * extended.h — the extended protocol of a client session (extended.c).
 */
#ifndef PGSHARD_PROXY_EXTENDED_H
#define PGSHARD_PROXY_EXTENDED_H

#include "proxy/proxy.h"

int extended_on_parse(client_t *c, pbuf_t *in, size_t total);
int extended_on_bind(client_t *c, pbuf_t *in, size_t total);
int extended_on_describe_close(client_t *c, uint8_t type, pbuf_t *in, size_t total);
int extended_on_other(client_t *c, uint8_t type, pbuf_t *in, size_t total);
void extended_fan_portal_free(client_t *c);
/* A message leaves the current extended batch's shard: 0 go on, -1 refused, 1 wait, 2 skip. */
#define BATCH_ONE_SHARD                                                                            \
	"pgshard: outside a transaction block, the statements before one Sync are one implicit "   \
	"transaction and must run on one shard; send a Sync before a statement for another "       \
	"shard, or send the batch inside BEGIN ... COMMIT"
int extended_leave_batch(client_t *c, int shard);
int extended_left_batch(client_t *c, pbuf_t *in, size_t total, int rc, const char *why);

#endif
