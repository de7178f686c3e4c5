/*
 * recovery_rules.c — the decisions of two-phase-commit recovery, apart from
 * its I/O (see recovery_rules.h, and recovery.c for the protocol).
 */
#include "proxy/recovery_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/twophase.h"

recovery_verdict_t recovery_verdict(const char *sqlstate, int rows, const char *committed)
{
	if (sqlstate != NULL)
		return strcmp(sqlstate, "55P03") == 0 ? RECOVERY_WAIT : RECOVERY_UNKNOWN;
	/* after the tombstone, a row is always there: the record, or a tombstone */
	if (rows != 1 || committed == NULL)
		return RECOVERY_UNKNOWN;
	if (strcmp(committed, "t") == 0)
		return RECOVERY_COMMIT;
	if (strcmp(committed, "f") == 0)
		return RECOVERY_ROLLBACK;
	return RECOVERY_UNKNOWN;
}

recovery_finish_t recovery_finish(const char *sqlstate)
{
	if (sqlstate == NULL)
		return RECOVERY_FINISHED;
	if (strcmp(sqlstate, "42704") == 0)
		return RECOVERY_GONE;
	if (strcmp(sqlstate, "55000") == 0)
		return RECOVERY_BUSY;
	return RECOVERY_FAILED;
}

bool recovery_due(long long age_s, int grace_ms)
{
	return age_s >= 0 && age_s * 1000 >= grace_ms;
}

int recovery_decider(const char *gid, int n_shards)
{
	int d = twophase_gid_decider(gid);

	return d >= 0 && d < n_shards ? d : -1;
}

const char *recovery_decider_db(const char *holder_dbname, const char *decider_dbname,
                                const char *prepared_db)
{
	if (holder_dbname != NULL && strcmp(holder_dbname, prepared_db) != 0)
		return NULL;
	if (decider_dbname != NULL)
		return decider_dbname;
	return holder_dbname == NULL ? prepared_db : NULL;
}

bool recovery_may_clean(int n_primaries, int n_listed, int64_t round_ms)
{
	return n_primaries > 0 && n_listed == n_primaries && round_ms >= 0 &&
	       round_ms <= RECOVERY_CLEAN_MAX_ROUND_MS;
}

const char *recovery_next_clean_db(const char *const *names, int n, const char *last)
{
	const char *first = NULL, *next = NULL;

	for (int i = 0; i < n; i++) {
		if (first == NULL || strcmp(names[i], first) < 0)
			first = names[i];
		if (last != NULL && strcmp(names[i], last) > 0 &&
		    (next == NULL || strcmp(names[i], next) < 0))
			next = names[i];
	}
	return next != NULL ? next : first;
}

char *recovery_options(const char *conninfo_options, int lock_timeout_ms)
{
	const char *own = conninfo_options != NULL ? conninfo_options : "";
	size_t len = strlen(own) + 64;
	char *opts = malloc(len);

	if (opts == NULL)
		return NULL;
	/* a later -c wins: ours comes last */
	snprintf(opts, len, "%s%s-c lock_timeout=%d", own, own[0] != '\0' ? " " : "",
	         lock_timeout_ms);
	return opts;
}
