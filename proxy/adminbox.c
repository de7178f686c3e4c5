/*
 * adminbox.c — the admin console's mailboxes (see adminbox.h).
 *
 * Why the console asks the workers instead of reading their state: each
 * worker owns its clients, pools and servers and changes them without a
 * lock (proxy.h), so another thread cannot walk those lists safely, nor read
 * the counters in its pools (stats.h) without making every increment
 * atomic. So a job goes to every worker's mailbox (a list under a mutex, and
 * an event that wakes the worker), each worker fills in its own part on its
 * own thread, and the last to finish (an atomic count) posts the job back to
 * the worker it came from. The data path pays nothing; the console waits one
 * loop pass of each worker. The count's read-modify-write orders every
 * part's writes before the last decrement, and the mailbox mutex orders them
 * before the origin reads them.
 *
 * A mailbox lives as long as the process (adminbox_init to adminbox_free);
 * it is open while its worker's loop runs. Posting to a closed one never
 * touches the worker, whose event may be gone: a job asked counts as done
 * with nothing filled in, a job coming home is freed.
 */
#include "proxy/adminbox.h"
#include "proxy/worker.h"

#include <stdlib.h>

/*
 * A job is in every worker's mailbox at once, so the lists link small
 * nodes of their own rather than the job.
 */
typedef struct adminbox_link {
	struct adminbox_link *next;
	adminbox_job_t *job;
} adminbox_link_t;

typedef struct adminbox {
	pthread_mutex_t lock;
	bool open;
	adminbox_link_t *asks;    /* jobs whose part this worker fills in, oldest first */
	adminbox_link_t *answers; /* jobs of this worker's console clients, done */
	struct event *ev;
} adminbox_t;

static adminbox_t *boxes;
static int n_boxes;
static const adminbox_ops_t *box_ops;

static const adminbox_ops_t *job_ops(const adminbox_job_t *job)
{
	return job->ops != NULL ? job->ops : box_ops;
}

/* Onto the tail of one of a mailbox's lists; false when it is closed or memory ran out. */
static bool box_put(adminbox_t *box, adminbox_link_t **list, adminbox_job_t *job)
{
	adminbox_link_t *l = malloc(sizeof(*l));
	bool posted = false;

	if (l == NULL)
		return false;
	l->job = job;
	l->next = NULL;
	pthread_mutex_lock(&box->lock);
	if (box->open) {
		while (*list != NULL)
			list = &(*list)->next;
		*list = l;
		waker_activate(&g_workers[box - boxes].waker, box->ev);
		posted = true;
	}
	pthread_mutex_unlock(&box->lock);
	if (!posted)
		free(l);
	return posted;
}

static void post_answer(adminbox_job_t *job)
{
	adminbox_t *box = &boxes[job->origin];

	/* its console's worker is gone (and the client with it) unless it is posted */
	if (!box_put(box, &box->answers, job))
		job_ops(job)->free(job);
}

/* One worker's part is in (or will never be): the last one sends the job home. */
static void part_done(adminbox_job_t *job)
{
	if (atomic_fetch_sub(&job->left, 1) == 1)
		post_answer(job);
}

static void post_ask(int i, adminbox_job_t *job)
{
	adminbox_t *box = &boxes[i];

	if (!box_put(box, &box->asks, job))
		part_done(job); /* nothing filled in: its part stays empty */
}

void adminbox_ask_all(adminbox_job_t *job, int origin)
{
	job->origin = origin;
	atomic_init(&job->left, n_boxes);
	for (int i = 0; i < n_boxes; i++)
		post_ask(i, job);
}

/* Take a list out of a mailbox, to go through it unlocked. */
static void box_take(adminbox_t *box, bool close, adminbox_link_t **asks, adminbox_link_t **answers)
{
	pthread_mutex_lock(&box->lock);
	if (close)
		box->open = false;
	*asks = box->asks;
	*answers = box->answers;
	box->asks = box->answers = NULL;
	pthread_mutex_unlock(&box->lock);
}

static void box_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_t *w = arg;
	adminbox_link_t *asks, *answers, *next;

	box_take(&boxes[w->index], false, &asks, &answers);
	for (; asks != NULL; asks = next) {
		next = asks->next;
		job_ops(asks->job)->fill(w, asks->job);
		part_done(asks->job); /* may post to this very box: it is unlocked */
		free(asks);
	}
	for (; answers != NULL; answers = next) {
		next = answers->next;
		job_ops(answers->job)->deliver(w, answers->job);
		job_ops(answers->job)->free(answers->job);
		free(answers);
	}
}

int adminbox_init(int n_workers, const adminbox_ops_t *ops)
{
	boxes = calloc((size_t)n_workers, sizeof(*boxes));
	if (boxes == NULL)
		return -1;
	n_boxes = n_workers;
	box_ops = ops;
	for (int i = 0; i < n_workers; i++)
		pthread_mutex_init(&boxes[i].lock, NULL);
	return 0;
}

int adminbox_workers(void)
{
	return n_boxes;
}

int adminbox_worker_start(worker_t *w)
{
	adminbox_t *box = &boxes[w->index];

	box->ev = event_new(w->base, -1, 0, box_cb, w);
	if (box->ev == NULL)
		return -1;
	pthread_mutex_lock(&box->lock);
	box->open = true;
	pthread_mutex_unlock(&box->lock);
	return 0;
}

void adminbox_worker_stop(worker_t *w)
{
	adminbox_t *box;
	adminbox_link_t *asks, *answers, *next;

	if (boxes == NULL || w->index >= n_boxes)
		return;
	box = &boxes[w->index];
	box_take(box, true, &asks, &answers);
	for (; asks != NULL; asks = next) {
		next = asks->next;
		part_done(asks->job);
		free(asks);
	}
	for (; answers != NULL; answers = next) {
		next = answers->next;
		job_ops(answers->job)->free(answers->job);
		free(answers);
	}
	if (box->ev != NULL)
		event_free(box->ev);
	box->ev = NULL;
}

void adminbox_free(void)
{
	for (int i = 0; i < n_boxes; i++)
		pthread_mutex_destroy(&boxes[i].lock);
	free(boxes);
	boxes = NULL;
	n_boxes = 0;
}
