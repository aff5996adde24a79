// SPDX-License-Identifier: GPL-2.0
/*
 * cli/opts.c, the option tables every command is parsed with: each type,
 * ranges, errors (and their messages), repeatable options, positionals,
 * subcommands, the common options and the generated --help. Linked with the
 * cli archive; its main.o is never pulled in (this file has main()).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "policy/policy.h"
#include "test.h"

TEST_DEFINE_GLOBALS;

struct t {
	bool flag;
	int count, i, e, nlist;
	const char *str, *path, *iface, *list[2], *pos;
	uint64_t dur;
	struct ig_prefix pfx, addr;
	uint32_t u32;
	double d;
	char **rest;
	int nrest;
};

static const char *const colours[] = { "red", "green", "blue", NULL };

#define O(f) offsetof(struct t, f)
static const struct opt t_options[] = {
	OPTION("flag", 'f', OPT_FLAG, O(flag), NULL, "a flag"),
	OPTION("count", 'c', OPT_COUNT, O(count), NULL, "a counter"),
	OPTION("str", 's', OPT_STR, O(str), "TEXT", "any text"),
	OPTION("path", 0, OPT_PATH, O(path), "FILE", "a path\nsecond line"),
	OPTION("iface", 'i', OPT_IFACE, O(iface), "IF", "an interface"),
	OPTION("ttl", 't', OPT_DURATION, O(dur), "DURATION", "a duration"),
	OPTION("prefix", 0, OPT_PREFIX, O(pfx), "CIDR", "a prefix"),
	OPTION("addr", 0, OPT_ADDR, O(addr), "ADDR", "an address"),
	OPTION("u32", 0, OPT_U32, O(u32), "N", "a u32", .min = 1, .max = 4294967295.0),
	OPTION(NULL, 'n', OPT_INT, O(i), "N", "an int", .min = -5, .max = 5),
	OPTION("ratio", 'r', OPT_DOUBLE, O(d), "X", "a double", .min = 0.1, .max = 3600),
	OPTION("colour", 0, OPT_ENUM, O(e), "C", "red|green|blue", .names = colours),
	OPTION("item", 'I', OPT_STR, O(list), "ITEM", "repeatable", .max = 2,
	       .count_off = O(nlist)),
	{}
};

static const struct opts_cmd t_cmd = {
	.name = "test", .usage = "[options]", .doc = "A test command.", .opts = t_options,
	.epilog = "EXAMPLES:\n  imapguard test -f",
};

static const struct opt pos_options[] = {
	OPTION("req", 'q', OPT_STR, O(str), "X", "required", .required = true),
	ARG(OPT_PATH, O(pos), "FILE"),
	ARG(OPT_STR, O(rest), "MORE", .max = OPTS_REST, .count_off = O(nrest), .required = true),
	{}
};

static const struct opts_cmd pos_cmd = {
	.name = "pos", .usage = "FILE MORE...", .opts = pos_options, .flags = OPTS_NO_PIN_DIR,
};

/* Two entries with one letter: a broken table is refused, not guessed. */
static const struct opt dup_options[] = {
	OPTION("one", 'x', OPT_FLAG, O(flag), NULL, "one"),
	OPTION("two", 'x', OPT_FLAG, O(flag), NULL, "two"),
	{}
};
static const struct opts_cmd dup_cmd = { .name = "dup", .opts = dup_options };

static const struct cmd subs[] = {
	{ "add", NULL, "ADDR", "add one" },
	{ "list", NULL, "", "list them" },
	{}
};
static const struct opts_cmd group_cmd = {
	.name = "grp", .usage = "add|list ...", .opts = t_options, .subs = subs,
};
#undef O

static char errtext[4096];

/* opts_parse (or opts_sub when sub) on the words of line, with stderr and
 * stdout (--help) captured into errtext. */
static int run(const struct opts_cmd *c, const char *line, void *out, const struct cmd **sub,
	       int *argi)
{
	static char buf[1024];
	static char *argv[64];
	int argc = 0, err, saved, saved_out;
	FILE *tmp = tmpfile();
	size_t n;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok(buf, " "); w && argc < 63; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	fflush(stderr);
	fflush(stdout);
	saved = dup(2);
	saved_out = dup(1);
	dup2(fileno(tmp), 2);
	dup2(fileno(tmp), 1);
	err = sub ? opts_sub(c, argc, argv, out, sub, argi) : opts_parse(c, argc, argv, out);
	fflush(stderr);
	fflush(stdout);
	dup2(saved, 2);
	dup2(saved_out, 1);
	close(saved);
	close(saved_out);
	rewind(tmp);
	n = fread(errtext, 1, sizeof(errtext) - 1, tmp);
	errtext[n] = 0;
	fclose(tmp);
	return err;
}

