// SPDX-License-Identifier: GPL-2.0
/*
 * The state file (base/state.c) and bounded reads (base/file.c): round
 * trip, files older versions wrote, corruption, and every way a hostile or
 * broken file system object must neither hang nor be written through.
 * Links base/ alone. Run as root for the ownership cases.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/file.h"
#include "base/state.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

static char tmpdir[] = "/tmp/test_state.XXXXXX";

static const char *P(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
	return b;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static const char *const records[] = {
	"ban 192.0.2.7 1900000000 1700000000 authlog: 5 failures",
	"ban 2001:db8:1::/64 0 1700000001 manual",
	"pos f 123",
};
#define NREC 3

static int put_records(void *ctx, FILE *f)
{
	(void)ctx;
	for (int i = 0; i < NREC; i++) {
		int err = state_put(f, "%s", records[i]);

		if (err)
			return err;
	}
	return 0;
}

struct got {
	char lines[8][128];
	int n;
};

static int collect(void *ctx, char *line)
{
	struct got *g = ctx;

	if (g->n < 8)
		snprintf(g->lines[g->n++], sizeof(g->lines[0]), "%s", line);
	return 0;
}

static void expect_records(const struct got *g, const char *what)
{
	if (!ASSERT_EQ(g->n, NREC, what))
		return;
	for (int i = 0; i < NREC; i++)
		ASSERT_STREQ(g->lines[i], records[i], what);
}

/* How many PATH.corrupt-* files there are (and removes them). */
static int corrupt_count(const char *name)
{
	char cmd[PATH_MAX + 64];
	int n;

	snprintf(cmd, sizeof(cmd), "n=$(ls -d %s.corrupt-* 2>/dev/null | wc -l); rm -rf %s.corrupt-*; "
		 "exit $n", P(name), P(name));
	n = system(cmd);
	return WEXITSTATUS(n);
}

static void test_roundtrip(void)
{
	struct got g = {};
	char head[64] = "";
	FILE *f;

	ASSERT_OK(state_save(P("d/state"), put_records, NULL), "save (creates the directory)");
	f = fopen(P("d/state"), "r");
	if (f) {
		ASSERT_TRUE(fgets(head, sizeof(head), f) != NULL, "read");
		fclose(f);
	}
	ASSERT_STREQ(head, STATE_MAGIC "\n", "version 2 magic");
	ASSERT_OK(state_load(P("d/state"), collect, &g), "load");
	expect_records(&g, "records");
	ASSERT_EQ(state_load(P("d/none"), collect, &g), -ENOENT, "no state yet");
}

/* Exactly what the previous version (FNV-1a checksum) wrote for these
 * records: an upgrade keeps the bans. */
static const char v1_file[] =
	"imapguard-state 1\n"
	"ban 192.0.2.7 1900000000 1700000000 authlog: 5 failures\n"
	"ban 2001:db8:1::/64 0 1700000001 manual\n"
	"pos f 123\n"
	"end 3 72c65e9a5522720e\n";

static void test_upgrade_from_v1(void)
{
	struct got g = {};
	char buf[sizeof(v1_file)];

	write_file(P("d/state"), v1_file);
	ASSERT_OK(state_load(P("d/state"), collect, &g), "version 1 file loads");
	expect_records(&g, "version 1 records");
	ASSERT_EQ(corrupt_count("d/state"), 0, "not set aside");
	/* Its checksum is accepted for version 1 only, and only when right. */
	memcpy(buf, v1_file, sizeof(buf));
	buf[strlen("imapguard-state ")] = '2';
	write_file(P("d/state"), buf);
	g.n = 0;
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "v1 checksum under v2 magic");
	ASSERT_EQ(g.n, 0, "nothing loaded");
	ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
	memcpy(buf, v1_file, sizeof(buf));
	*strstr(buf, "pos f 123") = 'P';
	write_file(P("d/state"), buf);
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "v1 record changed");
	ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
	/* The next save writes version 2, which loads. */
	ASSERT_OK(state_save(P("d/state"), put_records, NULL), "save");
	g.n = 0;
	ASSERT_OK(state_load(P("d/state"), collect, &g), "load v2");
	expect_records(&g, "v2 records");
}

/* Found by fuzz_state: a magic line with a NUL inside ("imapguard-state
 * 1\0...") was taken for the real one, strcmp() stopping at the NUL. */
static void test_magic_exact(void)
{
	static const char v1_nul[] = "imapguard-state 1\0\0\0\nend 0 cbf29ce484222325\n";
	struct got g = {};
	FILE *f = fopen(P("d/state"), "w");

	ASSERT_OK_PTR(f, "open");
	if (f) {
		ASSERT_EQ(fwrite(v1_nul, 1, sizeof(v1_nul) - 1, f), sizeof(v1_nul) - 1, "write");
		fclose(f);
	}
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "NUL in the magic line");
	ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
}

static void test_corrupt(void)
{
	static const char *const bad[] = {
		"imapguard-state 2\nban 192.0.2.1 0 0 x\n",			/* no end */
		"imapguard-state 2\nend 0 0000000000000000\n",			/* wrong sum */
		"imapguard-state 3\nend 0 0000000000000000\n",			/* version */
		"",
	};
	struct got g = {};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(P("d/state"), bad[i]);
		ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, bad[i]);
		ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
	}
	ASSERT_EQ(g.n, 0, "nothing loaded");
}

/* A FIFO, a device link or a symlink as the state file: set aside at once,
 * never read (a FIFO used to hang start-up), never followed. */
