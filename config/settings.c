/*
 * settings.c — the [proxy] and [auth] settings, declared once in a table
 * (PgBouncer-style): name, type, where the value goes in cfg_t, default and
 * bounds. Adding a setting is adding a row; reading one, applying the
 * defaults of those the file leaves out and finding where one was given are
 * walks over the table.
 */
#include "config/config_int.h"

#include <limits.h>
#include <stdio.h>

typedef enum setting_type {
	SET_INT,         /* int, min..max */
	SET_BYTES,       /* size_t, min..max bytes; units B, kB, MB, GB, TB */
	SET_LISTEN,      /* HOST:PORT into listen_host and listen_port */
	SET_ADDR,        /* cfg_addr_t: HOST:PORT, or empty for none */
	SET_AUTH_METHOD, /* cfg_auth_method_t */
	SET_PATH,        /* char *, resolved relative to the config file */
	SET_BOOL,        /* bool: on/off, true/false, yes/no, 1/0 */
	SET_NAMES,       /* cfg_names_t: names separated by commas */
	SET_CHOICE,      /* int: the position of the value in `choices` */
} setting_type_t;

typedef struct setting {
	const char *section;
	const char *name;
	setting_type_t type;
	size_t offset;    /* of the target field in cfg_t */
	const char *def;  /* default, parsed like a value from the file; NULL: none */
	long long min;    /* SET_INT, SET_BYTES */
	long long max;    /* SET_INT, SET_BYTES */
	const char *unit; /* SET_INT: what the number counts, for messages */
} setting_t;

static const char *const replica_reads_names[] = {
    [CFG_REPLICA_READS_OFF] = "off",
    [CFG_REPLICA_READS_ON] = "on",
    [CFG_REPLICA_READS_WITH_PRIMARY] = "with_primary",
    NULL,
};

static const char *const replica_policy_names[] = {
    [CFG_REPLICA_ROUND_ROBIN] = "round_robin",
    [CFG_REPLICA_LEAST_CONNECTIONS] = "least_connections",
    NULL,
};

