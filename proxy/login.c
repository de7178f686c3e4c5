/*
 * login.c — a client's way in: the startup packet (SSL and GSSAPI refused
 * with 'N', CancelRequest forwarded, protocol version, user and database,
 * startup parameters), authentication (trust, md5, SCRAM-SHA-256), then the
 * parameters to report, learnt from a server connection (the default
 * shard's, or the next shard's when it cannot be reached), and the login
 * timeout that bounds all of it.
 */
#include "proxy/login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "proxy/admin.h"
#include "proxy/auth.h"
#include "proxy/cancel.h"
#include "proxy/context.h"
#include "proxy/log.h"
#include "proxy/params.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/sbuf.h"
#include "proxy/session.h"
#include "proxy/status.h"
#include "proxy/wire.h"

/*
 * Like PostgreSQL's authentication_timeout: a connection that trickles its
 * startup packet, or never answers the password request, would otherwise
 * hold one of max_clients for ever. login_clients is in accept order.
 */
void login_timeouts(worker_t *w, time_t now)
{
	time_t limit = now - context_cfg(w)->login_timeout_s;
	client_t *c, *next;

	for (c = TAILQ_FIRST(&w->login_clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->accepted_at > limit)
			break;
		if (!c->closing)
			session_fail(c, "FATAL", "08006",
			             "pgshard: canceling authentication due to timeout");
		else
			session_close(c);
	}
}

static void send_auth_request(client_t *c, int32_t code, const void *data, size_t len)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	wire_put_auth(b, code, data, len);
	session_send_buf(c, b);
}

static void auth_failed(client_t *c)
{
	session_fail(c, "FATAL", "28P01", "pgshard: password authentication failed for user \"%s\"",
	             c->user);
}

/*
 * A login learns the parameters to report (server_version, encodings, ...)
 * from a server connection: the default shard's first, the next shard's
 * when it cannot be reached, so that a shard that is down fails only the
 * statements that need it.
 */
static void login_acquire(client_t *c)
{
	const cfg_t *cfg = context_cfg(c->worker);
	int shard = (cfg->default_shard + c->login_tries) % cfg->n_shards;
	pool_t *p = pool_get(c->worker, shard, c->database, c->user);

	if (p == NULL) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	c->pool = p;
	pool_acquire(p, c);
}

/*
 * What a login reports (ParameterStatus), per database, user and startup
 * parameters (by hash), as the last server that applied exactly those
 * parameters reported them. A login that finds its entry is done at once,
 * without a server: logins then never wait behind a full pool, which a
 * client library that connects while another of its connections holds
 * servers in a transaction (pgbench -C) would wait on for ever, and they
 * work while the default shard is down.
 */
struct login_params {
	char *database, *user;
	uint64_t hash;
	param_list_t reported;
	uint64_t last_used;
};

#define LOGIN_CACHE_SIZE 64

static struct login_params *login_params_find(worker_t *w, const client_t *c)
{
	for (int i = 0; i < w->n_login_params; i++) {
		struct login_params *e = &w->login_params[i];

		if (e->hash == c->params_hash && strcmp(e->user, c->user) == 0 &&
		    strcmp(e->database, c->database) == 0)
			return e;
	}
	return NULL;
}

static void login_params_clear(struct login_params *e)
{
	free(e->database);
	free(e->user);
	params_free(&e->reported);
	memset(e, 0, sizeof(*e));
}

static void login_params_remember(worker_t *w, const client_t *c, const server_t *s)
{
	struct login_params *e = login_params_find(w, c);

	if (e == NULL) {
		if (w->login_params == NULL) {
			w->login_params = calloc(LOGIN_CACHE_SIZE, sizeof(*w->login_params));
			if (w->login_params == NULL)
				return;
		}
		if (w->n_login_params < LOGIN_CACHE_SIZE) {
			e = &w->login_params[w->n_login_params++];
		} else {
			e = &w->login_params[0];
			for (int i = 1; i < LOGIN_CACHE_SIZE; i++)
				if (w->login_params[i].last_used < e->last_used)
					e = &w->login_params[i];
			login_params_clear(e);
		}
		e->database = strdup(c->database);
		e->user = strdup(c->user);
		e->hash = c->params_hash;
		if (e->database == NULL || e->user == NULL ||
		    params_copy(&e->reported, &s->reported) < 0) {
			login_params_clear(e);
			return;
		}
	}
	e->last_used = ++w->login_params_clock;
}