static int parse(const struct opts_cmd *c, const char *line, void *out)
{
	return run(c, line, out, NULL, NULL);
}

#define ASSERT_ERR(line, msg) do {							\
	struct t ___o = {};								\
	ASSERT_EQ(parse(&t_cmd, line, &___o), -EINVAL, line);				\
	if (!ASSERT_TRUE(strstr(errtext, msg) != NULL, line))				\
		fprintf(stderr, "  got: %s", errtext);					\
} while (0)

static void test_types(void)
{
	struct t o = { .e = -1 };
	char a[ADDR_STRLEN];

	ASSERT_OK(parse(&t_cmd, "test -f -cc --count -s hello --path /tmp/x -i eth0 --ttl 1h30m "
			"--prefix 2001:db8::/48 --addr 198.18.0.1 --u32 4294967295 -n -5 "
			"-r 0.5 --colour blue -I a -I b", &o), "parse");
	ASSERT_TRUE(o.flag, "flag");
	ASSERT_EQ(o.count, 3, "counter: -cc --count");
	ASSERT_STREQ(o.str, "hello", "string");
	ASSERT_STREQ(o.path, "/tmp/x", "path");
	ASSERT_STREQ(o.iface, "eth0", "iface");
	ASSERT_EQ(o.dur, 5400ULL * 1000000000ULL, "duration");
	ASSERT_STREQ(addr_format(&o.pfx, a), "2001:db8::/48", "prefix");
	ASSERT_STREQ(addr_format(&o.addr, a), "198.18.0.1", "address");
	ASSERT_EQ(o.addr.plen, 128, "one address");
	ASSERT_EQ(o.u32, 4294967295U, "u32 max");
	ASSERT_EQ(o.i, -5, "int min");
	ASSERT_TRUE(o.d == 0.5, "double");
	ASSERT_EQ(o.e, 2, "enum index");
	ASSERT_EQ(o.nlist, 2, "list count");
	ASSERT_STREQ(o.list[0], "a", "list 0");
	ASSERT_STREQ(o.list[1], "b", "list 1");
}

static void test_equals_and_defaults(void)
{
	struct t o = { .str = "default", .i = 3 };

	ASSERT_OK(parse(&t_cmd, "test --ttl=0 --colour=red --ratio=3600 --path=f", &o), "--opt=v");
	ASSERT_EQ(o.dur, 0, "--ttl=0");
	ASSERT_EQ(o.e, 0, "--colour=red");
	ASSERT_TRUE(o.d == 3600, "--ratio=3600, the upper bound");
	ASSERT_STREQ(o.path, "f", "--path=f");
	ASSERT_STREQ(o.str, "default", "untouched default");
	ASSERT_EQ(o.i, 3, "untouched int default");
	ASSERT_OK(parse(&t_cmd, "test --fl --col green", &o), "unique abbreviations");
	ASSERT_TRUE(o.flag, "--fl is --flag");
	ASSERT_EQ(o.e, 1, "--col is --colour");
}

