/*
 * test_nodes.c — the node table built from configs, views of the nodes'
 * state and their mailbox, and the cancel pid encoding (proxy/nodes.c,
 * proxy/cancelkey.h).
 */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/cancelkey.h"
#include "proxy/nodes.h"

static char users_path[64];

static int setup(void **state)
{
	FILE *f;

	snprintf(users_path, sizeof(users_path), "/tmp/test_nodes_users_%d.txt", (int)getpid());
	f = fopen(users_path, "w");
	if (f == NULL)
		return -1;
	fputs("\"app\" \"app-secret\"\n\"other\" \"md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	unlink(users_path);
	return 0;
}

static cfg_t *load(const char *text)
{
	char err[512], *full;
	cfg_t *cfg = NULL;
	size_t len = strlen(text) + strlen(users_path) + 64;

	full = malloc(len);
	assert_non_null(full);
	snprintf(full, len, "[auth]\nmethod = md5\nusers = %s\n%s", users_path, text);
	if (cfg_load_string(full, "test.ini", &cfg, err, sizeof(err)) < 0)
		fail_msg("config does not load: %s", err);
	free(full);
	return cfg;
}

#define TWO_SHARDS                                                                                 \
	"[shard.0]\n"                                                                              \
	"primary = host=10.0.0.1 port=5432 dbname=app user=app\n"                                  \
	"replica = host=10.0.0.2 port=5432 dbname=app user=app\n"                                  \
	"replica = host=10.0.0.3 port=5433 dbname=app user=app\n"                                  \
	"[shard.1]\n"                                                                              \
	"primary = host=10.0.1.1 port=5432\n"

static void test_table_lists_each_shard_primary_then_its_replicas_in_file_order(void **state)
{
	cfg_t *cfg = load(TWO_SHARDS);
	nodes_table_t *t = nodes_table_new(cfg);

	assert_non_null(t);
	assert_int_equal(t->n, 4);
	assert_int_equal(t->n_shards, 2);
	for (int i = 0; i < t->n; i++)
		assert_int_equal(t->nodes[i].id, i);

	assert_ptr_equal(nodes_primary(t, 0), &t->nodes[0]);
	assert_int_equal(t->nodes[0].role, NODE_PRIMARY);
	assert_int_equal(t->nodes[0].replica, -1);
	assert_string_equal(t->nodes[0].host, "10.0.0.1");

	assert_int_equal(nodes_n_replicas(t, 0), 2);
	assert_ptr_equal(nodes_replica(t, 0, 0), &t->nodes[1]);
	assert_ptr_equal(nodes_replica(t, 0, 1), &t->nodes[2]);
	assert_int_equal(t->nodes[2].role, NODE_REPLICA);
	assert_int_equal(t->nodes[2].replica, 1);
	assert_int_equal(t->nodes[2].shard, 0);
	assert_int_equal(t->nodes[2].port, 5433);
	assert_string_equal(t->nodes[2].dbname, "app");
	assert_string_equal(t->nodes[2].user, "app");

	assert_ptr_equal(nodes_primary(t, 1), &t->nodes[3]);
	assert_int_equal(t->nodes[3].shard, 1);
	assert_int_equal(nodes_n_replicas(t, 1), 0);
	assert_null(nodes_replica(t, 1, 0));
	assert_null(nodes_primary(t, 2));
	assert_null(nodes_primary(t, -1));
	assert_null(nodes_replica(t, 0, 2));

	assert_string_equal(nodes_role_name(t->nodes[0].role), "primary");
	assert_string_equal(nodes_role_name(t->nodes[1].role), "replica");
	nodes_table_put(t);
	cfg_free(cfg);
}

static void test_health_check_logs_in_as_the_conninfo_says_or_as_the_first_user(void **state)
{
	cfg_t *cfg = load("[shard.0]\n"
	                  "primary = host=h1 dbname=app user=other\n"
	                  "replica = host=h2 user=app password=given\n"
	                  "replica = host=h3\n");
	nodes_table_t *t = nodes_table_new(cfg);

	assert_non_null(t);
	/* the conninfo's user, with its users file password (here a hash) */
	assert_string_equal(t->nodes[0].check_user, "other");
	assert_string_equal(t->nodes[0].check_password, "md5aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(t->nodes[0].check_dbname, "app");
	assert_null(t->nodes[0].password);
	/* the conninfo's password wins; no dbname: postgres */
	assert_string_equal(t->nodes[1].check_password, "given");
	assert_string_equal(t->nodes[1].password, "given");
	assert_string_equal(t->nodes[1].check_dbname, "postgres");
	/* neither: the users file's first user, while the data path uses the client's */
	assert_null(t->nodes[2].user);
	assert_null(t->nodes[2].dbname);
	assert_string_equal(t->nodes[2].check_user, "app");
	assert_string_equal(t->nodes[2].check_password, "app-secret");
	nodes_table_put(t);
	cfg_free(cfg);
}

/* the value of key in l, the last one when it is repeated (libpq: the last wins) */
static const char *login_value(const nodes_login_t *l, const char *key)
{
	const char *v = NULL;

	for (int i = 0; l->keys[i] != NULL; i++) {
		if (strcmp(l->keys[i], key) == 0)
			v = l->vals[i];
	}
	return v;
}

static void test_login_as_the_check_or_as_the_conninfo_says(void **state)
{
	cfg_t *cfg = load("[shard.0]\n"
	                  "primary = host=h1 dbname=app user=app\n"
	                  "replica = host=h2 dbname=app user=other\n"
	                  "replica = host=h3 user=app password=given\n"
	                  "replica = host=h4\n");
	nodes_table_t *t = nodes_table_new(cfg);
	nodes_login_t l;

	assert_non_null(t);
	/* the conninfo first (expanded), then what overrides it */
	assert_true(nodes_login(&l, &t->nodes[0], NODES_LOGIN_CHECK, "chk", NULL));
	assert_string_equal(l.keys[0], "dbname");
	assert_string_equal(l.vals[0], "host=h1 dbname=app user=app");
	assert_string_equal(login_value(&l, "user"), "app");
	assert_string_equal(login_value(&l, "password"), "app-secret");
	assert_string_equal(login_value(&l, "dbname"), "app");
	assert_string_equal(login_value(&l, "application_name"), "chk");
	assert_null(login_value(&l, "options"));
	assert_false(l.withheld_password);
	assert_true(nodes_login(&l, &t->nodes[0], NODES_LOGIN_CONNINFO, "rec", "-c x=1"));
	assert_string_equal(login_value(&l, "user"), "app");
	assert_string_equal(login_value(&l, "dbname"), "app");
	assert_string_equal(login_value(&l, "options"), "-c x=1");
	assert_string_equal(login_value(&l, "application_name"), "rec");

	/* a hash in the users file is withheld: libpq cannot log in with it */
	assert_true(nodes_login(&l, &t->nodes[1], NODES_LOGIN_CONNINFO, "rec", NULL));
	assert_string_equal(login_value(&l, "user"), "other");
	assert_null(login_value(&l, "password"));
	assert_true(l.withheld_password);

	/* no dbname in the conninfo: the check goes to postgres, recovery cannot know */
	assert_true(nodes_login(&l, &t->nodes[2], NODES_LOGIN_CHECK, "chk", NULL));
	assert_string_equal(login_value(&l, "dbname"), "postgres");
	assert_string_equal(login_value(&l, "password"), "given");
	assert_false(nodes_login(&l, &t->nodes[2], NODES_LOGIN_CONNINFO, "rec", NULL));
	/* neither */
	assert_true(nodes_login(&l, &t->nodes[3], NODES_LOGIN_CHECK, "chk", NULL));
	assert_string_equal(login_value(&l, "user"), "app");
	assert_false(nodes_login(&l, &t->nodes[3], NODES_LOGIN_CONNINFO, "rec", NULL));
	nodes_table_put(t);
	cfg_free(cfg);
}

static void test_login_in_another_database_as_the_conninfos_user(void **state)
{
	cfg_t *cfg = load("[shard.0]\n"
	                  "primary = host=h1 dbname=app user=app\n"
	                  "replica = host=h3 user=app password=given\n"
	                  "replica = host=h4\n");
	nodes_table_t *t = nodes_table_new(cfg);
	nodes_login_t l;

	assert_non_null(t);
	/* the conninfo's database overridden, its user and password kept */
	assert_true(nodes_login_in(&l, &t->nodes[0], "app2", "rec", "-c x=1"));
	assert_string_equal(l.vals[0], "host=h1 dbname=app user=app");
	assert_string_equal(login_value(&l, "dbname"), "app2");
	assert_string_equal(login_value(&l, "user"), "app");
	assert_string_equal(login_value(&l, "password"), "app-secret");
	assert_string_equal(login_value(&l, "options"), "-c x=1");
	/* a conninfo that leaves the database to the client: any database, as its user */
	assert_true(nodes_login_in(&l, &t->nodes[1], "app2", "rec", NULL));
	assert_string_equal(login_value(&l, "dbname"), "app2");
	assert_string_equal(login_value(&l, "user"), "app");
	assert_string_equal(login_value(&l, "password"), "given");
	/* no user: as whom is unknown */
	assert_false(nodes_login_in(&l, &t->nodes[2], "app2", "rec", NULL));
	nodes_table_put(t);
	cfg_free(cfg);
}

static void test_a_new_view_knows_nothing_yet(void **state)
{
	cfg_t *cfg = load(TWO_SHARDS);
	nodes_table_t *t = nodes_table_new(cfg);
	nodes_view_t *v = nodes_view_new(t, NULL);
	struct sockaddr_storage ss;
	socklen_t len = 0;

	assert_non_null(v);
	assert_int_equal(v->version, 1);
	for (int i = 0; i < t->n; i++) {
		const node_state_t *st = nodes_view_state(v, &t->nodes[i]);

		assert_ptr_equal(st, &v->states[i]);
		assert_int_equal(st->health, NODE_UNKNOWN);
		assert_int_equal(st->in_recovery, -1);
		assert_int_equal(st->checked_at_ms, 0);
		assert_int_equal(st->addrlen, 0);
		assert_string_equal(st->error, "");
	}
	assert_false(nodes_view_addr(v, "10.0.0.1", 5432, &ss, &len));
	assert_string_equal(nodes_health_name(NODE_UNKNOWN), "unknown");
	nodes_table_put(t); /* the view holds its own reference */
	nodes_view_put(v);
	cfg_free(cfg);
}

static void set_addr(node_state_t *st, uint32_t ip, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&st->addr;

	memset(&st->addr, 0, sizeof(st->addr));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(ip);
	sin->sin_port = htons(port);
	st->addrlen = sizeof(*sin);
}

static void test_published_address_is_found_by_host_and_port(void **state)
{
	cfg_t *cfg = load(TWO_SHARDS);
	nodes_table_t *t = nodes_table_new(cfg);
	nodes_view_t *v = nodes_view_new(t, NULL);
	struct sockaddr_storage ss;
	socklen_t len = 0;

	set_addr(&v->states[2], 0x0a000003, 5433);
	assert_true(nodes_view_addr(v, "10.0.0.3", 5433, &ss, &len));
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5433);
	assert_false(nodes_view_addr(v, "10.0.0.3", 5432, &ss, &len));
	assert_false(nodes_view_addr(v, "10.0.0.2", 5432, &ss, &len));
	nodes_view_put(v);
	nodes_table_put(t);
	cfg_free(cfg);
}

/*
 * A reload renumbers the nodes (a replica added to shard 0 moves shard 1's
 * primary from id 3 to 4): states follow the node, not the id.
 */
static void test_reload_carries_states_over_by_node_not_by_id(void **state)
{
	cfg_t *cfg1 = load(TWO_SHARDS);
	cfg_t *cfg2 = load("[shard.0]\n"
	                   "primary = host=10.0.0.1 port=5432 dbname=app user=app\n"
	                   "replica = host=10.0.0.2 port=5432 dbname=app user=app\n"
	                   "replica = host=10.0.0.3 port=5433 dbname=app user=app\n"
	                   "replica = host=10.0.0.4 port=5432 dbname=app user=app\n"
	                   "[shard.1]\n"
	                   "primary = host=10.0.1.1 port=5432\n"
	                   "[shard.2]\n"
	                   "primary = host=10.0.0.2 port=5432\n");
	nodes_table_t *t1 = nodes_table_new(cfg1), *t2 = nodes_table_new(cfg2);
	nodes_view_t *v1 = nodes_view_new(t1, NULL), *v2;

	v1->states[3].health = NODE_DOWN;
	snprintf(v1->states[3].error, sizeof(v1->states[3].error), "connection refused");
	v1->states[3].checked_at_ms = 42;
	v1->states[1].health = NODE_UP;
	set_addr(&v1->states[1], 0x0a000002, 5432);

	v2 = nodes_view_new(t2, v1);
	assert_int_equal(v2->version, 2);
	assert_int_equal(t2->n, 6);
	/* shard 1's primary: id 3, now 4 */
	assert_int_equal(nodes_primary(t2, 1)->id, 4);
	assert_int_equal(v2->states[4].health, NODE_DOWN);
	assert_string_equal(v2->states[4].error, "connection refused");
	assert_int_equal(v2->states[4].checked_at_ms, 42);
	assert_int_equal(v2->states[1].health, NODE_UP);
	/* the new replica knows nothing */
	assert_int_equal(v2->states[3].health, NODE_UNKNOWN);
	/* shard 2's primary is the server that is shard 0's replica: not the same node (its
	 * health is its own), but the same address */
	assert_int_equal(v2->states[5].health, NODE_UNKNOWN);
	assert_int_equal(v2->states[5].addrlen, sizeof(struct sockaddr_in));
	/* a node of the old table is found in the new view, and the reverse */
	assert_ptr_equal(nodes_view_state(v2, &t1->nodes[3]), &v2->states[4]);
	assert_ptr_equal(nodes_view_state(v1, &t2->nodes[4]), &v1->states[3]);
	assert_null(nodes_view_state(v1, &t2->nodes[3]));
	assert_true(nodes_same(&t1->nodes[3], &t2->nodes[4]));
	assert_false(nodes_same(&t1->nodes[1], &t2->nodes[5]));

	nodes_view_put(v1);
	nodes_view_put(v2);
	nodes_table_put(t1);
	nodes_table_put(t2);
	cfg_free(cfg1);
	cfg_free(cfg2);
}

static void test_mailbox_hands_over_the_latest_view_and_drops_stale_ones(void **state)
{
	cfg_t *cfg = load(TWO_SHARDS);
	nodes_table_t *t = nodes_table_new(cfg);
	nodes_view_t *a = nodes_view_new(t, NULL), *b = nodes_view_new(t, a), *got;
	nodes_box_t box = {NULL};

	assert_null(nodes_box_take(&box));
	nodes_box_post(&box, a);
	nodes_box_post(&box, b); /* a was not taken: replaced, its box reference dropped */
	assert_int_equal(atomic_load(&a->refs), 1);
	assert_int_equal(atomic_load(&b->refs), 2);
	got = nodes_box_take(&box);
	assert_ptr_equal(got, b);
	assert_null(nodes_box_take(&box));
	nodes_view_put(got);

	/* the publisher drops its own references; the box keeps the last view alive */
	nodes_box_post(&box, a);
	nodes_view_put(a);
	nodes_view_put(b);
	got = nodes_box_take(&box);
	assert_ptr_equal(got, a);
	assert_int_equal(atomic_load(&got->refs), 1);
	assert_int_equal(got->states[0].health, NODE_UNKNOWN);
	nodes_view_put(got);

	nodes_box_clear(&box); /* empty: nothing to drop */
	nodes_table_put(t);
	cfg_free(cfg);
}

/* One publisher, one reader, many views: every view is freed once, none while read. */
typedef struct race {
	nodes_table_t *t;
	nodes_box_t box;
	int rounds;
} race_t;

static void *publisher(void *arg)
{
	race_t *r = arg;
	nodes_view_t *prev = NULL;

	for (int i = 0; i < r->rounds; i++) {
		nodes_view_t *v = nodes_view_new(r->t, prev);

		v->states[0].checked_at_ms = (int64_t)v->version;
		nodes_box_post(&r->box, v);
		nodes_view_put(prev);
		prev = v;
	}
	nodes_view_put(prev);
	return NULL;
}

static void test_views_cross_threads_through_the_mailbox(void **state)
{
	cfg_t *cfg = load(TWO_SHARDS);
	race_t r = {.t = nodes_table_new(cfg), .box = {NULL}, .rounds = 20000};
	nodes_view_t *mine = NULL;
	uint64_t last = 0;
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, publisher, &r), 0);
	while (last < (uint64_t)r.rounds) {
		nodes_view_t *v = nodes_box_take(&r.box);

		if (v == NULL)
			continue;
		/* views only get newer, and each reads as it was published */
		assert_true(v->version > last);
		assert_int_equal(v->states[0].checked_at_ms, (int64_t)v->version);
		last = v->version;
		nodes_view_put(mine);
		mine = v;
	}
	pthread_join(th, NULL);
	nodes_view_put(mine);
	nodes_box_clear(&r.box);
	assert_int_equal(atomic_load(&r.t->refs), 1);
	nodes_table_put(r.t);
	cfg_free(cfg);
}

