/*
 * auth.c — md5 and SCRAM-SHA-256 password exchanges, server and client role.
 *
 * The messages follow RFC 5802 / RFC 7677 the way PostgreSQL speaks them
 * (src/backend/libpq/auth-scram.c for the server, src/interfaces/libpq/
 * fe-auth-scram.c for the client): no channel binding ("n,," or "y,,", never
 * "p="), no authzid, the user name inside the SCRAM messages is ignored (the
 * startup packet already named the user), nonces are 18 random bytes in base64.
 *
 * Every message arrives as (pointer, length) straight from the wire. It is
 * parsed in place with an end pointer, never assumed to be NUL-terminated, and
 * every output goes through a bounded builder: a message too long, a field
 * missing or an out buffer too small is a -1, never an overflow. On any failure
 * the exchange state becomes -1 and stays there, so a caller that ignores one
 * error cannot continue the exchange.
 *
 * Passwords are used byte for byte. PostgreSQL runs SASLprep (RFC 4013) over a
 * SCRAM password first; for printable ASCII that is the identity, so the two
 * agree there. Non-ASCII passwords that SASLprep would change (e.g. non-ASCII
 * spaces, ligatures) will not match a verifier PostgreSQL made; not handled.
 */
#include "proxy/auth.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SCRAM_RAW_NONCE_LEN 18   /* as PostgreSQL and libpq: 24 base64 characters */
#define SCRAM_MSG_MAX       1024 /* longest SCRAM message accepted from the wire */
#define SCRAM_PREFIX        AUTH_SCRAM_MECH "$"
#define B64_RAW_MAX         64 /* longest decoded field: salt, proof or signature */
#define MD5_HASH_LEN        35 /* "md5" + 32 hex digits */

/* ---- bounded string builder with a sticky failure flag ---- */

typedef struct strb {
	char *buf;
	size_t cap;
	size_t len;
	bool failed;
} strb_t;

static void strb_init(strb_t *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	sb->failed = (buf == NULL || cap == 0);
	if (!sb->failed)
		buf[0] = '\0';
}

static void strb_put(strb_t *sb, const char *s, size_t n)
{
	if (sb->failed)
		return;
	if (n >= sb->cap - sb->len) { /* keep room for the NUL */
		sb->failed = true;
		return;
	}
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

static void strb_puts(strb_t *sb, const char *s)
{
	strb_put(sb, s, strlen(s));
}

static void strb_put_b64(strb_t *sb, const uint8_t *raw, size_t n)
{
	size_t need = 4 * ((n + 2) / 3);

	if (sb->failed)
		return;
	if (n > B64_RAW_MAX || need >= sb->cap - sb->len) {
		sb->failed = true;
		return;
	}
	/* EVP_EncodeBlock writes `need` characters and a NUL. */
	EVP_EncodeBlock((unsigned char *)sb->buf + sb->len, raw, (int)n);
	sb->len += need;
}

static void strb_put_int(strb_t *sb, int v)
{
	char tmp[16];
	int n = snprintf(tmp, sizeof(tmp), "%d", v);

	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		sb->failed = true;
		return;
	}
	strb_put(sb, tmp, (size_t)n);
}

/* 0, or -1 with the buffer emptied so that no half-built message gets sent. */
static int strb_finish(strb_t *sb)
{
	if (!sb->failed)
		return 0;
	if (sb->buf != NULL && sb->cap > 0)
		sb->buf[0] = '\0';
	return -1;
}

/* ---- small pieces ---- */

int auth_random(void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (buf == NULL || n > INT_MAX)
		return -1;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * Strict base64 decode (padded, no whitespace) of in[0, inlen) into out.
 * EVP_DecodeBlock alone is too lenient for wire input: it skips surrounding
 * whitespace, accepts '=' in the middle ("ab=c") and counts padding as data, so
 * the alphabet and padding are checked here first and the padding subtracted.
 * Returns the decoded length, or -1 if malformed, empty or longer than outcap.
 */
static int b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap)
{
	uint8_t tmp[B64_RAW_MAX + 3];
	size_t pad = 0;
	int n;

	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 > sizeof(tmp))
		return -1;
	if (in[inlen - 1] == '=') {
		pad = 1;
		if (in[inlen - 2] == '=')
			pad = 2;
	}
	for (size_t i = 0; i < inlen - pad; i++) {
		if (!b64_char(in[i]))
			return -1;
	}
	n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n != inlen / 4 * 3)
		return -1;
	n -= (int)pad;
	if ((size_t)n > outcap) {
		OPENSSL_cleanse(tmp, sizeof(tmp));
		return -1;
	}
	memcpy(out, tmp, (size_t)n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n;
}

