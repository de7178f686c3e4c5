/*
 * config.h — pgshard's configuration model.
 *
 * One INI file (parsed with inih) becomes one immutable cfg_t. Loading
 * validates everything up front: unknown sections or keys, bad values and
 * references to missing shards or maps are errors that name the file, the
 * line and what was expected. The proxy never runs on a half-valid config;
 * a reload builds a new cfg_t and swaps it in only when it is valid.
 *
 * Nothing here touches a socket or a thread.
 */
#ifndef PGSHARD_CONFIG_H
#define PGSHARD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cfg_auth_method {
	CFG_AUTH_TRUST,
	CFG_AUTH_MD5,
	CFG_AUTH_SCRAM,
} cfg_auth_method_t;

typedef enum cfg_key_type {
	CFG_KEY_BIGINT,
	CFG_KEY_TEXT,
	CFG_KEY_UUID,
} cfg_key_type_t;

typedef enum cfg_map_kind {
	CFG_MAP_HASH,
	CFG_MAP_RANGE,
} cfg_map_kind_t;

/* Where reads that cannot write may go (DESIGN.md: replicas). */
typedef enum cfg_replica_reads {
	CFG_REPLICA_READS_OFF, /* every statement to the shard's primary */
	CFG_REPLICA_READS_ON,  /* reads to replicas that are fresh enough for the session */
	CFG_REPLICA_READS_WITH_PRIMARY, /* the same, with the primary as one more read node */
} cfg_replica_reads_t;

/* Which of the eligible read nodes a session's reads of a shard start on. */
typedef enum cfg_replica_policy {
	CFG_REPLICA_ROUND_ROBIN,
	CFG_REPLICA_LEAST_CONNECTIONS,
} cfg_replica_policy_t;

/* One PostgreSQL server, from a libpq conninfo string. */
typedef struct cfg_node {
	char *conninfo; /* as written in the file */
	char *host;     /* never NULL: defaults to "127.0.0.1" */
	int port;       /* defaults to 5432 */
	char *dbname;   /* NULL: use the client's database name */
	char *user;     /* NULL: use the client's user name */
	char *password; /* NULL: use the users file entry of the backend user */
} cfg_node_t;

typedef struct cfg_shard {
	int id; /* equals its index in cfg_t.shards */
	cfg_node_t primary;
	cfg_node_t *replicas;
	int n_replicas;
} cfg_shard_t;

/* A half-open range [lo, hi) of a range map; NULL bound = unbounded. */
typedef struct cfg_range {
	char *lo;
	char *hi;
	int shard;
	int line; /* where it was declared, for later validation messages */
} cfg_range_t;

typedef struct cfg_map {
	char *name;
	cfg_map_kind_t kind;
	cfg_key_type_t key;
	int *shards; /* hash maps: the shards on the ring, in file order */
	int n_shards;
	int vnodes;          /* hash maps: points per shard on the ring (default 256) */
	cfg_range_t *ranges; /* range maps, sorted by lo */
	int n_ranges;
} cfg_map_t;

typedef struct cfg_table {
	char *name; /* as written, lower-cased unless it was quoted */
	bool reference;
	char *key; /* sharded tables: the key column */
	int map;   /* sharded tables: index into cfg_t.maps; -1 for reference tables */
} cfg_table_t;

/* One line of the users file: "user" "password" (plain, md5... or SCRAM-SHA-256$...). */
typedef struct cfg_user {
	char *name;
	char *password;
} cfg_user_t;

/* A list of names, as `a, b, c` in the file: no empty name, none twice. */
typedef struct cfg_names {
	char **names;
	int n;
} cfg_names_t;

/* A HOST:PORT that may be left out (host NULL, port 0). */
typedef struct cfg_addr {
	char *host;
	int port;
} cfg_addr_t;

typedef struct cfg {
	char *path; /* the file this was loaded from */

	/* [proxy] */
	char *listen_host;
	int listen_port;
	int workers;
	int pool_size;
	int default_shard;
	int max_clients;
	size_t max_message_size; /* largest client or server message accepted, bytes */
	size_t max_route_size;   /* longest statement parsed to route it, bytes */
	size_t merge_memory;     /* rows held to merge one statement on several shards, bytes */
	int max_join_rows;       /* rows of one side a join across shards may hold (54000 above) */
	int server_connect_timeout_ms;
	int server_idle_timeout_s;
	int login_timeout_s;    /* from accept to the end of authentication */
	int shutdown_timeout_s; /* SIGTERM: how long open transactions may take to finish */
	int log_min_duration_statement_ms; /* statements that take this long are logged; -1: off */
	bool log_connections;              /* a line for each connection accepted and each login */
	bool log_disconnections; /* a line for each client that leaves, with how long it stayed */
	int pause_timeout_s; /* PAUSE waits this long for transactions in progress, then gives up
	                        (lifecycle.c); 0: as long as it takes */
	int health_check_interval_ms; /* the control thread checks every node this often */
	int recovery_interval_ms;     /* two-phase commit recovery runs this often */
	int recovery_grace_ms;        /* prepared transactions younger than this are left alone */
	bool two_phase_commit; /* a commit of writes on several shards is atomic (two phases); off:
	                          each shard commits on its own, faster, and not all or nothing */
	int deadlock_interval_ms;    /* distributed deadlock detection runs this often; 0: off */
	cfg_names_t admin_users;     /* may log in to the admin console (database pgshard) */
	int replica_reads;           /* cfg_replica_reads_t */
	int replica_policy;          /* cfg_replica_policy_t */
	size_t max_replica_lag;      /* a replica further behind its primary (bytes of WAL) gets no
	                                reads */
	int max_replica_lag_time_ms; /* nor one that lacks WAL its primary had this long ago */
	int replica_check_interval_ms; /* with replica_reads: positions polled this often */
	cfg_names_t writing_functions; /* functions that write or lock (besides the built-in
	                                  ones): a SELECT calling one runs on the primary */
	cfg_addr_t metrics_listen;     /* the Prometheus endpoint's address; host NULL: off */

	/* [auth] */
	cfg_auth_method_t auth_method;
	char *users_path; /* resolved relative to the config file's directory */
	cfg_user_t *users;
	int n_users;

	cfg_shard_t *shards; /* indexed by shard id, ids are 0..n_shards-1 */
	int n_shards;
	cfg_map_t *maps;
	int n_maps;
	cfg_table_t *tables;
	int n_tables;
} cfg_t;

/*
 * Load and validate a config file. On success returns 0 and stores a new
 * cfg_t in *out. On failure returns -1, stores nothing, and writes one line
 * "FILE:LINE: what was wrong (expected ...)" into err.
 */
int cfg_load(const char *path, cfg_t **out, char *err, size_t errlen);

/* Same, from a string; `name` is used as the file name in messages. */
int cfg_load_string(const char *text, const char *name, cfg_t **out, char *err, size_t errlen);

void cfg_free(cfg_t *cfg);

const cfg_user_t *cfg_find_user(const cfg_t *cfg, const char *name);
const cfg_map_t *cfg_find_map(const cfg_t *cfg, const char *name);
const cfg_table_t *cfg_find_table(const cfg_t *cfg, const char *name);

const char *cfg_auth_method_name(cfg_auth_method_t m);

bool cfg_is_admin(const cfg_t *cfg, const char *user);

/*
 * The [proxy] and [auth] settings in force, one by one (i from 0 while it
 * returns 1): section, key and the value as a file would give it, written
 * into buf. 0 when i is past the last one.
 */
int cfg_setting_show(const cfg_t *cfg, int i, const char **section, const char **name, char *buf,
                     size_t len);

#endif