static const setting_t settings[] = {
    {"proxy", "listen", SET_LISTEN, offsetof(cfg_t, listen_host), "127.0.0.1:6432", 0, 0, NULL},
    {"proxy", "workers", SET_INT, offsetof(cfg_t, workers), "1", 1, 64, "an integer"},
    {"proxy", "pool_size", SET_INT, offsetof(cfg_t, pool_size), "20", 1, 10000, "an integer"},
    {"proxy", "default_shard", SET_INT, offsetof(cfg_t, default_shard), "0", 0, INT_MAX,
     "a shard id"},
    {"proxy", "max_clients", SET_INT, offsetof(cfg_t, max_clients), "1000", 1, 1000000,
     "an integer"},
    {"proxy", "max_message_size", SET_BYTES, offsetof(cfg_t, max_message_size), "64MB", 1024,
     1024LL * 1024 * 1024, NULL},
    {"proxy", "max_route_size", SET_BYTES, offsetof(cfg_t, max_route_size), "1MB", 1024,
     1024LL * 1024 * 1024, NULL},
    {"proxy", "merge_memory", SET_BYTES, offsetof(cfg_t, merge_memory), "32MB", 1024,
     1024LL * 1024 * 1024, NULL},
    {"proxy", "max_join_rows", SET_INT, offsetof(cfg_t, max_join_rows), "1000000", 1, INT_MAX,
     "a number of rows"},
    {"proxy", "server_connect_timeout", SET_INT, offsetof(cfg_t, server_connect_timeout_ms), "5000",
     1, 3600 * 1000, "milliseconds"},
    {"proxy", "server_idle_timeout", SET_INT, offsetof(cfg_t, server_idle_timeout_s), "600", 1,
     86400, "seconds"},
    {"proxy", "login_timeout", SET_INT, offsetof(cfg_t, login_timeout_s), "60", 1, 3600, "seconds"},
    {"proxy", "shutdown_timeout", SET_INT, offsetof(cfg_t, shutdown_timeout_s), "30", 0, 3600,
     "seconds"},
    {"proxy", "log_min_duration_statement", SET_INT, offsetof(cfg_t, log_min_duration_statement_ms),
     "-1", -1, 24 * 3600 * 1000, "milliseconds (-1: off)"},
    {"proxy", "log_connections", SET_BOOL, offsetof(cfg_t, log_connections), "on", 0, 0, NULL},
    {"proxy", "log_disconnections", SET_BOOL, offsetof(cfg_t, log_disconnections), "on", 0, 0,
     NULL},
    {"proxy", "pause_timeout", SET_INT, offsetof(cfg_t, pause_timeout_s), "60", 0, 86400,
     "seconds (0: wait as long as it takes)"},
    {"proxy", "health_check_interval", SET_INT, offsetof(cfg_t, health_check_interval_ms), "1000",
     10, 3600 * 1000, "milliseconds"},
    {"proxy", "recovery_interval", SET_INT, offsetof(cfg_t, recovery_interval_ms), "5000", 10,
     3600 * 1000, "milliseconds"},
    {"proxy", "recovery_grace", SET_INT, offsetof(cfg_t, recovery_grace_ms), "10000", 0,
     3600 * 1000, "milliseconds"},
    {"proxy", "two_phase_commit", SET_BOOL, offsetof(cfg_t, two_phase_commit), "on", 0, 0, NULL},
    {"proxy", "deadlock_interval", SET_INT, offsetof(cfg_t, deadlock_interval_ms), "1000", 0,
     3600 * 1000, "milliseconds (0: off)"},
    {"proxy", "admin_users", SET_NAMES, offsetof(cfg_t, admin_users), NULL, 0, 0, NULL},
    {"proxy", "replica_reads", SET_CHOICE, offsetof(cfg_t, replica_reads), "off", 0, 0, NULL},
    {"proxy", "replica_policy", SET_CHOICE, offsetof(cfg_t, replica_policy), "round_robin", 0, 0,
     NULL},
    {"proxy", "max_replica_lag", SET_BYTES, offsetof(cfg_t, max_replica_lag), "16MB", 1024,
     1024LL * 1024 * 1024, NULL},
    {"proxy", "max_replica_lag_time", SET_INT, offsetof(cfg_t, max_replica_lag_time_ms), "10000", 0,
     3600 * 1000, "milliseconds"},
    {"proxy", "replica_check_interval", SET_INT, offsetof(cfg_t, replica_check_interval_ms), "100",
     10, 3600 * 1000, "milliseconds"},
    {"proxy", "writing_functions", SET_NAMES, offsetof(cfg_t, writing_functions), NULL, 0, 0, NULL},
    {"proxy", "metrics_listen", SET_ADDR, offsetof(cfg_t, metrics_listen), NULL, 0, 0, NULL},
    {"auth", "method", SET_AUTH_METHOD, offsetof(cfg_t, auth_method), "trust", 0, 0, NULL},
    {"auth", "users", SET_PATH, offsetof(cfg_t, users_path), NULL, 0, 0, NULL},
};

/* The values of a SET_CHOICE setting, NULL-terminated. */
static const char *const *choices_of(const setting_t *s)
{
	static const char *const none[] = {NULL};

	if (strcmp(s->name, "replica_reads") == 0)
		return replica_reads_names;
	if (strcmp(s->name, "replica_policy") == 0)
		return replica_policy_names;
	return none;
}

_Static_assert(COUNT(settings) == N_SETTINGS, "N_SETTINGS (config_int.h) counts settings[]");

static const char *const auth_method_names[] = {
    [CFG_AUTH_TRUST] = "trust",
    [CFG_AUTH_MD5] = "md5",
    [CFG_AUTH_SCRAM] = "scram-sha-256",
};

/*
 * A relative users path is relative to the directory of the config file, not
 * to the proxy's working directory, so that a config and its users file can be
 * moved together.
 */
static char *resolve_path(const char *config_file, const char *path)
{
	const char *slash = strrchr(config_file, '/');
	if (path[0] == '/' || slash == NULL)
		return strdup(path);
	size_t dirlen = (size_t)(slash - config_file);
	size_t len = dirlen + 1 + strlen(path) + 1;
	char *out = malloc(len);
	if (out != NULL)
		snprintf(out, len, "%.*s/%s", (int)dirlen, config_file, path);
	return out;
}

