/*
 * test_auth.c — md5 and SCRAM-SHA-256 exchanges against known vectors
 * (RFC 7677, a verifier made by a real PostgreSQL 15), against each other, and
 * against malformed input.
 *
 * Expected constants were computed outside this code, with Python's hashlib /
 * hmac, or taken from PostgreSQL 15 itself; see the comment above each.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/auth.h"

/* ---- shared vectors ---- */

static const uint8_t md5_salt[4] = {0x01, 0x02, 0x03, 0x04};
/* python3: h = md5(b"password" + b"postgres").hexdigest();
 *          "md5" + md5(h.encode() + bytes([1, 2, 3, 4])).hexdigest()
 * PostgreSQL 15 stores "md532e12f215ba27cb750c9e093ce4b5127" for this user/password. */
#define MD5_STORED_POSTGRES "md532e12f215ba27cb750c9e093ce4b5127"
#define MD5_RESPONSE_0102   "md598511ceaec347a656f032c7f2a16ef17"

/* RFC 7677 section 3. */
#define RFC_CLIENT_NONCE   "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_SUFFIX  "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_NONCE          RFC_CLIENT_NONCE RFC_SERVER_SUFFIX
#define RFC_SALT_B64       "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST   "n,,n=user,r=" RFC_CLIENT_NONCE
#define RFC_SERVER_FIRST   "r=" RFC_NONCE ",s=" RFC_SALT_B64 ",i=4096"
#define RFC_FINAL_NO_PROOF "c=biws,r=" RFC_NONCE
#define RFC_CLIENT_FINAL   RFC_FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL   "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
static const uint8_t rfc_salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
/* python3: sp = pbkdf2_hmac("sha256", b"pencil", b64decode(RFC_SALT_B64), 4096);
 * StoredKey = sha256(hmac(sp, "Client Key")), ServerKey = hmac(sp, "Server Key"). */
#define RFC_VERIFIER                                                                               \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=" \
	":"                                                                                        \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* Made by PostgreSQL 15.18 (password_encryption = scram-sha-256;
 * ALTER ROLE postgres PASSWORD 'pg15 interop pw'; SELECT rolpassword FROM pg_authid). */
#define PG15_PASSWORD "pg15 interop pw"
#define PG15_VERIFIER                                                                              \
	"SCRAM-SHA-256$4096:8rk1/doUabjqsuuaSeWO2w==$r5D/baa0x/"                                   \
	"xlBP5W99u0eqDQXaKiKsvPcP8ex5UtpkA=:"                                                      \
	"oT7C/Tv6tCX2sJYFKxTIl4AYhhfz/5nnwkqajjrY4y4="
static const uint8_t pg15_salt[16] = {0xf2, 0xb9, 0x35, 0xfd, 0xda, 0x14, 0x69, 0xb8,
                                      0xea, 0xb2, 0xeb, 0x9a, 0x49, 0xe5, 0x8e, 0xdb};

static int teardown_nonce(void **state)
{
	(void)state;
	auth_scram_set_test_nonce(NULL);
	return 0;
}

/* ---- helpers ---- */

typedef struct exchange {
	int server_init, server_first, client_final, server_final, client_verify;
	char client_first_msg[256];
	char server_first_msg[512];
	char client_final_msg[512];
	char server_final_msg[256];
} exchange_t;

/* Run client against server; stops at the first step that fails (later steps stay 1). */
static void run_exchange(const char *stored, const char *password, exchange_t *ex)
{
	auth_scram_server_t srv;
	auth_scram_client_t cli;

	memset(ex, 0, sizeof(*ex));
	ex->server_first = ex->client_final = ex->server_final = ex->client_verify = 1;
	ex->server_init = auth_scram_server_init(&srv, stored);
	if (ex->server_init != 0)
		return;
	assert_int_equal(
	    auth_scram_client_first(&cli, ex->client_first_msg, sizeof(ex->client_first_msg)), 0);
	ex->server_first =
	    auth_scram_server_first(&srv, ex->client_first_msg, strlen(ex->client_first_msg),
	                            ex->server_first_msg, sizeof(ex->server_first_msg));
	if (ex->server_first != 0)
		return;
	ex->client_final = auth_scram_client_final(
	    &cli, password, ex->server_first_msg, strlen(ex->server_first_msg),
	    ex->client_final_msg, sizeof(ex->client_final_msg));
	if (ex->client_final != 0)
		return;
	ex->server_final =
	    auth_scram_server_final(&srv, ex->client_final_msg, strlen(ex->client_final_msg),
	                            ex->server_final_msg, sizeof(ex->server_final_msg));
	if (ex->server_final != 0)
		return;
	ex->client_verify =
	    auth_scram_client_verify(&cli, ex->server_final_msg, strlen(ex->server_final_msg));
}

static void server_at_first_sent(auth_scram_server_t *srv, const char *stored,
                                 const char *client_first)
{
	char out[512];

	assert_int_equal(auth_scram_server_init(srv, stored), 0);
	assert_int_equal(
	    auth_scram_server_first(srv, client_first, strlen(client_first), out, sizeof(out)), 0);
}

/* The RFC 7677 server, after the RFC's client-first. */
static void rfc_server_at_first_sent(auth_scram_server_t *srv)
{
	auth_scram_set_test_nonce(RFC_SERVER_SUFFIX);
	server_at_first_sent(srv, RFC_VERIFIER, RFC_CLIENT_FIRST);
}

/* ---- md5 ---- */

