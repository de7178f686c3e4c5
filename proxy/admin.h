/*
 * admin.h — the admin console (admin.c): the virtual database `pgshard`,
 * served by the proxy itself over the simple query protocol.
 */
#ifndef PGSHARD_PROXY_ADMIN_H
#define PGSHARD_PROXY_ADMIN_H

#include "proxy/proxy.h"

/* The database name that reaches the console instead of a shard. */
#define ADMIN_DATABASE "pgshard"

/* Before the workers start: their mailboxes (adminbox.h). 0, or -1 when memory ran out. */
int admin_init(int n_workers);

/*
 * An authenticated client of database ADMIN_DATABASE: refused with 42501
 * unless the config names its user in admin_users; else it is logged in
 * (pgshard reports the parameters itself) and never gets a server.
 */
void admin_login(client_t *c);
/* One message of a console client (client.c's loop): STEP_NEXT, STEP_WAIT or STEP_FAIL. */
int admin_message(client_t *c, uint8_t type, pbuf_t *in, size_t total);

#endif
