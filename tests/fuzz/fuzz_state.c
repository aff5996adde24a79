// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_state: the daemon's state file, base/state.c.
 *
 * Input: a state file. It is written to a private temporary directory (in
 * $FUZZ_TMPDIR, else /dev/shm or /tmp) and loaded with state_load(); the line
 * callback keeps what it is given and refuses records that start with '!'
 * (so the "ignored bad record" path runs too).
 *
 * Properties:
 *  - state_load() agrees with a reference reader written from the format
 *    state_save() writes: the magic line, records of at most STATE_MAX_LINE
 *    bytes with no NUL, each ending in '\n', and one last line
 *    "end COUNT HASH" with the record count in decimal and, in 16 hex
 *    digits, hash_stable() of the record bytes (version 2) or, under the
 *    version 1 magic line older versions wrote, the FNV-1a 64 chained over
 *    each record without its newline. A file it accepts is loaded with exactly
 *    its records, in order; any other is refused (-EBADMSG), moved aside and
 *    gives no record at all;
 *  - a file state_save() writes from records state_put() accepted loads
 *    back with exactly those records (here the input's lines are the
 *    records);
 *  - what is logged (the file set aside, an ignored record) is clean text.
 */
#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/hash.h"
#include "base/log.h"
#include "base/state.h"
#include "fuzz.h"

#define MAX_RECORDS	64

static char dir[PATH_MAX], path[PATH_MAX + 8];

struct records {
	char *v[MAX_RECORDS * 8];
	size_t n;
	bool overflow;
};

static void records_free(struct records *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i]);
	r->n = 0;
	r->overflow = false;
}

static int keep_line(void *ctx, char *line)
{
	struct records *r = ctx;

	if (r->n == sizeof(r->v) / sizeof(r->v[0])) {
		r->overflow = true;
		return 0;
	}
	r->v[r->n++] = fuzz_dup(line, strlen(line), true);
	return line[0] == '!' ? -EINVAL : 0;
}

static uint64_t fnv(uint64_t h, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

/* "end COUNT HASH" exactly as state_save() writes it. */
static bool end_line(const uint8_t *p, size_t n, uint64_t count, uint64_t hash)
{
	char want[64];
	int l = snprintf(want, sizeof(want), "end %llu %016llx", (unsigned long long)count,
			 (unsigned long long)hash);

	return n == (size_t)l && !memcmp(p, want, n);
}

/*
 * The reference reader: 0 and the records' offsets and lengths, or
 * -EBADMSG.
 */
static int reference(const uint8_t *d, size_t size, size_t *off, size_t *len, size_t *n,
		     size_t max)
{
	static const char magic[] = STATE_MAGIC "\n", magic_v1[] = STATE_MAGIC_V1 "\n";
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i = sizeof(magic) - 1, start = i;
	bool v1;

	*n = 0;
	/* Both magic lines have the same length. */
	if (size < i)
		return -EBADMSG;
	v1 = !memcmp(d, magic_v1, i);
	if (!v1 && memcmp(d, magic, i))
		return -EBADMSG;
	while (i < size) {
		const uint8_t *nl = memchr(d + i, '\n', size - i);
		size_t l = nl ? (size_t)(nl - d) - i : size - i;

		if (!nl || l >= STATE_MAX_LINE || memchr(d + i, '\0', l))
			return -EBADMSG;
		if (l >= 4 && !memcmp(d + i, "end ", 4)) {
			if (!v1)
				h = hash_stable(d + start, i - start);
			return end_line(d + i, l, *n, h) && i + l + 1 == size ? 0 : -EBADMSG;
		}
		if (*n < max) {
			off[*n] = i;
			len[*n] = l;
		}
		++*n;
		if (v1)
			h = fnv(h, d + i, l);
		i += l + 1;
	}
	return -EBADMSG;	/* no end line: truncated */
}

static void write_file(const uint8_t *d, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	FUZZ_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	FUZZ_CHECK(!size || write(fd, d, size) == (ssize_t)size, "write: %s", strerror(errno));
	close(fd);
}

/* Remove what state_load() moved aside; how many there were. */
static int clean_dir(void)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	int aside = 0;

	FUZZ_CHECK(dh, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(dh))) {
		if (de->d_name[0] == '.')
			continue;
		aside += !strncmp(de->d_name, "state.corrupt-", 14);
		FUZZ_CHECK(!unlinkat(dirfd(dh), de->d_name, 0), "unlink %s: %s", de->d_name,
			   strerror(errno));
	}
	closedir(dh);
	return aside;
}