/* Decimal digits only, no sign, in [1, max]. */
static int parse_count(const char *s, size_t len, int max, int *out)
{
	long v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	if (v < 1)
		return -1;
	*out = (int)v;
	return 0;
}

static void hex_encode(const uint8_t *raw, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static int sha256(const void *data, size_t len, uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != AUTH_SCRAM_KEY_LEN)
		return -1;
	return 0;
}

static int hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) == NULL ||
	    n != AUTH_SCRAM_KEY_LEN)
		return -1;
	return 0;
}

auth_password_kind_t auth_password_kind(const char *stored)
{
	if (stored == NULL)
		return AUTH_PW_PLAIN;
	if (strncmp(stored, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0)
		return AUTH_PW_SCRAM;
	if (strncmp(stored, "md5", 3) == 0 && strlen(stored) == MD5_HASH_LEN &&
	    strspn(stored + 3, "0123456789abcdef") == MD5_HASH_LEN - 3)
		return AUTH_PW_MD5;
	return AUTH_PW_PLAIN;
}

/* ---- md5 ---- */

/* hex(md5(a || b)) into out (33 bytes). */
static int md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[33])
{
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
	     EVP_DigestUpdate(ctx, b, blen) == 1 && EVP_DigestFinal_ex(ctx, digest, &n) == 1 &&
	     n == 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	hex_encode(digest, 16, out);
	return 0;
}

void auth_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36])
{
	char inner[33];

	out[0] = '\0';
	if (user == NULL || password == NULL || salt == NULL)
		return;
	if (auth_password_kind(password) == AUTH_PW_MD5) {
		memcpy(inner, password + 3, 33); /* 32 digits and the NUL */
	} else if (md5_hex(password, strlen(password), user, strlen(user), inner) != 0) {
		return;
	}
	memcpy(out, "md5", 3);
	if (md5_hex(inner, 32, salt, 4, out + 3) != 0)
		out[0] = '\0';
	OPENSSL_cleanse(inner, sizeof(inner));
}

bool auth_md5_check(const char *user, const char *stored, const uint8_t salt[4],
                    const char *response)
{
	char expected[36];
	bool ok;

	if (user == NULL || stored == NULL || stored[0] == '\0' || salt == NULL || response == NULL)
		return false;
	/* A verifier cannot produce md5; taking it as plain text would turn the
	 * verifier string itself into a password. */
	if (auth_password_kind(stored) == AUTH_PW_SCRAM)
		return false;
	auth_md5_response(user, stored, salt, expected);
	ok = strlen(expected) == MD5_HASH_LEN && strlen(response) == MD5_HASH_LEN &&
	     CRYPTO_memcmp(expected, response, MD5_HASH_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return ok;
}

/* ---- SCRAM building blocks ---- */

/* SaltedPassword, then StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
 * ServerKey = HMAC(SaltedPassword, "Server Key"). client_key may be NULL. */
static int scram_derive(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                        uint8_t *client_key, uint8_t stored_key[AUTH_SCRAM_KEY_LEN],
                        uint8_t server_key[AUTH_SCRAM_KEY_LEN])
{
	uint8_t salted[AUTH_SCRAM_KEY_LEN];
	uint8_t ckey[AUTH_SCRAM_KEY_LEN];
	size_t pwlen = strlen(password);
	int rc = -1;

	if (pwlen > INT_MAX || salt_len > INT_MAX || iterations < 1)
		return -1;
	if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, iterations, EVP_sha256(),
	                      AUTH_SCRAM_KEY_LEN, salted) != 1)
		goto out;
	if (hmac_sha256(salted, sizeof(salted), "Client Key", 10, ckey) != 0 ||
	    sha256(ckey, sizeof(ckey), stored_key) != 0 ||
	    hmac_sha256(salted, sizeof(salted), "Server Key", 10, server_key) != 0)
		goto out;
	if (client_key != NULL)
		memcpy(client_key, ckey, sizeof(ckey));
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	return rc;
}