/* The value of one [proxy] or [auth] setting; line 0 means it is the default. */
static int set_value(loader_t *ld, const setting_t *s, const char *value, int line)
{
	cfg_t *cfg = ld->cfg;
	void *target = (char *)cfg + s->offset;
	long long n = 0;
	num_result_t r;

	switch (s->type) {
	case SET_INT:
		r = values_parse_ll(value, &n);
		if (r == NUM_BAD)
			return loader_fail(
			    ld, line,
			    "[%s] %s: '%s' is not an integer (expected %s from %lld to %lld)",
			    s->section, s->name, value, s->unit, s->min, s->max);
		if (r == NUM_OVERFLOW || n < s->min || n > s->max)
			return loader_fail(
			    ld, line, "[%s] %s: %s is out of range (expected %s from %lld to %lld)",
			    s->section, s->name, value, s->unit, s->min, s->max);
		*(int *)target = (int)n;
		return 0;
	case SET_BYTES:
		r = values_parse_bytes(value, &n);
		if (r == NUM_BAD)
			return loader_fail(
			    ld, line,
			    "[%s] %s: '%s' is not a size (expected bytes from %lld to %lld, "
			    "or a number with a unit: B, kB, MB, GB, TB, e.g. 64MB)",
			    s->section, s->name, value, s->min, s->max);
		if (r == NUM_OVERFLOW || n < s->min || n > s->max)
			return loader_fail(
			    ld, line,
			    "[%s] %s: %s is out of range (expected from %lld to %lld bytes, "
			    "i.e. 1kB to 1GB)",
			    s->section, s->name, value, s->min, s->max);
		*(size_t *)target = (size_t)n;
		return 0;
	case SET_LISTEN: {
		char *host = NULL;
		int port = 0;
		if (!values_parse_listen(value, &host, &port))
			return loader_fail(
			    ld, line,
			    "[%s] %s: '%s' is not HOST:PORT (expected e.g. 127.0.0.1:6432, "
			    "*:6432 or [::1]:6432, with a port from 1 to 65535)",
			    s->section, s->name, value);
		if (host == NULL)
			return loader_oom(ld);
		free(cfg->listen_host);
		cfg->listen_host = host;
		cfg->listen_port = port;
		return 0;
	}
	case SET_ADDR: {
		cfg_addr_t *a = target;
		char *host = NULL;
		int port = 0;

		if (value[0] != '\0' && !values_parse_listen(value, &host, &port))
			return loader_fail(
			    ld, line,
			    "[%s] %s: '%s' is not HOST:PORT (expected e.g. 127.0.0.1:9930, "
			    "*:9930 or [::1]:9930, with a port from 1 to 65535, or nothing for "
			    "off)",
			    s->section, s->name, value);
		if (value[0] != '\0' && host == NULL)
			return loader_oom(ld);
		free(a->host);
		a->host = host;
		a->port = port;
		return 0;
	}
	case SET_AUTH_METHOD: {
		int m = values_lookup_name(auth_method_names, COUNT(auth_method_names), value);
		if (m < 0)
			return loader_fail(
			    ld, line,
			    "[%s] %s: unknown method '%s' (expected trust, md5 or scram-sha-256)",
			    s->section, s->name, value);
		*(cfg_auth_method_t *)target = (cfg_auth_method_t)m;
		return 0;
	}
	case SET_BOOL:
		if (!values_parse_bool(value, (bool *)target))
			return loader_fail(ld, line,
			                   "[%s] %s: '%s' is not a boolean (expected on or off)",
			                   s->section, s->name, value);
		return 0;
	case SET_NAMES: {
		cfg_names_t names;

		switch (values_parse_names(value, &names)) {
		case -1:
			return loader_fail(ld, line,
			                   "[%s] %s: '%s' has an empty name (expected names "
			                   "separated by commas, e.g. %s = alice, bob)",
			                   s->section, s->name, value, s->name);
		case -2:
			return loader_fail(ld, line,
			                   "[%s] %s: '%s' has a name twice (expected each name "
			                   "once)",
			                   s->section, s->name, value);
		case -3:
			return loader_oom(ld);
		}
		values_free_names((cfg_names_t *)target);
		*(cfg_names_t *)target = names;
		return 0;
	}
	case SET_CHOICE: {
		const char *const *choices = choices_of(s);
		size_t n_choices = 0;
		int m;

		while (choices[n_choices] != NULL)
			n_choices++;
		m = values_lookup_name(choices, n_choices, value);
		if (m < 0) {
			char expected[256] = "";
			size_t len = 0;

			for (size_t i = 0; i < n_choices; i++) {
				int k = snprintf(expected + len, sizeof expected - len, "%s%s",
				                 i == 0               ? ""
				                 : i + 1 == n_choices ? " or "
				                                      : ", ",
				                 choices[i]);
				if (k > 0 && (size_t)k < sizeof expected - len)
					len += (size_t)k;
			}
			return loader_fail(ld, line, "[%s] %s: unknown value '%s' (expected %s)",
			                   s->section, s->name, value, expected);
		}
		*(int *)target = m;
		return 0;
	}
	case SET_PATH: {
		if (*value == '\0')
			return loader_fail(ld, line, "[%s] %s: empty path (expected a file name)",
			                   s->section, s->name);
		char *path = resolve_path(ld->file, value);
		if (path == NULL)
			return loader_oom(ld);
		free(*(char **)target);
		*(char **)target = path;
		return 0;
	}
	}
	return loader_fail(ld, line, "[%s] %s: internal error: unknown setting type", s->section,
	                   s->name);
}