static void test_special(void)
{
	struct got g = {};

	unlink(P("d/state"));
	if (!ASSERT_OK(mkfifo(P("d/state"), 0600), "mkfifo"))
		return;
	alarm(10);	/* a regression fails (SIGALRM) instead of hanging */
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "FIFO");
	ASSERT_EQ(corrupt_count("d/state"), 1, "FIFO set aside");
	ASSERT_OK(symlink("/dev/zero", P("d/state")), "symlink to /dev/zero");
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "symlink to a device");
	ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
	alarm(0);
	/* A symlink to a good state file is not followed either. */
	ASSERT_OK(state_save(P("d/real"), put_records, NULL), "save real");
	ASSERT_OK(symlink(P("d/real"), P("d/state")), "symlink");
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "symlink not followed");
	ASSERT_EQ(g.n, 0, "nothing loaded");
	ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
	/* Over the size cap (sparse, so it costs no disk): refused unread. */
	write_file(P("d/state"), "");
	ASSERT_OK(truncate(P("d/state"), STATE_MAX_BYTES + 1ULL), "truncate");
	ASSERT_EQ(state_load(P("d/state"), collect, &g), -EBADMSG, "oversize");
	ASSERT_EQ(corrupt_count("d/state"), 1, "set aside");
}

/* A symlink planted where the temp file goes is never written through. */
static void test_tmp_symlink(void)
{
	static const char victim_text[] = "precious\n";
	char buf[64] = "";
	struct got g = {};
	FILE *f;

	write_file(P("victim"), victim_text);
	unlink(P("d/state.tmp"));
	if (!ASSERT_OK(symlink(P("victim"), P("d/state.tmp")), "plant symlink"))
		return;
	ASSERT_OK(state_save(P("d/state"), put_records, NULL), "save");
	f = fopen(P("victim"), "r");
	if (f) {
		ASSERT_TRUE(fgets(buf, sizeof(buf), f) != NULL, "read victim");
		fclose(f);
	}
	ASSERT_STREQ(buf, victim_text, "victim untouched");
	ASSERT_OK(state_load(P("d/state"), collect, &g), "state saved");
	expect_records(&g, "records");
	ASSERT_TRUE(access(P("d/state.tmp"), F_OK) != 0, "no temp file left");
}

/* A directory others can write to (or owned by another user) is refused
 * for saving and for loading: they could plant bans or links there. */
static void test_unsafe_dir(void)
{
	struct got g = {};

	ASSERT_OK(state_save(P("u/state"), put_records, NULL), "save in a fresh directory");
	ASSERT_OK(chmod(P("u"), 0777), "chmod 777");
	ASSERT_EQ(state_save(P("u/state"), put_records, NULL), -EPERM, "save: world-writable");
	ASSERT_EQ(state_load(P("u/state"), collect, &g), -EPERM, "load: world-writable");
	ASSERT_OK(chmod(P("u"), 0770), "chmod 770");
	ASSERT_EQ(state_save(P("u/state"), put_records, NULL), -EPERM, "save: group-writable");
	ASSERT_OK(chmod(P("u"), 0755), "chmod 755");
	ASSERT_OK(state_load(P("u/state"), collect, &g), "load: 755");
	if (geteuid() == 0) {
		ASSERT_OK(chown(P("u"), 65534, 65534), "chown nobody");
		ASSERT_EQ(state_save(P("u/state"), put_records, NULL), -EPERM, "save: other owner");
		ASSERT_EQ(state_load(P("u/state"), collect, &g), -EPERM, "load: other owner");
		ASSERT_OK(chown(P("u"), 0, 0), "chown back");
	}
	ASSERT_EQ(g.n, NREC, "loaded once, from the safe directory");
}

/* base/file.c directly: caps are exact, reads never block. */
static void test_file_read(void)
{
	char *buf = NULL;
	size_t len = 0;

	write_file(P("f10"), "0123456789");
	ASSERT_OK(file_read(P("f10"), 10, 0, &buf, &len), "exactly the cap");
	ASSERT_EQ(len, 10, "len");
	ASSERT_TRUE(buf && buf[10] == '\0', "NUL after the data");
	free(buf);
	ASSERT_EQ(file_read(P("f10"), 9, 0, &buf, &len), -EFBIG, "one over the cap");
	write_file(P("f0"), "");
	ASSERT_OK(file_read(P("f0"), 10, 0, &buf, &len), "empty");
	ASSERT_EQ(len, 0, "empty len");
	free(buf);
	alarm(10);
	ASSERT_EQ(file_read("/dev/zero", 1 << 20, 0, &buf, &len), -FILE_ENOTREG, "/dev/zero");
	unlink(P("fifo"));
	ASSERT_OK(mkfifo(P("fifo"), 0600), "mkfifo");
	ASSERT_EQ(file_read(P("fifo"), 1 << 20, 0, &buf, &len), -FILE_ENOTREG, "FIFO");
	alarm(0);
	ASSERT_OK(symlink(P("f10"), P("link")), "symlink");
	ASSERT_OK(file_read(P("link"), 10, 0, &buf, &len), "symlink followed by default");
	free(buf);
	ASSERT_EQ(file_read(P("link"), 10, FILE_NOFOLLOW, &buf, &len), -ELOOP, "FILE_NOFOLLOW");
	ASSERT_STREQ(file_strerror(-FILE_ENOTREG), "not a regular file", "message");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN_CASE("state round trip", test_roundtrip());
	RUN_CASE("state from version 1 (upgrade)", test_upgrade_from_v1());
	RUN_CASE("state magic line exact", test_magic_exact());
	RUN_CASE("state corrupt set aside", test_corrupt());
	RUN_CASE("state FIFO, symlink, oversize", test_special());
	RUN_CASE("state temp file symlink not followed", test_tmp_symlink());
	RUN_CASE("state unsafe directory refused", test_unsafe_dir());
	RUN_CASE("file_read caps and special files", test_file_read());
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return test_cases_failed != 0;
}