static void test_md5_response_matches_known_vector_for_plain_password(void **state)
{
	char out[36];

	(void)state;
	auth_md5_response("postgres", "password", md5_salt, out);
	assert_string_equal(out, MD5_RESPONSE_0102);
}

static void test_md5_response_uses_prehashed_password_directly(void **state)
{
	char out[36];

	(void)state;
	auth_md5_response("postgres", MD5_STORED_POSTGRES, md5_salt, out);
	assert_string_equal(out, MD5_RESPONSE_0102);
}

static void test_md5_check_accepts_right_response_with_plain_or_hashed_stored(void **state)
{
	(void)state;
	assert_true(auth_md5_check("postgres", "password", md5_salt, MD5_RESPONSE_0102));
	assert_true(auth_md5_check("postgres", MD5_STORED_POSTGRES, md5_salt, MD5_RESPONSE_0102));
}

static void test_md5_check_fails_on_wrong_password_user_or_salt(void **state)
{
	char wrong[36];
	const uint8_t other_salt[4] = {0x01, 0x02, 0x03, 0x05};

	(void)state;
	auth_md5_response("postgres", "passw0rd", md5_salt, wrong);
	assert_false(auth_md5_check("postgres", "password", md5_salt, wrong));
	assert_false(auth_md5_check("postgre", "password", md5_salt, MD5_RESPONSE_0102));
	assert_false(auth_md5_check("postgres", "password", other_salt, MD5_RESPONSE_0102));
	assert_false(auth_md5_check("postgres", "password", md5_salt, ""));
	assert_false(auth_md5_check("postgres", "password", md5_salt, MD5_RESPONSE_0102 "0"));
	assert_false(
	    auth_md5_check("postgres", "password", md5_salt, "md598511ceaec347a656f032c7f2a16ef1"));
	assert_false(auth_md5_check("postgres", "", md5_salt, MD5_RESPONSE_0102));
	assert_false(auth_md5_check("postgres", NULL, md5_salt, MD5_RESPONSE_0102));
	assert_false(auth_md5_check("postgres", "password", md5_salt, NULL));
}

static void test_md5_check_never_matches_scram_verifier_stored(void **state)
{
	char resp[36];

	(void)state;
	/* Even a client that knows the verifier string and hashes it as a password. */
	auth_md5_response("postgres", PG15_VERIFIER, md5_salt, resp);
	assert_int_equal(strlen(resp), 35);
	assert_false(auth_md5_check("postgres", PG15_VERIFIER, md5_salt, resp));
	auth_md5_response("postgres", PG15_PASSWORD, md5_salt, resp);
	assert_false(auth_md5_check("postgres", PG15_VERIFIER, md5_salt, resp));
}

static void test_password_kind_follows_postgres_rules(void **state)
{
	(void)state;
	assert_int_equal(auth_password_kind("password"), AUTH_PW_PLAIN);
	assert_int_equal(auth_password_kind(MD5_STORED_POSTGRES), AUTH_PW_MD5);
	/* Upper-case hex, wrong length: not an md5 hash, so plain text (as PostgreSQL). */
	assert_int_equal(auth_password_kind("md532E12F215BA27CB750C9E093CE4B5127"), AUTH_PW_PLAIN);
	assert_int_equal(auth_password_kind("md532e12f215ba27cb750c9e093ce4b512"), AUTH_PW_PLAIN);
	assert_int_equal(auth_password_kind(PG15_VERIFIER), AUTH_PW_SCRAM);
	assert_int_equal(auth_password_kind("SCRAM-SHA-256$garbage"), AUTH_PW_SCRAM);
}

/* ---- verifiers ---- */

static void test_make_verifier_matches_independent_derivation(void **state)
{
	char out[AUTH_SCRAM_VERIFIER_MAX];

	(void)state;
	assert_int_equal(
	    auth_scram_make_verifier("pencil", rfc_salt, sizeof(rfc_salt), 4096, out, sizeof(out)),
	    0);
	assert_string_equal(out, RFC_VERIFIER);
}

static void test_make_verifier_matches_postgres15_byte_for_byte(void **state)
{
	char out[AUTH_SCRAM_VERIFIER_MAX];

	(void)state;
	assert_int_equal(auth_scram_make_verifier(PG15_PASSWORD, pg15_salt, sizeof(pg15_salt), 4096,
	                                          out, sizeof(out)),
	                 0);
	assert_string_equal(out, PG15_VERIFIER);
}

static void test_make_verifier_rejects_bad_arguments_and_small_buffer(void **state)
{
	char out[AUTH_SCRAM_VERIFIER_MAX];
	uint8_t big_salt[33] = {0};

	(void)state;
	assert_int_equal(auth_scram_make_verifier(NULL, rfc_salt, 16, 4096, out, sizeof(out)), -1);
	assert_int_equal(auth_scram_make_verifier("x", rfc_salt, 0, 4096, out, sizeof(out)), -1);
	assert_int_equal(auth_scram_make_verifier("x", big_salt, 33, 4096, out, sizeof(out)), -1);
	assert_int_equal(auth_scram_make_verifier("x", rfc_salt, 16, 0, out, sizeof(out)), -1);
	/* One byte short of the RFC verifier plus its NUL. */
	assert_int_equal(
	    auth_scram_make_verifier("pencil", rfc_salt, 16, 4096, out, strlen(RFC_VERIFIER)), -1);
	assert_string_equal(out, "");
	assert_int_equal(
	    auth_scram_make_verifier("pencil", rfc_salt, 16, 4096, out, strlen(RFC_VERIFIER) + 1),
	    0);
}

