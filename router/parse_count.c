/*
 * parse_count.c — how many statements the router parsed (route.h's
 * route_parse_count). Counted by every file that parses a client's
 * statement; relaxed atomics, since routing threads parse too and the
 * figure is only ever read as a total.
 */
#include <stdatomic.h>

#include "router/route.h"
#include "router/tree_int.h"

static atomic_uint_fast64_t parses;

void route_parse_counted(void)
{
	atomic_fetch_add_explicit(&parses, 1, memory_order_relaxed);
}

uint64_t route_parse_count(void)
{
	return (uint64_t)atomic_load_explicit(&parses, memory_order_relaxed);
}
