/*
 * fuzz_auth.c — the authentication exchanges (proxy/auth.h) on hostile messages.
 *
 * The first input byte picks a mode:
 *   0  md5: auth_password_kind, auth_md5_check on fuzzed strings, and the
 *      property that the response made for a password is accepted for it
 *   1  SCRAM server role: fuzzed client-first and client-final messages
 *      against a stored verifier (a fixed one or a fuzzed string)
 *   2  SCRAM client role: fuzzed server-first and server-final messages
 *   3  a whole SCRAM exchange between the two roles with a fuzzed password,
 *      salt and nonces: it must succeed with the right password and fail
 *      with another one
 *
 * PBKDF2 is slow on purpose, so iteration counts stay small here: the
 * verifiers are made with a few iterations, and a server-first message that
 * asks for more than MAX_ITER is not given to the client role (its parsing
 * of the count is still fuzzed with the counts allowed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_util.h"
#include "proxy/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITER 16

static char fixed_verifier[AUTH_SCRAM_VERIFIER_MAX];

static const char *verifier(void)
{
	static const uint8_t salt[] = "0123456789abcdef";

	if (fixed_verifier[0] == '\0' &&
	    auth_scram_make_verifier("secret", salt, 16, 2, fixed_verifier,
	                             sizeof(fixed_verifier)) != 0)
		abort();
	return fixed_verifier;
}

/* Whether a server-first message asks for more iterations than the fuzzer affords. */
static bool costly(const char *msg, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (msg[i] == 'i' && msg[i + 1] == '=' && (i == 0 || msg[i - 1] == ',')) {
			unsigned long v = 0;

			for (size_t j = i + 2; j < len && msg[j] >= '0' && msg[j] <= '9'; j++) {
				v = v * 10 + (unsigned long)(msg[j] - '0');
				if (v > MAX_ITER)
					return true;
			}
		}
	}
	return false;
}

static void fuzz_md5(fuzz_in_t *in)
{
	char *user = fuzz_take_string(in, 0), *stored = fuzz_take_string(in, 0);
	char *response = fuzz_take_string(in, 0);
	uint8_t salt[4];
	char made[36];
	auth_password_kind_t kind = auth_password_kind(stored);

	for (int i = 0; i < 4; i++)
		salt[i] = fuzz_u8(in);
	(void)auth_md5_check(user, stored, salt, response);

	auth_md5_response(user, stored, salt, made);
	fuzz_check(strlen(made) == 35 && memcmp(made, "md5", 3) == 0);
	if (stored[0] != '\0' && kind != AUTH_PW_SCRAM)
		fuzz_check(auth_md5_check(user, stored, salt, made));
	else
		fuzz_check(!auth_md5_check(user, stored, salt, made));
	free(user);
	free(stored);
	free(response);
}

static void fuzz_server(fuzz_in_t *in)
{
	uint8_t how = fuzz_u8(in);
	char *stored = fuzz_take_string(in, 0);
	size_t l1, l2;
	uint8_t *m1 = fuzz_take_until(in, 0, &l1);
	uint8_t *m2 = fuzz_take_until(in, 0, &l2);
	auth_scram_server_t st;
	char out[512];
	const char *pw = stored;
	int rc;

	/* A plain password costs 4096 PBKDF2 iterations at init: fuzz verifiers and md5. */
	if (how & 1 || auth_password_kind(stored) == AUTH_PW_PLAIN)
		pw = verifier();
	if (how & 2)
		rc = auth_scram_server_init_user(&st, pw, "fuzz");
	else
		rc = auth_scram_server_init(&st, pw);
	if (rc == 0) {
		if (auth_scram_server_first(&st, (const char *)m1, l1, out,
		                            (how >> 2) % 4 == 0 ? 8 : sizeof(out)) == 0) {
			fuzz_check(strlen(out) < sizeof(out) && strncmp(out, "r=", 2) == 0);
			if (auth_scram_server_final(&st, (const char *)m2, l2, out, sizeof(out)) ==
			    0)
				fuzz_check(strncmp(out, "v=", 2) == 0);
		}
	}
	free(stored);
	free(m1);
	free(m2);
}

