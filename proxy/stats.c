/*
 * stats.c — adding up the counters of stats.h and reading quantiles from
 * their latency histograms. Pure; tested in proxy/tests/test_stats.c.
 */
#include "proxy/stats.h"

uint64_t stats_bucket_bound(int b)
{
	if (b < 0)
		return 0;
	if (b >= STATS_BUCKETS - 1)
		return UINT64_MAX;
	return (uint64_t)1 << b;
}

void stats_hist_merge(stats_hist_t *into, const stats_hist_t *from)
{
	into->count += from->count;
	into->sum_us += from->sum_us;
	for (int b = 0; b < STATS_BUCKETS; b++)
		into->buckets[b] += from->buckets[b];
}

uint64_t stats_hist_quantile(const stats_hist_t *h, double q)
{
	uint64_t total = 0, seen = 0;
	double rank;

	for (int b = 0; b < STATS_BUCKETS; b++)
		total += h->buckets[b];
	if (total == 0)
		return 0;
	if (q > 1)
		q = 1;
	/* the rank of the quantile's statement, 1-based, as nearest-rank does */
	rank = q * (double)total;
	if (rank < 1)
		rank = 1;
	for (int b = 0; b < STATS_BUCKETS; b++) {
		uint64_t n = h->buckets[b];
		uint64_t lo, hi;

		if (n == 0 || (double)(seen + n) < rank) {
			seen += n;
			continue;
		}
		lo = b == 0 ? 0 : stats_bucket_bound(b - 1);
		if (b == STATS_BUCKETS - 1)
			return lo;
		hi = stats_bucket_bound(b);
		/* the statements of a bucket are taken as spread evenly over (lo, hi] */
		return lo + (uint64_t)((double)(hi - lo) * (rank - (double)seen) / (double)n + 0.5);
	}
	return stats_bucket_bound(STATS_BUCKETS - 2);
}

uint64_t stats_hist_avg(const stats_hist_t *h)
{
	return h->count ? h->sum_us / h->count : 0;
}

void stats_merge(stats_counters_t *into, const stats_counters_t *from)
{
	into->statements += from->statements;
	into->transactions += from->transactions;
	into->errors += from->errors;
	into->bytes_in += from->bytes_in;
	into->bytes_out += from->bytes_out;
	stats_hist_merge(&into->latency, &from->latency);
}
