/*
 * colcache.c — tables' column order per database (see colcache.h).
 */
#include "proxy/colcache.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/wire.h"

/* Entries kept per worker; past that the cache starts again empty. */
#define COLCACHE_MAX 512

typedef struct colentry {
	char *db, *table;
	char **cols;
	int n;
} colentry_t;

struct colcache {
	colentry_t *v;
	int n, cap;
	uint64_t generation; /* of g_generation when filled */
};

/* What a worker's fetch collects (client_t.colfetch). */
struct colfetch {
	char *db, *table;
	char **cols;
	int n, cap;
	bool failed;
};

static _Atomic uint64_t g_generation = 1;

static void entry_free(colentry_t *e)
{
	for (int i = 0; i < e->n; i++)
		free(e->cols[i]);
	free(e->cols);
	free(e->db);
	free(e->table);
}

static void clear(colcache_t *cc)
{
	for (int i = 0; i < cc->n; i++)
		entry_free(&cc->v[i]);
	cc->n = 0;
}

void colcache_free(colcache_t *cc)
{
	if (cc == NULL)
		return;
	clear(cc);
	free(cc->v);
	free(cc);
}

void colcache_ddl(void)
{
	atomic_fetch_add(&g_generation, 1);
}

/* The worker's cache, emptied when DDL went through since it was filled. */
static colcache_t *cache_of(worker_t *w)
{
	uint64_t gen = atomic_load(&g_generation);

	if (w->columns == NULL && (w->columns = calloc(1, sizeof *w->columns)) == NULL)
		return NULL;
	if (w->columns->generation != gen) {
		clear(w->columns);
		w->columns->generation = gen;
	}
	return w->columns;
}

bool colcache_get(worker_t *w, const char *db, const char *table, char *const **cols, int *n)
{
	colcache_t *cc = cache_of(w);

	for (int i = 0; cc != NULL && i < cc->n; i++) {
		if (strcmp(cc->v[i].db, db) == 0 && strcmp(cc->v[i].table, table) == 0) {
			*cols = cc->v[i].cols;
			*n = cc->v[i].n;
			return true;
		}
	}
	return false;
}

/* Takes the fetch's columns. */
static void put(worker_t *w, struct colfetch *f)
{
	colcache_t *cc = cache_of(w);
	colentry_t *e;

	if (cc == NULL)
		return;
	if (cc->n == COLCACHE_MAX)
		clear(cc);
	if (cc->n == cc->cap) {
		int cap = cc->cap > 0 ? 2 * cc->cap : 16;
		colentry_t *v = realloc(cc->v, sizeof *v * (size_t)cap);

		if (v == NULL)
			return;
		cc->v = v;
		cc->cap = cap;
	}
	e = &cc->v[cc->n++];
	e->db = f->db;
	e->table = f->table;
	e->cols = f->cols;
	e->n = f->n;
	f->db = f->table = NULL;
	f->cols = NULL;
	f->n = f->cap = 0;
}

void colfetch_free(client_t *c)
{
	struct colfetch *f = c->colfetch;

	if (f == NULL)
		return;
	for (int i = 0; i < f->n; i++)
		free(f->cols[i]);
	free(f->cols);
	free(f->db);
	free(f->table);
	free(f);
	c->colfetch = NULL;
}

int colfetch_start(client_t *c, const char *table)
{
	struct colfetch *f = calloc(1, sizeof *f);

	colfetch_free(c);
	if (f == NULL)
		return -1;
	c->colfetch = f;
	f->db = strdup(c->database);
	f->table = strdup(table);
	if (f->db == NULL || f->table == NULL) {
		colfetch_free(c);
		return -1;
	}
	return 0;
}

void colfetch_row(client_t *c, const uint8_t *body, size_t len)
{
	struct colfetch *f = c->colfetch;
	wire_reader_t r;
	int16_t n;
	int32_t flen;
	const uint8_t *name;
	char *col;

	if (f == NULL || f->failed)
		return;
	wire_reader_init(&r, body, len);
	if (wire_get_i16(&r, &n) < 0 || n != 1 || wire_get_i32(&r, &flen) < 0 || flen < 0 ||
	    wire_get_bytes(&r, (size_t)flen, &name) < 0 ||
	    (col = malloc((size_t)flen + 1)) == NULL) {
		f->failed = true;
		return;
	}
	memcpy(col, name, (size_t)flen);
	col[flen] = '\0';
	if (f->n == f->cap) {
		int cap = f->cap > 0 ? 2 * f->cap : 16;
		char **v = realloc(f->cols, sizeof *v * (size_t)cap);

		if (v == NULL) {
			free(col);
			f->failed = true;
			return;
		}
		f->cols = v;
		f->cap = cap;
	}
	f->cols[f->n++] = col;
}

void colfetch_failed(client_t *c)
{
	if (c->colfetch != NULL)
		c->colfetch->failed = true;
}

void colfetch_done(client_t *c)
{
	struct colfetch *f = c->colfetch;

	if (f != NULL && !f->failed && f->n > 0)
		put(c->worker, f);
	colfetch_free(c);
}