void login_params_free(worker_t *w)
{
	for (int i = 0; i < w->n_login_params; i++)
		login_params_clear(&w->login_params[i]);
	free(w->login_params);
	w->login_params = NULL;
	w->n_login_params = 0;
}

static void send_login_done(client_t *c, const param_list_t *reported)
{
	wire_buf_t *b = &c->worker->scratch;

	wire_buf_reset(b);
	for (int i = 0; i < reported->n; i++) {
		wire_put_parameter_status(b, reported->items[i].name, reported->items[i].stmt);
		session_told_parameter(c, reported->items[i].name, reported->items[i].stmt);
	}
	wire_put_backend_key(b, c->cancel_pid, c->cancel_key);
	wire_put_ready(b, 'I');
	session_send_buf(c, b);
	c->login_step = LOGIN_DONE;
}

/* Authenticated: the parameters to report are known, or a server tells them. */
static void auth_done(client_t *c)
{
	struct login_params *e;

	send_auth_request(c, 0, NULL, 0);
	cancel_register(c);
	if (strcmp(c->database, ADMIN_DATABASE) == 0) {
		admin_login(c); /* the console: no server, no parameters to learn */
		return;
	}
	e = login_params_find(c->worker, c);
	if (e != NULL) {
		e->last_used = ++c->worker->login_params_clock;
		send_login_done(c, &e->reported);
		if (context_cfg(c->worker)->log_connections)
			log_msg(LOG_INFO, c->id, 0, "login ok: user=%s database=%s", c->user,
			        c->database);
		session_logged_in(c);
		return;
	}
	c->login_step = LOGIN_PARAMS;
	login_acquire(c);
}

void login_connect_failed(client_t *c, pool_t *p, const char *why, const uint8_t *error_body,
                          size_t error_len)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "pgshard: could not connect to shard %d (%s:%d): %s", p->shard,
	         p->host, p->port, why ? why : "unknown error");
	if (c->login_step == LOGIN_PARAMS && error_body == NULL) {
		/* the default shard's failure is the one reported if none can be reached */
		if (c->login_tries == 0)
			c->login_error = strdup(msg);
		if (++c->login_tries < context_cfg(c->worker)->n_shards) {
			log_msg(LOG_INFO, c->id, 0, "login: %s; trying the next shard", msg);
			login_acquire(c);
			return;
		}
	}
	if (c->login_step == LOGIN_DONE && !c->closing && p->role == NODE_REPLICA) {
		/* a read meant for a replica: the client sees no error, it is routed again */
		log_msg(LOG_WARNING, c->id, 0, "%s; reading elsewhere", msg);
		replica_connect_failed(c, p);
		session_resume(c);
		return;
	}
	if (c->login_step == LOGIN_DONE && !c->closing) {
		/*
		 * A session that is in: the statement that needed this shard fails,
		 * the session goes on (other shards may be up), as with a
		 * statement PostgreSQL itself cannot run.
		 */
		free(c->connect_error);
		c->connect_error = strdup(msg);
		if (c->connect_error != NULL) {
			session_resume(c);
			return;
		}
	}
	if (error_body != NULL)
		session_fail_with_body(c, error_body, error_len);
	else
		session_fail(c, "FATAL", "08001", "%s", c->login_error ? c->login_error : msg);
}

void login_finish(client_t *c)
{
	server_t *s = c->server;

	send_login_done(c, &s->reported);
	login_params_remember(c->worker, c, s);
	if (context_cfg(c->worker)->log_connections)
		log_msg(LOG_INFO, c->id, s->id, "login ok: user=%s database=%s", c->user,
		        c->database);
	session_maybe_release(c);
}