static void fuzz_client(fuzz_in_t *in)
{
	char *password = fuzz_take_string(in, 0);
	size_t l1, l2;
	uint8_t *m1 = fuzz_take_until(in, 0, &l1);
	uint8_t *m2 = fuzz_take_until(in, 0, &l2);
	auth_scram_client_t st;
	char out[512];

	/* the client nonce is fixed so that server-first messages in the corpus can extend it */
	auth_scram_set_test_nonce("fuzznonce");
	fuzz_check(auth_scram_client_first(&st, out, sizeof(out)) == 0);
	fuzz_check(strcmp(out, "n,,n=,r=fuzznonce") == 0);
	if (!costly((const char *)m1, l1) &&
	    auth_scram_client_final(&st, password, (const char *)m1, l1, out, sizeof(out)) == 0) {
		fuzz_check(strncmp(out, "c=biws,r=fuzznonce", 18) == 0);
		(void)auth_scram_client_verify(&st, (const char *)m2, l2);
	}
	free(password);
	free(m1);
	free(m2);
}

static bool printable_nonce(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 40)
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == ',')
			return false;
	return true;
}

static void fuzz_exchange(fuzz_in_t *in)
{
	uint8_t iter = fuzz_u8(in) % 4 + 1, salt_len = fuzz_u8(in) % 32 + 1;
	uint8_t salt[32];
	char *password, *other, *cnonce, *snonce;
	char verif[AUTH_SCRAM_VERIFIER_MAX], c1[512], s1[512], c2[512], s2[512];
	auth_scram_client_t cl;
	auth_scram_server_t sv;
	bool right;

	for (int i = 0; i < salt_len; i++)
		salt[i] = fuzz_u8(in);
	password = fuzz_take_string(in, 0);
	other = fuzz_take_string(in, 0);
	cnonce = fuzz_take_string(in, 0);
	snonce = fuzz_take_string(in, 0);
	if (password[0] == '\0' || auth_password_kind(password) != AUTH_PW_PLAIN ||
	    !printable_nonce(cnonce) || !printable_nonce(snonce))
		goto out;
	/* the client proves `other` when it is given, else the password itself */
	right = other[0] == '\0' || strcmp(other, password) == 0;
	if (!right && auth_password_kind(other) != AUTH_PW_PLAIN)
		goto out;

	fuzz_check(auth_scram_make_verifier(password, salt, salt_len, iter, verif, sizeof(verif)) ==
	           0);
	fuzz_check(auth_password_kind(verif) == AUTH_PW_SCRAM);
	fuzz_check(auth_scram_server_init(&sv, verif) == 0);
	auth_scram_set_test_nonce(cnonce);
	fuzz_check(auth_scram_client_first(&cl, c1, sizeof(c1)) == 0);
	auth_scram_set_test_nonce(snonce);
	fuzz_check(auth_scram_server_first(&sv, c1, strlen(c1), s1, sizeof(s1)) == 0);
	fuzz_check(auth_scram_client_final(&cl, right ? password : other, s1, strlen(s1), c2,
	                                   sizeof(c2)) == 0);
	if (right) {
		fuzz_check(auth_scram_server_final(&sv, c2, strlen(c2), s2, sizeof(s2)) == 0);
		fuzz_check(auth_scram_client_verify(&cl, s2, strlen(s2)) == 0);
	} else {
		fuzz_check(auth_scram_server_final(&sv, c2, strlen(c2), s2, sizeof(s2)) != 0);
	}
out:
	auth_scram_set_test_nonce(NULL);
	free(password);
	free(other);
	free(cnonce);
	free(snonce);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_in_t in = {data, size};

	switch (fuzz_u8(&in) % 4) {
	case 0:
		fuzz_md5(&in);
		break;
	case 1:
		fuzz_server(&in);
		break;
	case 2:
		fuzz_client(&in);
		break;
	default:
		fuzz_exchange(&in);
		break;
	}
	return 0;
}
