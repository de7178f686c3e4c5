/*
 * recovery.h — two-phase-commit recovery on the control thread: finishes
 * the prepared transactions a crashed pgshard left behind (recovery.c says
 * how, and why the result is all-or-nothing).
 */
#ifndef PGSHARD_RECOVERY_H
#define PGSHARD_RECOVERY_H

#include <stdint.h>
#include <time.h>

#include "proxy/proxy.h"

/* What recovery has done, for the admin console and metrics. */
typedef struct recovery_stats {
	uint64_t committed;   /* prepared transactions it committed (COMMIT PREPARED) */
	uint64_t rolled_back; /* prepared transactions it rolled back (ROLLBACK PREPARED) */
	int in_doubt;    /* older than recovery_grace and still prepared after the last round */
	uint64_t rounds; /* rounds finished */
	int shards_off;  /* primaries it cannot cover (conninfo without user) */
} recovery_stats_t;

/* One prepared transaction in doubt after the last round that listed its shard. */
typedef struct recovery_doubt {
	char gid[80];       /* TWOPHASE_GID_MAX */
	int shard;          /* where it is prepared (a gid prepared on two shards: two of these) */
	char db[64];        /* the database it was prepared in */
	time_t prepared_at; /* when it was prepared (wall clock, as the shard told its age) */
	char reason[256];   /* why recovery left it prepared */
} recovery_doubt_t;

/*
 * On the control thread's base, before its thread starts: recover on the
 * primaries of cfg every recovery_interval, the first round at once.
 * 0, or -1 when out of memory.
 */
int recovery_start(struct event_base *base, cfg_ref_t *cfg);
/* On the control thread: a reload (a round under way is dropped; the next one starts at once). */
void recovery_set_config(cfg_ref_t *cfg);
/* Once the control thread's loop has stopped: close everything. */
void recovery_stop(void);
/* A copy of the counts, from any thread. */
void recovery_stats(recovery_stats_t *out);
/*
 * A copy of the in-doubt list, from any thread: *out (free() it) gets the
 * entries, by shard. Their number, or -1 when out of memory.
 */
int recovery_doubts(recovery_doubt_t **out);

#endif
