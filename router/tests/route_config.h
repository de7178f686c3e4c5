/*
 * route_config.h — the config the router's tests route against: three shards,
 * a hash map on bigint, range maps (one with a gap), a hash map on text,
 * sharded tables on each, and a reference table; and the cmocka group setup
 * that loads it into `cfg` and `ctx`.
 */
#ifndef PGSHARD_ROUTER_TESTS_ROUTE_CONFIG_H
#define PGSHARD_ROUTER_TESTS_ROUTE_CONFIG_H

#include <stdio.h>

#include "config/config.h"
#include "router/route.h"

static const char config[] = "[proxy]\n"
                             "default_shard = 1\n"
                             "writing_functions = audit_bump\n"
                             "[shard.0]\n"
                             "primary = host=10.0.0.1\n"
                             "[shard.1]\n"
                             "primary = host=10.0.0.2\n"
                             "[shard.2]\n"
                             "primary = host=10.0.0.3\n"
                             "[map.users]\n"
                             "kind = hash\n"
                             "key = bigint\n"
                             "shards = 0, 1, 2\n"
                             "[map.regions]\n"
                             "kind = range\n"
                             "key = bigint\n"
                             "range = - 1000 0\n"
                             "range = 1000 2000 1\n"
                             "range = 2000 - 2\n"
                             "[map.gapped]\n"
                             "kind = range\n"
                             "key = bigint\n"
                             "range = 0 100 0\n"
                             "range = 200 300 1\n"
                             "[map.names]\n"
                             "kind = hash\n"
                             "key = text\n"
                             "shards = 1, 2\n"
                             "[table.users]\n"
                             "key = id\n"
                             "map = users\n"
                             "[table.orders]\n"
                             "key = user_id\n"
                             "map = users\n"
                             "[table.public.widgets]\n"
                             "key = id\n"
                             "map = users\n"
                             "[table.countries]\n"
                             "reference = yes\n"
                             "[table.sites]\n"
                             "key = region_id\n"
                             "map = regions\n"
                             "[table.slots]\n"
                             "key = slot\n"
                             "map = gapped\n"
                             "[table.accounts]\n"
                             "key = name\n"
                             "map = names\n";

static cfg_t *cfg;
static route_ctx_t ctx;

static int setup(void **state)
{
	char err[512];

	(void)state;
	if (cfg_load_string(config, "test.ini", &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	if (route_ctx_init(&ctx, cfg, err, sizeof err) != 0) {
		fprintf(stderr, "route_ctx_init: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	route_ctx_free(&ctx);
	cfg_free(cfg);
	return 0;
}

#endif
