/*
 * test_config.c — the configuration contract of DESIGN.md, pinned.
 *
 * Every error test checks two things: loading fails, and the message names
 * the file and line a user has to look at and says what was expected there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

/* The example of DESIGN.md, "Configuration contract", verbatim. */
static const char design_example[] =
    "[proxy]\n"
    "listen = 127.0.0.1:6432\n"
    "workers = 1\n"
    "pool_size = 20               ; server connections per node, database and user\n"
    "default_shard = 0            ; where tables not named below live, and catalog queries go\n"
    "\n"
    "[auth]\n"
    "method = trust               ; trust | md5 | scram-sha-256\n"
    "users = users.txt            ; \"user\" \"password\" lines, as PgBouncer's auth_file\n"
    "\n"
    "[shard.0]\n"
    "primary = host=127.0.0.1 port=5441 dbname=app user=app\n"
    "replica = host=127.0.0.1 port=5451 dbname=app user=app   ; repeat for more replicas\n"
    "\n"
    "[shard.1]\n"
    "primary = host=127.0.0.1 port=5442 dbname=app user=app\n"
    "\n"
    "[map.users]\n"
    "kind = hash                  ; consistent-hash ring\n"
    "key = bigint                 ; bigint | text | uuid: how key values are normalized\n"
    "shards = 0, 1\n"
    "vnodes = 256\n"
    "\n"
    "[map.regions]\n"
    "kind = range\n"
    "key = bigint\n"
    "range = - 1000000 0          ; lo (inclusive) hi (exclusive) shard; '-' is unbounded\n"
    "range = 1000000 - 1\n"
    "\n"
    "[table.users]\n"
    "key = id\n"
    "map = users\n"
    "\n"
    "[table.orders]\n"
    "key = user_id                ; same map as users: co-located, joins on user_id stay local\n"
    "map = users\n"
    "\n"
    "[table.countries]\n"
    "reference = yes              ; a full copy on every shard\n";

#define SHARD0 "[shard.0]\nprimary = host=10.0.0.1\n"
#define SHARD1 "[shard.1]\nprimary = host=10.0.0.2\n"

static char err[1024];

/* ---- helpers ---- */

/* A scratch directory, so that a config's relative users path has somewhere to point. */
typedef struct scratch {
	char dir[64];
	char config[128]; /* dir/pgshard.ini: the name configs are loaded under */
	char users[128];  /* dir/users.txt */
} scratch_t;

static void scratch_make(scratch_t *s)
{
	snprintf(s->dir, sizeof s->dir, "/tmp/test_config.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->config, sizeof s->config, "%s/pgshard.ini", s->dir);
	snprintf(s->users, sizeof s->users, "%s/users.txt", s->dir);
}

static void scratch_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void scratch_remove(scratch_t *s)
{
	unlink(s->config);
	unlink(s->users);
	assert_int_equal(rmdir(s->dir), 0);
}

static cfg_t *load_named(const char *text, const char *name)
{
	cfg_t *cfg = NULL;
	if (cfg_load_string(text, name, &cfg, err, sizeof err) != 0)
		fail_msg("load failed: %s", err);
	assert_non_null(cfg);
	return cfg;
}

static cfg_t *load(const char *text)
{
	return load_named(text, "pgshard.ini");
}

static void assert_error_named(const char *text, const char *name, const char *const needles[])
{
	cfg_t *cfg = (cfg_t *)(uintptr_t)0x1; /* must stay untouched on failure */
	int rc = cfg_load_string(text, name, &cfg, err, sizeof err);
	if (rc == 0) {
		cfg_free(cfg);
		fail_msg("load succeeded, expected an error containing '%s'", needles[0]);
	}
	assert_int_equal(rc, -1);
	assert_ptr_equal(cfg, (cfg_t *)(uintptr_t)0x1);
	for (int i = 0; needles[i] != NULL; i++) {
		if (strstr(err, needles[i]) == NULL)
			fail_msg("error '%s' does not contain '%s'", err, needles[i]);
	}
}

/* LOAD_ERROR(text, "pgshard.ini:3:", "phrase", ...): loading fails with all of these in err. */
#define LOAD_ERROR(text, ...)                                                                      \
	assert_error_named((text), "pgshard.ini", (const char *const[]){__VA_ARGS__, NULL})
#define LOAD_ERROR_NAMED(text, name, ...)                                                          \
	assert_error_named((text), (name), (const char *const[]){__VA_ARGS__, NULL})

/* ---- the example and the defaults ---- */

static void test_design_example_loads_with_every_field(void **state)
{
	scratch_t s;
	scratch_make(&s);
	scratch_write(s.users, "\"app\" \"secret\"\n\"admin\" \"md5abc\"\n");
	cfg_t *cfg = load_named(design_example, s.config);

	assert_string_equal(cfg->path, s.config);
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 6432);
	assert_int_equal(cfg->workers, 1);
	assert_int_equal(cfg->pool_size, 20);
	assert_int_equal(cfg->default_shard, 0);
	assert_int_equal(cfg->max_clients, 1000);
	assert_int_equal(cfg->max_message_size, 67108864);
	assert_int_equal(cfg->merge_memory, 33554432);
	assert_int_equal(cfg->max_join_rows, 1000000);
	assert_int_equal(cfg->server_connect_timeout_ms, 5000);
	assert_int_equal(cfg->server_idle_timeout_s, 600);
	assert_int_equal(cfg->login_timeout_s, 60);
	assert_int_equal(cfg->shutdown_timeout_s, 30);
	assert_int_equal(cfg->log_min_duration_statement_ms, -1);
	assert_true(cfg->log_connections);
	assert_true(cfg->log_disconnections);
	assert_int_equal(cfg->pause_timeout_s, 60);
	assert_int_equal(cfg->health_check_interval_ms, 1000);
	assert_int_equal(cfg->recovery_interval_ms, 5000);
	assert_int_equal(cfg->recovery_grace_ms, 10000);
	assert_true(cfg->two_phase_commit);
	assert_int_equal(cfg->deadlock_interval_ms, 1000);
	assert_int_equal(cfg->max_route_size, 1048576);

	assert_int_equal(cfg->auth_method, CFG_AUTH_TRUST);
	assert_string_equal(cfg->users_path, s.users);
	assert_int_equal(cfg->n_users, 2);
	assert_string_equal(cfg_find_user(cfg, "app")->password, "secret");
	assert_string_equal(cfg_find_user(cfg, "admin")->password, "md5abc");

	assert_int_equal(cfg->n_shards, 2);
	const cfg_shard_t *s0 = &cfg->shards[0], *s1 = &cfg->shards[1];
	assert_int_equal(s0->id, 0);
	assert_string_equal(s0->primary.conninfo, "host=127.0.0.1 port=5441 dbname=app user=app");
	assert_string_equal(s0->primary.host, "127.0.0.1");
	assert_int_equal(s0->primary.port, 5441);
	assert_string_equal(s0->primary.dbname, "app");
	assert_string_equal(s0->primary.user, "app");
	assert_null(s0->primary.password);
	assert_int_equal(s0->n_replicas, 1);
	assert_string_equal(s0->replicas[0].conninfo,
	                    "host=127.0.0.1 port=5451 dbname=app user=app");
	assert_int_equal(s0->replicas[0].port, 5451);
	assert_int_equal(s1->id, 1);
	assert_int_equal(s1->primary.port, 5442);
	assert_int_equal(s1->n_replicas, 0);
	assert_null(s1->replicas);

	assert_int_equal(cfg->n_maps, 2);
	const cfg_map_t *users = cfg_find_map(cfg, "users");
	assert_ptr_equal(users, &cfg->maps[0]);
	assert_int_equal(users->kind, CFG_MAP_HASH);
	assert_int_equal(users->key, CFG_KEY_BIGINT);
	assert_int_equal(users->n_shards, 2);
	assert_int_equal(users->shards[0], 0);
	assert_int_equal(users->shards[1], 1);
	assert_int_equal(users->vnodes, 256);
	assert_int_equal(users->n_ranges, 0);

	const cfg_map_t *regions = cfg_find_map(cfg, "regions");
	assert_ptr_equal(regions, &cfg->maps[1]);
	assert_int_equal(regions->kind, CFG_MAP_RANGE);
	assert_int_equal(regions->key, CFG_KEY_BIGINT);
	assert_int_equal(regions->n_shards, 0);
	assert_int_equal(regions->n_ranges, 2);
	assert_null(regions->ranges[0].lo);
	assert_string_equal(regions->ranges[0].hi, "1000000");
	assert_int_equal(regions->ranges[0].shard, 0);
	assert_int_equal(regions->ranges[0].line, 27);
	assert_string_equal(regions->ranges[1].lo, "1000000");
	assert_null(regions->ranges[1].hi);
	assert_int_equal(regions->ranges[1].shard, 1);
	assert_int_equal(regions->ranges[1].line, 28);
	assert_null(cfg_find_map(cfg, "Users"));

	assert_int_equal(cfg->n_tables, 3);
	const cfg_table_t *t = cfg_find_table(cfg, "users");
	assert_non_null(t);
	assert_false(t->reference);
	assert_string_equal(t->key, "id");
	assert_int_equal(t->map, 0);
	t = cfg_find_table(cfg, "orders");
	assert_string_equal(t->key, "user_id");
	assert_int_equal(t->map, 0);
	t = cfg_find_table(cfg, "countries");
	assert_true(t->reference);
	assert_null(t->key);
	assert_int_equal(t->map, -1);
	assert_null(cfg_find_table(cfg, "nope"));

	cfg_free(cfg);
	scratch_remove(&s);
}