static void test_errors(void)
{
	ASSERT_ERR("test --ratio 0", "test: invalid --ratio '0' (0.1..3600)");
	ASSERT_ERR("test --ratio 3600.5", "(0.1..3600)");
	ASSERT_ERR("test --ratio nan", "invalid --ratio 'nan'");
	ASSERT_ERR("test -r 1x", "invalid --ratio '1x'");
	ASSERT_ERR("test -n 6", "invalid -n '6' (-5..5)");
	ASSERT_ERR("test -n 1.5", "invalid -n '1.5'");
	ASSERT_ERR("test --u32 0", "(1..4294967295)");
	ASSERT_ERR("test --u32 4294967296", "invalid --u32");
	ASSERT_ERR("test --colour pink", "invalid --colour 'pink' (red|green|blue)");
	ASSERT_ERR("test --ttl 5x", "invalid --ttl '5x'");
	ASSERT_ERR("test --prefix 198.18.0.1/24", "invalid --prefix '198.18.0.1/24'");
	ASSERT_ERR("test --addr 198.18.0.0/24", "invalid --addr '198.18.0.0/24' (one address)");
	ASSERT_ERR("test -i a/b", "invalid --iface 'a/b'");
	ASSERT_ERR("test -i 0123456789abcdef", "invalid --iface");
	ASSERT_ERR("test --path=", "invalid --path ''");
	ASSERT_ERR("test -I a -I b -I c", "too many --item (at most 2)");
	ASSERT_ERR("test --bogus", "unknown option '--bogus' (see 'imapguard test --help')");
	ASSERT_ERR("test -x", "unknown option '-x'");
	ASSERT_ERR("test --str", "option --str needs a value (TEXT)");
	ASSERT_ERR("test -s", "option --str needs a value (TEXT)");
	ASSERT_ERR("test --flag=1", "option --flag takes no value");
	ASSERT_ERR("test extra", "unexpected argument 'extra'");
}

static void test_positionals(void)
{
	struct t o = {};
	const char *pin = env.pin_dir;

	ASSERT_OK(parse(&pos_cmd, "pos f1 -q x m1 m2", &o), "options among arguments");
	ASSERT_STREQ(o.str, "x", "option");
	ASSERT_STREQ(o.pos, "f1", "first positional");
	ASSERT_EQ(o.nrest, 2, "the rest");
	if (o.nrest == 2) {
		ASSERT_STREQ(o.rest[0], "m1", "rest 0");
		ASSERT_STREQ(o.rest[1], "m2", "rest 1");
	}
	memset(&o, 0, sizeof(o));
	ASSERT_EQ(parse(&pos_cmd, "pos -q x f1", &o), -EINVAL, "rest required");
	ASSERT_TRUE(strstr(errtext, "pos: expected MORE (see 'imapguard pos --help')") != NULL,
		    errtext);
	ASSERT_EQ(parse(&pos_cmd, "pos -q x", &o), -EINVAL, "FILE missing");
	ASSERT_TRUE(strstr(errtext, "expected FILE") != NULL, errtext);
	ASSERT_EQ(parse(&pos_cmd, "pos f m", &o), -EINVAL, "required option missing");
	ASSERT_TRUE(strstr(errtext, "pos: --req is required") != NULL, errtext);
	ASSERT_EQ(parse(&pos_cmd, "pos -q x -- -f m", &o), 0, "-- ends the options");
	ASSERT_STREQ(o.pos, "-f", "after --");
	/* OPTS_NO_PIN_DIR: -P is no option of this command. */
	ASSERT_EQ(parse(&pos_cmd, "pos -q x -P /tmp f m", &o), -EINVAL, "no -P");
	ASSERT_STREQ(env.pin_dir, pin, "pin dir untouched");
}

static void test_common(void)
{
	enum log_level lvl = log_get_level();
	const char *pin = env.pin_dir;
	struct t o = {};

	ASSERT_OK(parse(&t_cmd, "test -P /sys/fs/bpf/x -v", &o), "common options");
	ASSERT_STREQ(env.pin_dir, "/sys/fs/bpf/x", "-P sets the pin dir");
	ASSERT_EQ(log_get_level(), lvl + 1, "-v: one level up");
	ASSERT_OK(parse(&t_cmd, "test --pin-dir=/y -vvvv", &o), "--pin-dir=");
	ASSERT_STREQ(env.pin_dir, "/y", "--pin-dir=DIR");
	ASSERT_EQ(log_get_level(), LL_LIBBPF, "-vvvv stops at libbpf debug");
	env.pin_dir = pin;
	ASSERT_EQ(parse(&t_cmd, "test -P /z --bogus", &o), -EINVAL, "error");
	ASSERT_TRUE(env.pin_dir == pin, "nothing applied after an error");
	log_set_level(lvl);
	env.pin_dir = pin;
	ASSERT_EQ(parse(&dup_cmd, "dup", &o), -EINVAL, "a letter twice in a table");
	ASSERT_TRUE(strstr(errtext, "option table") != NULL, errtext);
}