/* Line where a setting was given; 0 when it was left to its default. */
int settings_given_at(const loader_t *ld, const char *section, const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (strcmp(settings[i].section, section) == 0 &&
		    strcmp(settings[i].name, name) == 0)
			return ld->setting_line[i];
	}
	return 0;
}

int settings_key(loader_t *ld, const char *name, const char *value)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const setting_t *s = &settings[i];
		if (strcmp(s->section, ld->sec_name) != 0 || strcmp(s->name, name) != 0)
			continue;
		if (loader_once(ld, &ld->setting_line[i], name) < 0)
			return -1;
		return set_value(ld, s, value, ld->line);
	}

	char expected[1024] = "";
	size_t len = 0;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (strcmp(settings[i].section, ld->sec_name) != 0)
			continue;
		int n = snprintf(expected + len, sizeof expected - len, "%s%s", len ? ", " : "",
		                 settings[i].name);
		if (n > 0 && (size_t)n < sizeof expected - len)
			len += (size_t)n;
	}
	return loader_unknown_key(ld, name, expected);
}

/* Every setting the file leaves out takes its default (those that have one). */
int settings_defaults(loader_t *ld)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (ld->setting_line[i] == 0 && settings[i].def != NULL &&
		    set_value(ld, &settings[i], settings[i].def, 0) < 0)
			return -1;
	}
	return 0;
}

const char *cfg_auth_method_name(cfg_auth_method_t m)
{
	if ((unsigned)m < sizeof auth_method_names / sizeof auth_method_names[0])
		return auth_method_names[m];
	return "unknown";
}

bool cfg_is_admin(const cfg_t *cfg, const char *user)
{
	for (int i = 0; i < cfg->admin_users.n; i++)
		if (strcmp(cfg->admin_users.names[i], user) == 0)
			return true;
	return false;
}

/* A size as the file would give it: the largest unit that divides it. */
static void show_bytes(size_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
	int u = 0;

	while (u < 4 && n != 0 && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	snprintf(buf, len, "%zu%s", n, units[u]);
}

int cfg_setting_show(const cfg_t *cfg, int i, const char **section, const char **name, char *buf,
                     size_t len)
{
	const setting_t *s;
	const void *target;

	if (i < 0 || (size_t)i >= N_SETTINGS || len == 0)
		return 0;
	s = &settings[i];
	target = (const char *)cfg + s->offset;
	*section = s->section;
	*name = s->name;
	buf[0] = '\0';
	switch (s->type) {
	case SET_INT:
		snprintf(buf, len, "%d", *(const int *)target);
		break;
	case SET_BYTES:
		show_bytes(*(const size_t *)target, buf, len);
		break;
	case SET_LISTEN:
		snprintf(buf, len, strchr(cfg->listen_host, ':') != NULL ? "[%s]:%d" : "%s:%d",
		         cfg->listen_host, cfg->listen_port);
		break;
	case SET_ADDR: {
		const cfg_addr_t *a = target;

		if (a->host != NULL)
			snprintf(buf, len, strchr(a->host, ':') != NULL ? "[%s]:%d" : "%s:%d",
			         a->host, a->port);
		break;
	}
	case SET_AUTH_METHOD:
		snprintf(buf, len, "%s", cfg_auth_method_name(*(const cfg_auth_method_t *)target));
		break;
	case SET_PATH:
		snprintf(buf, len, "%s", *(char *const *)target ? *(char *const *)target : "");
		break;
	case SET_BOOL:
		snprintf(buf, len, "%s", *(const bool *)target ? "on" : "off");
		break;
	case SET_CHOICE:
		snprintf(buf, len, "%s", choices_of(s)[*(const int *)target]);
		break;
	case SET_NAMES: {
		const cfg_names_t *l = target;
		size_t used = 0;

		for (int k = 0; k < l->n && used < len; k++) {
			int w = snprintf(buf + used, len - used, "%s%s", k > 0 ? ", " : "",
			                 l->names[k]);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		break;
	}
	}
	return 1;
}
