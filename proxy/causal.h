/*
 * causal.h — what a session has seen of each shard, so that a read sent to a
 * replica never shows it anything older (causal.c).
 *
 * A replica may serve a session's read of a shard only when it has replayed
 * every write the session committed there (read-your-writes), everything
 * the session already read there (monotonic reads), and the positions of a
 * causal token the session presented (another connection's writes). All of
 * that is one WAL position per shard, need_lsn, once it is known.
 *
 * It is not known at once: pgshard learns WAL positions from the control
 * thread's checks (nodes.h: node_state_t.lsn, as of a query sent at
 * lsn_at_us), never by asking on the client's way. What a statement on the
 * primary saw or wrote is at or below the primary's position at any check
 * sent after the statement ended; so the end of such a statement is noted
 * (pend_at_us), and the first primary check sent after it bounds it
 * (need_lsn rises to its position). Until then only the primary may serve
 * the session there. A read on a replica saw that replica's state, which
 * only grows: the same replica may serve the next read at once; another
 * node only once a check of the first one sent after the read bounds what
 * it saw (rep_at_us).
 *
 * Pure: no sockets, no clocks (times are passed in); unit tested in
 * proxy/tests/test_causal.c.
 */
#ifndef PGSHARD_PROXY_CAUSAL_H
#define PGSHARD_PROXY_CAUSAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct causal {
	uint64_t need_lsn;    /* a node must have replayed this far */
	uint64_t pend_at_us;  /* the end of the latest statement on the primary not yet bounded */
	int rep_node;         /* the replica (node id) that served the latest read; -1: none */
	uint64_t rep_at_us;   /* the end of its reads not yet bounded by a check of it; 0: none */
	bool on_primary;      /* its latest statement ran on the primary */
	uint64_t asked_at_us; /* when the primary's position was last asked after a statement */
} causal_t;

/* What a node's latest check found, as causal.c needs it. */
typedef struct causal_pos {
	uint64_t lsn;   /* 0: unknown */
	uint64_t at_us; /* when the check's query was sent */
} causal_pos_t;

void causal_init(causal_t *k);

/*
 * Fold in what checks sent after the pending statements tell: primary is
 * the shard's primary's position, rep that of k->rep_node (either may be
 * unknown, lsn 0).
 */
void causal_settle(causal_t *k, causal_pos_t primary, causal_pos_t rep);

/*
 * The primary, asked on the session's own connection after its statements
 * there ended (at asked_at_us), is at lsn: that bounds them at once, and
 * the reads its replicas served before (a replica is never ahead of its
 * primary).
 */
void causal_bound(causal_t *k, uint64_t lsn, uint64_t asked_at_us);
/* Whether node `node` (a replica), at position at, may serve the session's next read. */
bool causal_allows(const causal_t *k, int node, causal_pos_t at);

/* A statement ended at now_us on the primary (node < 0) or on replica `node`. */
void causal_ran(causal_t *k, int node, uint64_t now_us);

/* Nothing pending: need_lsn says everything (a causal token can be written). */
bool causal_settled(const causal_t *k);

/*
 * Forget which replica served the session (the node table changed): what
 * that replica's reads saw is then bounded by the primary's next check.
 */
void causal_forget_node(causal_t *k);

/*
 * Causal tokens: "pgshard1:" and, for each shard with a position,
 * "SHARD=HI/LO" (PostgreSQL's LSN notation), separated by commas; e.g.
 * "pgshard1:0=0/3000148,2=0/5A000D8". "pgshard1:" alone says nothing.
 */
#define CAUSAL_TOKEN_MAX 4096

/* "HI/LO" (hexadecimal) at s into *lsn, *end after it. false: not one. */
bool causal_lsn_parse(const char *s, uint64_t *lsn, const char **end);
/* Write the token of ks[0..n) (settled ones) into buf. false: it does not fit. */
bool causal_token_write(const causal_t *ks, int n, char *buf, size_t len);
/*
 * Raise ks[0..n)'s need_lsn to the token's positions (shards >= n are
 * ignored: a token from a config with more shards). false: not a token
 * (nothing changed).
 */
bool causal_token_read(causal_t *ks, int n, const char *token);

/*
 * A session command of pgshard's own: SET [SESSION] pgshard.NAME {= | TO}
 * VALUE ('quoted' or a bare word; DEFAULT resets), RESET pgshard.NAME,
 * SHOW pgshard.NAME; keywords in any case, one optional ';'.
 */
typedef enum causal_verb {
	CAUSAL_NOT_OURS, /* anything else: PostgreSQL's to answer */
	CAUSAL_SET,
	CAUSAL_RESET,
	CAUSAL_SHOW,
	CAUSAL_BAD, /* starts as one but does not parse: a syntax error */
} causal_verb_t;

/* name: after "pgshard.", lower-cased; value: SET's, unquoted. */
causal_verb_t causal_parse_command(const char *sql, char *name, size_t name_len, char *value,
                                   size_t value_len);

#endif
