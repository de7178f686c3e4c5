/*
 * fanout_state.c — the first error of a statement on several shards, kept
 * until its result ends: a shard's, or pgshard's own. Shared by fanout.c and
 * gather.c, below both of them.
 */
#include "proxy/fanout_state.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/wire.h"

/* A shard's ErrorResponse body, unless an error is kept already. */
void fanout_keep_error(fanout_t *f, const uint8_t *body, size_t len)
{
	if (f->error != NULL || f->failed)
		return;
	f->error = malloc(len);
	if (f->error != NULL) {
		memcpy(f->error, body, len);
		f->error_len = len;
	}
}

/* An error of the proxy's own, as the first error of the result. */
void fanout_own_error(fanout_t *f, const char *sqlstate, const char *msg)
{
	wire_buf_t b;

	if (f->error != NULL || f->failed)
		return;
	wire_buf_init(&b);
	wire_put_error(&b, "ERROR", sqlstate, msg);
	if (!b.failed)
		fanout_keep_error(f, b.data + 5, b.len - 5);
	wire_buf_free(&b);
}