/* "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>" */
static int scram_parse_verifier(const char *s, auth_scram_server_t *st)
{
	const char *p = s + strlen(SCRAM_PREFIX);
	const char *colon, *dollar, *colon2;
	int n;

	if (strncmp(s, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) != 0)
		return -1;
	colon = strchr(p, ':');
	dollar = colon ? strchr(colon + 1, '$') : NULL;
	colon2 = dollar ? strchr(dollar + 1, ':') : NULL;
	if (colon2 == NULL)
		return -1;
	if (parse_count(p, (size_t)(colon - p), INT_MAX, &st->iterations) != 0)
		return -1;
	n = b64_decode(colon + 1, (size_t)(dollar - colon - 1), st->salt, sizeof(st->salt));
	if (n < 1)
		return -1;
	st->salt_len = (size_t)n;
	if (b64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), st->stored_key,
	               AUTH_SCRAM_KEY_LEN) != AUTH_SCRAM_KEY_LEN)
		return -1;
	if (b64_decode(colon2 + 1, strlen(colon2 + 1), st->server_key, AUTH_SCRAM_KEY_LEN) !=
	    AUTH_SCRAM_KEY_LEN)
		return -1;
	return 0;
}

int auth_scram_make_verifier(const char *password, const uint8_t *salt, size_t salt_len,
                             int iterations, char *out, size_t outlen)
{
	uint8_t stored[AUTH_SCRAM_KEY_LEN], server[AUTH_SCRAM_KEY_LEN];
	strb_t sb;
	int rc;

	strb_init(&sb, out, outlen);
	if (password == NULL || salt == NULL || salt_len < 1 || salt_len > 32 || iterations < 1 ||
	    scram_derive(password, salt, salt_len, iterations, NULL, stored, server) != 0)
		sb.failed = true;
	strb_puts(&sb, SCRAM_PREFIX);
	strb_put_int(&sb, iterations);
	strb_puts(&sb, ":");
	strb_put_b64(&sb, salt, salt_len);
	strb_puts(&sb, "$");
	strb_put_b64(&sb, stored, sizeof(stored));
	strb_puts(&sb, ":");
	strb_put_b64(&sb, server, sizeof(server));
	rc = strb_finish(&sb);
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server, sizeof(server));
	return rc;
}

/* A nonce is printable ASCII without ',' (RFC 5802 "printable"). */
static bool scram_nonce_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	}
	return true;
}

/*
 * Read "<attr>=<value>" at *pos and step past it and its ',' separator.
 * attr 0 accepts any letter (an extension) and stores it in *got.
 * A ',' must be followed by another attribute: a trailing comma is malformed.
 */
