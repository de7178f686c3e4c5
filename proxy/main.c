/*
 * main.c — pgshard's entry point: load the config, start the workers and
 * the control thread, and handle signals: SIGHUP reloads the config, SIGTERM
 * shuts down gracefully (lifecycle.c: no new connections, open transactions
 * finish, up to shutdown_timeout), SIGINT exits at once (every connection
 * closed now; PostgreSQL rolls back what was not committed).
 */
#include <event2/thread.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/admin.h"
#include "proxy/adminbox.h"
#include "proxy/cancel.h"
#include "proxy/context.h"
#include "proxy/control.h"
#include "proxy/lifecycle.h"
#include "proxy/log.h"
#include "proxy/routeshow.h"
#include "proxy/verify.h"
#include "proxy/verify_rules.h"
#include "proxy/version.h"
#include "proxy/worker.h"

static const char *config_path;
static cfg_ref_t *current;

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: pgshard -c CONFIG [-v] [--check]\n"
	        "       pgshard -c CONFIG --route SQL...\n"
	        "       pgshard -c CONFIG --check-reference|--check-placement [TABLE...]\n"
	        "  -c, --config FILE  the INI config file (see README.md)\n"
	        "  -v, --verbose      log debug messages\n"
	        "      --check        validate the config file and exit\n"
	        "      --route        show where each SQL statement would run and why,\n"
	        "                     without running it ($n parameters count as unknown;\n"
	        "                     exit status 3 when one would be refused)\n"
	        "      --check-reference  compare each reference table (or those named) across\n"
	        "                     the shards' primaries and name the rows that differ\n"
	        "      --check-placement  name the rows of each sharded table (or those named)\n"
	        "                     stored on a shard their map does not assign them to\n"
	        "                     (both: exit status 0 clean, 1 differences, 2 error)\n"
	        "      --dbname NAME  the database the checks look in (default: the conninfo's)\n"
	        "      --leaf-rows N  --check-reference compares differing ranges row by row\n"
	        "                     once they hold at most N rows (default 10000)\n"
	        "  -V, --version      print the version and exit\n");
}