static void start_auth(client_t *c)
{
	const cfg_t *cfg = context_cfg(c->worker);
	const cfg_user_t *u = cfg_find_user(cfg, c->user);

	if (u != NULL)
		c->stored_password = strdup(u->password);

	switch (cfg->auth_method) {
	case CFG_AUTH_TRUST:
		auth_done(c);
		return;
	case CFG_AUTH_MD5:
		auth_random(c->md5_salt, sizeof(c->md5_salt));
		send_auth_request(c, 5, c->md5_salt, sizeof(c->md5_salt));
		c->login_step = LOGIN_PASSWORD;
		return;
	case CFG_AUTH_SCRAM: {
		static const char mechs[] = AUTH_SCRAM_MECH "\0";

		c->scram = calloc(1, sizeof(*c->scram));
		if (c->scram == NULL) {
			session_fail_status(c, PX_NOMEM);
			return;
		}
		/* an unknown user still goes through the exchange, and fails at the end */
		if (auth_scram_server_init_user(c->scram, c->stored_password, c->user) < 0)
			c->scram->state = -1;
		send_auth_request(c, 10, mechs, sizeof(mechs));
		c->login_step = LOGIN_SASL_INITIAL;
		return;
	}
	}
}

static void send_negotiate(client_t *c, const wire_startup_t *st)
{
	wire_buf_t *b = &c->worker->scratch;
	int n = 0;

	for (int i = 0; i < st->n_params; i++)
		if (strncmp(st->params[i].name, "_pq_.", 5) == 0)
			n++;
	wire_buf_reset(b);
	wire_begin(b, 'v');
	wire_put_i32(b, WIRE_PROTOCOL_3_0);
	wire_put_i32(b, n);
	for (int i = 0; i < st->n_params; i++)
		if (strncmp(st->params[i].name, "_pq_.", 5) == 0)
			wire_put_cstring(b, st->params[i].name);
	wire_end(b);
	session_send_buf(c, b);
}

static void handle_startup(client_t *c, const uint8_t *pkt, size_t len)
{
	wire_startup_t st;
	const char *user, *db;
	char err[256];

	if (wire_parse_startup(pkt, len, &st) < 0) {
		session_protocol_violation(c, "invalid startup packet layout");
		return;
	}
	switch (st.code) {
	case WIRE_SSL_CODE:
	case WIRE_GSSENC_CODE:
		sbuf_write(&c->sb, "N", 1); /* no TLS yet; the client may go on in clear */
		return;
	case WIRE_CANCEL_CODE:
		cancel_forward(c->worker, st.cancel_pid, st.cancel_key);
		session_close_after_flush(c);
		return;
	default:
		break;
	}
	if (c->too_many) {
		session_fail(c, "FATAL", "53300", "pgshard: sorry, too many clients already");
		return;
	}
	if ((st.code >> 16) != 3) {
		session_fail(c, "FATAL", "0A000",
		             "pgshard: unsupported frontend protocol %d.%d: server supports 3.0",
		             st.code >> 16, st.code & 0xffff);
		return;
	}
	user = wire_startup_get(&st, "user");
	if (user == NULL || user[0] == '\0') {
		session_fail(c, "FATAL", "28000",
		             "pgshard: no PostgreSQL user name specified in startup packet");
		return;
	}
	db = wire_startup_get(&st, "database");
	if (db == NULL || db[0] == '\0')
		db = user;
	c->user = strdup(user);
	c->database = strdup(db);
	if (c->user == NULL || c->database == NULL) {
		session_fail_status(c, PX_NOMEM);
		return;
	}
	for (int i = 0; i < st.n_params; i++) {
		const char *why;

		if (replica_startup_param(c, st.params[i].name, st.params[i].value, &why) &&
		    why != NULL) {
			session_fail(c, "FATAL", "22023", "pgshard: %s", why);
			return;
		}
	}
	if (params_from_startup(&c->startup_params, &st, err, sizeof(err)) < 0) {
		session_fail(c, "FATAL", "08P01", "pgshard: %s", err);
		return;
	}
	c->params_hash = params_hash(&c->startup_params, &c->session_params);
	if ((st.code & 0xffff) != 0)
		send_negotiate(c, &st);
	start_auth(c);
}

