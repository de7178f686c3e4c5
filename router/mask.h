/*
 * mask.h — the plan cache's masking: a statement's text with its literals
 * replaced by parameters, the key under which router/plancache.c keeps its
 * parse, and the literals' values as those parameters.
 */
#ifndef PGSHARD_ROUTER_MASK_H
#define PGSHARD_ROUTER_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "router/route.h"

typedef struct mask {
	char *key; /* masked text, '\0', one kind letter per literal, '\0' */
	size_t key_len, key_cap;
	size_t text_len; /* the masked text's length within key */
	char *vals;      /* the literals' values, back to back */
	size_t vals_len, vals_cap;
	size_t *val_off;
	route_param_t *params;
	char *kinds; /* 'i', 'f', 's' as route_literals_t wants them */
	int n, cap;
	int first;  /* number of the first literal's parameter */
	char *sigs; /* one kind letter per literal, as the key ends with them */
	size_t sigs_cap;
	route_token_t *toks; /* the text's tokens, its END last: lexed once for both passes */
	size_t n_toks, toks_cap;
	uint64_t hash; /* XXH3 of the key (all key_len bytes) */
	size_t *spans; /* where each literal was in the text: its start and end */
	size_t spans_cap;
	struct mask_shape *shapes; /* the shapes of recent texts (mask.c); NULL until one */
	unsigned clock;            /* ages them */
	unsigned long shape_hits;  /* texts masked through a shape, without lexing */
} mask_t;

/*
 * Fill m for sql: the key, the masked text (the key up to its first '\0'),
 * its hash and the literals. -1 when memory runs out.
 *
 * A text is lexed once per shape: m keeps the shapes of the texts it
 * masked last (the text between literals, and each literal's kind), and a
 * text of a known shape (the same bytes around integers and plain strings
 * of the same kinds) has its literals read where the shape says, with
 * the key and hash the shape keeps. The result is the same as lexing.
 */
int mask_text(mask_t *m, const char *sql, size_t len);
void mask_free(mask_t *m);

/* Room for `need` elements in buffer p of *cap: the buffer, or NULL (p is kept). */
void *mask_grow(void *p, size_t *cap, size_t need, size_t elem);

#endif