static void test_cancel_pid_names_its_worker_and_is_a_positive_int32(void **state)
{
	static const uint32_t serials[] = {
	    0,         1, 2, 12345, CANCEL_SERIAL_MAX - 1, CANCEL_SERIAL_MAX, CANCEL_SERIAL_MAX + 1,
	    UINT32_MAX};

	for (int w = 0; w < 64; w++) {
		for (size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
			int32_t pid = cancel_pid_make(w, serials[i]);

			assert_true(pid > 0);
			assert_int_equal(cancel_pid_worker(pid), w);
		}
	}
	/* consecutive serials give distinct pids, for every worker */
	assert_int_not_equal(cancel_pid_make(3, 7), cancel_pid_make(3, 8));
	assert_int_not_equal(cancel_pid_make(3, 7), cancel_pid_make(4, 7));
	/* the serial wraps within 31 bits, never to 0 */
	assert_int_equal(cancel_pid_make(0, CANCEL_SERIAL_MAX), cancel_pid_make(0, 0));
	assert_true(cancel_pid_make(255, CANCEL_SERIAL_MAX - 1) == INT32_MAX);
}

static void test_cancel_pid_pgshard_never_hands_out_names_no_worker(void **state)
{
	assert_int_equal(cancel_pid_worker(0), -1);
	assert_int_equal(cancel_pid_worker(-5), -1);
	assert_int_equal(cancel_pid_worker(INT32_MIN), -1);
	assert_int_equal(cancel_pid_worker(CANCEL_MAX_WORKERS - 1), -1);
	assert_int_equal(cancel_pid_worker(CANCEL_MAX_WORKERS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_lists_each_shard_primary_then_its_replicas_in_file_order),
	    cmocka_unit_test(test_health_check_logs_in_as_the_conninfo_says_or_as_the_first_user),
	    cmocka_unit_test(test_login_as_the_check_or_as_the_conninfo_says),
	    cmocka_unit_test(test_login_in_another_database_as_the_conninfos_user),
	    cmocka_unit_test(test_a_new_view_knows_nothing_yet),
	    cmocka_unit_test(test_published_address_is_found_by_host_and_port),
	    cmocka_unit_test(test_reload_carries_states_over_by_node_not_by_id),
	    cmocka_unit_test(test_mailbox_hands_over_the_latest_view_and_drops_stale_ones),
	    cmocka_unit_test(test_views_cross_threads_through_the_mailbox),
	    cmocka_unit_test(test_cancel_pid_names_its_worker_and_is_a_positive_int32),
	    cmocka_unit_test(test_cancel_pid_pgshard_never_hands_out_names_no_worker),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
