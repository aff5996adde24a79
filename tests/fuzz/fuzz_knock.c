// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: knock datagrams (mfa_knock_parse() and
 * mfa_knock_verify() in policy/mfa.c), what any host on the network can send
 * to knock_port. Besides "no crash" it checks:
 * - an accepted datagram has a valid user, a 6-digit code, and its signed
 *   part is exactly the bytes before the last space;
 * - building a datagram from what was parsed gives back the same bytes
 *   (one spelling per datagram: no second reading for the HMAC to miss);
 * - a datagram whose MAC we did not make never verifies under our key.
 */
#include <stdint.h>
#include <string.h>
#include "fuzz.h"
#include "policy/mfa.h"

static const uint8_t key[MFA_KNOCK_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[MFA_KNOCK_MAX + 1], again[MFA_KNOCK_MAX + 16];
	struct mfa_knock k;
	int n;

	if (mfa_knock_parse((const char *)data, size, &k))
		return 0;
	FUZZ_CHECK(size <= MFA_KNOCK_MAX, "accepted %zu bytes", size);
	FUZZ_CHECK(mfa_user_name_ok(k.user), "bad user accepted");
	FUZZ_CHECK(strlen(k.code) == 6 && strspn(k.code, "0123456789") == 6, "bad code accepted");
	FUZZ_CHECK(k.signed_len < size && data[k.signed_len] == ' ' &&
		   !memchr(data + k.signed_len + 1, ' ', size - k.signed_len - 1),
		   "signed part is not everything before the MAC");
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = mfa_knock_build(k.user, k.code, k.time, k.nonce, key, again, sizeof(again));
	if (n > 0) {
		FUZZ_CHECK((size_t)n == size && !memcmp(again, buf, k.signed_len),
			   "a second spelling of the same datagram");
		if (memcmp(again + k.signed_len, buf + k.signed_len, size - k.signed_len))
			FUZZ_CHECK(!mfa_knock_verify(buf, &k, key), "a MAC we did not make verifies");
	}
	return 0;
}
