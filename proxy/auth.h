/*
 * auth.h — password authentication exchanges, both directions.
 *
 * pgshard authenticates clients against the users file (server role) and
 * authenticates itself to backends (client role), with PostgreSQL's md5 and
 * SCRAM-SHA-256 (RFC 5802 / RFC 7677, as PostgreSQL implements them: no
 * channel binding, the user name in the SCRAM messages is ignored).
 *
 * Everything here is pure: strings and bytes in, strings and bytes out, with
 * OpenSSL for hashing and randomness. No I/O; the session code carries the
 * messages.
 *
 * Stored passwords (users file or conninfo) may be plain text, an md5 hash
 * ("md5" + 32 hex digits, of password || user) or a SCRAM verifier
 * ("SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>").
 * A plain password works for every method; an md5 hash only for md5; a SCRAM
 * verifier only for scram-sha-256 (PostgreSQL has the same rule).
 */
#ifndef PGSHARD_AUTH_H
#define PGSHARD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_SCRAM_MECH               "SCRAM-SHA-256"
#define AUTH_SCRAM_KEY_LEN            32
#define AUTH_SCRAM_DEFAULT_ITERATIONS 4096
#define AUTH_SCRAM_DEFAULT_SALT_LEN   16
/* Most PBKDF2 iterations the client role will do for a server (about 2 s of CPU);
 * stops a hostile backend from stalling a worker, well above real settings. */
#define AUTH_SCRAM_MAX_ITERATIONS 10000000
/* Enough for any verifier auth_scram_make_verifier writes (salt up to 32 bytes). */
#define AUTH_SCRAM_VERIFIER_MAX 192

/* Fill buf with n cryptographically random bytes; 0 on success, -1 on failure. */
int auth_random(void *buf, size_t n);

/* What kind of stored password this is, by PostgreSQL's rules: "md5" + 32
 * lowercase hex digits is an md5 hash; anything starting "SCRAM-SHA-256$" is a
 * SCRAM verifier (stricter than PostgreSQL, which treats a malformed one as plain
 * text: here auth_scram_server_init rejects it, so a typo fails loudly); the rest
 * is plain text. NULL counts as plain text (and is then rejected by its users). */
typedef enum auth_password_kind {
	AUTH_PW_PLAIN,
	AUTH_PW_MD5,
	AUTH_PW_SCRAM,
} auth_password_kind_t;

auth_password_kind_t auth_password_kind(const char *stored);

/* ---- md5 ---- */

/* "md5" + hex(md5(hex(md5(password || user)) || salt)) into out (36 bytes incl. NUL).
 * `password` may already be an md5 hash ("md5..."), as PostgreSQL's libpq allows. */
void auth_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36]);

/* Server side: does the client's response match the stored password for this salt?
 * Constant-time comparison. A SCRAM verifier as stored password never matches. */
bool auth_md5_check(const char *user, const char *stored, const uint8_t salt[4],
                    const char *response);

/* ---- SCRAM-SHA-256, server role (verifying a client) ---- */

typedef struct auth_scram_server {
	int state; /* 0 init, 1 first sent, 2 done, -1 failed */
	int iterations;
	uint8_t salt[32];
	size_t salt_len;
	uint8_t stored_key[AUTH_SCRAM_KEY_LEN];
	uint8_t server_key[AUTH_SCRAM_KEY_LEN];
	char nonce[128]; /* client nonce || server nonce */
	char client_first_bare[512];
	char server_first[512];
	char gs2_flag; /* 'n' or 'y' from client-first; client-final's c= must repeat it */
} auth_scram_server_t;

/* Prepare to verify a client whose stored password is `stored` (plain text or
 * a SCRAM verifier). -1 if the stored password cannot be used for SCRAM
 * (an md5 hash). */
int auth_scram_server_init(auth_scram_server_t *st, const char *stored);

/* The same, for the user `user` whose stored password is `stored` (NULL for a
 * user not in the users file). A plain password and an unknown user get a salt
 * that is the same at every attempt for that user, like a stored verifier's,
 * so the exchange does not reveal whether the user exists; an unknown user's
 * proof never verifies. */
int auth_scram_server_init_user(auth_scram_server_t *st, const char *stored, const char *user);

/* client-first-message in, server-first-message out (NUL-terminated).
 * 0 on success, -1 on a malformed message or too small an out buffer. */
int auth_scram_server_first(auth_scram_server_t *st, const char *msg, size_t len, char *out,
                            size_t outlen);

/* client-final-message in, server-final-message ("v=...") out.
 * 0 when the proof is right, -1 otherwise (malformed, nonce mismatch, bad proof). */
int auth_scram_server_final(auth_scram_server_t *st, const char *msg, size_t len, char *out,
                            size_t outlen);

/* ---- SCRAM-SHA-256, client role (authenticating to a backend) ---- */

typedef struct auth_scram_client {
	int state; /* 0 init, 1 first sent, 2 final sent, 3 verified, -1 failed */
	char client_nonce[64];
	char client_first_bare[256];
	uint8_t server_signature[AUTH_SCRAM_KEY_LEN];
} auth_scram_client_t;

/* client-first-message ("n,,n=,r=<nonce>") into out. 0 or -1. */
int auth_scram_client_first(auth_scram_client_t *st, char *out, size_t outlen);

/* server-first-message in, client-final-message out. `password` must be plain
 * text (or a SCRAM verifier's keys are not enough: a client needs the password).
 * 0 or -1 (malformed message, nonce not extending ours, iteration count out of range). */
int auth_scram_client_final(auth_scram_client_t *st, const char *password, const char *msg,
                            size_t len, char *out, size_t outlen);

/* server-final-message in: 0 if the server proved it knows the password, -1 otherwise. */
int auth_scram_client_verify(auth_scram_client_t *st, const char *msg, size_t len);

/* Build a SCRAM verifier, in PostgreSQL's format, for `password` (plain text)
 * with the given salt (1..32 bytes; tools pass AUTH_SCRAM_DEFAULT_SALT_LEN bytes
 * from auth_random) and iteration count. 0, or -1 on bad arguments or too small
 * an out buffer (AUTH_SCRAM_VERIFIER_MAX is always enough). */
int auth_scram_make_verifier(const char *password, const uint8_t *salt, size_t salt_len,
                             int iterations, char *out, size_t outlen);

/* Test hook: fix the nonce part that the next *_first call (client or server role)
 * will use instead of a random one: the client nonce, or the part the server appends.
 * One call consumes it; NULL disarms it. A nonce that is empty, too long or not
 * printable makes that next call fail. Not thread-safe; only unit tests call this. */
void auth_scram_set_test_nonce(const char *nonce);

#endif