static void test_scram_server_init_rejects_md5_empty_and_malformed_verifier(void **state)
{
	auth_scram_server_t srv;
	static const char *bad[] = {
	    MD5_STORED_POSTGRES,
	    "",
	    "SCRAM-SHA-256$",
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	    "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	    ":"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLm"
	    "tbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    /* salt not base64 */
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6g*==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    /* '=' inside the salt (OpenSSL's decoder alone would take it) */
	    "SCRAM-SHA-256$4096:W22Z=J0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    /* whitespace around a key */
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$    "
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    /* empty salt */
	    "SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    /* StoredKey one byte short */
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4g==:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    /* ServerKey with trailing garbage */
	    RFC_VERIFIER "x",
	    RFC_VERIFIER " ",
	    /* salt longer than the 32 bytes the state holds */
	    "SCRAM-SHA-256$4096:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZk"
	    "BFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (auth_scram_server_init(&srv, bad[i]) != -1)
			fail_msg("accepted stored password #%zu: %s", i, bad[i]);
		assert_int_equal(srv.state, -1);
	}
	assert_int_equal(auth_scram_server_init(&srv, NULL), -1);
	assert_int_equal(auth_scram_server_init(&srv, RFC_VERIFIER), 0);
	assert_int_equal(srv.iterations, 4096);
	assert_int_equal(srv.salt_len, 16);
	assert_memory_equal(srv.salt, rfc_salt, 16);
}

/* ---- RFC 7677 ---- */

static void test_scram_server_reproduces_rfc7677_exchange(void **state)
{
	auth_scram_server_t srv;
	char out[512];

	(void)state;
	assert_int_equal(auth_scram_server_init(&srv, RFC_VERIFIER), 0);
	auth_scram_set_test_nonce(RFC_SERVER_SUFFIX);
	assert_int_equal(auth_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
	                                         out, sizeof(out)),
	                 0);
	assert_string_equal(out, RFC_SERVER_FIRST);
	assert_int_equal(auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
	                                         out, sizeof(out)),
	                 0);
	assert_string_equal(out, RFC_SERVER_FINAL);
	assert_int_equal(srv.state, 2);
}

/*
 * Our client sends "n=" (empty user, like libpq), not the RFC's "n=user", so its
 * AuthMessage and proof differ from the RFC. Expected values from Python:
 * AuthMessage = "n=,r=" RFC_CLIENT_NONCE "," RFC_SERVER_FIRST "," RFC_FINAL_NO_PROOF,
 * proof = ClientKey ^ hmac(StoredKey, AM), signature = hmac(ServerKey, AM).
 */
static void test_scram_client_proof_matches_independent_computation(void **state)
{
	auth_scram_client_t cli;
	char out[512];
	static const char sig[] = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";

	(void)state;
	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
	assert_string_equal(out, "n,,n=,r=" RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), out, sizeof(out)),
	                 0);
	assert_string_equal(out,
	                    RFC_FINAL_NO_PROOF ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
	assert_int_equal(auth_scram_client_verify(&cli, sig, strlen(sig)), 0);
	assert_int_equal(cli.state, 3);
}

/* ---- round trips ---- */

static void test_scram_round_trip_with_plain_stored_password(void **state)
{
	exchange_t ex;

	(void)state;
	run_exchange("correct horse", "correct horse", &ex);
	assert_int_equal(ex.server_init, 0);
	assert_int_equal(ex.server_first, 0);
	assert_int_equal(ex.client_final, 0);
	assert_int_equal(ex.server_final, 0);
	assert_int_equal(ex.client_verify, 0);
	/* Random nonces: 18 bytes each in base64, the server's appended to the client's. */
	assert_int_equal(strlen(ex.client_first_msg), strlen("n,,n=,r=") + 24);
	assert_memory_equal(ex.server_first_msg + 2, ex.client_first_msg + 8, 24);
	assert_non_null(strstr(ex.server_first_msg, ",i=4096"));
}

static void test_scram_round_trip_with_verifier(void **state)
{
	exchange_t ex;

	(void)state;
	run_exchange(RFC_VERIFIER, "pencil", &ex);
	assert_int_equal(ex.server_final, 0);
	assert_int_equal(ex.client_verify, 0);
	assert_non_null(strstr(ex.server_first_msg, ",s=" RFC_SALT_B64 ",i=4096"));
}

static void test_scram_round_trip_with_postgres15_verifier(void **state)
{
	exchange_t ex;

	(void)state;
	run_exchange(PG15_VERIFIER, PG15_PASSWORD, &ex);
	assert_int_equal(ex.server_final, 0);
	assert_int_equal(ex.client_verify, 0);
	run_exchange(PG15_VERIFIER, "pg15 interop pW", &ex);
	assert_int_equal(ex.server_final, -1);
}

