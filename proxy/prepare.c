/*
 * prepare.c — protocol-level prepared statements under transaction pooling.
 *
 * A client prepares "q1" on whatever server connection it has at the time,
 * and may bind it later on another one. So the proxy, not the server, owns
 * the client's statement names (the way PgBouncer's max_prepared_statements
 * does):
 *
 *   - each distinct statement (query text + parameter types) is interned
 *     once per worker as a ps_entry with a server-side name "pgshard_<id>";
 *   - each client maps its own names to entries, so two clients may use the
 *     same name for different SQL;
 *   - each server connection remembers which entries it has prepared.
 *
 * A client Parse prepares the entry on its current server only if that
 * server lacks it (otherwise the proxy answers ParseComplete itself); a
 * Bind or Describe on a server that lacks the entry gets a Parse injected in
 * front of it, whose reply the client never sees (see the pending queue in
 * proxy.h).
 */
#include "proxy/prepare.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "proxy/wire.h"

struct ps_registry {
	ps_entry_t e;
	UT_hash_handle hh;
};

struct ps_client_map {
	char *name;
	ps_entry_t *e;
	UT_hash_handle hh;
};

struct ps_server_set {
	uint64_t id;
	ps_entry_t *e;
	UT_hash_handle hh;
};

ps_entry_t *ps_intern(worker_t *w, const wire_parse_msg_t *m)
{
	struct ps_registry *item = NULL;
	size_t qlen = strlen(m->query);
	size_t tlen = (size_t)m->n_types * 4;
	size_t key_len = qlen + 1 + tlen;
	uint8_t *key;

	key = malloc(key_len);
	if (key == NULL)
		return NULL;
	memcpy(key, m->query, qlen + 1);
	if (tlen > 0)
		memcpy(key + qlen + 1, m->types, tlen);

	HASH_FIND(hh, w->statements, key, key_len, item);
	if (item != NULL) {
		free(key);
		item->e.refs++;
		return &item->e;
	}
	item = calloc(1, sizeof(*item));
	if (item == NULL) {
		free(key);
		return NULL;
	}
	item->e.id = ++w->next_ps_id;
	snprintf(item->e.server_name, sizeof(item->e.server_name), "pgshard_%" PRIu64, item->e.id);
	item->e.key = key;
	item->e.key_len = key_len;
	item->e.query = (const char *)key;
	item->e.types = key + qlen + 1;
	item->e.n_types = m->n_types;
	item->e.refs = 1;
	HASH_ADD_KEYPTR(hh, w->statements, item->e.key, item->e.key_len, item);
	return &item->e;
}

void ps_unref(worker_t *w, ps_entry_t *e)
{
	struct ps_registry *item = (struct ps_registry *)e;

	if (--e->refs > 0)
		return;
	HASH_DEL(w->statements, item);
	free(item->e.key);
	free(item);
}

int ps_client_put(client_t *c, const char *name, ps_entry_t *e)
{
	struct ps_client_map *m = NULL;

	HASH_FIND_STR(c->statements, name, m);
	if (m != NULL)
		return -1; /* "prepared statement already exists": the caller tells the client */
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -1;
	m->name = strdup(name);
	if (m->name == NULL) {
		free(m);
		return -1;
	}
	m->e = e;
	HASH_ADD_KEYPTR(hh, c->statements, m->name, strlen(m->name), m);
	return 0;
}

ps_entry_t *ps_client_get(client_t *c, const char *name)
{
	struct ps_client_map *m = c->statement_last;

	/* a Bind looks its statement up twice (extended.c, forward.c), and prepared
	 * statements are bound again and again: the last one found first */
	if (m != NULL && strcmp(m->name, name) == 0)
		return m->e;
	HASH_FIND_STR(c->statements, name, m);
	if (m == NULL)
		return NULL;
	c->statement_last = m;
	return m->e;
}

int ps_client_del(client_t *c, const char *name)
{
	struct ps_client_map *m = NULL;

	HASH_FIND_STR(c->statements, name, m);
	if (m == NULL)
		return -1;
	if (c->statement_last == m)
		c->statement_last = NULL;
	HASH_DEL(c->statements, m);
	ps_unref(c->worker, m->e);
	free(m->name);
	free(m);
	return 0;
}

void ps_client_free(client_t *c)
{
	struct ps_client_map *m, *tmp;

	c->statement_last = NULL;
	HASH_ITER(hh, c->statements, m, tmp)
	{
		HASH_DEL(c->statements, m);
		ps_unref(c->worker, m->e);
		free(m->name);
		free(m);
	}
}

bool ps_server_has(server_t *s, ps_entry_t *e)
{
	struct ps_server_set *m = NULL;

	HASH_FIND(hh, s->statements, &e->id, sizeof(e->id), m);
	return m != NULL;
}

int ps_server_add(server_t *s, ps_entry_t *e)
{
	struct ps_server_set *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -1;
	m->id = e->id;
	m->e = e;
	e->refs++;
	HASH_ADD(hh, s->statements, id, sizeof(m->id), m);
	return 0;
}

void ps_server_free(server_t *s)
{
	struct ps_server_set *m, *tmp;

	HASH_ITER(hh, s->statements, m, tmp)
	{
		HASH_DEL(s->statements, m);
		ps_unref(s->pool->worker, m->e);
		free(m);
	}
}

void ps_registry_free(worker_t *w)
{
	struct ps_registry *item, *tmp;

	HASH_ITER(hh, w->statements, item, tmp)
	{
		HASH_DEL(w->statements, item);
		free(item->e.key);
		free(item);
	}
}

void ps_put_parse(wire_buf_t *b, const ps_entry_t *e)
{
	wire_begin(b, 'P');
	wire_put_cstring(b, e->server_name);
	wire_put_cstring(b, e->query);
	wire_put_i16(b, e->n_types);
	wire_put_bytes(b, e->types, (size_t)e->n_types * 4);
	wire_end(b);
}

void ps_server_del(server_t *s, ps_entry_t *e)
{
	struct ps_server_set *m = NULL;

	HASH_FIND(hh, s->statements, &e->id, sizeof(e->id), m);
	if (m == NULL)
		return;
	HASH_DEL(s->statements, m);
	ps_unref(s->pool->worker, m->e);
	free(m);
}
