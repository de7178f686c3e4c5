/*
 * status.c — the SQLSTATE and message of each status (see status.h).
 */
#include "proxy/status.h"

static const struct {
	const char *sqlstate;
	const char *message;
} statuses[] = {
    [PX_OK] = {"00000", "ok"},
    [PX_NOMEM] = {"53200", "out of memory"},
    [PX_PROTOCOL] = {"08P01", "protocol violation"},
    [PX_SEND] = {"08006", "could not pass the message to the server"},
    [PX_CONNECT] = {"08001", "could not connect to the server"},
    [PX_LIMIT] = {"54000", "a configured size limit was reached"},
    [PX_INTERNAL] = {"XX000", "internal error"},
};

const char *px_status_sqlstate(px_status_t st)
{
	if ((unsigned)st >= sizeof(statuses) / sizeof(statuses[0]))
		st = PX_INTERNAL;
	return statuses[st].sqlstate;
}

const char *px_status_message(px_status_t st)
{
	if ((unsigned)st >= sizeof(statuses) / sizeof(statuses[0]))
		st = PX_INTERNAL;
	return statuses[st].message;
}