static void test_scram_wrong_password_server_rejects_and_client_never_verifies(void **state)
{
	exchange_t ex;
	auth_scram_server_t srv;
	auth_scram_client_t cli;
	char cf[256], sf[512], cfin[512], out[256];

	(void)state;
	run_exchange("pencil", "pencul", &ex);
	assert_int_equal(ex.client_final, 0);
	assert_int_equal(ex.server_final, -1);
	assert_int_equal(ex.client_verify, 1); /* never reached */
	assert_string_equal(ex.server_final_msg, "");

	/* And the client cannot be talked into success afterwards: the signature it
	 * expects is for its own (wrong) password, which the server does not know. */
	assert_int_equal(auth_scram_server_init(&srv, RFC_VERIFIER), 0);
	assert_int_equal(auth_scram_client_first(&cli, cf, sizeof(cf)), 0);
	assert_int_equal(auth_scram_server_first(&srv, cf, strlen(cf), sf, sizeof(sf)), 0);
	assert_int_equal(
	    auth_scram_client_final(&cli, "not pencil", sf, strlen(sf), cfin, sizeof(cfin)), 0);
	assert_int_equal(auth_scram_server_final(&srv, cfin, strlen(cfin), out, sizeof(out)), -1);
	assert_int_equal(auth_scram_client_verify(&cli, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
	                 -1);
}

static void test_scram_client_rejects_forged_server_signature(void **state)
{
	exchange_t ex;
	auth_scram_client_t cli;
	char cf[256], cfin[512];
	/* Valid shape, wrong bytes: the RFC signature belongs to another AuthMessage. */
	static const char forged[] = RFC_SERVER_FINAL;

	(void)state;
	run_exchange("pencil", "pencil", &ex);
	assert_int_equal(ex.client_verify, 0);

	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, cf, sizeof(cf)), 0);
	assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), cfin, sizeof(cfin)),
	                 0);
	assert_int_equal(auth_scram_client_verify(&cli, forged, strlen(forged)), -1);
	assert_int_equal(cli.state, -1);
}

static void test_scram_client_treats_server_error_as_failure(void **state)
{
	auth_scram_client_t cli;
	char cf[256], cfin[512];
	static const char err[] = "e=invalid-proof";

	(void)state;
	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, cf, sizeof(cf)), 0);
	assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), cfin, sizeof(cfin)),
	                 0);
	assert_int_equal(auth_scram_client_verify(&cli, err, strlen(err)), -1);
}

/*
 * A client-final whose r= is not the nonce the server issued, though its proof
 * is right for what it says (Python: AuthMessage with ",c=biws,r=" + that
 * nonce), so only the nonce check can catch it: a replay from another session.
 */
static void test_scram_server_rejects_changed_nonce(void **state)
{
	auth_scram_server_t srv;
	char out[256];
	/* Last character of the server part changed ('0' -> '1'). */
	static const char msg[] = "c=biws,r=" RFC_CLIENT_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1"
	                          ",p=j2rVkvskaPcDY9Xk8/2R+GI7ha4BmKEngq4xsRysqBk=";
	static const char short_nonce[] =
	    "c=biws,r=" RFC_CLIENT_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

	(void)state;
	rfc_server_at_first_sent(&srv);
	assert_int_equal(auth_scram_server_final(&srv, msg, strlen(msg), out, sizeof(out)), -1);
	assert_int_equal(srv.state, -1);
	assert_string_equal(out, "");

	rfc_server_at_first_sent(&srv);
	assert_int_equal(
	    auth_scram_server_final(&srv, short_nonce, strlen(short_nonce), out, sizeof(out)), -1);
}

static void test_scram_server_rejects_channel_binding_p(void **state)
{
	auth_scram_server_t srv;
	char out[512];
	static const char msg[] = "p=tls-server-end-point,,n=,r=" RFC_CLIENT_NONCE;

	(void)state;
	assert_int_equal(auth_scram_server_init(&srv, "pencil"), 0);
	assert_int_equal(auth_scram_server_first(&srv, msg, strlen(msg), out, sizeof(out)), -1);
	assert_string_equal(out, "");
}

/* "y,," (client could bind but thinks we cannot): c= must then be "eSws", not "biws". */
static void test_scram_server_accepts_y_flag_only_with_matching_c(void **state)
{
	auth_scram_server_t srv;
	char out[256];
	static const char first[] = "y,,n=user,r=" RFC_CLIENT_NONCE;
	static const char final_biws[] = RFC_CLIENT_FINAL;

	(void)state;
	auth_scram_set_test_nonce(RFC_SERVER_SUFFIX);
	server_at_first_sent(&srv, RFC_VERIFIER, first);
	assert_int_equal(srv.gs2_flag, 'y');
	assert_int_equal(
	    auth_scram_server_final(&srv, final_biws, strlen(final_biws), out, sizeof(out)), -1);
}

/*
 * The RFC exchange with gs2 header "y,," and so c=eSws. Expected proof and
 * signature from Python over AuthMessage = "n=user,r=" RFC_CLIENT_NONCE ","
 * RFC_SERVER_FIRST ",c=eSws,r=" RFC_NONCE.
 */
static void test_scram_server_accepts_y_flag_with_eSws(void **state)
{
	auth_scram_server_t srv;
	char out[256];
	static const char final[] =
	    "c=eSws,r=" RFC_NONCE ",p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=";

	(void)state;
	auth_scram_set_test_nonce(RFC_SERVER_SUFFIX);
	server_at_first_sent(&srv, RFC_VERIFIER, "y,,n=user,r=" RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_server_final(&srv, final, strlen(final), out, sizeof(out)), 0);
	assert_string_equal(out, "v=dI4KpiQJwBr1+V+K6U1dA6l6I4I9DUNXWND4pcpRU3U=");
}

/* ---- malformed input ---- */

