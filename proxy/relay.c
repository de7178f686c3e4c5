/*
 * relay.c — the server's replies on their way to the client.
 *
 * Replies are relayed as bytes, message by message, without decoding rows.
 * Only the type byte of each message is looked at, to keep the pending
 * queue (proxy.h) in step with the server:
 *
 *   ParseComplete '1', BindComplete '2', CloseComplete '3'  answer P, B, C
 *   RowDescription 'T' / NoData 'n'                          answer Describe
 *   CommandComplete 'C', EmptyQuery 'I', PortalSuspended 's' answer Execute
 *   ReadyForQuery 'Z'                                        answers Sync, Query, FunctionCall
 *   ErrorResponse 'E' in the extended protocol answers the message that
 *   failed, and the server then skips everything up to the next Sync.
 *   NoticeResponse, ParameterStatus and NotificationResponse may come at any
 *   time; anything else with nothing in the queue means the server is out of
 *   step, and it is closed.
 *
 * When a reply completes the head of the queue, replies the proxy makes
 * itself are due if they are next, so they reach the client exactly where
 * the server's would have. ReadyForQuery with status idle and nothing left
 * in the queue is the moment a server can go back to the pool.
 */
#include "proxy/relay.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/colcache.h"
#include "proxy/context.h"
#include "proxy/params.h"
#include "proxy/pending.h"
#include "proxy/prepare.h"
#include "proxy/replica.h"
#include "proxy/sbuf.h"
#include "proxy/server.h"
#include "proxy/session.h"
#include "proxy/stmtlog.h"
#include "proxy/tx.h"
#include "proxy/txwatch.h"
#include "proxy/wire.h"
#include "router/classify.h"

/*
 * The server did not run a Parse (it failed, or was skipped after an
 * earlier error): the statement exists neither on the server nor, as
 * PostgreSQL would have it, for the client.
 */
static void parse_undone(client_t *c, server_t *s, const pending_t *p)
{
	if (p->msg != 'P')
		return;
	/* the unnamed statement's Parse failed or was skipped: which one the server holds
	 * (none, or the one before) is not known */
	if (p->ps == NULL && p->str == NULL && p->action != PEND_SYNTHESIZE)
		s->unnamed_gen = 0;
	if (p->ps != NULL && p->action != PEND_SYNTHESIZE)
		ps_server_del(s, p->ps);
	if (p->str != NULL && p->action != PEND_SWALLOW)
		ps_client_del(c, p->str);
}

/* An error in the extended protocol: the failed message, and all up to Sync, are done. */
static void skip_to_sync(client_t *c, server_t *s)
{
	pending_t *p = pending_head(&s->pending);

	if (p == NULL)
		return;
	parse_undone(c, s, p);
	pending_pop(&s->pending);
	while ((p = pending_head(&s->pending)) != NULL && p->msg != 'S') {
		parse_undone(c, s, p);
		pending_pop(&s->pending);
	}
}

/* ---- SETs take effect when their transaction ends well ---- */

static void settle_sets(client_t *c, server_t *s, char status)
{
	bool reset = false;

	if (c->n_pend_sets == 0)
		return;
	if (status == 'E')
		s->sets_doomed = true;
	if (status != 'I')
		return;
	if (!s->sets_doomed) {
		for (int i = 0; i < c->n_pend_sets; i++) {
			const route_set_t *set = &c->pend_sets[i];

			switch (set->kind) {
			case ROUTE_SET_VALUE:
				params_set(&c->session_params, set->name, set->stmt);
				break;
			case ROUTE_RESET:
				params_remove(&c->session_params, set->name);
				reset = true;
				break;
			case ROUTE_RESET_ALL:
				params_free(&c->session_params);
				reset = true;
				break;
			}
		}
		c->params_hash = params_hash(&c->startup_params, &c->session_params);
		/*
		 * The server now has the client's settings, except after a RESET:
		 * there the server went back to its own default, not to the
		 * client's startup value, so the next link syncs again.
		 */
		s->params_hash = reset ? 0 : c->params_hash;
	}
	s->sets_doomed = false;
	session_drop_pending_sets(c);
}

static bool is_rollback_tag(pbuf_t *in, size_t total)
{
	uint8_t tag[14];

	if (total != 5 + 9)
		return false;
	if (pbuf_copyout(in, tag, sizeof(tag)) != (ev_ssize_t)sizeof(tag))
		return false;
	return memcmp(tag + 5, "ROLLBACK", 9) == 0;
}

