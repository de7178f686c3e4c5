/*
 * cancelkey.h — the process id pgshard makes up for a client's
 * BackendKeyData, and which worker it names.
 *
 * A CancelRequest arrives on a connection of its own, which the kernel may
 * give to any worker. So that no table has to be shared (and locked) by all
 * workers, the pid itself says which worker owns the session: its low
 * CANCEL_WORKER_BITS bits are the worker's index, the bits above a serial
 * number that worker hands out. The pid is always positive, as a real one
 * is (some clients check). Only the owner's own table, on its own thread,
 * maps the pid to the session; the secret key is checked there.
 *
 * Pure; unit tested in proxy/tests/test_nodes.c.
 */
#ifndef PGSHARD_CANCELKEY_H
#define PGSHARD_CANCELKEY_H

#include <stdint.h>

#define CANCEL_WORKER_BITS 8 /* up to 256 workers; the config allows 64 */
#define CANCEL_MAX_WORKERS (1 << CANCEL_WORKER_BITS)
/* serials 1..CANCEL_SERIAL_MAX: the pid stays within 31 bits and is never 0 */
#define CANCEL_SERIAL_MAX ((UINT32_C(1) << (31 - CANCEL_WORKER_BITS)) - 1)

/* The pid of worker `worker`'s session number `serial` (any value; it wraps). */
static inline int32_t cancel_pid_make(int worker, uint32_t serial)
{
	uint32_t s = serial % CANCEL_SERIAL_MAX + 1;

	return (int32_t)((s << CANCEL_WORKER_BITS) | ((uint32_t)worker & (CANCEL_MAX_WORKERS - 1)));
}

/* The worker a pid names, or -1 for one pgshard never hands out. */
static inline int cancel_pid_worker(int32_t pid)
{
	if (pid < (int32_t)CANCEL_MAX_WORKERS)
		return -1;
	return (int)((uint32_t)pid & (CANCEL_MAX_WORKERS - 1));
}

#endif