static void test_scram_server_rejects_malformed_client_first(void **state)
{
	static const char *bad[] = {
	    "",
	    "n",
	    "n,",
	    "n,,",
	    "x,,n=,r=abc",
	    "n,a=someone,n=,r=abc", /* authzid */
	    "n,,m=ext,n=,r=abc",    /* mandatory extension */
	    "n,,r=abc",             /* no n= */
	    "n,,n=",
	    "n,,n=user",
	    "n,,n=user,",
	    "n,,n=user,r=",        /* empty nonce */
	    "n,,n=user,r=ab c",    /* nonce not printable */
	    "n,,n=user,r=abc,",    /* trailing comma */
	    "n,,n=user,r=abc,1=x", /* extension name not a letter */
	    "n,,n=user,r=abc,x",   /* extension without '=' */
	    "n,,n=user,s=abc",
	    "n,,user,r=abc",
	    "n,,n=user,,r=abc",
	    ",,n=user,r=abc",
	    "nn,n=user,r=abc",
	};
	auth_scram_server_t srv;
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(auth_scram_server_init(&srv, "pencil"), 0);
		if (auth_scram_server_first(&srv, bad[i], strlen(bad[i]), out, sizeof(out)) != -1)
			fail_msg("accepted client-first #%zu: \"%s\"", i, bad[i]);
		assert_int_equal(srv.state, -1);
		assert_string_equal(out, "");
	}
}

static void test_scram_server_accepts_any_user_name_and_extensions(void **state)
{
	static const char *good[] = {
	    "n,,n=,r=abc",     "n,,n=user,r=abc",        "n,,n=some=2Cone,r=abc",
	    "y,,n=user,r=abc", "n,,n=user,r=abc,x=1,y=",
	};
	auth_scram_server_t srv;
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(auth_scram_server_init(&srv, "pencil"), 0);
		if (auth_scram_server_first(&srv, good[i], strlen(good[i]), out, sizeof(out)) != 0)
			fail_msg("rejected client-first #%zu: \"%s\"", i, good[i]);
		assert_true(strncmp(out, "r=abc", 5) == 0);
	}
}

static void test_scram_server_rejects_malformed_client_final(void **state)
{
#define P ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	static const char *bad[] = {
	    "",
	    "c=biws",
	    "c=biws,r=" RFC_NONCE,
	    "c=biws,r=" RFC_NONCE ",p=",
	    "c=biws,r=" RFC_NONCE ",p",
	    "c=biws,r=" RFC_NONCE ",",
	    "r=" RFC_NONCE P, /* no c= */
	    "c=biws" P,       /* no r= */
	    /* flag mismatch: client sent n,, (proof right for c=eSws, see the y,, test) */
	    "c=eSws,r=" RFC_NONCE ",p=FoqiHTtQEDE8lz1CdaEe3tK4mS+iMDTl77SPyDS53DY=",
	    "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" RFC_NONCE P,
	    "c=biws=,r=" RFC_NONCE P,
	    "c=,r=" RFC_NONCE P,
	    "c=biws,r=" RFC_NONCE P ",x=1", /* attribute after the proof */
	    "c=biws,r=" RFC_NONCE P ",",
	    "c=biws,r=" RFC_NONCE P "=",
	    "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", /* no pad */
	    "c=biws,r=" RFC_NONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ==", /* 45 characters */
	    "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And", /* short */
	    "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=dHzb",
	    "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* space */
	    "c=biws,r=" RFC_NONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7A=dVQ=", /* '=' inside */
	    "c=biws,r=" RFC_NONCE
	    ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* wrong proof */
	    "c=biws,r=" RFC_NONCE ",1=x" P,                    /* bad extension name */
	    "c=biws,r=" RFC_NONCE ",,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "c=biws,,r=" RFC_NONCE P,
	    "c=biws,r=" RFC_NONCE "x" P,
	};
#undef P
	auth_scram_server_t srv;
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rfc_server_at_first_sent(&srv);
		if (auth_scram_server_final(&srv, bad[i], strlen(bad[i]), out, sizeof(out)) != -1)
			fail_msg("accepted client-final #%zu: \"%s\"", i, bad[i]);
		assert_int_equal(srv.state, -1);
		assert_string_equal(out, "");
	}
}

/* An extension before the proof is skipped but stays part of client-final-without-proof
 * (and so of the AuthMessage). Expected values from Python, with ",x=ext" appended to
 * the RFC's client-final-without-proof. */
static void test_scram_server_skips_extensions_before_proof(void **state)
{
	auth_scram_server_t srv;
	char out[256];
	static const char msg[] = "c=biws,r=" RFC_NONCE ",x=ext"
	                          ",p=AAceoXPmRUrazJteDwlr8QoUXCVXbEIBuMkWtsdhnl8=";

	(void)state;
	rfc_server_at_first_sent(&srv);
	assert_int_equal(auth_scram_server_final(&srv, msg, strlen(msg), out, sizeof(out)), 0);
	assert_string_equal(out, "v=wlZZiReH693qTCraVhRsRbdfxYhnzeK6UFlq5QTNksw=");
}

static void test_scram_client_rejects_malformed_server_first(void **state)
{
#define N RFC_NONCE
#define S ",s=" RFC_SALT_B64
	static const char *bad[] = {
	    "",
	    "r=" N,
	    "r=" N S,
	    "r=" N S ",i=",
	    "r=" N S ",i=0",
	    "r=" N S ",i=-1",
	    "r=" N S ",i=+4096",
	    "r=" N S ",i=4096x",
	    "r=" N S ",i= 4096",
	    "r=" N S ",i=10000001", /* above AUTH_SCRAM_MAX_ITERATIONS */
	    "r=" N S ",i=99999999999999999999999",
	    "r=" N S ",i=4096,x=ext", /* libpq refuses trailing extensions */
	    "r=" N S ",i=4096,",
	    "r=" N ",s=,i=4096",
	    "r=" N ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096",
	    "r=" N ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096",
	    "r=" N ",s=W22Z*J0SNY7soEsUEjb6gQ==,i=4096",
	    "r=" N ",i=4096" S,
	    "r=xOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" S ",i=4096", /* not our nonce */
	    "r=rOprNGfwEbeRWgbNEkq" S ",i=4096", /* shorter than our nonce */
	    "r=" N " x" S ",i=4096",             /* not printable */
	    "s=" RFC_SALT_B64 ",r=" N ",i=4096",
	    "m=ext,r=" N S ",i=4096",
	    "e=other-error",
	};
#undef N
#undef S
	auth_scram_client_t cli;
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
		assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
		if (auth_scram_client_final(&cli, "pencil", bad[i], strlen(bad[i]), out,
		                            sizeof(out)) != -1)
			fail_msg("accepted server-first #%zu: \"%s\"", i, bad[i]);
		assert_int_equal(cli.state, -1);
		assert_string_equal(out, "");
	}
}