/*
 * An ErrorResponse for a deadlock victim (txwatch.c): its cancelled
 * statement's 57014 goes to the client as 40P01. true: told, and consumed.
 */
static bool relay_deadlock(client_t *c, pbuf_t *in, size_t total)
{
	const uint8_t *m;
	wire_buf_t b;
	bool done = false;

	if (c->tx.deadlock_detail == NULL || (m = pbuf_pullup(in, (ev_ssize_t)total)) == NULL)
		return false;
	wire_buf_init(&b);
	wire_begin(&b, 'E');
	if (txwatch_deadlock_body(c, m + 5, total - 5, &b) && wire_end(&b) == 0 &&
	    sbuf_write(&c->sb, b.data, b.len) == 0) {
		pbuf_drain(in, total);
		done = true;
	}
	wire_buf_free(&b);
	return done;
}

/* ---- the relay loop ---- */

/*
 * An ErrorResponse at the head of the server's input: counted and logged
 * (server.c) as the client's, or as pgshard's own when it answers what the
 * proxy sent for itself (head swallowed): an INSERT's column lookup and the
 * question for a primary's WAL position (replica.c) are probes (the INSERT
 * fails as if it had not been asked; the checks tell the position), the
 * rest (a parameter sync, a replayed BEGIN) should not fail.
 */
static void note_error(server_t *s, pbuf_t *in, size_t total, const pending_t *head)
{
	const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);
	log_origin_t origin = LOG_BY_CLIENT;

	if (head != NULL && head->action == PEND_SWALLOW)
		origin = head->msg == 'k' || head->msg == 'w' ? LOG_BY_PROBE : LOG_BY_PROXY;
	if (m != NULL)
		server_note_error(s, m + WIRE_HEADER_LEN, total - WIRE_HEADER_LEN, origin);
}

/* Field f of the ErrorResponse or NoticeResponse at the head of in; NULL: none. */
static const char *message_field(pbuf_t *in, size_t total, char f)
{
	const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);

	return m != NULL ? wire_error_field(m + WIRE_HEADER_LEN, total - WIRE_HEADER_LEN, f) : NULL;
}