static int scram_read_attr(const char **pos, const char *end, char attr, char *got,
                           const char **val, size_t *vlen)
{
	const char *p = *pos;
	const char *v;

	if (end - p < 2 || p[1] != '=')
		return -1;
	if (attr != 0 ? p[0] != attr
	              : !((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z')))
		return -1;
	if (got != NULL)
		*got = p[0];
	v = p + 2;
	p = v;
	while (p < end && *p != ',')
		p++;
	*val = v;
	*vlen = (size_t)(p - v);
	if (p < end) {
		p++;
		if (p == end)
			return -1;
	}
	*pos = p;
	return 0;
}

/* Messages come from the wire: bounded, and no NUL inside. */
static bool scram_msg_sane(const char *msg, size_t len)
{
	return msg != NULL && len > 0 && len <= SCRAM_MSG_MAX && memchr(msg, '\0', len) == NULL;
}

/* Test hook state: 0 disarmed, 1 armed with test_nonce, -1 armed with a bad nonce. */
static char test_nonce[128];
static int test_nonce_armed;

void auth_scram_set_test_nonce(const char *nonce)
{
	size_t n;

	if (nonce == NULL) {
		test_nonce_armed = 0;
		return;
	}
	n = strlen(nonce);
	if (n >= sizeof(test_nonce) || !scram_nonce_valid(nonce, n)) {
		test_nonce_armed = -1;
		return;
	}
	memcpy(test_nonce, nonce, n + 1);
	test_nonce_armed = 1;
}

/* The nonce part a *_first call contributes: the armed test nonce (once), else
 * SCRAM_RAW_NONCE_LEN random bytes in base64. NUL-terminated into out. */
static int scram_make_nonce(char *out, size_t cap)
{
	uint8_t raw[SCRAM_RAW_NONCE_LEN];
	strb_t sb;
	int armed = test_nonce_armed;

	strb_init(&sb, out, cap);
	test_nonce_armed = 0;
	if (armed < 0)
		return -1;
	if (armed > 0) {
		strb_puts(&sb, test_nonce);
		return strb_finish(&sb);
	}
	if (auth_random(raw, sizeof(raw)) != 0)
		return -1;
	strb_put_b64(&sb, raw, sizeof(raw));
	return strb_finish(&sb);
}

/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof,
 * and HMAC(key, AuthMessage) of it. */
static int scram_auth_hmac(const uint8_t key[AUTH_SCRAM_KEY_LEN], const char *client_first_bare,
                           const char *server_first, size_t server_first_len,
                           const char *final_without_proof, size_t final_len,
                           uint8_t out[AUTH_SCRAM_KEY_LEN])
{
	char msg[3 * SCRAM_MSG_MAX];
	strb_t sb;

	strb_init(&sb, msg, sizeof(msg));
	strb_puts(&sb, client_first_bare);
	strb_puts(&sb, ",");
	strb_put(&sb, server_first, server_first_len);
	strb_puts(&sb, ",");
	strb_put(&sb, final_without_proof, final_len);
	if (strb_finish(&sb) != 0)
		return -1;
	return hmac_sha256(key, AUTH_SCRAM_KEY_LEN, msg, sb.len, out);
}

/* ---- SCRAM server role ---- */

int auth_scram_server_init(auth_scram_server_t *st, const char *stored)
{
	if (st == NULL)
		return -1;
	memset(st, 0, sizeof(*st));
	st->state = -1;
	if (stored == NULL || stored[0] == '\0')
		return -1;

	switch (auth_password_kind(stored)) {
	case AUTH_PW_MD5:
		/* md5(password || user) cannot give SCRAM keys. */
		return -1;
	case AUTH_PW_SCRAM:
		if (scram_parse_verifier(stored, st) != 0) {
			OPENSSL_cleanse(st, sizeof(*st));
			st->state = -1;
			return -1;
		}
		break;
	case AUTH_PW_PLAIN:
		/* Make a one-off verifier, as PostgreSQL would have stored one. */
		st->salt_len = AUTH_SCRAM_DEFAULT_SALT_LEN;
		st->iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
		if (auth_random(st->salt, st->salt_len) != 0 ||
		    scram_derive(stored, st->salt, st->salt_len, st->iterations, NULL,
		                 st->stored_key, st->server_key) != 0) {
			OPENSSL_cleanse(st, sizeof(*st));
			st->state = -1;
			return -1;
		}
		break;
	}
	st->state = 0;
	return 0;
}

/*
 * The salt a user without a stored verifier is shown: derived from the user
 * name and a secret made once per process, so that it is the same at every
 * attempt, as a stored verifier's salt is. A random salt per attempt would
 * tell an onlooker that the user does not exist (PostgreSQL's mock salt
 * follows the same reasoning).
 */
static uint8_t mock_secret[32];
static bool mock_secret_ok;

static void make_secret(void)
{
	mock_secret_ok = auth_random(mock_secret, sizeof(mock_secret)) == 0;
}

static int user_salt(const char *user, uint8_t *salt, size_t salt_len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	uint8_t mac[32];

	pthread_once(&once, make_secret);
	if (!mock_secret_ok ||
	    hmac_sha256(mock_secret, sizeof(mock_secret), user, strlen(user), mac) != 0)
		return -1;
	memcpy(salt, mac, salt_len);
	return 0;
}

int auth_scram_server_init_user(auth_scram_server_t *st, const char *stored, const char *user)
{
	if (st == NULL || user == NULL)
		return -1;
	if (stored != NULL && auth_password_kind(stored) == AUTH_PW_SCRAM)
		return auth_scram_server_init(st, stored);
	/* an md5 hash cannot give SCRAM keys: the exchange runs and fails, as in PostgreSQL */
	if (stored != NULL && auth_password_kind(stored) == AUTH_PW_MD5)
		stored = NULL;
	memset(st, 0, sizeof(*st));
	st->state = -1;
	st->salt_len = AUTH_SCRAM_DEFAULT_SALT_LEN;
	st->iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
	if (user_salt(user, st->salt, st->salt_len) != 0)
		return -1;
	if (stored == NULL) {
		/* unknown user: keys nobody knows, so the proof fails at the end */
		if (auth_random(st->stored_key, sizeof(st->stored_key)) != 0 ||
		    auth_random(st->server_key, sizeof(st->server_key)) != 0)
			return -1;
	} else if (stored[0] == '\0' || scram_derive(stored, st->salt, st->salt_len, st->iterations,
	                                             NULL, st->stored_key, st->server_key) != 0) {
		OPENSSL_cleanse(st, sizeof(*st));
		st->state = -1;
		return -1;
	}
	st->state = 0;
	return 0;
}

int auth_scram_server_first(auth_scram_server_t *st, const char *msg, size_t len, char *out,
                            size_t outlen)
{
	const char *p = msg, *end = msg + len;
	const char *bare, *user, *cnonce, *v;
	size_t bare_len, user_len, cnonce_len, vlen;
	char snonce[sizeof(st->nonce)];
	char flag, attr;
	strb_t sb;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (st == NULL || st->state != 0 || out == NULL || !scram_msg_sane(msg, len))
		goto fail;

	/* gs2-header. 'p' asks for channel binding, which is not offered. An
	 * authzid ("a=") is refused, as PostgreSQL does. */
	flag = *p++;
	if (flag != 'n' && flag != 'y')
		goto fail;
	if (end - p < 2 || p[0] != ',' || p[1] != ',')
		goto fail;
	p += 2;

	/* client-first-message-bare: n=<user>,r=<nonce>[,ext...]. A leading
	 * reserved "m=" (mandatory extension) fails the n= read. */
	bare = p;
	bare_len = (size_t)(end - p);
	if (bare_len >= sizeof(st->client_first_bare))
		goto fail;
	/* The user name is ignored: the startup packet named the user. */
	if (scram_read_attr(&p, end, 'n', NULL, &user, &user_len) != 0)
		goto fail;
	if (scram_read_attr(&p, end, 'r', NULL, &cnonce, &cnonce_len) != 0 ||
	    !scram_nonce_valid(cnonce, cnonce_len))
		goto fail;
	while (p < end) {
		if (scram_read_attr(&p, end, 0, &attr, &v, &vlen) != 0)
			goto fail;
	}

	if (scram_make_nonce(snonce, sizeof(snonce)) != 0)
		goto fail;
	strb_init(&sb, st->nonce, sizeof(st->nonce));
	strb_put(&sb, cnonce, cnonce_len);
	strb_puts(&sb, snonce);
	if (strb_finish(&sb) != 0)
		goto fail;

	strb_init(&sb, st->server_first, sizeof(st->server_first));
	strb_puts(&sb, "r=");
	strb_puts(&sb, st->nonce);
	strb_puts(&sb, ",s=");
	strb_put_b64(&sb, st->salt, st->salt_len);
	strb_puts(&sb, ",i=");
	strb_put_int(&sb, st->iterations);
	if (strb_finish(&sb) != 0)
		goto fail;

	strb_init(&sb, out, outlen);
	strb_puts(&sb, st->server_first);
	if (strb_finish(&sb) != 0)
		goto fail;

	memcpy(st->client_first_bare, bare, bare_len);
	st->client_first_bare[bare_len] = '\0';
	st->gs2_flag = flag;
	st->state = 1;
	return 0;
fail:
	if (st != NULL)
		st->state = -1;
	return -1;
}

int auth_scram_server_final(auth_scram_server_t *st, const char *msg, size_t len, char *out,
                            size_t outlen)
{
	const char *p = msg, *end = msg + len;
	const char *cbind, *nonce, *v = NULL, *proof_attr = NULL;
	size_t cbind_len, nonce_len, vlen = 0;
	const char *want_cbind;
	uint8_t proof[AUTH_SCRAM_KEY_LEN], sig[AUTH_SCRAM_KEY_LEN];
	uint8_t client_key[AUTH_SCRAM_KEY_LEN], check[AUTH_SCRAM_KEY_LEN];
	char attr = 0;
	strb_t sb;
	int rc = -1;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (st == NULL || st->state != 1 || out == NULL || !scram_msg_sane(msg, len))
		goto out;

	/* c= must be the base64 of the gs2 header the client sent first. */
	want_cbind = st->gs2_flag == 'y' ? "eSws" : "biws";
	if (scram_read_attr(&p, end, 'c', NULL, &cbind, &cbind_len) != 0 ||
	    cbind_len != strlen(want_cbind) || memcmp(cbind, want_cbind, cbind_len) != 0)
		goto out;
	if (scram_read_attr(&p, end, 'r', NULL, &nonce, &nonce_len) != 0 ||
	    nonce_len != strlen(st->nonce) || memcmp(nonce, st->nonce, nonce_len) != 0)
		goto out;
	/* Extensions may come before the proof; the proof comes last. */
	while (attr != 'p') {
		proof_attr = p;
		if (p == end || scram_read_attr(&p, end, 0, &attr, &v, &vlen) != 0)
			goto out;
	}
	if (p != end || b64_decode(v, vlen, proof, sizeof(proof)) != AUTH_SCRAM_KEY_LEN)
		goto out;

	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be
	 * StoredKey. proof_attr - 1 is the ',' before "p=". */
	if (scram_auth_hmac(st->stored_key, st->client_first_bare, st->server_first,
	                    strlen(st->server_first), msg, (size_t)(proof_attr - 1 - msg),
	                    sig) != 0)
		goto out;
	for (size_t i = 0; i < AUTH_SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ sig[i];
	if (sha256(client_key, sizeof(client_key), check) != 0 ||
	    CRYPTO_memcmp(check, st->stored_key, AUTH_SCRAM_KEY_LEN) != 0)
		goto out;

	/* server-final: v = HMAC(ServerKey, AuthMessage). */
	if (scram_auth_hmac(st->server_key, st->client_first_bare, st->server_first,
	                    strlen(st->server_first), msg, (size_t)(proof_attr - 1 - msg),
	                    sig) != 0)
		goto out;
	strb_init(&sb, out, outlen);
	strb_puts(&sb, "v=");
	strb_put_b64(&sb, sig, sizeof(sig));
	if (strb_finish(&sb) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(sig, sizeof(sig));
	if (st != NULL)
		st->state = rc == 0 ? 2 : -1;
	return rc;
}

/* ---- SCRAM client role ---- */

int auth_scram_client_first(auth_scram_client_t *st, char *out, size_t outlen)
{
	strb_t sb;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (st == NULL)
		return -1;
	memset(st, 0, sizeof(*st));
	st->state = -1;
	if (out == NULL || scram_make_nonce(st->client_nonce, sizeof(st->client_nonce)) != 0)
		return -1;

	/* No channel binding, empty user name: libpq sends exactly this. */
	strb_init(&sb, st->client_first_bare, sizeof(st->client_first_bare));
	strb_puts(&sb, "n=,r=");
	strb_puts(&sb, st->client_nonce);
	if (strb_finish(&sb) != 0)
		return -1;
	strb_init(&sb, out, outlen);
	strb_puts(&sb, "n,,");
	strb_puts(&sb, st->client_first_bare);
	if (strb_finish(&sb) != 0)
		return -1;
	st->state = 1;
	return 0;
}

int auth_scram_client_final(auth_scram_client_t *st, const char *password, const char *msg,
                            size_t len, char *out, size_t outlen)
{
	const char *p = msg, *end = msg + len;
	const char *nonce, *salt_b64, *iter_s;
	size_t nonce_len, salt_b64_len, iter_len, cnonce_len;
	uint8_t salt[B64_RAW_MAX];
	uint8_t client_key[AUTH_SCRAM_KEY_LEN], stored_key[AUTH_SCRAM_KEY_LEN];
	uint8_t server_key[AUTH_SCRAM_KEY_LEN], sig[AUTH_SCRAM_KEY_LEN];
	char final[SCRAM_MSG_MAX];
	int salt_len, iterations;
	strb_t sb;
	int rc = -1;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (st == NULL || st->state != 1 || out == NULL || !scram_msg_sane(msg, len))
		goto out;
	/* An md5 hash or a verifier cannot make a proof; libpq also refuses an
	 * empty password. */
	if (password == NULL || password[0] == '\0' ||
	    auth_password_kind(password) != AUTH_PW_PLAIN)
		goto out;

	/* server-first: r=<our nonce + theirs>,s=<salt>,i=<iterations>, nothing
	 * after (libpq rejects trailing extensions too). */
	cnonce_len = strlen(st->client_nonce);
	if (scram_read_attr(&p, end, 'r', NULL, &nonce, &nonce_len) != 0 ||
	    !scram_nonce_valid(nonce, nonce_len) || nonce_len < cnonce_len ||
	    memcmp(nonce, st->client_nonce, cnonce_len) != 0)
		goto out;
	if (scram_read_attr(&p, end, 's', NULL, &salt_b64, &salt_b64_len) != 0)
		goto out;
	salt_len = b64_decode(salt_b64, salt_b64_len, salt, sizeof(salt));
	if (salt_len < 1)
		goto out;
	if (scram_read_attr(&p, end, 'i', NULL, &iter_s, &iter_len) != 0 || p != end ||
	    parse_count(iter_s, iter_len, AUTH_SCRAM_MAX_ITERATIONS, &iterations) != 0)
		goto out;

	strb_init(&sb, final, sizeof(final));
	strb_puts(&sb, "c=biws,r=");
	strb_put(&sb, nonce, nonce_len);
	if (strb_finish(&sb) != 0)
		goto out;

	if (scram_derive(password, salt, (size_t)salt_len, iterations, client_key, stored_key,
	                 server_key) != 0)
		goto out;
	/* proof = ClientKey XOR HMAC(StoredKey, AuthMessage) */
	if (scram_auth_hmac(stored_key, st->client_first_bare, msg, len, final, sb.len, sig) != 0)
		goto out;
	for (size_t i = 0; i < AUTH_SCRAM_KEY_LEN; i++)
		client_key[i] ^= sig[i];
	/* What the server must answer with: HMAC(ServerKey, AuthMessage). */
	if (scram_auth_hmac(server_key, st->client_first_bare, msg, len, final, sb.len,
	                    st->server_signature) != 0)
		goto out;

	strb_init(&sb, out, outlen);
	strb_puts(&sb, final);
	strb_puts(&sb, ",p=");
	strb_put_b64(&sb, client_key, sizeof(client_key));
	if (strb_finish(&sb) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	if (st != NULL) {
		st->state = rc == 0 ? 2 : -1;
		if (rc != 0)
			OPENSSL_cleanse(st->server_signature, sizeof(st->server_signature));
	}
	return rc;
}

int auth_scram_client_verify(auth_scram_client_t *st, const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;
	const char *v;
	size_t vlen;
	uint8_t sig[AUTH_SCRAM_KEY_LEN];
	int rc = -1;

	if (st == NULL || st->state != 2 || !scram_msg_sane(msg, len))
		goto out;
	/* "e=<error>" is the server refusing; anything but "v=" alone fails. */
	if (scram_read_attr(&p, end, 'v', NULL, &v, &vlen) != 0 || p != end ||
	    b64_decode(v, vlen, sig, sizeof(sig)) != AUTH_SCRAM_KEY_LEN)
		goto out;
	if (CRYPTO_memcmp(sig, st->server_signature, AUTH_SCRAM_KEY_LEN) != 0)
		goto out;
	rc = 0;
out:
	if (st != NULL) {
		st->state = rc == 0 ? 3 : -1;
		OPENSSL_cleanse(st->server_signature, sizeof(st->server_signature));
	}
	return rc;
}