static void test_scram_client_rejects_malformed_server_final(void **state)
{
	static const char *bad[] = {
	    "",
	    "v=",
	    "v",
	    "e=",
	    "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg",
	    "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,x=1",
	    "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,",
	    "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSO==",
	    " v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=",
	    "e=invalid-proof,v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=",
	};
	auth_scram_client_t cli;
	char out[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
		assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
		assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
		                                         strlen(RFC_SERVER_FIRST), out,
		                                         sizeof(out)),
		                 0);
		if (auth_scram_client_verify(&cli, bad[i], strlen(bad[i])) != -1)
			fail_msg("accepted server-final #%zu: \"%s\"", i, bad[i]);
	}
}

static void test_scram_client_refuses_non_plain_password(void **state)
{
	auth_scram_client_t cli;
	char out[512];
	static const char *bad[] = {"", MD5_STORED_POSTGRES, RFC_VERIFIER};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
		assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
		assert_int_equal(auth_scram_client_final(&cli, bad[i], RFC_SERVER_FIRST,
		                                         strlen(RFC_SERVER_FIRST), out,
		                                         sizeof(out)),
		                 -1);
	}
	assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
	assert_int_equal(auth_scram_client_final(&cli, NULL, RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), out, sizeof(out)),
	                 -1);
}

static void test_scram_rejects_embedded_nul_and_oversized_messages(void **state)
{
	auth_scram_server_t srv;
	auth_scram_client_t cli;
	char out[512];
	char big[2048];
	static const char with_nul[] = "n,,n=user,r=abc\0def";

	(void)state;
	assert_int_equal(auth_scram_server_init(&srv, "pencil"), 0);
	assert_int_equal(
	    auth_scram_server_first(&srv, with_nul, sizeof(with_nul) - 1, out, sizeof(out)), -1);

	/* A client nonce that would overflow the state's nonce / bare buffers. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "n,,n=,r=", 8);
	for (size_t len = 100; len <= sizeof(big); len += 50) {
		assert_int_equal(auth_scram_server_init(&srv, "pencil"), 0);
		int rc = auth_scram_server_first(&srv, big, len, out, sizeof(out));
		/* client nonce + 24 server characters must fit the 128-byte nonce */
		assert_int_equal(rc, len - 8 + 24 < sizeof(srv.nonce) ? 0 : -1);
	}

	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
	memset(big, 'A', sizeof(big));
	memcpy(big, "r=" RFC_CLIENT_NONCE, 2 + strlen(RFC_CLIENT_NONCE));
	assert_int_equal(
	    auth_scram_client_final(&cli, "pencil", big, sizeof(big), out, sizeof(out)), -1);
}

/* Output buffers one byte too small: -1, an empty string, and nothing written past the end. */
static void test_scram_fails_cleanly_on_small_output_buffers(void **state)
{
	auth_scram_server_t srv;
	auth_scram_client_t cli;
	char buf[600];
	size_t n;

	(void)state;
	/* server-first */
	n = strlen(RFC_SERVER_FIRST);
	assert_int_equal(auth_scram_server_init(&srv, RFC_VERIFIER), 0);
	auth_scram_set_test_nonce(RFC_SERVER_SUFFIX);
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(
	    auth_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), buf, n), -1);
	assert_string_equal(buf, "");
	for (size_t i = n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');

	/* server-final */
	n = strlen(RFC_SERVER_FINAL);
	rfc_server_at_first_sent(&srv);
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(
	    auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), buf, n), -1);
	assert_string_equal(buf, "");
	for (size_t i = n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
	rfc_server_at_first_sent(&srv);
	assert_int_equal(
	    auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), buf, n + 1),
	    0);

	/* client-first */
	n = strlen("n,,n=,r=" RFC_CLIENT_NONCE);
	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(auth_scram_client_first(&cli, buf, n), -1);
	assert_string_equal(buf, "");
	for (size_t i = n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
	assert_int_equal(auth_scram_client_first(&cli, buf, 0), -1);

	/* client-final */
	n = strlen(RFC_FINAL_NO_PROOF ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, buf, sizeof(buf)), 0);
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), buf, n),
	                 -1);
	assert_string_equal(buf, "");
	for (size_t i = n; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
}

