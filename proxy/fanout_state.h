/*
 * fanout_state.h — the state of a statement on several shards, shared by
 * fanout.c (running it, merging result by result, COPY) and gather.c (the
 * merges of scatter-gather: sorted streams, LIMIT/OFFSET, partial results
 * finished by a final query), and what fanout_state.c does with it: keep
 * the first error of a result.
 */
#ifndef PGSHARD_PROXY_FANOUT_STATE_H
#define PGSHARD_PROXY_FANOUT_STATE_H

#include "proxy/proxy.h"
#include "router/copy.h"
#include "router/gather.h"
#include "router/gather_sql.h"
#include "router/merge.h"
#include "router/rowcmp.h"

typedef struct member {
	server_t *s;
	int shard;
	bool result_end; /* its current result is over; it waits for the others */
	bool ready;      /* its ReadyForQuery came */
	bool in_copy;    /* it is in COPY FROM STDIN */
	char status;
	uint8_t *copy_buf; /* rows for it, sent as one CopyData per client message */
	size_t copy_len, copy_cap;

	/* sorted merge: its head row (a DataRow, whole), waiting for its turn */
	uint8_t *row;
	size_t row_len, row_cap;
	rowcmp_field_t *fields;
	bool has_row;

	/* a fetch from a cursor over several shards: rows it sent, rows the merge used */
	uint64_t got, used;
} member_t;

/* Where a scatter-gather statement is. */
typedef enum gather_phase {
	GATHER_NONE,     /* not one: the merge kind of the plan decides */
	GATHER_STREAM,   /* rows go to the client as they merge */
	GATHER_PARTIALS, /* partial results are held */
	GATHER_TYPES,    /* the first member names their types that are not built in */
	GATHER_FINAL,    /* the final query over them runs on the first member */
	GATHER_REWIND,   /* a cursor's fetch is over: members give back rows not sent */
} gather_phase_t;

/*
 * What gather.c asks of the fan-out it merges for. fanout.c fills it, so
 * that gather.c, a layer below fanout.c, names none of its functions.
 */
typedef struct fanout_services {
	void (*drain_member)(client_t *c, fanout_t *f, member_t *m); /* read a member again */
	int (*send)(client_t *c, fanout_t *f, member_t *m, const char *sql); /* a statement */
} fanout_services_t;

struct fanout {
	const fanout_services_t *svc;
	route_merge_t merge;
	bool ready; /* end with ReadyForQuery (a Query), or not (an Execute) */
	member_t *m;
	int n;

	/* the result being merged */
	int row_owner; /* the member whose RowDescription went out (-1: none yet) */
	merge_tag_t tag;
	bool empty, copy_out;
	uint8_t *error; /* the first ErrorResponse body */
	size_t error_len;
	bool failed;           /* an error went to the client: the rest is dropped */
	char held_tag[96];     /* in pgshard's own transaction (tx_t.implicit): the last tag,
	                          sent once the transaction commits ("" none) */
	merge_counts_t counts; /* ROUTE_MERGE_COUNT */
	struct retorder *ret;  /* a split INSERT ... RETURNING: its rows, held to go out in
	                          VALUES order at the end of the result (proxy/retorder.h) */

	/* COPY FROM STDIN split by key */
	bool copy;
	bool copy_split;   /* rows are routed; else every member gets every row */
	bool key_bytes_ok; /* copy_split: the client's text is stored as sent (copy_encodings_agree)
	                    */
	bool copy_open;    /* CopyInResponse went to the client */
	bool copy_done;    /* the client ended (or the proxy failed) the copy */
	uint8_t *copy_in;  /* the first member's CopyInResponse */
	size_t copy_in_len;
	copy_opts_t opts;
	copy_splitter_t *splitter;
	char *key_name;
	int key_index; /* -1 until the catalog says */
	uint32_t key_oid;
	int catalog_col; /* columns of the table seen so far */
	const shard_map_t *map;
	cfg_key_type_t key_type;

	/* the extended protocol: members run Parse/Bind/[Describe]/Execute/Sync */
	bool extended;
	bool describe;      /* the client asked for the RowDescription (Describe portal) */
	bool describe_only; /* and nothing else: no Execute */
	uint8_t *params; /* the client's Bind from its parameter formats to its values, as sent */
	size_t params_len;
	uint8_t *results; /* its result format codes (int16 count, codes) */
	size_t results_len;
	uint8_t *types; /* the statement's parameter types (int32 OIDs, as in Parse) */
	int16_t n_types;

	/* scatter-gather (gather.c) */
	gather_phase_t phase;
	gather_plan_t *gp; /* read only: shared with the plan cache (route_gather_cached) */
	int ncols;         /* of the shards' rows, from the first RowDescription */
	uint32_t *col_types;
	int16_t *col_formats;
	rowcmp_key_t *keys;
	rowheap_t *heap;    /* sorted merge; made once every member has a row or is done */
	int64_t skip;       /* rows still to skip (OFFSET) */
	int64_t left;       /* rows still to send (LIMIT), -1: all */
	bool enough;        /* the client has its rows: the rest is dropped */
	uint64_t sent;      /* rows sent, for the tag */
	gather_rows_t held; /* partial results as VALUES rows */
	char **type_names;  /* per column: the catalog's name of a type that is not built in */
	int float_digits;   /* the session's extra_float_digits, as the first member said */

	/* FETCH or MOVE from a cursor over several shards (cursor.c) */
	struct cursor_at *cur;
	bool fetch_move;  /* MOVE: rows are counted, not sent */
	int64_t fetch_k;  /* the rows each member fetches, -1: ALL */
	char *member_sql; /* what the members run, instead of the plan's */
	bool portal;      /* see fanout_opts_t */
	int32_t portal_rows;
	bool portal_declare;
	bool quiet;
};

/* The first error of the result: a shard's ErrorResponse body, or pgshard's own. */
void fanout_keep_error(fanout_t *f, const uint8_t *body, size_t len);
void fanout_own_error(fanout_t *f, const char *sqlstate, const char *msg);

#endif
