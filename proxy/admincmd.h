/*
 * admincmd.h — the admin console's commands, read from a query's text
 * (admincmd.c). Pure: no sockets, no worker; tested in
 * proxy/tests/test_admincmd.c.
 */
#ifndef PGSHARD_PROXY_ADMINCMD_H
#define PGSHARD_PROXY_ADMINCMD_H

#include <stddef.h>

typedef enum admin_cmd_kind {
	ADMIN_EMPTY, /* nothing but blanks and semicolons: EmptyQueryResponse */
	ADMIN_UNKNOWN,
	ADMIN_SHOW_UNKNOWN, /* SHOW of something the console does not show */
	ADMIN_SHOW_SHARDS,
	ADMIN_SHOW_POOLS,
	ADMIN_SHOW_CLIENTS,
	ADMIN_SHOW_SERVERS,
	ADMIN_SHOW_STATS,
	ADMIN_SHOW_HOT_KEYS, /* SHOW HOT KEYS */
	ADMIN_SHOW_TABLES,
	ADMIN_SHOW_LOAD,
	ADMIN_SHOW_TRANSACTIONS,
	ADMIN_SHOW_RECOVERY,
	ADMIN_SHOW_CONFIG,
	ADMIN_SHOW_ROUTE, /* arg: the statement */
	ADMIN_SHOW_VERSION,
	ADMIN_SHOW_STATE,
	ADMIN_RELOAD,
	ADMIN_PAUSE,
	ADMIN_RESUME,
	ADMIN_SHUTDOWN,
} admin_cmd_kind_t;

typedef struct admin_cmd {
	admin_cmd_kind_t kind;
	const char *arg;  /* SHOW ROUTE: the statement, in the query's text */
	size_t arg_len;   /* without the trailing blanks and semicolon */
	const char *word; /* ADMIN_UNKNOWN, ADMIN_SHOW_UNKNOWN: the word not understood */
	size_t word_len;
} admin_cmd_t;

/*
 * Words are matched in any case, blanks anywhere between them, and one
 * trailing semicolon (with blanks around it) is dropped. SHOW ROUTE keeps
 * the rest of the text as it is, semicolons inside it too.
 */
void admincmd_parse(const char *sql, admin_cmd_t *out);

#endif