static void test_scram_rejects_steps_out_of_order(void **state)
{
	auth_scram_server_t srv;
	auth_scram_client_t cli;
	char out[512];

	(void)state;
	/* server-final before server-first */
	assert_int_equal(auth_scram_server_init(&srv, RFC_VERIFIER), 0);
	assert_int_equal(auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
	                                         out, sizeof(out)),
	                 -1);
	/* a second client-first, and replaying client-final after success */
	rfc_server_at_first_sent(&srv);
	assert_int_equal(auth_scram_server_first(&srv, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
	                                         out, sizeof(out)),
	                 -1);
	rfc_server_at_first_sent(&srv);
	assert_int_equal(auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
	                                         out, sizeof(out)),
	                 0);
	assert_int_equal(auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
	                                         out, sizeof(out)),
	                 -1);
	/* after a failure, even the right message is refused */
	rfc_server_at_first_sent(&srv);
	assert_int_equal(auth_scram_server_final(&srv, "c=biws", 6, out, sizeof(out)), -1);
	assert_int_equal(auth_scram_server_final(&srv, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
	                                         out, sizeof(out)),
	                 -1);

	/* client: verify before final, final twice */
	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
	assert_int_equal(
	    auth_scram_client_verify(&cli, "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=", 46),
	    -1);
	auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
	assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
	assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), out, sizeof(out)),
	                 0);
	assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
	                                         strlen(RFC_SERVER_FIRST), out, sizeof(out)),
	                 -1);
}

