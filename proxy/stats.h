/*
 * stats.h — what the shards did for pgshard, counted per pool (stats.c).
 *
 * Each worker counts into its own pools' counters with plain increments:
 * only the worker that owns a pool writes them, and the admin console asks
 * each worker for its figures (admin.c) instead of reading them from
 * another thread, so there is no lock and no atomic on the data path.
 *
 * Latency goes into a histogram with fixed buckets: bucket b holds the
 * statements that took more than 2^(b-1) and at most 2^b microseconds
 * (bucket 0: at most 1 us; the last: everything above), so that a quantile
 * (p99) is read from the buckets, two histograms add up bucket by bucket,
 * and a Prometheus histogram is the same buckets with `le` = 2^b.
 */
#ifndef PGSHARD_PROXY_STATS_H
#define PGSHARD_PROXY_STATS_H

#include <stdint.h>
#include <time.h>

/* Buckets up to 2^30 us (about 18 minutes), and one for longer. */
#define STATS_BUCKETS 32

typedef struct stats_hist {
	uint64_t count;
	uint64_t sum_us;
	uint64_t buckets[STATS_BUCKETS];
} stats_hist_t;

/* One pool's figures (a pool is a node, a database and a user, on one worker). */
typedef struct stats_counters {
	uint64_t statements;   /* ReadyForQuery answers: a query string or an extended batch */
	uint64_t transactions; /* ReadyForQuery with status idle: a transaction ended */
	uint64_t errors;       /* ErrorResponses from the server */
	uint64_t bytes_in;    /* received from its servers (closed ones; live ones count in sbuf) */
	uint64_t bytes_out;   /* sent to them */
	stats_hist_t latency; /* statement latency, from its first message to ReadyForQuery */
} stats_counters_t;

/* The bucket of a latency: the smallest b with us <= 2^b, capped at the last. */
static inline int stats_bucket(uint64_t us)
{
	int b;

	if (us <= 1)
		return 0;
	b = 64 - __builtin_clzll(us - 1);
	return b < STATS_BUCKETS - 1 ? b : STATS_BUCKETS - 1;
}

static inline void stats_hist_add(stats_hist_t *h, uint64_t us)
{
	h->count++;
	h->sum_us += us;
	h->buckets[stats_bucket(us)]++;
}

/* Monotonic time in microseconds. */
static inline uint64_t stats_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Upper bound of bucket b in microseconds (its `le`); UINT64_MAX for the last. */
uint64_t stats_bucket_bound(int b);
void stats_hist_merge(stats_hist_t *into, const stats_hist_t *from);
/*
 * The q-quantile (0 < q <= 1) in microseconds, interpolated linearly inside
 * the bucket where it falls (so its error is under that bucket's width); 0
 * for an empty histogram. A quantile in the last bucket is its lower bound.
 */
uint64_t stats_hist_quantile(const stats_hist_t *h, double q);
uint64_t stats_hist_avg(const stats_hist_t *h);
void stats_merge(stats_counters_t *into, const stats_counters_t *from);

#endif