static void test_minimal_config_gets_documented_defaults(void **state)
{
	cfg_t *cfg = load("[shard.0]\nprimary = dbname=app\n");
	assert_string_equal(cfg->listen_host, "127.0.0.1");
	assert_int_equal(cfg->listen_port, 6432);
	assert_int_equal(cfg->workers, 1);
	assert_int_equal(cfg->pool_size, 20);
	assert_int_equal(cfg->default_shard, 0);
	assert_int_equal(cfg->max_clients, 1000);
	assert_int_equal(cfg->max_message_size, 67108864);
	assert_int_equal(cfg->server_connect_timeout_ms, 5000);
	assert_int_equal(cfg->server_idle_timeout_s, 600);
	assert_int_equal(cfg->login_timeout_s, 60);
	assert_int_equal(cfg->shutdown_timeout_s, 30);
	assert_int_equal(cfg->log_min_duration_statement_ms, -1);
	assert_int_equal(cfg->health_check_interval_ms, 1000);
	assert_int_equal(cfg->recovery_interval_ms, 5000);
	assert_int_equal(cfg->recovery_grace_ms, 10000);
	assert_int_equal(cfg->deadlock_interval_ms, 1000);
	assert_int_equal(cfg->max_route_size, 1048576);
	assert_int_equal(cfg->auth_method, CFG_AUTH_TRUST);
	assert_null(cfg->users_path);
	assert_int_equal(cfg->n_users, 0);
	assert_null(cfg_find_user(cfg, "app"));
	assert_int_equal(cfg->n_maps, 0);
	assert_int_equal(cfg->n_tables, 0);
	/* node defaults */
	assert_string_equal(cfg->shards[0].primary.host, "127.0.0.1");
	assert_int_equal(cfg->shards[0].primary.port, 5432);
	assert_string_equal(cfg->shards[0].primary.dbname, "app");
	assert_null(cfg->shards[0].primary.user);
	assert_null(cfg->shards[0].primary.password);
	cfg_free(cfg);
}

static void test_every_proxy_setting_is_read(void **state)
{
	cfg_t *cfg = load("[proxy]\n"
	                  "listen = *:7000\n"
	                  "workers = 64\n"
	                  "pool_size = 10000\n"
	                  "default_shard = 1\n"
	                  "max_clients = 5\n"
	                  "max_message_size = 1024\n"
	                  "server_connect_timeout = 250\n"
	                  "server_idle_timeout = 30\n"
	                  "login_timeout = 7\n"
	                  "shutdown_timeout = 3\n"
	                  "log_min_duration_statement = 100\n"
	                  "log_connections = off\n"
	                  "log_disconnections = no\n"
	                  "pause_timeout = 90\n"
	                  "health_check_interval = 250\n"
	                  "recovery_interval = 700\n"
	                  "recovery_grace = 0\n"
	                  "two_phase_commit = off\n"
	                  "deadlock_interval = 250\n"
	                  "max_route_size = 64kB\n" SHARD0 SHARD1);
	assert_string_equal(cfg->listen_host, "*");
	assert_int_equal(cfg->listen_port, 7000);
	assert_int_equal(cfg->workers, 64);
	assert_int_equal(cfg->pool_size, 10000);
	assert_int_equal(cfg->default_shard, 1);
	assert_int_equal(cfg->max_clients, 5);
	assert_int_equal(cfg->max_message_size, 1024);
	assert_int_equal(cfg->server_connect_timeout_ms, 250);
	assert_int_equal(cfg->server_idle_timeout_s, 30);
	assert_int_equal(cfg->login_timeout_s, 7);
	assert_int_equal(cfg->shutdown_timeout_s, 3);
	assert_int_equal(cfg->log_min_duration_statement_ms, 100);
	assert_false(cfg->log_connections);
	assert_false(cfg->log_disconnections);
	assert_int_equal(cfg->pause_timeout_s, 90);
	assert_int_equal(cfg->health_check_interval_ms, 250);
	assert_int_equal(cfg->recovery_interval_ms, 700);
	assert_int_equal(cfg->recovery_grace_ms, 0);
	assert_false(cfg->two_phase_commit);
	assert_int_equal(cfg->deadlock_interval_ms, 250);
	assert_int_equal(cfg->max_route_size, 65536);
	cfg_free(cfg);
}

static void test_listen_accepts_bracketed_ipv6(void **state)
{
	cfg_t *cfg = load("[proxy]\nlisten = [::1]:6543\n" SHARD0);
	assert_string_equal(cfg->listen_host, "::1");
	assert_int_equal(cfg->listen_port, 6543);
	cfg_free(cfg);
}

static void test_max_message_size_takes_postgres_memory_units(void **state)
{
	static const struct {
		const char *value;
		size_t bytes;
	} cases[] = {
	    {"2048", 2048},     {"1kB", 1024},       {"16 kB", 16384},
	    {"64MB", 67108864}, {"1GB", 1073741824}, {"4096B", 4096},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[256];
		snprintf(text, sizeof text, "[proxy]\nmax_message_size = %s\n" SHARD0,
		         cases[i].value);
		cfg_t *cfg = load(text);
		assert_int_equal(cfg->max_message_size, cases[i].bytes);
		cfg_free(cfg);
	}
}

static void test_conninfo_uri_and_hostaddr_fill_the_node(void **state)
{
	cfg_t *cfg = load("[shard.0]\n"
	                  "primary = postgresql://app:pw@db0.internal:5433/appdb\n"
	                  "replica = hostaddr=10.1.1.1 port=6000\n"
	                  "replica = host=/var/run/postgresql user=ro\n");
	const cfg_shard_t *s = &cfg->shards[0];
	assert_string_equal(s->primary.host, "db0.internal");
	assert_int_equal(s->primary.port, 5433);
	assert_string_equal(s->primary.dbname, "appdb");
	assert_string_equal(s->primary.user, "app");
	assert_string_equal(s->primary.password, "pw");
	assert_int_equal(s->n_replicas, 2);
	assert_string_equal(s->replicas[0].host, "10.1.1.1");
	assert_int_equal(s->replicas[0].port, 6000);
	assert_string_equal(s->replicas[1].host, "/var/run/postgresql");
	assert_int_equal(s->replicas[1].port, 5432);
	assert_string_equal(s->replicas[1].user, "ro");
	assert_null(s->replicas[1].dbname);
	cfg_free(cfg);
}

static void test_comments_are_stripped_but_a_semicolon_inside_a_value_is_kept(void **state)
{
	cfg_t *cfg = load("; a comment line\n"
	                  "# another one\n"
	                  "[proxy] ; a comment after a header\n"
	                  "pool_size = 7 ; trailing comment\n"
	                  "workers = 2\t; tab before it\n"
	                  "[shard.0]\n"
	                  "primary = host=h password=a;b\n");
	assert_int_equal(cfg->pool_size, 7);
	assert_int_equal(cfg->workers, 2);
	assert_string_equal(cfg->shards[0].primary.password, "a;b");
	assert_string_equal(cfg->shards[0].primary.conninfo, "host=h password=a;b");
	cfg_free(cfg);
}