static void check_log(struct fuzz_capture *cap)
{
	FUZZ_CHECK(fuzz_lines_ok(cap->buf, cap->len), "logged '%s'", cap->buf);
	free(cap->buf);
}

/* state_load() on the input as it is, against the reference reader. */
static void check_load(const uint8_t *data, size_t size)
{
	static size_t off[MAX_RECORDS * 8], len[MAX_RECORDS * 8];
	const size_t max = sizeof(off) / sizeof(off[0]);
	struct records got = { .n = 0 };
	struct fuzz_capture cap;
	size_t n;
	int ret, want;

	write_file(data, size);
	fuzz_capture_begin(&cap);
	ret = state_load(path, keep_line, &got);
	fuzz_capture_end(&cap);
	check_log(&cap);
	want = reference(data, size, off, len, &n, max);

	FUZZ_CHECK(ret == want, "state_load %d, the reference %d", ret, want);
	FUZZ_CHECK(!access(path, F_OK) == !ret, "the file is %s after state_load returned %d",
		   access(path, F_OK) ? "gone" : "there", ret);
	FUZZ_CHECK(clean_dir() == !!ret, "a refused file is moved aside, an accepted one not");
	if (ret) {
		FUZZ_CHECK(!got.n, "%zu records delivered from a refused file", got.n);
	} else if (n <= max) {
		FUZZ_CHECK(got.n == n, "%zu records delivered, the file has %zu", got.n, n);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(strlen(got.v[i]) == len[i] && !memcmp(got.v[i], data + off[i], len[i]),
				   "record %zu is '%s'", i, got.v[i]);
	}
	records_free(&got);
}

/* The input's lines as records: what state_put() takes loads back. */
struct save_ctx {
	const uint8_t *data;
	size_t size;
	struct records put;
};

static int put_lines(void *ctx, FILE *f)
{
	struct save_ctx *c = ctx;
	const uint8_t *p = c->data, *e = c->data + c->size, *nl;

	for (int i = 0; i < MAX_RECORDS && p < e; i++, p = nl ? nl + 1 : e) {
		char *rec;

		nl = memchr(p, '\n', e - p);
		rec = fuzz_dup(p, (nl ? nl : e) - p, true);
		if (!state_put(f, "%s", rec))
			c->put.v[c->put.n++] = rec;	/* up to its first NUL */
		else
			free(rec);
	}
	return 0;
}

static void check_round_trip(const uint8_t *data, size_t size)
{
	struct save_ctx c = { .data = data, .size = size };
	struct records got = { .n = 0 };
	struct fuzz_capture cap;
	int ret;

	FUZZ_CHECK(!state_save(path, put_lines, &c), "state_save: %s", strerror(errno));
	fuzz_capture_begin(&cap);
	ret = state_load(path, keep_line, &got);
	fuzz_capture_end(&cap);
	check_log(&cap);
	FUZZ_CHECK(!ret, "a file state_save() wrote is refused (%d)", ret);
	FUZZ_CHECK(got.n == c.put.n, "%zu records saved, %zu loaded", c.put.n, got.n);
	for (size_t i = 0; i < got.n; i++)
		FUZZ_CHECK(!strcmp(got.v[i], c.put.v[i]), "record %zu saved as '%s', loaded as '%s'",
			   i, c.put.v[i], got.v[i]);
	records_free(&got);
	records_free(&c.put);
	clean_dir();
}

/* The directory goes with the process: at exit, or before a failed check
 * aborts (a sanitizer's crash leaves it; tests/fuzz/run.sh removes its
 * FUZZ_TMPDIR). No checks here: this also runs from a failing one. */
__attribute__((destructor)) static void remove_dir(void)
{
	char name[PATH_MAX + 300];
	struct dirent *de;
	DIR *dh;

	if (!dir[0] || !(dh = opendir(dir)))
		return;
	while ((de = readdir(dh)))
		if (de->d_name[0] != '.') {
			snprintf(name, sizeof(name), "%s/%s", dir, de->d_name);
			unlink(name);
		}
	closedir(dh);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* tests/fuzz/run.sh names a directory it removes afterwards, also
	 * after a crash (no destructor runs then). */
	const char *base = getenv("FUZZ_TMPDIR");
	struct stat st;

	(void)argc;
	(void)argv;
	if (!base)
		base = !stat("/dev/shm", &st) && S_ISDIR(st.st_mode) && !access("/dev/shm", W_OK) ?
		       "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/igfuzz-state.XXXXXX", base);
	FUZZ_CHECK(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/state", dir);
	fuzz_cleanup = remove_dir;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_load(data, size);
	check_round_trip(data, size);
	return 0;
}