static void test_subcommands(void)
{
	const struct cmd *sub = NULL;
	struct t o = {};
	int argi = 0;

	ASSERT_OK(run(&group_cmd, "grp -f add 198.18.0.1 -s x", &o, &sub, &argi), "sub");
	ASSERT_TRUE(sub == &subs[0], "add found");
	ASSERT_EQ(argi, 2, "its argv");
	ASSERT_TRUE(o.flag, "option before the subcommand");
	ASSERT_TRUE(o.str == NULL, "options after it are the subcommand's");
	ASSERT_EQ(run(&group_cmd, "grp nope", &o, &sub, &argi), -EINVAL, "unknown");
	ASSERT_TRUE(strstr(errtext, "grp: unknown command 'nope' (see 'imapguard grp --help')")
		    != NULL, errtext);
	ASSERT_EQ(run(&group_cmd, "grp -f", &o, &sub, &argi), -EINVAL, "missing");
	ASSERT_TRUE(strstr(errtext, "Usage: imapguard grp add|list ...") != NULL,
		    "missing: the help on stderr");
}

static char *help_of(const struct opts_cmd *c)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	opts_help(c, f);
	fclose(f);
	return text;
}

static void test_help(void)
{
	static const char head[] = "Usage: imapguard test [options]\n\nA test command.\n\nOptions:\n";
	char *h = help_of(&t_cmd), *g = help_of(&group_cmd), *p = help_of(&pos_cmd);
	struct t o = {};

	if (!ASSERT_OK_PTR(h, "help") || !ASSERT_OK_PTR(g, "group help") ||
	    !ASSERT_OK_PTR(p, "pos help"))
		goto out;
	ASSERT_TRUE(!strncmp(h, head, strlen(head)), "usage line, doc, options");
	ASSERT_TRUE(strstr(h, "\n  -f, --flag            a flag\n") != NULL, "flag row");
	ASSERT_TRUE(strstr(h, "\n      --path FILE       a path\n"
			      "                        second line\n") != NULL,
		    "long only, help continued under its column");
	ASSERT_TRUE(strstr(h, "\n  -n N                  an int\n") != NULL, "short only");
	ASSERT_TRUE(strstr(h, "\n  -P, --pin-dir DIR     pinned state directory") != NULL,
		    "common -P");
	ASSERT_TRUE(strstr(h, "\n  -h, --help            this help\n") != NULL, "common -h");
	ASSERT_TRUE(strstr(h, "\n\nEXAMPLES:\n  imapguard test -f\n") != NULL, "epilog last");
	ASSERT_TRUE(strstr(g, "\nCommands:\n  add ADDR  add one\n  list      list them\n") != NULL,
		    "subcommand list");
	ASSERT_TRUE(strstr(p, "--pin-dir") == NULL, "OPTS_NO_PIN_DIR: not listed");
	ASSERT_TRUE(strstr(p, "FILE") != NULL && strstr(p, "  FILE") == NULL,
		    "positionals in the usage line only");
	/* --help wins over missing required options and arguments. */
	ASSERT_EQ(parse(&pos_cmd, "pos --help", &o), OPTS_EXIT, "--help");
	ASSERT_TRUE(!strncmp(errtext, "Usage: imapguard pos FILE MORE...\n", 34), "on stdout");
out:
	free(h);
	free(g);
	free(p);
}

/* The CLI's enum tables agree with the policy parser's names. */
static void test_enum_tables(void)
{
	int mode;

	for (int i = 0; cli_mode_names[i]; i++)
		ASSERT_TRUE(!parse_mode(cli_mode_names[i], &mode) && mode == i, cli_mode_names[i]);
	ASSERT_STREQ(cli_format_names[AUTHLOG_DOVECOT], "dovecot", "format order");
	ASSERT_STREQ(cli_format_names[AUTHLOG_UWIMAP], "uwimap", "format order");
}

int main(void)
{
	RUN_CASE("opts types", test_types());
	RUN_CASE("opts --opt=value and defaults", test_equals_and_defaults());
	RUN_CASE("opts errors", test_errors());
	RUN_CASE("opts positionals", test_positionals());
	RUN_CASE("opts common options", test_common());
	RUN_CASE("opts subcommands", test_subcommands());
	RUN_CASE("opts help", test_help());
	RUN_CASE("opts enum tables", test_enum_tables());
	return test_cases_failed != 0;
}