static void test_indented_keys_are_keys_not_continuation_lines(void **state)
{
	cfg_t *cfg = load("[proxy]\n"
	                  "    workers = 3\n"
	                  "\tpool_size = 4\n"
	                  "  [shard.0]\n"
	                  "  primary = host=h\n");
	assert_int_equal(cfg->workers, 3);
	assert_int_equal(cfg->pool_size, 4);
	assert_string_equal(cfg->shards[0].primary.conninfo, "host=h");
	cfg_free(cfg);
}

static void test_crlf_line_endings_and_bom_are_accepted(void **state)
{
	cfg_t *cfg =
	    load("\xEF\xBB\xBF[proxy]\r\nworkers = 5\r\n[shard.0]\r\nprimary = host=h\r\n");
	assert_int_equal(cfg->workers, 5);
	assert_string_equal(cfg->shards[0].primary.host, "h");
	cfg_free(cfg);
}

static void test_shards_may_be_declared_in_any_order(void **state)
{
	cfg_t *cfg = load("[shard.2]\nprimary = host=c\n"
	                  "[shard.0]\nprimary = host=a\n"
	                  "[shard.1]\nprimary = host=b\n");
	assert_int_equal(cfg->n_shards, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cfg->shards[i].id, i);
		char host[2] = {(char)('a' + i), '\0'};
		assert_string_equal(cfg->shards[i].primary.host, host);
	}
	cfg_free(cfg);
}

static void test_maps_and_tables_may_refer_forward(void **state)
{
	cfg_t *cfg =
	    load("[table.t]\nkey = k\nmap = m\n"
	         "[map.m]\nshards = 1\nkey = text\nkind = hash\nvnodes = 16\n" SHARD0 SHARD1);
	const cfg_map_t *m = cfg_find_map(cfg, "m");
	assert_int_equal(m->key, CFG_KEY_TEXT);
	assert_int_equal(m->vnodes, 16);
	assert_int_equal(cfg_find_table(cfg, "t")->map, 0);
	cfg_free(cfg);
}

static void test_table_names_are_lower_cased_unless_quoted(void **state)
{
	cfg_t *cfg = load(SHARD0 "[table.Countries]\nreference = on\n"
	                         "[table.\"MixedCase\"]\nreference = TRUE\n"
	                         "[table.Public.Regions]\nreference = 1\n"
	                         "[table.app.\"Say \"\"Hi\"\"\"]\nreference = yes\n"
	                         "[table.\"Keyed\"]\nkey = \"UserId\"\nmap = m\n"
	                         "[map.m]\nkind = hash\nkey = uuid\nshards = 0\n");
	assert_non_null(cfg_find_table(cfg, "countries"));
	assert_null(cfg_find_table(cfg, "Countries"));
	assert_non_null(cfg_find_table(cfg, "MixedCase"));
	assert_null(cfg_find_table(cfg, "mixedcase"));
	assert_non_null(cfg_find_table(cfg, "public.regions"));
	assert_non_null(cfg_find_table(cfg, "app.Say \"Hi\""));
	const cfg_table_t *t = cfg_find_table(cfg, "Keyed");
	assert_non_null(t);
	assert_string_equal(t->key, "UserId");
	cfg_free(cfg);
}

static void test_reference_no_with_key_and_map_is_a_sharded_table(void **state)
{
	cfg_t *cfg = load(SHARD0 "[map.m]\nkind = hash\nkey = bigint\nshards = 0\n"
	                         "[table.t]\nreference = no\nkey = ID\nmap = m\n");
	const cfg_table_t *t = cfg_find_table(cfg, "t");
	assert_false(t->reference);
	assert_string_equal(t->key, "id");
	assert_int_equal(t->map, 0);
	cfg_free(cfg);
}

static void test_ranges_are_sorted_by_lo_with_unbounded_first(void **state)
{
	cfg_t *cfg = load(SHARD0 SHARD1 "[map.r]\nkind = range\nkey = bigint\n"
	                                "range = 100 200 1\n"
	                                "range = -50 +100 0\n"
	                                "range = - -50 1\n"
	                                "range = 200 - 0\n");
	const cfg_map_t *m = cfg_find_map(cfg, "r");
	assert_int_equal(m->n_ranges, 4);
	assert_null(m->ranges[0].lo);
	assert_string_equal(m->ranges[0].hi, "-50");
	assert_string_equal(m->ranges[1].lo, "-50");
	assert_string_equal(m->ranges[1].hi, "100"); /* normalized from +100 */
	assert_int_equal(m->ranges[1].line, 9);
	assert_string_equal(m->ranges[2].lo, "100");
	assert_string_equal(m->ranges[3].lo, "200");
	assert_null(m->ranges[3].hi);
	assert_int_equal(m->vnodes, 0);
	cfg_free(cfg);
}

static void test_text_ranges_compare_bytewise(void **state)
{
	/* "B" < "a" bytewise, so these are disjoint and sort B..a first */
	cfg_t *cfg = load(SHARD0 "[map.r]\nkind = range\nkey = text\n"
	                         "range = a n 0\n"
	                         "range = B a 0\n"
	                         "range = n - 0\n");
	const cfg_map_t *m = cfg_find_map(cfg, "r");
	assert_string_equal(m->ranges[0].lo, "B");
	assert_string_equal(m->ranges[1].lo, "a");
	assert_string_equal(m->ranges[2].lo, "n");
	cfg_free(cfg);
}

static void test_uuid_bounds_are_stored_in_canonical_form(void **state)
{
	cfg_t *cfg = load(SHARD0 "[map.r]\nkind = range\nkey = uuid\n"
	                         "range = - 80000000-0000-0000-0000-000000000000 0\n"
	                         "range = {8000000000000000000000000000000A} - 0\n");
	const cfg_map_t *m = cfg_find_map(cfg, "r");
	assert_string_equal(m->ranges[0].hi, "80000000-0000-0000-0000-000000000000");
	assert_string_equal(m->ranges[1].lo, "80000000-0000-0000-0000-00000000000a");
	cfg_free(cfg);
}

static void test_users_file_follows_pgbouncer_auth_file_format(void **state)
{
	scratch_t s;
	scratch_make(&s);
	scratch_write(s.users, "; comment\n"
	                       "# comment\n"
	                       "\n"
	                       "\"alice\" \"md5abcdef\"\n"
	                       "  \"bob\"\t\"say \"\"hi\"\"\"   \n"
	                       "\"carol\" \"\" \"ignored extra field\"\n"
	                       "\"we\"\"ird\" \"SCRAM-SHA-256$4096:salt$a:b\"\r\n");
	char text[512];
	snprintf(text, sizeof text, "[auth]\nmethod = scram-sha-256\nusers = users.txt\n" SHARD0);
	cfg_t *cfg = load_named(text, s.config);
	assert_int_equal(cfg->auth_method, CFG_AUTH_SCRAM);
	assert_int_equal(cfg->n_users, 4);
	assert_string_equal(cfg_find_user(cfg, "alice")->password, "md5abcdef");
	assert_string_equal(cfg_find_user(cfg, "bob")->password, "say \"hi\"");
	assert_string_equal(cfg_find_user(cfg, "carol")->password, "");
	assert_string_equal(cfg_find_user(cfg, "we\"ird")->password, "SCRAM-SHA-256$4096:salt$a:b");
	assert_null(cfg_find_user(cfg, "Alice"));
	cfg_free(cfg);
	scratch_remove(&s);
}

static void test_absolute_users_path_is_kept(void **state)
{
	scratch_t s;
	scratch_make(&s);
	scratch_write(s.users, "\"u\" \"p\"\n");
	char text[512];
	snprintf(text, sizeof text, "[auth]\nmethod = md5\nusers = %s\n" SHARD0, s.users);
	cfg_t *cfg = load_named(text, "elsewhere/pgshard.ini");
	assert_string_equal(cfg->users_path, s.users);
	assert_string_equal(cfg_find_user(cfg, "u")->password, "p");
	cfg_free(cfg);
	scratch_remove(&s);
}

/* ---- admin_users ---- */