/* listen and workers wait for a restart: the listeners are made once per worker. */
static void reload(void)
{
	char err[1024];
	cfg_t *cfg;
	cfg_ref_t *ref;

	if (cfg_load(config_path, &cfg, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running config: %s", err);
		return;
	}
	if (strcmp(cfg->listen_host, current->cfg->listen_host) != 0 ||
	    cfg->listen_port != current->cfg->listen_port || cfg->workers != current->cfg->workers)
		log_warn("listen and workers take effect only at restart");
	ref = context_cfg_ref_new(cfg);
	if (ref == NULL) {
		cfg_free(cfg);
		return;
	}
	for (int i = 0; i < g_n_workers; i++)
		worker_set_config(&g_workers[i], ref);
	control_set_config(ref);
	context_cfg_ref_put(current);
	current = ref;
	log_info("configuration reloaded from %s", config_path);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;

	if (sig == SIGHUP) {
		reload();
		return;
	}
	if (sig == SIGTERM) {
		if (!lifecycle_shutdown(base, current->cfg->shutdown_timeout_s))
			log_info("SIGTERM: already shutting down (SIGINT exits at once)");
		return;
	}
	log_info("SIGINT: exiting now, closing every connection");
	event_base_loopexit(base, NULL);
}

/*
 * Whether something already listens on the address. The workers bind with
 * SO_REUSEPORT, which a second pgshard (or anything else with that option)
 * would share silently, the kernel splitting the connections between them:
 * a plain bind first says whether the port is free.
 */
static bool listen_taken(const char *host, int port)
{
	struct addrinfo hints, *res = NULL;
	char service[16];
	int fd, one = 1;
	bool taken = false;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL)
		return false; /* the workers' own bind reports it */
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0) {
		/* TIME_WAIT leftovers of an earlier run are no reason to refuse */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 && errno == EADDRINUSE) {
			log_error(
			    "cannot listen on %s:%d: the address is in use (another pgshard, or "
			    "another server, listens there)",
			    host, port);
			taken = true;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return taken;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"check", no_argument, NULL, 'k'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {"route", no_argument, NULL, 'r'},
	    {"check-reference", no_argument, NULL, 'R'},
	    {"check-placement", no_argument, NULL, 'P'},
	    {"dbname", required_argument, NULL, 'd'},
	    {"leaf-rows", required_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	bool check_only = false, route_only = false, verify = false;
	verify_opts_t vo = {.leaf_rows = VERIFY_LEAF_ROWS, .out = stdout, .err = stderr};
	char *end;
	char err[1024];
	struct event_base *base;
	struct event *sigs[3];
	const int signals[3] = {SIGHUP, SIGINT, SIGTERM};
	cfg_t *cfg;
	int opt, started = 0, rc = 0;

	while ((opt = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'v':
			g_log_level = LOG_DEBUG;
			break;
		case 'k':
			check_only = true;
			break;
		case 'r':
			route_only = true;
			break;
		case 'R':
		case 'P':
			if (verify &&
			    vo.kind != (opt == 'R' ? VERIFY_REFERENCE : VERIFY_PLACEMENT)) {
				fprintf(stderr, "pgshard: one check at a time\n");
				return 2;
			}
			verify = true;
			vo.kind = opt == 'R' ? VERIFY_REFERENCE : VERIFY_PLACEMENT;
			break;
		case 'd':
			vo.dbname = optarg;
			break;
		case 'L':
			vo.leaf_rows = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || vo.leaf_rows < 0) {
				fprintf(stderr, "pgshard: --leaf-rows wants a number of rows\n");
				return 2;
			}
			break;
		case 'V':
			printf("pgshard %s\n", PGSHARD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config_path == NULL || (route_only && verify) ||
	    (route_only ? optind == argc : !verify && optind != argc)) {
		usage(stderr);
		return 2;
	}
	if (cfg_load(config_path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgshard: %s\n", err);
		return verify ? VERIFY_ERROR : 1;
	}
	if (route_only) {
		int route_rc = routeshow_print(stdout, cfg, argv + optind, argc - optind);

		cfg_free(cfg);
		return route_rc;
	}
	if (verify) {
		int verify_rc;

		vo.tables = argv + optind;
		vo.n_tables = argc - optind;
		verify_rc = verify_run(cfg, &vo);
		cfg_free(cfg);
		return verify_rc;
	}
	if (check_only) {
		printf("%s: OK\n", config_path);
		cfg_free(cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	current = context_cfg_ref_new(cfg);
	if (current == NULL || cancel_init(cfg->workers) < 0 || admin_init(cfg->workers) < 0 ||
	    lifecycle_init(cfg->workers) < 0 || control_init(current) < 0)
		return 1;

	if (listen_taken(cfg->listen_host, cfg->listen_port))
		return 1;
	g_n_workers = cfg->workers;
	g_workers = calloc((size_t)g_n_workers, sizeof(*g_workers));
	if (g_workers == NULL)
		return 1;
	for (int i = 0; i < g_n_workers; i++) {
		if (worker_start(&g_workers[i], i, current) < 0) {
			rc = 1;
			break;
		}
		started++;
	}

	base = event_base_new();
	if (rc == 0 && control_start() < 0) {
		log_error("cannot start the control thread");
		rc = 1;
	}
	if (rc == 0 && base != NULL) {
		for (int i = 0; i < 3; i++) {
			sigs[i] = evsignal_new(base, signals[i], signal_cb, base);
			evsignal_add(sigs[i], NULL);
		}
		log_info("pgshard %s listening on %s:%d (%d worker%s, %d shard%s)", PGSHARD_VERSION,
		         cfg->listen_host, cfg->listen_port, g_n_workers,
		         g_n_workers == 1 ? "" : "s", cfg->n_shards, cfg->n_shards == 1 ? "" : "s");
		event_base_dispatch(base);
		for (int i = 0; i < 3; i++)
			event_free(sigs[i]);
		lifecycle_shutdown_end();
	}
	control_stop(); /* first: it posts to the workers */
	for (int i = 0; i < started; i++)
		worker_stop(&g_workers[i]);
	for (int i = 0; i < started; i++)
		worker_join(&g_workers[i]);
	if (base != NULL)
		event_base_free(base);
	free(g_workers);
	cancel_free();
	adminbox_free();
	lifecycle_free();
	context_cfg_ref_put(current);
	libevent_global_shutdown();
	return rc;
}
