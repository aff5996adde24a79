/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tiny test harness shared by the C unit tests. Each case prints one line
 * "PASS name", "FAIL name: why" or "SKIP name: why"; tests/run_all.sh counts
 * them. ASSERT_* return bool so a test can write `if (!ASSERT_OK(err, "x")) goto out;`.
 */
#ifndef IMAPGUARD_TEST_H
#define IMAPGUARD_TEST_H
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

extern int test_failed_asserts;	/* asserts failed in the current case */
extern int test_cases_failed;

#define TEST_DEFINE_GLOBALS int test_failed_asserts, test_cases_failed

#define ASSERT_TRUE(cond, name) ({						\
	bool ___ok = (cond);							\
	if (!___ok) {								\
		test_failed_asserts++;						\
		fprintf(stderr, "  %s:%d: %s: expected true\n",			\
			__FILE__, __LINE__, (name));				\
	}									\
	___ok; })

#define ASSERT_EQ(a, b, name) ({						\
	long long ___a = (long long)(a);					\
	long long ___b = (long long)(b);					\
	bool ___ok = ___a == ___b;						\
	if (!___ok) {								\
		test_failed_asserts++;						\
		fprintf(stderr, "  %s:%d: %s: got %lld, expected %lld\n",	\
			__FILE__, __LINE__, (name), ___a, ___b);		\
	}									\
	___ok; })

#define ASSERT_OK(err, name) ASSERT_EQ((err), 0, name)

#define ASSERT_STREQ(a, b, name) ({						\
	const char *___a = (a);							\
	const char *___b = (b);							\
	bool ___ok = ___a && ___b && !strcmp(___a, ___b);			\
	if (!___ok) {								\
		test_failed_asserts++;						\
		fprintf(stderr, "  %s:%d: %s: got \"%s\", expected \"%s\"\n",	\
			__FILE__, __LINE__, (name), ___a ? ___a : "(null)",	\
			___b ? ___b : "(null)");				\
	}									\
	___ok; })

#define ASSERT_OK_PTR(p, name) ASSERT_TRUE((p) != NULL, name)

/* Run one case: resets the assert count, prints PASS/FAIL. */
#define RUN_CASE(name, call) do {						\
	test_failed_asserts = 0;						\
	call;									\
	if (test_failed_asserts) {						\
		test_cases_failed++;						\
		printf("FAIL %s: %d assertion(s)\n", (name), test_failed_asserts); \
	} else {								\
		printf("PASS %s\n", (name));					\
	}									\
	fflush(stdout);								\
} while (0)

#define SKIP_CASE(name, why) printf("SKIP %s: %s\n", (name), (why))

#endif