static void test_admin_users_is_a_trimmed_list_and_empty_by_default(void **state)
{
	cfg_t *cfg = load(SHARD0);
	assert_int_equal(cfg->admin_users.n, 0);
	assert_false(cfg_is_admin(cfg, "app"));
	cfg_free(cfg);

	cfg = load("[proxy]\nadmin_users =  ops ,  Root User,x\n" SHARD0);
	assert_int_equal(cfg->admin_users.n, 3);
	assert_string_equal(cfg->admin_users.names[0], "ops");
	assert_string_equal(cfg->admin_users.names[1], "Root User");
	assert_string_equal(cfg->admin_users.names[2], "x");
	assert_true(cfg_is_admin(cfg, "ops"));
	assert_true(cfg_is_admin(cfg, "Root User"));
	assert_false(cfg_is_admin(cfg, "OPS")); /* names compare as PostgreSQL's do */
	assert_false(cfg_is_admin(cfg, "app"));
	cfg_free(cfg);

	cfg = load("[proxy]\nadmin_users =\n" SHARD0);
	assert_int_equal(cfg->admin_users.n, 0);
	cfg_free(cfg);
}

static void test_admin_users_refuses_empty_names_and_repeats(void **state)
{
	LOAD_ERROR("[proxy]\nadmin_users = a,,b\n" SHARD0,
	           "pgshard.ini:2: [proxy] admin_users: 'a,,b' has an empty name",
	           "expected names separated by commas");
	LOAD_ERROR("[proxy]\nadmin_users = a,\n" SHARD0, "pgshard.ini:2:", "empty name");
	LOAD_ERROR("[proxy]\nadmin_users = a, b, a\n" SHARD0,
	           "pgshard.ini:2: [proxy] admin_users: 'a, b, a' has a name twice");
	LOAD_ERROR("[proxy]\nadmin_users = a\nadmin_users = b\n" SHARD0,
	           "pgshard.ini:3: [proxy] admin_users: given twice, first at line 2");
}

/* ---- metrics_listen ---- */

static void test_metrics_listen_is_off_by_default_or_an_address(void **state)
{
	cfg_t *cfg = load(SHARD0);
	const char *section, *name;
	char value[64];
	bool shown = false;

	assert_null(cfg->metrics_listen.host);
	assert_int_equal(cfg->metrics_listen.port, 0);
	cfg_free(cfg);

	cfg = load("[proxy]\nmetrics_listen = 127.0.0.1:9930\n" SHARD0);
	assert_string_equal(cfg->metrics_listen.host, "127.0.0.1");
	assert_int_equal(cfg->metrics_listen.port, 9930);
	for (int i = 0; cfg_setting_show(cfg, i, &section, &name, value, sizeof value); i++) {
		if (strcmp(name, "metrics_listen") == 0) {
			assert_string_equal(value, "127.0.0.1:9930");
			shown = true;
		}
	}
	assert_true(shown);
	cfg_free(cfg);

	cfg = load("[proxy]\nmetrics_listen = [::1]:9931\n" SHARD0);
	assert_string_equal(cfg->metrics_listen.host, "::1");
	assert_int_equal(cfg->metrics_listen.port, 9931);
	cfg_free(cfg);

	cfg = load("[proxy]\nmetrics_listen =\n" SHARD0);
	assert_null(cfg->metrics_listen.host);
	cfg_free(cfg);
}

static void test_metrics_listen_refuses_what_is_not_an_address(void **state)
{
	LOAD_ERROR("[proxy]\nmetrics_listen = 9930\n" SHARD0,
	           "pgshard.ini:2: [proxy] metrics_listen: '9930' is not HOST:PORT");
	LOAD_ERROR("[proxy]\nmetrics_listen = localhost:0\n" SHARD0,
	           "pgshard.ini:2:", "nothing for off");
}

static void test_replica_settings_have_defaults_and_checked_values(void **state)
{
	cfg_t *cfg = load(SHARD0);

	assert_int_equal(cfg->replica_reads, CFG_REPLICA_READS_OFF);
	assert_int_equal(cfg->replica_policy, CFG_REPLICA_ROUND_ROBIN);
	assert_int_equal(cfg->max_replica_lag, 16 * 1024 * 1024);
	assert_int_equal(cfg->max_replica_lag_time_ms, 10000);
	assert_int_equal(cfg->replica_check_interval_ms, 100);
	assert_int_equal(cfg->writing_functions.n, 0);
	cfg_free(cfg);

	cfg = load("[proxy]\nreplica_reads = with_primary\nreplica_policy = least_connections\n"
	           "max_replica_lag = 1MB\nmax_replica_lag_time = 250\n"
	           "replica_check_interval = 50\nwriting_functions = audit_log, bump\n" SHARD0);
	assert_int_equal(cfg->replica_reads, CFG_REPLICA_READS_WITH_PRIMARY);
	assert_int_equal(cfg->replica_policy, CFG_REPLICA_LEAST_CONNECTIONS);
	assert_int_equal(cfg->max_replica_lag, 1024 * 1024);
	assert_int_equal(cfg->max_replica_lag_time_ms, 250);
	assert_int_equal(cfg->replica_check_interval_ms, 50);
	assert_int_equal(cfg->writing_functions.n, 2);
	assert_string_equal(cfg->writing_functions.names[1], "bump");
	cfg_free(cfg);

	LOAD_ERROR("[proxy]\nreplica_reads = sometimes\n" SHARD0,
	           "pgshard.ini:2: [proxy] replica_reads: unknown value 'sometimes'",
	           "expected off, on or with_primary");
	LOAD_ERROR("[proxy]\nreplica_policy = random\n" SHARD0,
	           "pgshard.ini:2: [proxy] replica_policy: unknown value 'random'",
	           "expected round_robin or least_connections");
	LOAD_ERROR("[proxy]\nreplica_check_interval = 5\n" SHARD0,
	           "pgshard.ini:2: [proxy] replica_check_interval: 5 is out of range");
}

static void test_admin_user_missing_from_the_users_file_is_an_error(void **state)
{
	scratch_t s;
	char text[512];
	scratch_make(&s);
	scratch_write(s.users, "\"app\" \"secret\"\n\"ops\" \"x\"\n");
	snprintf(text, sizeof text,
	         "[proxy]\nadmin_users = ops, nobody\n[auth]\nmethod = md5\nusers = %s\n" SHARD0,
	         s.users);
	LOAD_ERROR(text,
	           "pgshard.ini:2: [proxy] admin_users: user 'nobody' is not in the users file",
	           "expected a user who can log in");
	snprintf(text, sizeof text,
	         "[proxy]\nadmin_users = ops\n[auth]\nmethod = md5\nusers = %s\n" SHARD0, s.users);
	cfg_free(load(text));
	/* trust: anyone may log in as anyone, so any name will do */
	snprintf(text, sizeof text, "[proxy]\nadmin_users = nobody\n[auth]\nusers = %s\n" SHARD0,
	         s.users);
	cfg_free(load(text));
	scratch_remove(&s);
}

static void test_settings_show_as_a_file_would_give_them(void **state)
{
	cfg_t *cfg =
	    load("[proxy]\nlisten = [::1]:7000\nmerge_memory = 3MB\nmax_route_size = 1500\n"
	         "two_phase_commit = off\nadmin_users = a, b\nreplica_reads = on\n" SHARD0);
	const char *section, *name;
	char buf[128];
	int found = 0, i;

	for (i = 0; cfg_setting_show(cfg, i, &section, &name, buf, sizeof buf); i++) {
		if (strcmp(name, "listen") == 0 && ++found)
			assert_string_equal(buf, "[::1]:7000");
		if (strcmp(name, "merge_memory") == 0 && ++found)
			assert_string_equal(buf, "3MB");
		if (strcmp(name, "max_route_size") == 0 && ++found)
			assert_string_equal(buf, "1500B");
		if (strcmp(name, "two_phase_commit") == 0 && ++found)
			assert_string_equal(buf, "off");
		if (strcmp(name, "admin_users") == 0 && ++found)
			assert_string_equal(buf, "a, b");
		if (strcmp(name, "workers") == 0 && ++found)
			assert_string_equal(buf, "1");
		if (strcmp(name, "replica_reads") == 0 && ++found)
			assert_string_equal(buf, "on");
		if (strcmp(name, "log_min_duration_statement") == 0 && ++found)
			assert_string_equal(buf, "-1");
		if (strcmp(name, "log_connections") == 0 && ++found)
			assert_string_equal(buf, "on");
		if (strcmp(name, "pause_timeout") == 0 && ++found)
			assert_string_equal(buf, "60");
		if (strcmp(name, "method") == 0 && ++found) {
			assert_string_equal(section, "auth");
			assert_string_equal(buf, "trust");
		}
	}
	assert_int_equal(found, 11);
	assert_int_equal(i, 32);
	assert_int_equal(cfg_setting_show(cfg, -1, &section, &name, buf, sizeof buf), 0);
	cfg_free(cfg);
}

