/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Option tables: each command declares a struct holding its settings (the
 * caller fills in the defaults) and a static table of typed options; one
 * parser fills the struct, checks every value, and prints --help from the
 * table. The common options (-P/--pin-dir, -v/--verbose, -h/--help) are
 * added to every table and act directly on env.pin_dir and the log level.
 *
 *	struct attach_opts { const char *iface; int mode; };
 *	#define O(f) offsetof(struct attach_opts, f)
 *	static const struct opt attach_options[] = {
 *		OPTION("iface", 'i', OPT_IFACE, O(iface), "IF", "interface to protect",
 *		       .required = true),
 *		OPTION("mode", 'm', OPT_ENUM, O(mode), "MODE", "auto|native|generic|tc",
 *		       .names = cli_mode_names),
 *		{}
 *	};
 *	static const struct opts_cmd attach_cmd = {
 *		.name = "attach", .usage = "--iface IF [options]",
 *		.doc = "Attach the fast path.", .opts = attach_options,
 *	};
 *	...
 *	struct attach_opts o = { .mode = 0 };
 *	if ((err = opts_parse(&attach_cmd, argc, argv, &o)))
 *		return opts_done(err);
 *
 * Contract: argv[0] names the command and is not parsed; argv may be
 * permuted (getopt_long: options and arguments mix; "--" ends the options).
 * Strings stored in the struct point into argv. Errors are printed through
 * pr_warn as "CMD: what is wrong", and the common options take effect only
 * once every option parsed. getopt's globals make it single-threaded. A
 * table that uses a letter or long name twice (or holds more than 32
 * options) is refused with -EINVAL: a bug, caught by any --help.
 */
#ifndef IMAPGUARD_CLI_OPTS_H
#define IMAPGUARD_CLI_OPTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum opt_type {
	OPT_END,	/* {} ends a table */
	OPT_FLAG,	/* bool, set to true */
	OPT_COUNT,	/* int, +1 each time (-vv) */
	/* The three string types are const char *, or with max > 0 a list:
	 * const char *[max], repeatable, its int count at count_off. */
	OPT_STR,	/* any text */
	OPT_PATH,	/* not empty */
	OPT_IFACE,	/* a valid interface name */
	OPT_DURATION,	/* uint64_t ns: "90s", "10m", "1h30m", "0" (base/value.h) */
	OPT_PREFIX,	/* struct ig_prefix: address or CIDR, host bits zero */
	OPT_ADDR,	/* struct ig_prefix: one address (plen 128) */
	OPT_U32,	/* uint32_t in min..max */
	OPT_INT,	/* int in min..max */
	OPT_DOUBLE,	/* double in min..max */
	OPT_ENUM,	/* int: the index of the value in names */
};

struct opt {
	/* Long name and short letter (0: none). Neither: a positional
	 * argument, taken in table order; a list takes the rest. */
	const char *name;
	int key;
	enum opt_type type;
	size_t off;		/* offsetof() the field in the command's struct */
	const char *arg;	/* the value's name in --help ("FILE") */
	const char *help;	/* each '\n' starts an indented line */
	/* Number range; string list: max entries, or for the last positional
	 * OPTS_REST: all the remaining arguments, the field a char ** into argv. */
	double min, max;
	const char *const *names;	/* OPT_ENUM: NULL-terminated */
	size_t count_off;	/* string list: offsetof() its int count */
	/* The option must be given; a list positional at least once (other
	 * positionals always must). */
	bool required;
};

/* A table entry: an option, then a positional argument. Further fields
 * follow as designated initializers: .min, .max, .names, .required... */
#define OPTION(_name, _key, _type, _off, _arg, _help, ...)			\
	{ .name = _name, .key = _key, .type = _type, .off = _off, .arg = _arg,	\
	  .help = _help, __VA_ARGS__ }
#define ARG(_type, _off, _arg, ...) { .type = _type, .off = _off, .arg = _arg, __VA_ARGS__ }

/* A (sub)command in a dispatch table: main's commands, "policy check". */
struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);	/* NULL: the caller dispatches */
	const char *args;	/* usage after the name, for the list in --help */
	const char *help;	/* one line */
};

#define OPTS_NO_PIN_DIR	0x1	/* -P/--pin-dir means nothing to this command */
#define OPTS_SUB_OPTIONAL 0x2	/* opts_sub: no subcommand is no error */

struct opts_cmd {
	const char *name;	/* "attach", "policy keygen"; NULL: the global options */
	const char *usage;	/* after the name in the Usage line */
	const char *doc;	/* paragraphs after the Usage line */
	const struct opt *opts;	/* NULL: only the common options */
	const struct cmd *subs;	/* subcommands ({} ends it), listed in --help */
	const char *epilog;	/* after the options: EXAMPLES */
	unsigned int flags;
};

#define OPTS_REST (-1)
#define OPTS_EXIT 1	/* --help was printed: exit 0 without running */

/* Parse argv into out. Returns 0; OPTS_EXIT after --help (on stdout); or
 * -EINVAL after printing what is wrong (unknown option, missing argument,
 * value out of range, missing or extra positional argument). */
int opts_parse(const struct opts_cmd *c, int argc, char **argv, void *out);
/* For a command with subs: parse the options before the subcommand (into
 * out, which may be NULL when c has no table), then look it up. On 0, *sub
 * is its entry and argv + *argi its own argv (the subcommand name first).
 * No subcommand: the help on stderr and -EINVAL, or with OPTS_SUB_OPTIONAL 0
 * and *sub NULL. An unknown one: -EINVAL, printed. */
int opts_sub(const struct opts_cmd *c, int argc, char **argv, void *out,
	     const struct cmd **sub, int *argi);
/* The --help text of c. */
void opts_help(const struct opts_cmd *c, FILE *f);
/* A command's return value for an opts_parse/opts_sub result != 0. */
static inline int opts_done(int err)
{
	return err == OPTS_EXIT ? 0 : err;
}

#endif
