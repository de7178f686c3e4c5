/*
 * adminbox.h — one mailbox per worker for the admin console's jobs
 * (adminbox.c): a job is posted to every worker, each fills in its part on
 * its own thread, and the last one sends the job back to the worker it came
 * from. What a job is and what filling and delivering mean are its
 * owner's, given as callbacks: the console's (admin.c, adminbox_init's
 * ops) or a job's own (figures.c's gathering for the console and metrics).
 */
#ifndef PGSHARD_PROXY_ADMINBOX_H
#define PGSHARD_PROXY_ADMINBOX_H

#include <stdatomic.h>

#include "proxy/proxy.h"

typedef struct adminbox_job adminbox_job_t;

typedef struct adminbox_ops {
	void (*fill)(worker_t *w, adminbox_job_t *job);    /* on w: its part */
	void (*deliver)(worker_t *w, adminbox_job_t *job); /* on the origin: every part is in */
	void (*free)(adminbox_job_t *job);
} adminbox_ops_t;

/* The head of a job: a job type (the console's, figures.c's) embeds it as its first member. */
struct adminbox_job {
	int origin;                /* the worker it goes back to */
	atomic_int left;           /* workers that have not filled in their part */
	const adminbox_ops_t *ops; /* its own callbacks (figures.c's); NULL: adminbox_init's */
};

int adminbox_init(int n_workers, const adminbox_ops_t *ops); /* before the workers start */
int adminbox_worker_start(worker_t *w);                      /* w's mailbox opens */
void adminbox_worker_stop(worker_t *w); /* its loop is over: the mailbox closes */
void adminbox_free(void);               /* after every worker has stopped */
int adminbox_workers(void);

/*
 * Post job to every worker; it comes back to worker `origin` through
 * ops->deliver, then ops->free. A worker whose mailbox is closed counts as
 * done with nothing filled in; a job whose origin's mailbox is closed is
 * only freed.
 */
void adminbox_ask_all(adminbox_job_t *job, int origin);

#endif