static void test_cfg_load_reads_a_file_and_names_it_in_errors(void **state)
{
	char path[] = "/tmp/test_config_file.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char good[] = "[proxy]\nworkers = 4\n" SHARD0;
	assert_int_equal(write(fd, good, sizeof good - 1), (ssize_t)(sizeof good - 1));
	assert_int_equal(close(fd), 0);

	cfg_t *cfg = NULL;
	if (cfg_load(path, &cfg, err, sizeof err) != 0)
		fail_msg("load failed: %s", err);
	assert_string_equal(cfg->path, path);
	assert_int_equal(cfg->workers, 4);
	cfg_free(cfg);

	scratch_write(path, "[proxy]\nworkers = 4\nworkers = 5\n" SHARD0);
	cfg = NULL;
	assert_int_equal(cfg_load(path, &cfg, err, sizeof err), -1);
	assert_null(cfg);
	char where[64];
	snprintf(where, sizeof where, "%s:3:", path);
	assert_non_null(strstr(err, where));
	assert_non_null(strstr(err, "given twice, first at line 2"));
	unlink(path);
}

static void test_auth_method_names(void **state)
{
	assert_string_equal(cfg_auth_method_name(CFG_AUTH_TRUST), "trust");
	assert_string_equal(cfg_auth_method_name(CFG_AUTH_MD5), "md5");
	assert_string_equal(cfg_auth_method_name(CFG_AUTH_SCRAM), "scram-sha-256");
}

static void test_cfg_free_accepts_null(void **state)
{
	cfg_free(NULL);
}

/* ---- errors: file ---- */

static void test_missing_file_says_cannot_open_with_reason(void **state)
{
	cfg_t *cfg = NULL;
	assert_int_equal(cfg_load("/nonexistent/pgshard.ini", &cfg, err, sizeof err), -1);
	assert_null(cfg);
	assert_string_equal(err,
	                    "/nonexistent/pgshard.ini: cannot open: No such file or directory");
}

static void test_error_message_is_truncated_safely(void **state)
{
	char small[12];
	cfg_t *cfg = NULL;
	memset(small, 'x', sizeof small);
	assert_int_equal(cfg_load_string("[nope]\n", "pgshard.ini", &cfg, small, sizeof small), -1);
	assert_string_equal(small, "pgshard.ini");
	assert_int_equal(cfg_load_string("[nope]\n", "pgshard.ini", &cfg, NULL, 0), -1);
	assert_null(cfg);
}

/* ---- errors: syntax and [proxy] / [auth] ---- */

static void test_unknown_section_names_file_line_and_expected_sections(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = 1\n[prxy]\n" SHARD0, "pgshard.ini:3: unknown section [prxy]",
	           "expected [proxy], [auth], [shard.N], [map.NAME] or [table.NAME]");
}

static void test_unknown_key_names_file_line_and_expected_keys(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = 1\npool_sise = 20\n" SHARD0,
	           "pgshard.ini:3: unknown key 'pool_sise' in [proxy] (expected one of: listen, "
	           "workers, pool_size, default_shard, max_clients, max_message_size, "
	           "max_route_size, merge_memory, max_join_rows, "
	           "server_connect_timeout, server_idle_timeout, login_timeout, "
	           "shutdown_timeout, log_min_duration_statement, log_connections, "
	           "log_disconnections, pause_timeout, health_check_interval, "
	           "recovery_interval, recovery_grace, two_phase_commit, "
	           "deadlock_interval, admin_users, replica_reads, replica_policy, "
	           "max_replica_lag, max_replica_lag_time, replica_check_interval, "
	           "writing_functions, metrics_listen)");
	LOAD_ERROR(SHARD0 "master = host=x\n", "pgshard.ini:3: unknown key 'master' in [shard.0]",
	           "expected one of: primary, replica");
	LOAD_ERROR("[auth]\npassword = x\n" SHARD0,
	           "pgshard.ini:2: unknown key 'password' in [auth]",
	           "expected one of: method, users");
}

static void test_line_without_equals_is_a_syntax_error_at_its_line(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = 1\nworkers 2\n" SHARD0, "pgshard.ini:3: cannot parse",
	           "expected [section], key = value");
}

static void test_syntax_error_is_reported_before_later_errors(void **state)
{
	LOAD_ERROR("[proxy]\nworkers\nbogus = 1\n" SHARD0, "pgshard.ini:2: cannot parse");
}

static void test_key_before_any_section_is_an_error(void **state)
{
	LOAD_ERROR("workers = 1\n" SHARD0, "pgshard.ini:1: key 'workers' outside any section");
}

static void test_unterminated_section_header_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m\n", "pgshard.ini:3: section header without closing ']'");
}

static void test_duplicate_key_names_both_lines(void **state)
{
	LOAD_ERROR("[proxy]\npool_size = 1\n\npool_size = 2\n" SHARD0,
	           "pgshard.ini:4: [proxy] pool_size: given twice, first at line 2");
	LOAD_ERROR(SHARD0 "primary = host=y\n", "pgshard.ini:3: [shard.0] primary: given twice");
}

static void test_duplicate_section_names_both_lines(void **state)
{
	LOAD_ERROR(SHARD0 "[shard.0]\n",
	           "pgshard.ini:3: duplicate section [shard.0], first at line 1");
	LOAD_ERROR(SHARD0 "[table.T]\nreference = yes\n[table.t]\n",
	           "pgshard.ini:5: duplicate section [table.t], first at line 3");
}

static void test_overlong_line_is_refused_not_split(void **state)
{
	char text[1024];
	char pw[300];
	memset(pw, 'p', sizeof pw - 1);
	pw[sizeof pw - 1] = '\0';
	snprintf(text, sizeof text, "[shard.0]\nprimary = host=h password=%s\n", pw);
	LOAD_ERROR(text, "pgshard.ini:2: line too long", "expected at most");

	/* a long comment does not count */
	snprintf(text, sizeof text, "[shard.0]\nprimary = host=h ; %s\n; %s\n", pw, pw);
	cfg_free(load(text));
}

static void test_bad_integer_names_setting_and_range(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = two\n" SHARD0,
	           "pgshard.ini:2: [proxy] workers: 'two' is not an integer (expected an integer "
	           "from 1 to 64)");
	LOAD_ERROR("[proxy]\npool_size = 20x\n" SHARD0,
	           "pgshard.ini:2:", "'20x' is not an integer");
	LOAD_ERROR("[proxy]\npool_size =\n" SHARD0, "pgshard.ini:2:", "'' is not an integer");
	LOAD_ERROR("[proxy]\ntwo_phase_commit = maybe\n" SHARD0,
	           "pgshard.ini:2: [proxy] two_phase_commit: 'maybe' is not a boolean (expected on "
	           "or off)");
}

static void test_max_join_rows_is_read_and_must_be_positive(void **state)
{
	cfg_t *cfg = load("[proxy]\nmax_join_rows = 25\n" SHARD0);

	assert_int_equal(cfg->max_join_rows, 25);
	cfg_free(cfg);
	LOAD_ERROR("[proxy]\nmax_join_rows = 0\n" SHARD0,
	           "pgshard.ini:2:", "expected a number of rows from 1 to");
	LOAD_ERROR("[proxy]\nmax_join_rows = many\n" SHARD0, "pgshard.ini:2:", "not an integer");
}

static void test_out_of_range_integer_names_the_bounds(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = 65\n" SHARD0,
	           "pgshard.ini:2: [proxy] workers: 65 is out of range (expected an integer from 1 "
	           "to 64)");
	LOAD_ERROR("[proxy]\npool_size = 0\n" SHARD0, "pgshard.ini:2:", "from 1 to 10000");
	LOAD_ERROR("[proxy]\nmax_clients = 99999999999999999999999\n" SHARD0,
	           "pgshard.ini:2:", "out of range");
	LOAD_ERROR("[proxy]\nserver_connect_timeout = 0\n" SHARD0,
	           "pgshard.ini:2:", "expected milliseconds from 1 to");
}