/* PasswordMessage / SASLInitialResponse / SASLResponse, all type 'p'. */
static void handle_password(client_t *c, const uint8_t *body, size_t len)
{
	char out[512];

	switch (c->login_step) {
	case LOGIN_PASSWORD: {
		const char *resp;

		if (wire_parse_query(body, len, &resp) < 0) {
			session_protocol_violation(c, "invalid password packet");
			return;
		}
		if (c->stored_password == NULL ||
		    !auth_md5_check(c->user, c->stored_password, c->md5_salt, resp)) {
			auth_failed(c);
			return;
		}
		auth_done(c);
		return;
	}
	case LOGIN_SASL_INITIAL: {
		wire_reader_t r;
		const char *mech;
		int32_t n;
		const uint8_t *data;

		wire_reader_init(&r, body, len);
		if (wire_get_cstring(&r, &mech) < 0 || wire_get_i32(&r, &n) < 0 || n < 0 ||
		    wire_get_bytes(&r, (size_t)n, &data) < 0) {
			session_protocol_violation(c, "invalid SASL initial response");
			return;
		}
		if (strcmp(mech, AUTH_SCRAM_MECH) != 0) {
			session_fail(c, "FATAL", "28000",
			             "pgshard: client selected an invalid SASL authentication "
			             "mechanism");
			return;
		}
		if (c->scram->state < 0) {
			session_fail(c, "FATAL", "53200", "pgshard: cannot start SCRAM exchange");
			return;
		}
		if (auth_scram_server_first(c->scram, (const char *)data, (size_t)n, out,
		                            sizeof(out)) < 0) {
			session_protocol_violation(c, "malformed SCRAM message");
			return;
		}
		send_auth_request(c, 11, out, strlen(out));
		c->login_step = LOGIN_SASL_FINAL;
		return;
	}
	case LOGIN_SASL_FINAL:
		if (auth_scram_server_final(c->scram, (const char *)body, len, out, sizeof(out)) <
		        0 ||
		    c->stored_password == NULL) {
			auth_failed(c);
			return;
		}
		send_auth_request(c, 12, out, strlen(out));
		auth_done(c);
		return;
	default:
		session_protocol_violation(c, "unexpected password packet");
		return;
	}
}

void login_read(client_t *c)
{
	pbuf_t *in = c->sb.in;

	while (!c->closing && c->state == CL_LOGIN) {
		uint8_t hdr[WIRE_HEADER_LEN], type, pkt[WIRE_STARTUP_MAX];
		size_t total, avail = pbuf_get_length(in);

		if (c->login_step == LOGIN_STARTUP) {
			switch (wire_frame_startup(pbuf_pullup(in, avail < 4 ? -1 : 4), avail,
			                           &total)) {
			case WIRE_FRAME_NEED_MORE:
				return;
			case WIRE_FRAME_TOO_LONG:
				session_protocol_violation(c, "startup packet too long");
				return;
			case WIRE_FRAME_BAD_LENGTH:
				session_protocol_violation(c, "invalid length of startup packet");
				return;
			case WIRE_FRAME_OK:
				break;
			}
			/* take it out first: handling it may go on to read the next message */
			pbuf_remove(in, pkt, total);
			handle_startup(c, pkt, total);
			continue;
		}
		if (c->login_step != LOGIN_PASSWORD && c->login_step != LOGIN_SASL_INITIAL &&
		    c->login_step != LOGIN_SASL_FINAL)
			return;
		if (pbuf_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
			return;
		switch (wire_frame(hdr, avail, WIRE_STARTUP_MAX, &type, &total)) {
		case WIRE_FRAME_NEED_MORE:
			return;
		case WIRE_FRAME_OK:
			break;
		default:
			session_protocol_violation(c, "invalid length of password packet");
			return;
		}
		if (type != 'p') {
			session_protocol_violation(c, "expected a password packet");
			return;
		}
		pbuf_remove(in, pkt, total);
		handle_password(c, pkt + 5, total - 5);
	}
}
