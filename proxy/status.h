/*
 * status.h — why something pgshard does for a client failed, as a value.
 *
 * Functions return a status (or a failed step, with the status left in the
 * client); one place, session_fail_status (session.c), turns it into the
 * client's ErrorResponse with the SQLSTATE PostgreSQL uses for that kind of
 * failure. Pure: unit-tested in proxy/tests/test_status.c.
 */
#ifndef PGSHARD_PROXY_STATUS_H
#define PGSHARD_PROXY_STATUS_H

typedef enum px_status {
	PX_OK = 0,
	PX_NOMEM,    /* memory ran out: 53200 */
	PX_PROTOCOL, /* the client broke the protocol: 08P01 */
	PX_SEND,     /* a server connection could not take the message: 08006 */
	PX_CONNECT,  /* no server connection could be made: 08001 */
	PX_LIMIT,    /* a configured size limit was reached: 54000 */
	PX_INTERNAL, /* pgshard's own state does not allow it (a bug): XX000 */
} px_status_t;

/* The SQLSTATE of a status; "00000" for PX_OK. */
const char *px_status_sqlstate(px_status_t st);
/* What the client is told, after "pgshard: ". */
const char *px_status_message(px_status_t st);

#endif