static void test_health_check_interval_is_milliseconds_from_10_to_an_hour(void **state)
{
	LOAD_ERROR("[proxy]\nhealth_check_interval = 9\n" SHARD0,
	           "pgshard.ini:2: [proxy] health_check_interval: 9 is out of range (expected "
	           "milliseconds from 10 to 3600000)");
	LOAD_ERROR("[proxy]\nhealth_check_interval = 1s\n" SHARD0,
	           "pgshard.ini:2:", "'1s' is not an integer");
	cfg_t *cfg = load("[proxy]\nhealth_check_interval = 3600000\n" SHARD0);
	assert_int_equal(cfg->health_check_interval_ms, 3600000);
	cfg_free(cfg);
}

static void test_deadlock_interval_is_milliseconds_up_to_an_hour_and_0_is_off(void **state)
{
	LOAD_ERROR("[proxy]\ndeadlock_interval = -1\n" SHARD0,
	           "pgshard.ini:2: [proxy] deadlock_interval: -1 is out of range (expected "
	           "milliseconds (0: off) from 0 to 3600000)");
	LOAD_ERROR("[proxy]\ndeadlock_interval = 3600001\n" SHARD0,
	           "pgshard.ini:2: [proxy] deadlock_interval: 3600001 is out of range");
	LOAD_ERROR("[proxy]\ndeadlock_interval = 1s\n" SHARD0,
	           "pgshard.ini:2:", "'1s' is not an integer");
	cfg_t *cfg = load("[proxy]\ndeadlock_interval = 0\n" SHARD0);
	assert_int_equal(cfg->deadlock_interval_ms, 0);
	cfg_free(cfg);
}

static void test_shutdown_timeout_is_seconds_up_to_an_hour_and_0_is_at_once(void **state)
{
	LOAD_ERROR("[proxy]\nshutdown_timeout = -1\n" SHARD0,
	           "pgshard.ini:2: [proxy] shutdown_timeout: -1 is out of range (expected seconds "
	           "from 0 to 3600)");
	LOAD_ERROR("[proxy]\nshutdown_timeout = 30s\n" SHARD0,
	           "pgshard.ini:2:", "'30s' is not an integer");
	cfg_t *cfg = load("[proxy]\nshutdown_timeout = 0\n" SHARD0);
	assert_int_equal(cfg->shutdown_timeout_s, 0);
	cfg_free(cfg);
}

static void test_log_min_duration_statement_is_milliseconds_and_minus_1_is_off(void **state)
{
	LOAD_ERROR(
	    "[proxy]\nlog_min_duration_statement = -2\n" SHARD0,
	    "pgshard.ini:2: [proxy] log_min_duration_statement: -2 is out of range (expected "
	    "milliseconds (-1: off) from -1 to 86400000)");
	LOAD_ERROR("[proxy]\nlog_min_duration_statement = 1s\n" SHARD0,
	           "pgshard.ini:2:", "'1s' is not an integer");
	cfg_t *cfg = load("[proxy]\nlog_min_duration_statement = 0\n" SHARD0);
	assert_int_equal(cfg->log_min_duration_statement_ms, 0);
	cfg_free(cfg);
}

static void test_recovery_interval_is_milliseconds_from_10_to_an_hour(void **state)
{
	LOAD_ERROR("[proxy]\nrecovery_interval = 9\n" SHARD0,
	           "pgshard.ini:2: [proxy] recovery_interval: 9 is out of range (expected "
	           "milliseconds from 10 to 3600000)");
	LOAD_ERROR("[proxy]\nrecovery_interval = 3600001\n" SHARD0,
	           "pgshard.ini:2:", "out of range");
	LOAD_ERROR("[proxy]\nrecovery_interval = 5s\n" SHARD0,
	           "pgshard.ini:2:", "'5s' is not an integer");
	cfg_t *cfg = load("[proxy]\nrecovery_interval = 10\n" SHARD0);
	assert_int_equal(cfg->recovery_interval_ms, 10);
	cfg_free(cfg);
	cfg = load("[proxy]\nrecovery_interval = 3600000\n" SHARD0);
	assert_int_equal(cfg->recovery_interval_ms, 3600000);
	cfg_free(cfg);
}

/* 0 is allowed: resolving a young prepared transaction is safe, only needlessly early */
static void test_recovery_grace_is_milliseconds_from_0_to_an_hour(void **state)
{
	LOAD_ERROR("[proxy]\nrecovery_grace = -1\n" SHARD0,
	           "pgshard.ini:2: [proxy] recovery_grace: -1 is out of range (expected "
	           "milliseconds from 0 to 3600000)");
	LOAD_ERROR("[proxy]\nrecovery_grace = 3600001\n" SHARD0, "pgshard.ini:2:", "out of range");
	LOAD_ERROR("[proxy]\nrecovery_grace = ten\n" SHARD0,
	           "pgshard.ini:2:", "'ten' is not an integer");
	cfg_t *cfg = load("[proxy]\nrecovery_grace = 0\n" SHARD0);
	assert_int_equal(cfg->recovery_grace_ms, 0);
	cfg_free(cfg);
	cfg = load("[proxy]\nrecovery_grace = 3600000\n" SHARD0);
	assert_int_equal(cfg->recovery_grace_ms, 3600000);
	cfg_free(cfg);
}

static void test_bad_max_message_size_names_units(void **state)
{
	LOAD_ERROR("[proxy]\nmax_message_size = 64mb\n" SHARD0,
	           "pgshard.ini:2: [proxy] max_message_size: '64mb' is not a size", "kB, MB, GB");
	LOAD_ERROR("[proxy]\nmax_message_size = 512\n" SHARD0,
	           "pgshard.ini:2:", "512 is out of range", "1024");
	LOAD_ERROR("[proxy]\nmax_message_size = 2GB\n" SHARD0, "pgshard.ini:2:", "out of range");
}

static void test_bad_listen_says_host_port_expected(void **state)
{
	LOAD_ERROR("[proxy]\nlisten = localhost\n" SHARD0,
	           "pgshard.ini:2: [proxy] listen: 'localhost' is not HOST:PORT",
	           "expected e.g. 127.0.0.1:6432");
	LOAD_ERROR("[proxy]\nlisten = 127.0.0.1:70000\n" SHARD0, "pgshard.ini:2:", "not HOST:PORT");
	LOAD_ERROR("[proxy]\nlisten = :6432\n" SHARD0, "pgshard.ini:2:", "not HOST:PORT");
	LOAD_ERROR("[proxy]\nlisten = ::1:6432\n" SHARD0, "pgshard.ini:2:", "[::1]:6432");
}

static void test_bad_auth_method_lists_the_methods(void **state)
{
	LOAD_ERROR(
	    "[auth]\nmethod = password\n" SHARD0,
	    "pgshard.ini:2: [auth] method: unknown method 'password' (expected trust, md5 or "
	    "scram-sha-256)");
}

static void test_md5_without_users_file_is_an_error_at_the_method_line(void **state)
{
	LOAD_ERROR("[proxy]\n[auth]\nmethod = md5\n" SHARD0,
	           "pgshard.ini:3: [auth] method = md5 needs a users file",
	           "expected users = PATH");
}

static void test_missing_users_file_names_config_line_and_path(void **state)
{
	scratch_t s;
	scratch_make(&s);
	char where[256], missing[256];
	snprintf(where, sizeof where, "%s:3: [auth] users: cannot open", s.config);
	snprintf(missing, sizeof missing, "'%s/nope.txt': No such file or directory", s.dir);
	LOAD_ERROR_NAMED("[auth]\nmethod = trust\nusers = nope.txt\n" SHARD0, s.config, where,
	                 missing);
	scratch_remove(&s);
}

