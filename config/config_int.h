/*
 * config_int.h — what the config loader's files share: the state of one load
 * (loader_t, with the sections it has read) and the functions one file gives
 * the files above it, named after their file (loader_, values_, settings_,
 * sections_, check_, users_).
 *
 * Not part of config's interface: only config/'s own .c files include it.
 */
#ifndef PGSHARD_CONFIG_CONFIG_INT_H
#define PGSHARD_CONFIG_CONFIG_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define CONNINFO_EXAMPLE "host=10.0.0.1 port=5432 dbname=app user=app"

/* The rows of settings[] (settings.c); a static assertion there keeps the two equal. */
#define N_SETTINGS 32

/* ------------------------------------------------------------------------ */
/* Loader state                                                              */
/* ------------------------------------------------------------------------ */

typedef enum section_kind {
	SEC_NONE, /* before the first [section] */
	SEC_PROXY,
	SEC_AUTH,
	SEC_SHARD,
	SEC_MAP,
	SEC_TABLE,
} section_kind_t;

/* A [shard.N] being read, with the lines later checks name. */
typedef struct shard_decl {
	cfg_shard_t shard;
	int line;         /* of the [shard.N] header */
	int primary_line; /* 0: no primary yet */
} shard_decl_t;

typedef struct map_decl {
	cfg_map_t map;
	int line; /* of the [map.NAME] header; lines below are 0 while unset */
	int kind_line;
	int key_line;
	int shards_line;
	int vnodes_line;
} map_decl_t;

typedef struct table_decl {
	cfg_table_t table;
	char *section;  /* as written between the brackets, for messages */
	char *map_name; /* resolved into table.map by the second pass */
	int line;
	int reference_line;
	int key_line;
	int map_line;
} table_decl_t;

typedef struct loader {
	const char *file; /* the config file's name, for messages */
	cfg_t *cfg;       /* [proxy] and [auth] values land here directly */

	char *err;
	size_t errlen;
	int err_line; /* line of the first error; 0 when it has none */
	bool failed;

	const char *pos; /* line reader: first unread byte */
	int line;        /* line reader: number of the line inih is parsing */

	section_kind_t sec; /* section of the current line */
	char *sec_name;     /* its name as written between the brackets */
	int sec_index;      /* SEC_SHARD/MAP/TABLE: index into the decls below */
	int proxy_line;     /* of the [proxy] header; 0: none yet */
	int auth_line;
	int setting_line[N_SETTINGS]; /* where each setting was given; 0: default */

	shard_decl_t *shards;
	int n_shards;
	map_decl_t *maps;
	int n_maps;
	table_decl_t *tables;
	int n_tables;
} loader_t;

/* ------------------------------------------------------------------------ */
/* loader.c: the error report, key messages, reading a file                  */
/* ------------------------------------------------------------------------ */

int loader_fail(loader_t *ld, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int loader_fail_in(loader_t *ld, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int loader_oom(loader_t *ld);
int loader_once(loader_t *ld, int *line, const char *name);
int loader_unknown_key(loader_t *ld, const char *name, const char *expected);
int loader_read_file(const char *path, char **out, const char **op);

/* ------------------------------------------------------------------------ */
/* values.c: values as written in the file                                   */
/* ------------------------------------------------------------------------ */

typedef enum num_result { NUM_OK, NUM_BAD, NUM_OVERFLOW } num_result_t;

num_result_t values_parse_ll(const char *s, long long *out);
bool values_parse_bool(const char *s, bool *out);
int values_parse_names(const char *v, cfg_names_t *out); /* 0, -1 bad, -2 twice, -3 no memory */
void values_free_names(cfg_names_t *n);
int values_lookup_name(const char *const *names, size_t n, const char *s);
char *values_normalize_ident(const char *s, bool qualified, bool *nomem);
bool values_parse_listen(const char *v, char **host, int *port);
num_result_t values_parse_bytes(const char *v, long long *out);
int values_parse_node(loader_t *ld, const char *key, const char *value, cfg_node_t *out);
void values_free_node(cfg_node_t *n);

/* ------------------------------------------------------------------------ */
/* settings.c: [proxy] and [auth]                                            */
/* ------------------------------------------------------------------------ */

int settings_key(loader_t *ld, const char *name, const char *value);
int settings_defaults(loader_t *ld);
int settings_given_at(const loader_t *ld, const char *section, const char *name);

/* ------------------------------------------------------------------------ */
/* sections.c: what each line means                                          */
/* ------------------------------------------------------------------------ */

extern const char *const sections_key_type_names[]; /* by cfg_key_type_t */

int sections_begin(loader_t *ld, const char *text, size_t len);
int sections_on_key(void *user, const char *section, const char *name, const char *value);

/* ------------------------------------------------------------------------ */
/* check.c: the second pass                                                  */
/* ------------------------------------------------------------------------ */

int check_shards(loader_t *ld);
int check_maps(loader_t *ld);
int check_tables(loader_t *ld);
int check_admin_users(loader_t *ld); /* after users_load */

/* ------------------------------------------------------------------------ */
/* users.c: the users file                                                   */
/* ------------------------------------------------------------------------ */

int users_load(loader_t *ld);

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static inline char *dup_range(const char *s, size_t len)
{
	char *d = malloc(len + 1);
	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/*
 * Returns arr with room for one more element after its n, or NULL (arr
 * untouched) when out of memory. Capacity is implied by n: 4, then doubling.
 */
static inline void *array_room(void *arr, int n, size_t elsize)
{
	if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
		return arr;
	size_t cap = n == 0 ? 4 : (size_t)n * 2;
	return realloc(arr, cap * elsize);
}

#endif