/* Whether the ErrorResponse at the head of in ends the server's connection. */
static bool fatal_error(pbuf_t *in, size_t total)
{
	const char *sev = message_field(in, total, 'V');

	return sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/*
 * Whether the message just framed goes to the client as it is, with nothing
 * to look at but its type: a Parse, Bind or Close done, a row, a row
 * description or a command tag of a statement the client asked for. Such
 * messages join the run (below).
 */
static bool plain_message(const client_t *c, const pending_t *head, uint8_t type)
{
	if (head == NULL || head->action != PEND_FORWARD || c->read_again_len > 0)
		return false;
	switch (type) {
	case '1':
	case '2':
	case '3':
	case 'D':
	case 'T':
	case 'n':
		return true;
	case 'C':
		return c->n_pend_sets == 0; /* else a ROLLBACK's tag is looked at */
	default:
		return false;
	}
}

/*
 * The run: plain messages at the front of the server's input, framed and
 * counted, not yet moved. They go to the client in one move when a message
 * needs a look of its own or the loop stops, instead of one move each.
 */
static bool run_flush(client_t *c, pbuf_t *in, size_t *run)
{
	size_t n = *run;

	*run = 0;
	return n == 0 || sbuf_move(&c->sb, in, n);
}

/*
 * Whether a ReadyForQuery with this head, answering the client, joins the
 * run: it goes in the same move as the rows and tag before it (a whole
 * reply into an empty output trades the buffers' blocks instead of copying,
 * pbuf_remove_buffer); its bookkeeping follows as for any other.
 */
static bool ready_joins_run(const client_t *c, const pending_t *head)
{
	return head != NULL && head->action == PEND_FORWARD && c->read_again_len == 0 &&
	       c->batch == NULL;
}

/*
 * What relay_reply knows of the buffers while only the run grows (nothing
 * taken from the server's input, nothing added to the client's output):
 * their lengths, and where the input's bytes are. Looked at again once
 * `fresh` is false.
 */
typedef struct view {
	bool fresh;
	size_t in_len, out_len;
	const uint8_t *bytes;
} view_t;

static void view_look(view_t *v, const pbuf_t *in, const pbuf_t *out)
{
	v->bytes = pbuf_peek(in, &v->in_len);
	v->out_len = pbuf_get_length(out);
	v->fresh = true;
}

/* n bytes `at` bytes into the input, without taking them: false when it holds fewer. */
static bool view_bytes(const view_t *v, size_t at, uint8_t *buf, size_t n)
{
	if (v->in_len < at || v->in_len - at < n)
		return false;
	memcpy(buf, v->bytes + at, n);
	return true;
}

void relay_reply(client_t *c, server_t *s)
{
	pbuf_t *in = s->sb.in;
	pbuf_t *out = c->sb.out;
	size_t max = context_cfg(c->worker)->max_message_size;
	size_t run = 0;
	view_t view = {.fresh = false};

	while (!c->closing && c->server == s) {
		uint8_t hdr[WIRE_HEADER_LEN + 1], type;
		size_t total;
		pending_t *head;
		bool swallow, forward, ready_moved = false;

		if (!view.fresh)
			view_look(&view, in, out);
		if (view.out_len + run > PROXY_HIGH_WATERMARK) {
			/* backpressure: a slow client slows its server, the proxy does not buffer
			 */
			run_flush(c, in, &run);
			s->wait_client_drain = true;
			sbuf_pause(&s->sb);
			return;
		}
		if (!view_bytes(&view, run, hdr, WIRE_HEADER_LEN)) {
			run_flush(c, in, &run);
			return;
		}
		switch (wire_frame(hdr, view.in_len - run, max, &type, &total)) {
		case WIRE_FRAME_NEED_MORE:
			run_flush(c, in, &run);
			return;
		case WIRE_FRAME_OK:
			break;
		case WIRE_FRAME_TOO_LONG:
			run_flush(c, in, &run);
			session_unlinked(c, s);
			session_fail(c, "ERROR", "54000",
			             "pgshard: server message of %u bytes is over max_message_size "
			             "(%zu)",
			             (unsigned)wire_be32(hdr + 1), max);
			server_close(s, "message over max_message_size");
			return;
		default:
			run_flush(c, in, &run);
			session_server_lost(c, s, "invalid message from server");
			server_close(s, "invalid message length");
			return;
		}

		head = pending_head(&s->pending);
		if (plain_message(c, head, type)) {
			const pending_t *next;

			/* a description answers a Describe, a tag an Execute */
			if (type == '1' || type == '2' || type == '3' ||
			    ((type == 'T' || type == 'n') && head->msg == 'D') ||
			    (type == 'C' && head->msg == 'E'))
				pending_pop(&s->pending);
			run += total;
			next = pending_head(&s->pending);
			if ((next == NULL || next->action != PEND_SYNTHESIZE) && !s->flushed)
				continue; /* the view holds */
			/* what follows the run is due now */
			view.fresh = false;
			if (!run_flush(c, in, &run))
				return;
			goto after_message;
		}
		if (type == 'Z') {
			/* its status, while it is still where the view says */
			if (!view_bytes(&view, run, hdr, WIRE_HEADER_LEN + 1)) {
				run_flush(c, in, &run); /* framed whole above: cannot be */
				return;
			}
			if (ready_joins_run(c, head)) {
				run += total;
				ready_moved = true;
			}
		}
		view.fresh = false;
		if (!run_flush(c, in, &run))
			return;
		if (head == NULL && type != 'N' && type != 'S' && type != 'A') {
			/*
			 * Nothing was asked: the server is out of step with the proxy,
			 * or says why it is going away. The client sees its error; the
			 * server is not trusted with another statement.
			 */
			if (type == 'E' && !sbuf_move(&c->sb, in, total))
				return;
			session_server_lost(c, s, "message from the server that nothing asked for");
			server_close(s, "unexpected message");
			return;
		}
		swallow = head != NULL && head->action == PEND_SWALLOW;
		forward = !swallow;
		if (forward && type == 'E' && c->read_again_len > 0 && fatal_error(in, total) &&
		    replica_read_lost(c, s)) {
			/* the replica is going away before answering: the read goes again */
			server_close(s, "replica ended the connection during a read");
			return;
		}
		if (forward && c->read_again_len > 0) {
			int r = replica_reply_message(c, type, in, total);

			if (r < 0) {
				session_fail_status(c, PX_NOMEM);
				return;
			}
			if (r > 0)
				continue; /* kept back while the read may still go again */
		}

		switch (type) {
		case 'Z': {
			bool was_sync, colfetch, batched;
			char status;

			status = (char)hdr[5];
			server_note_ready(s, status);
			was_sync = swallow && s->syncing_params && head->msg == 'Q';
			colfetch = swallow && head->msg == 'k';
			if (head != NULL)
				pending_pop(&s->pending);
			if (colfetch)
				colfetch_done(c); /* the columns asked for an INSERT (colcache.c) */
			/* a statement of a batch: its ReadyForQuery is the batch's to answer */
			batched = !swallow && c->batch != NULL;
			if (swallow || batched)
				pbuf_drain(in, total);
			if (!swallow && !batched) {
				if (!ready_moved && !sbuf_move(&c->sb, in, total))
					return;
				stmtlog_end(c);
			}
			if (was_sync) {
				uint8_t *err = s->sync_error;

				s->sync_error = NULL;
				session_sync_done(c, s, err, s->sync_error_len);
				free(err);
				if (c->closing || c->server != s)
					return;
			} else {
				settle_sets(c, s, status);
				if (!swallow)
					session_note_status(c, status);
				if (batched && !session_batch_step_done(c))
					session_emit(c, 'Z', NULL); /* the batch's answer */
			}
			session_flush_synthesized(c, s);
			if (!swallow && !batched && replica_ask_position(c, s, status) < 0) {
				session_fail_status(c, PX_SEND);
				return;
			}
			if (session_maybe_release(c))
				return;
			if (c->have_plan || pbuf_get_length(c->sb.in) > 0) {
				/*
				 * The next message may wait for this server to be done:
				 * a routed statement, or one the proxy answered itself
				 * (an Execute of a portal on several shards waits for the
				 * settings sync of a server it has just been given).
				 */
				session_resume(c);
				if (c->closing || c->server != s)
					return;
			}
			continue;
		}
		case 'E':
			note_error(s, in, total, head);
			if (swallow && head->msg == 'w') {
				/* the primary's position is not known: the checks will tell */
				forward = false;
				break;
			}
			if (c->n_pend_sets > 0)
				s->sets_doomed = true;
			if (swallow && s->syncing_params) {
				/* the parameter sync failed: keep the error for the client */
				const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);

				if (m != NULL)
					server_keep_sync_error(s, m + 5, total - 5);
				forward = false;
			} else if (swallow && head->msg == 'k') {
				colfetch_failed(c); /* the INSERT is refused as if not asked */
				forward = false;
			} else if (head != NULL && head->msg != 'Q' && head->msg != 'F' &&
			           head->msg != 'S') {
				/* an injected Parse failing is shown too: it is why the Bind fails
				 */
				forward = true;
				skip_to_sync(c, s);
				if (s->unsynced)
					s->batch_failed = true;
			}
			break;
		case '1':
		case '2':
		case '3':
			if (head != NULL)
				pending_pop(&s->pending);
			break;
		case 'T':
		case 'n':
			if (head != NULL && head->msg == 'D')
				pending_pop(&s->pending);
			break;
		case 'C':
		case 'I':
		case 's':
			if (type == 'C' && c->n_pend_sets > 0 && is_rollback_tag(in, total))
				s->sets_doomed = true;
			if (head != NULL && head->msg == 'E')
				pending_pop(&s->pending);
			break;
		case 'S': {
			const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);
			wire_reader_t r;
			const char *name, *value;

			if (m == NULL)
				break;
			server_note_parameter(s, m + 5, total - 5);
			wire_reader_init(&r, m + 5, total - 5);
			if (forward && wire_get_cstring(&r, &name) == 0 &&
			    wire_get_cstring(&r, &value) == 0)
				session_told_parameter(c, name, value);
			break;
		}
		case 'D':
			if (swallow && head->msg == 'w') {
				const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);

				if (m != NULL)
					replica_position_row(c, s, m + 5, total - 5);
			} else if (swallow && head->msg == 'k') {
				const uint8_t *m = pbuf_pullup(in, (ev_ssize_t)total);

				if (m != NULL)
					colfetch_row(c, m + 5, total - 5);
			}
			break;
		default:
			break;
		}

		if (forward && type == 'E' && relay_deadlock(c, in, total)) {
			/* told as 40P01 */
		} else if (forward) {
			if (!sbuf_move(&c->sb, in, total))
				return;
		} else {
			pbuf_drain(in, total);
		}
	after_message:
		session_flush_synthesized(c, s);
		if (s->flushed && s->pending.count == 0) {
			/* the batch answered the proxy's Flush: the waiting message goes on */
			s->flushed = false;
			session_resume(c);
			if (c->closing || c->server != s)
				return;
		}
	}
}