static void test_users_file_syntax_error_names_users_file_and_line(void **state)
{
	scratch_t s;
	scratch_make(&s);
	const char text[] = "[auth]\nmethod = md5\nusers = users.txt\n" SHARD0;
	char where[256];

	scratch_write(s.users, "\"a\" \"1\"\n; ok\nb \"2\"\n");
	snprintf(where, sizeof where, "%s:3: cannot parse user line", s.users);
	LOAD_ERROR_NAMED(text, s.config, where, "expected \"user\" \"password\"");

	scratch_write(s.users, "\"a\" \"unterminated\n");
	snprintf(where, sizeof where, "%s:1: cannot parse user line", s.users);
	LOAD_ERROR_NAMED(text, s.config, where);

	scratch_write(s.users, "\"a\" \"1\"x\n");
	LOAD_ERROR_NAMED(text, s.config, where);

	scratch_write(s.users, "\"\" \"1\"\n");
	snprintf(where, sizeof where, "%s:1: empty user name", s.users);
	LOAD_ERROR_NAMED(text, s.config, where);

	scratch_write(s.users, "\"a\" \"1\"\n\"b\" \"2\"\n\"a\" \"3\"\n\"a\" \"4\"\n");
	snprintf(where, sizeof where, "%s:3: user 'a' is listed twice, first at line 1", s.users);
	LOAD_ERROR_NAMED(text, s.config, where);
	scratch_remove(&s);
}

/* ---- errors: shards ---- */

static void test_no_shards_at_all_is_an_error(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = 1\n", "pgshard.ini: no [shard.N] section",
	           "expected at least [shard.0]");
}

static void test_shard_without_primary_is_an_error_at_its_header(void **state)
{
	LOAD_ERROR(SHARD0 "\n[shard.1]\nreplica = host=r\n",
	           "pgshard.ini:4: [shard.1] has no primary (expected primary = ");
}

static void test_gap_in_shard_ids_names_the_missing_shard(void **state)
{
	LOAD_ERROR(SHARD0 "[shard.2]\nprimary = host=c\n",
	           "pgshard.ini:3: shard 1 is missing before [shard.2]", "add [shard.1]");
	LOAD_ERROR(SHARD1, "pgshard.ini:1: shard 0 is missing before [shard.1]");
}

static void test_bad_shard_section_name_is_an_error(void **state)
{
	LOAD_ERROR("[shard.x]\n", "pgshard.ini:1: bad section name [shard.x]", "[shard.N]");
	LOAD_ERROR("[shard.01]\n", "pgshard.ini:1: bad section name [shard.01]");
}

static void test_bad_conninfo_quotes_libpq(void **state)
{
	LOAD_ERROR("[shard.0]\nprimary = host=h bogus=1\n",
	           "pgshard.ini:2: [shard.0] primary: invalid connection option \"bogus\"",
	           "expected a libpq connection string");
	LOAD_ERROR("[shard.0]\nprimary = host=h port=x\n",
	           "pgshard.ini:2: [shard.0] primary: bad port 'x'");
	LOAD_ERROR(SHARD0 "replica = host=a,b\n",
	           "pgshard.ini:3: [shard.0] replica: several hosts");
	LOAD_ERROR("[shard.0]\nprimary =\n", "pgshard.ini:2: [shard.0] primary: empty");
}

static void test_default_shard_must_exist(void **state)
{
	LOAD_ERROR("[proxy]\nworkers = 1\ndefault_shard = 2\n" SHARD0 SHARD1,
	           "pgshard.ini:3: [proxy] default_shard: shard 2 does not exist");
}

/* ---- errors: maps ---- */

static void test_map_referencing_missing_shard_names_the_shards_line(void **state)
{
	LOAD_ERROR(SHARD0 SHARD1 "[map.users]\nkind = hash\nkey = bigint\nshards = 0, 1, 7\n",
	           "pgshard.ini:8: [map.users] shards: shard 7 does not exist (expected an id of a "
	           "[shard.N] section)");
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = - - 3\n",
	           "pgshard.ini:6: [map.r] range: shard 3 does not exist");
}

static void test_bad_shard_list_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = text\nshards = 0,,1\n",
	           "pgshard.ini:6: [map.m] shards: '0,,1' is not a list of shard ids");
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = text\nshards = 0, 0\n",
	           "pgshard.ini:6: [map.m] shards: shard 0 is listed twice");
}

static void test_bad_map_kind_lists_the_kinds(void **state)
{
	LOAD_ERROR(
	    SHARD0 "[map.m]\nkind = modulo\n",
	    "pgshard.ini:4: [map.m] kind: unknown map kind 'modulo' (expected hash or range)");
}

static void test_bad_key_type_lists_the_types(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = int4\n",
	           "pgshard.ini:5: [map.m] key: unknown key type 'int4' (expected bigint, text or "
	           "uuid)");
}

static void test_map_without_kind_or_key_is_an_error_at_its_header(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nkey = text\nshards = 0\n",
	           "pgshard.ini:3: [map.m] has no kind");
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nshards = 0\n",
	           "pgshard.ini:3: [map.m] has no key");
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = text\n",
	           "pgshard.ini:3: [map.m] has no shards");
	LOAD_ERROR(SHARD0 "[map.m]\nkind = range\nkey = text\n",
	           "pgshard.ini:3: [map.m] has no ranges");
}

static void test_range_on_hash_map_is_an_error_at_the_range_line(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = bigint\nshards = 0\nrange = - - 0\n",
	           "pgshard.ini:7: [map.m] range: not allowed in a hash map");
}

static void test_shards_or_vnodes_on_range_map_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nshards = 0\nkind = range\nkey = bigint\nrange = - - 0\n",
	           "pgshard.ini:4: [map.m] shards: not allowed in a range map");
	LOAD_ERROR(SHARD0 "[map.m]\nkind = range\nkey = bigint\nrange = - - 0\nvnodes = 8\n",
	           "pgshard.ini:7: [map.m] vnodes: not allowed in a range map");
}

static void test_bad_vnodes_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = bigint\nshards = 0\nvnodes = 0\n",
	           "pgshard.ini:7: [map.m] vnodes: '0' is out of range (expected an integer from 1 "
	           "to 65536)");
}

static void test_overlapping_ranges_name_both_lines(void **state)
{
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\n"
	                  "range = 100 200 0\n"
	                  "range = - 50 0\n"
	                  "range = 150 - 0\n",
	           "pgshard.ini:8: [map.r] range: [150, +inf) overlaps [100, 200) at line 6",
	           "expected ranges that do not overlap");
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = - 10 0\nrange = - 5 0\n",
	           "pgshard.ini:7:", "overlaps [-inf, 10) at line 6");
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = text\nrange = a c 0\nrange = b d 0\n",
	           "pgshard.ini:7: [map.r] range: [b, d) overlaps [a, c) at line 6");
}

static void test_adjacent_ranges_do_not_overlap(void **state)
{
	cfg_free(load(SHARD0 "[map.r]\nkind = range\nkey = bigint\n"
	                     "range = 10 20 0\nrange = - 10 0\nrange = 20 - 0\n"));
}

static void test_range_lo_not_below_hi_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = 10 5 0\n",
	           "pgshard.ini:6: [map.r] range: lo 10 is not below hi 5",
	           "lo is inclusive, hi exclusive");
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = 7 7 0\n",
	           "pgshard.ini:6:", "lo 7 is not below hi 7");
	/* numeric, not textual, comparison for bigint: 9 < 10 */
	cfg_free(load(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = 9 10 0\n"));
}

static void test_range_bounds_must_match_the_key_type(void **state)
{
	LOAD_ERROR(SHARD0 "[map.r]\nrange = abc - 0\nkind = range\nkey = bigint\n",
	           "pgshard.ini:4: [map.r] range: lo 'abc' is not a bigint (expected an integer or "
	           "'-')");
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = uuid\nrange = - 1234 0\n",
	           "pgshard.ini:6: [map.r] range: hi '1234' is not a uuid");
}

static void test_malformed_range_line_shows_the_expected_shape(void **state)
{
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = 1 2\n",
	           "pgshard.ini:6: [map.r] range: '1 2' is not LO HI SHARD");
	LOAD_ERROR(SHARD0 "[map.r]\nkind = range\nkey = bigint\nrange = 1 2 0 4\n",
	           "pgshard.ini:6:", "is not LO HI SHARD");
}

/* ---- errors: tables ---- */

