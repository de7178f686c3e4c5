/*
 * twophase.c — gids and statements of pgshard's two-phase commit (see
 * twophase.h for the protocol).
 */
#include "router/twophase.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * decided_at is the time the record was written (clock_timestamp()), not the
 * start of the decider's transaction (now()): cleanup deletes records older
 * than its minimum age that no shard still lists as prepared, and a record
 * written at the end of a transaction that ran for longer than that age
 * would otherwise look old while its PREPAREs on the other shards may still
 * be on their way (listed by nobody yet), so that a crash before COMMIT
 * PREPARED would later find no record and roll back a committed transaction.
 */
const char twophase_setup_sql[] =
    "CREATE SCHEMA IF NOT EXISTS pgshard; "
    "CREATE TABLE IF NOT EXISTS pgshard.decisions ("
    "gid pg_catalog.text PRIMARY KEY, "
    "committed pg_catalog.bool NOT NULL, "
    "decided_at pg_catalog.timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp())";

const char twophase_max_prepared_sql[] =
    "SELECT pg_catalog.current_setting('max_prepared_transactions')::pg_catalog.int4";

/* every database's: pg_prepared_xacts shows them all, whichever database one is connected to */
const char twophase_list_prepared_sql[] =
    "SELECT gid, pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) "
    "prepared)::pg_catalog.int8, database FROM pg_catalog.pg_prepared_xacts "
    "WHERE pg_catalog.starts_with(gid, '" TWOPHASE_GID_PREFIX "') "
    "ORDER BY database, prepared";

const char twophase_databases_sql[] =
    "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate";

const char twophase_has_decisions_sql[] =
    "SELECT pg_catalog.to_regclass('pgshard.decisions') IS NOT NULL";

void twophase_gid(char *buf, uint64_t instance, int decider, uint64_t n)
{
	snprintf(buf, TWOPHASE_GID_MAX, TWOPHASE_GID_PREFIX "%016" PRIx64 ":%d:%" PRIx64, instance,
	         decider, n);
}

int twophase_gid_decider(const char *gid)
{
	const char *p = gid + strlen(TWOPHASE_GID_PREFIX);
	long d = 0;
	int digits = 0;

	if (strncmp(gid, TWOPHASE_GID_PREFIX, strlen(TWOPHASE_GID_PREFIX)) != 0 ||
	    strlen(gid) >= TWOPHASE_GID_MAX)
		return -1;
	for (int i = 0; i < 16; i++, p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -1;
	if (*p++ != ':')
		return -1;
	for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
		d = d * 10 + (*p - '0');
	if (digits == 0 || *p++ != ':')
		return -1;
	if (*p == '\0')
		return -1;
	for (; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -1;
	return (int)d;
}

/* before gid after: the gid needs no quoting once it is known to be ours. */
static char *with_gid(const char *before, const char *gid, const char *after)
{
	size_t lb = strlen(before), lg = strlen(gid), la = strlen(after);
	char *sql;

	if (twophase_gid_decider(gid) < 0)
		return NULL;
	sql = malloc(lb + lg + la + 1);
	if (sql == NULL)
		return NULL;
	memcpy(sql, before, lb);
	memcpy(sql + lb, gid, lg);
	memcpy(sql + lb + lg, after, la + 1);
	return sql;
}

#define RECORD_INTO "INSERT INTO pgshard.decisions (gid, committed) VALUES ('"

char *twophase_record_sql(const char *gid)
{
	return with_gid(RECORD_INTO, gid, "', true)");
}

char *twophase_setup_record_sql(const char *gid)
{
	char *insert = twophase_record_sql(gid), *sql;
	size_t len;

	if (insert == NULL)
		return NULL;
	len = sizeof(twophase_setup_sql) + 2 + strlen(insert);
	sql = malloc(len);
	if (sql != NULL)
		snprintf(sql, len, "%s; %s", twophase_setup_sql, insert);
	free(insert);
	return sql;
}

char *twophase_prepare_sql(const char *gid)
{
	return with_gid("PREPARE TRANSACTION '", gid, "'");
}

char *twophase_commit_sql(const char *gid)
{
	return with_gid("COMMIT PREPARED '", gid, "'");
}

char *twophase_rollback_sql(const char *gid)
{
	return with_gid("ROLLBACK PREPARED '", gid, "'");
}

char *twophase_tombstone_sql(const char *gid)
{
	return with_gid(RECORD_INTO, gid, "', false) ON CONFLICT (gid) DO NOTHING");
}

char *twophase_decision_sql(const char *gid)
{
	return with_gid(
	    "SELECT committed FROM pgshard.decisions WHERE gid OPERATOR(pg_catalog.=) '", gid, "'");
}

char *twophase_ask_sql(const char *gid, bool set_up_first)
{
	char *tombstone = twophase_tombstone_sql(gid), *decision = twophase_decision_sql(gid);
	char *sql = NULL;
	size_t len;

	if (tombstone != NULL && decision != NULL) {
		len = sizeof(twophase_setup_sql) + strlen(tombstone) + strlen(decision) + 6;
		sql = malloc(len);
		if (sql != NULL)
			snprintf(sql, len, "%s%s%s; %s", set_up_first ? twophase_setup_sql : "",
			         set_up_first ? "; " : "", tombstone, decision);
	}
	free(tombstone);
	free(decision);
	return sql;
}

char *twophase_cleanup_sql(const char *const *prepared, int n, int min_age_s)
{
	static const char head[] =
	    "DELETE FROM pgshard.decisions WHERE decided_at OPERATOR(pg_catalog.<) "
	    "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => %d))";
	static const char keep[] = " AND gid OPERATOR(pg_catalog.<>) ALL (ARRAY[";
	size_t len = sizeof(head) + 16 + sizeof(keep) + 32, at;
	char *sql;

	for (int i = 0; i < n; i++) {
		if (twophase_gid_decider(prepared[i]) < 0)
			return NULL;
		len += strlen(prepared[i]) + 4;
	}
	sql = malloc(len);
	if (sql == NULL)
		return NULL;
	at = (size_t)snprintf(sql, len, head, min_age_s < 0 ? 0 : min_age_s);
	if (n > 0) {
		at += (size_t)snprintf(sql + at, len - at, "%s", keep);
		for (int i = 0; i < n; i++)
			at += (size_t)snprintf(sql + at, len - at, "%s'%s'", i > 0 ? "," : "",
			                       prepared[i]);
		snprintf(sql + at, len - at, "]::pg_catalog.text[])");
	}
	return sql;
}