static void test_scram_test_nonce_is_used_once_and_validated(void **state)
{
	auth_scram_client_t cli;
	char a[256], b[256];

	(void)state;
	auth_scram_set_test_nonce("fixed");
	assert_int_equal(auth_scram_client_first(&cli, a, sizeof(a)), 0);
	assert_string_equal(a, "n,,n=,r=fixed");
	assert_int_equal(auth_scram_client_first(&cli, a, sizeof(a)), 0);
	assert_int_equal(auth_scram_client_first(&cli, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(strlen(a), 8 + 24);

	auth_scram_set_test_nonce("has,comma");
	assert_int_equal(auth_scram_client_first(&cli, a, sizeof(a)), -1);
	auth_scram_set_test_nonce("");
	assert_int_equal(auth_scram_client_first(&cli, a, sizeof(a)), -1);
	auth_scram_set_test_nonce("fixed");
	auth_scram_set_test_nonce(NULL);
	assert_int_equal(auth_scram_client_first(&cli, a, sizeof(a)), 0);
	assert_string_not_equal(a, "n,,n=,r=fixed");
}

/*
 * Fuzz-ish: every truncation of a good client-final must fail, and random
 * corruptions of every message must never crash (ASan/UBSan build) and must
 * leave the state failed or finished, never in between.
 */
static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void test_scram_survives_truncated_and_corrupted_messages(void **state)
{
	auth_scram_server_t srv;
	auth_scram_client_t cli;
	char msg[512], out[512];
	uint32_t seed = 0x9e3779b9;
	size_t len;

	(void)state;
	for (len = 0; len < strlen(RFC_CLIENT_FINAL); len++) {
		rfc_server_at_first_sent(&srv);
		assert_int_equal(
		    auth_scram_server_final(&srv, RFC_CLIENT_FINAL, len, out, sizeof(out)), -1);
	}
	for (int round = 0; round < 3000; round++) {
		const char *base;
		int which = round % 4;
		int rc;

		base = which == 0   ? RFC_CLIENT_FIRST
		       : which == 1 ? RFC_CLIENT_FINAL
		       : which == 2 ? RFC_SERVER_FIRST
		                    : "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";
		len = strlen(base);
		memcpy(msg, base, len);
		for (int k = 1 + (int)(xorshift(&seed) % 3); k > 0; k--)
			msg[xorshift(&seed) % len] = (char)(xorshift(&seed) & 0xff);
		len -= xorshift(&seed) % 4 == 0 ? xorshift(&seed) % len : 0;

		switch (which) {
		case 0:
			assert_int_equal(auth_scram_server_init(&srv, RFC_VERIFIER), 0);
			rc = auth_scram_server_first(&srv, msg, len, out, sizeof(out));
			assert_int_equal(srv.state, rc == 0 ? 1 : -1);
			break;
		case 1:
			rfc_server_at_first_sent(&srv);
			rc = auth_scram_server_final(&srv, msg, len, out, sizeof(out));
			assert_int_equal(srv.state, rc == 0 ? 2 : -1);
			break;
		case 2:
			auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
			assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
			rc = auth_scram_client_final(&cli, "pencil", msg, len, out, sizeof(out));
			assert_int_equal(cli.state, rc == 0 ? 2 : -1);
			break;
		default:
			auth_scram_set_test_nonce(RFC_CLIENT_NONCE);
			assert_int_equal(auth_scram_client_first(&cli, out, sizeof(out)), 0);
			assert_int_equal(auth_scram_client_final(&cli, "pencil", RFC_SERVER_FIRST,
			                                         strlen(RFC_SERVER_FIRST), out,
			                                         sizeof(out)),
			                 0);
			rc = auth_scram_client_verify(&cli, msg, len);
			assert_int_equal(cli.state, rc == 0 ? 3 : -1);
			break;
		}
	}
}

/* ---- auth_scram_server_init_user ---- */

/* The salt out of a server-first-message "r=...,s=<salt>,i=...". */
static void salt_of_attempt(const char *stored, const char *user, char *salt, size_t len)
{
	auth_scram_server_t srv;
	char out[512];
	const char *s, *e;

	assert_int_equal(auth_scram_server_init_user(&srv, stored, user), 0);
	assert_int_equal(auth_scram_server_first(&srv, "n,,n=,r=abcdefgh", 16, out, sizeof(out)),
	                 0);
	s = strstr(out, ",s=");
	assert_non_null(s);
	s += 3;
	e = strchr(s, ',');
	assert_non_null(e);
	assert_true((size_t)(e - s) < len);
	memcpy(salt, s, (size_t)(e - s));
	salt[e - s] = '\0';
}

static void test_scram_unknown_user_shows_the_same_salt_at_every_attempt(void **state)
{
	char a[64], b[64], other[64];

	(void)state;
	salt_of_attempt(NULL, "nobody", a, sizeof(a));
	salt_of_attempt(NULL, "nobody", b, sizeof(b));
	salt_of_attempt(NULL, "somebody", other, sizeof(other));
	assert_string_equal(a, b);
	assert_string_not_equal(a, other);
}

static void test_scram_plain_password_user_shows_the_same_salt_at_every_attempt(void **state)
{
	char a[64], b[64];

	(void)state;
	salt_of_attempt("pencil", "user", a, sizeof(a));
	salt_of_attempt("pencil", "user", b, sizeof(b));
	assert_string_equal(a, b);
}

/* Runs a whole exchange against init_user; returns server_final's result. */
static int exchange_for_user(const char *stored, const char *user, const char *password)
{
	auth_scram_server_t srv;
	auth_scram_client_t cli;
	char c1[256], s1[512], c2[512], s2[256];

	if (auth_scram_server_init_user(&srv, stored, user) != 0)
		return -2;
	assert_int_equal(auth_scram_client_first(&cli, c1, sizeof(c1)), 0);
	assert_int_equal(auth_scram_server_first(&srv, c1, strlen(c1), s1, sizeof(s1)), 0);
	assert_int_equal(auth_scram_client_final(&cli, password, s1, strlen(s1), c2, sizeof(c2)),
	                 0);
	return auth_scram_server_final(&srv, c2, strlen(c2), s2, sizeof(s2));
}

static void test_scram_init_user_accepts_the_right_plain_password_only(void **state)
{
	(void)state;
	assert_int_equal(exchange_for_user("pencil", "user", "pencil"), 0);
	assert_int_equal(exchange_for_user("pencil", "user", "pen"), -1);
}

static void test_scram_init_user_never_accepts_an_unknown_or_md5_user(void **state)
{
	(void)state;
	assert_int_equal(exchange_for_user(NULL, "nobody", "x"), -1);
	assert_int_equal(exchange_for_user(NULL, "nobody", "pencil"), -1);
	/* an md5 hash as stored password goes through the exchange and fails, as in PostgreSQL */
	assert_int_equal(exchange_for_user("md5a3556571e93b0d20722ba62be61e8c2d", "user", "pencil"),
	                 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_md5_response_matches_known_vector_for_plain_password),
	    cmocka_unit_test(test_md5_response_uses_prehashed_password_directly),
	    cmocka_unit_test(test_md5_check_accepts_right_response_with_plain_or_hashed_stored),
	    cmocka_unit_test(test_md5_check_fails_on_wrong_password_user_or_salt),
	    cmocka_unit_test(test_md5_check_never_matches_scram_verifier_stored),
	    cmocka_unit_test(test_password_kind_follows_postgres_rules),
	    cmocka_unit_test(test_make_verifier_matches_independent_derivation),
	    cmocka_unit_test(test_make_verifier_matches_postgres15_byte_for_byte),
	    cmocka_unit_test(test_make_verifier_rejects_bad_arguments_and_small_buffer),
	    cmocka_unit_test(test_scram_server_init_rejects_md5_empty_and_malformed_verifier),
	    cmocka_unit_test_teardown(test_scram_server_reproduces_rfc7677_exchange,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_client_proof_matches_independent_computation,
	                              teardown_nonce),
	    cmocka_unit_test(test_scram_round_trip_with_plain_stored_password),
	    cmocka_unit_test(test_scram_round_trip_with_verifier),
	    cmocka_unit_test(test_scram_round_trip_with_postgres15_verifier),
	    cmocka_unit_test(test_scram_wrong_password_server_rejects_and_client_never_verifies),
	    cmocka_unit_test_teardown(test_scram_client_rejects_forged_server_signature,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_client_treats_server_error_as_failure,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_server_rejects_changed_nonce, teardown_nonce),
	    cmocka_unit_test(test_scram_server_rejects_channel_binding_p),
	    cmocka_unit_test_teardown(test_scram_server_accepts_y_flag_only_with_matching_c,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_server_accepts_y_flag_with_eSws, teardown_nonce),
	    cmocka_unit_test(test_scram_server_rejects_malformed_client_first),
	    cmocka_unit_test(test_scram_server_accepts_any_user_name_and_extensions),
	    cmocka_unit_test(test_scram_unknown_user_shows_the_same_salt_at_every_attempt),
	    cmocka_unit_test(test_scram_plain_password_user_shows_the_same_salt_at_every_attempt),
	    cmocka_unit_test(test_scram_init_user_accepts_the_right_plain_password_only),
	    cmocka_unit_test(test_scram_init_user_never_accepts_an_unknown_or_md5_user),
	    cmocka_unit_test_teardown(test_scram_server_rejects_malformed_client_final,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_server_skips_extensions_before_proof,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_client_rejects_malformed_server_first,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_client_rejects_malformed_server_final,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_client_refuses_non_plain_password, teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_rejects_embedded_nul_and_oversized_messages,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_fails_cleanly_on_small_output_buffers,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_rejects_steps_out_of_order, teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_test_nonce_is_used_once_and_validated,
	                              teardown_nonce),
	    cmocka_unit_test_teardown(test_scram_survives_truncated_and_corrupted_messages,
	                              teardown_nonce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