static void test_table_referencing_missing_map_names_the_map_line(void **state)
{
	LOAD_ERROR(SHARD0 "[map.users]\nkind = hash\nkey = bigint\nshards = 0\n"
	                  "[table.orders]\nkey = user_id\nmap = usrs\n",
	           "pgshard.ini:9: [table.orders] map: map 'usrs' does not exist",
	           "expected the NAME of a [map.NAME] section: users");
}

static void test_table_with_both_reference_and_key_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[map.m]\nkind = hash\nkey = bigint\nshards = 0\n"
	                  "[table.t]\nreference = yes\nkey = id\nmap = m\n",
	           "pgshard.ini:9: [table.t] has both reference = yes and a shard key",
	           "expected either reference = yes, or key = COLUMN and map = NAME");
}

static void test_table_with_neither_reference_nor_key_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[table.t]\n", "pgshard.ini:3: [table.t] is neither");
	LOAD_ERROR(SHARD0 "[table.t]\nreference = no\n", "pgshard.ini:3: [table.t] is neither");
	LOAD_ERROR(SHARD0 "[table.t]\nkey = id\n", "pgshard.ini:3: [table.t] has a key but no map");
}

static void test_bad_reference_value_lists_booleans(void **state)
{
	LOAD_ERROR(SHARD0 "[table.t]\nreference = maybe\n",
	           "pgshard.ini:4: [table.t] reference: 'maybe' is not a boolean");
}

static void test_bad_table_name_is_an_error(void **state)
{
	LOAD_ERROR(SHARD0 "[table.]\n", "pgshard.ini:3: bad table name in [table.]");
	LOAD_ERROR(SHARD0 "[table.a b]\n", "pgshard.ini:3: bad table name");
	LOAD_ERROR(SHARD0 "[table.\"open]\n", "pgshard.ini:3: bad table name");
	LOAD_ERROR(SHARD0 "[table.a..b]\n", "pgshard.ini:3: bad table name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_design_example_loads_with_every_field),
	    cmocka_unit_test(test_minimal_config_gets_documented_defaults),
	    cmocka_unit_test(test_every_proxy_setting_is_read),
	    cmocka_unit_test(test_health_check_interval_is_milliseconds_from_10_to_an_hour),
	    cmocka_unit_test(test_recovery_interval_is_milliseconds_from_10_to_an_hour),
	    cmocka_unit_test(test_deadlock_interval_is_milliseconds_up_to_an_hour_and_0_is_off),
	    cmocka_unit_test(test_shutdown_timeout_is_seconds_up_to_an_hour_and_0_is_at_once),
	    cmocka_unit_test(test_log_min_duration_statement_is_milliseconds_and_minus_1_is_off),
	    cmocka_unit_test(test_recovery_grace_is_milliseconds_from_0_to_an_hour),
	    cmocka_unit_test(test_listen_accepts_bracketed_ipv6),
	    cmocka_unit_test(test_max_message_size_takes_postgres_memory_units),
	    cmocka_unit_test(test_conninfo_uri_and_hostaddr_fill_the_node),
	    cmocka_unit_test(test_comments_are_stripped_but_a_semicolon_inside_a_value_is_kept),
	    cmocka_unit_test(test_indented_keys_are_keys_not_continuation_lines),
	    cmocka_unit_test(test_crlf_line_endings_and_bom_are_accepted),
	    cmocka_unit_test(test_shards_may_be_declared_in_any_order),
	    cmocka_unit_test(test_maps_and_tables_may_refer_forward),
	    cmocka_unit_test(test_table_names_are_lower_cased_unless_quoted),
	    cmocka_unit_test(test_reference_no_with_key_and_map_is_a_sharded_table),
	    cmocka_unit_test(test_ranges_are_sorted_by_lo_with_unbounded_first),
	    cmocka_unit_test(test_text_ranges_compare_bytewise),
	    cmocka_unit_test(test_uuid_bounds_are_stored_in_canonical_form),
	    cmocka_unit_test(test_users_file_follows_pgbouncer_auth_file_format),
	    cmocka_unit_test(test_absolute_users_path_is_kept),
	    cmocka_unit_test(test_cfg_load_reads_a_file_and_names_it_in_errors),
	    cmocka_unit_test(test_auth_method_names),
	    cmocka_unit_test(test_cfg_free_accepts_null),
	    cmocka_unit_test(test_missing_file_says_cannot_open_with_reason),
	    cmocka_unit_test(test_error_message_is_truncated_safely),
	    cmocka_unit_test(test_unknown_section_names_file_line_and_expected_sections),
	    cmocka_unit_test(test_unknown_key_names_file_line_and_expected_keys),
	    cmocka_unit_test(test_line_without_equals_is_a_syntax_error_at_its_line),
	    cmocka_unit_test(test_syntax_error_is_reported_before_later_errors),
	    cmocka_unit_test(test_key_before_any_section_is_an_error),
	    cmocka_unit_test(test_unterminated_section_header_is_an_error),
	    cmocka_unit_test(test_duplicate_key_names_both_lines),
	    cmocka_unit_test(test_duplicate_section_names_both_lines),
	    cmocka_unit_test(test_overlong_line_is_refused_not_split),
	    cmocka_unit_test(test_bad_integer_names_setting_and_range),
	    cmocka_unit_test(test_out_of_range_integer_names_the_bounds),
	    cmocka_unit_test(test_bad_max_message_size_names_units),
	    cmocka_unit_test(test_bad_listen_says_host_port_expected),
	    cmocka_unit_test(test_bad_auth_method_lists_the_methods),
	    cmocka_unit_test(test_md5_without_users_file_is_an_error_at_the_method_line),
	    cmocka_unit_test(test_missing_users_file_names_config_line_and_path),
	    cmocka_unit_test(test_users_file_syntax_error_names_users_file_and_line),
	    cmocka_unit_test(test_no_shards_at_all_is_an_error),
	    cmocka_unit_test(test_shard_without_primary_is_an_error_at_its_header),
	    cmocka_unit_test(test_gap_in_shard_ids_names_the_missing_shard),
	    cmocka_unit_test(test_bad_shard_section_name_is_an_error),
	    cmocka_unit_test(test_bad_conninfo_quotes_libpq),
	    cmocka_unit_test(test_default_shard_must_exist),
	    cmocka_unit_test(test_map_referencing_missing_shard_names_the_shards_line),
	    cmocka_unit_test(test_bad_shard_list_is_an_error),
	    cmocka_unit_test(test_bad_map_kind_lists_the_kinds),
	    cmocka_unit_test(test_bad_key_type_lists_the_types),
	    cmocka_unit_test(test_map_without_kind_or_key_is_an_error_at_its_header),
	    cmocka_unit_test(test_range_on_hash_map_is_an_error_at_the_range_line),
	    cmocka_unit_test(test_shards_or_vnodes_on_range_map_is_an_error),
	    cmocka_unit_test(test_bad_vnodes_is_an_error),
	    cmocka_unit_test(test_overlapping_ranges_name_both_lines),
	    cmocka_unit_test(test_adjacent_ranges_do_not_overlap),
	    cmocka_unit_test(test_range_lo_not_below_hi_is_an_error),
	    cmocka_unit_test(test_range_bounds_must_match_the_key_type),
	    cmocka_unit_test(test_malformed_range_line_shows_the_expected_shape),
	    cmocka_unit_test(test_table_referencing_missing_map_names_the_map_line),
	    cmocka_unit_test(test_table_with_both_reference_and_key_is_an_error),
	    cmocka_unit_test(test_table_with_neither_reference_nor_key_is_an_error),
	    cmocka_unit_test(test_bad_reference_value_lists_booleans),
	    cmocka_unit_test(test_bad_table_name_is_an_error),
	    cmocka_unit_test(test_admin_users_is_a_trimmed_list_and_empty_by_default),
	    cmocka_unit_test(test_admin_users_refuses_empty_names_and_repeats),
	    cmocka_unit_test(test_metrics_listen_is_off_by_default_or_an_address),
	    cmocka_unit_test(test_metrics_listen_refuses_what_is_not_an_address),
	    cmocka_unit_test(test_replica_settings_have_defaults_and_checked_values),
	    cmocka_unit_test(test_admin_user_missing_from_the_users_file_is_an_error),
	    cmocka_unit_test(test_settings_show_as_a_file_would_give_them),
	    cmocka_unit_test(test_max_join_rows_is_read_and_must_be_positive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
