// SPDX-License-Identifier: GPL-2.0
/* One option parser for every command (opts.h), built on getopt_long. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "base/addr.h"
#include "base/log.h"
#include "base/value.h"
#include "cli/cli.h"
#include "cli/opts.h"

/* What the common options set; applied once the parse succeeded. */
struct common {
	const char *pin_dir;
	int verbose;
	bool help;
};

#define C(f) offsetof(struct common, f)
static const struct opt common_opts[] = {
	OPTION("pin-dir", 'P', OPT_PATH, C(pin_dir), "DIR",
	       "pinned state directory (default " IG_DEFAULT_PIN_DIR ")"),
	OPTION("verbose", 'v', OPT_COUNT, C(verbose), NULL, "more output (-vv: libbpf debug)"),
	OPTION("help", 'h', OPT_FLAG, C(help), NULL, "this help"),
	{}
};

#define OPTS_MAX 32	/* options in one table, common ones included */

struct parser {
	const struct opts_cmd *c;
	const struct opt *all[OPTS_MAX];	/* getopt_long value: 256 + index */
	bool seen[OPTS_MAX];
	int n;
	struct option lo[OPTS_MAX + 1];
	char shorts[3 * OPTS_MAX + 3];
	struct common com;
};

static bool positional(const struct opt *o) { return !o->name && !o->key; }
static bool is_list(const struct opt *o)
{
	return (o->type == OPT_STR || o->type == OPT_PATH || o->type == OPT_IFACE) && o->max;
}
static bool takes_value(const struct opt *o) { return o->type != OPT_FLAG && o->type != OPT_COUNT; }
/* "attach: " before a message (pr_warn adds "imapguard: "). */
#define WHERE(c) (c)->name ? (c)->name : "", (c)->name ? ": " : ""
/* "imapguard attach" */
#define PATH(c) env.prog, (c)->name ? " " : "", (c)->name ? (c)->name : ""

/* The option as a user writes it: "--iface", "-n", or "ADDR" (positional). */
static const char *label(const struct opt *o, char buf[40])
{
	if (o->name)
		snprintf(buf, 40, "--%s", o->name);
	else if (o->key)
		snprintf(buf, 40, "-%c", o->key);
	else
		snprintf(buf, 40, "%s", o->arg);
	return buf;
}

/* What a valid value looks like, for the error message. */
static void describe(FILE *f, const struct opt *o)
{
	switch (o->type) {
	case OPT_ENUM:
		for (int i = 0; o->names[i]; i++)
			fprintf(f, "%s%s", i ? "|" : "", o->names[i]);
		break;
	case OPT_U32: case OPT_INT: case OPT_DOUBLE:
		fprintf(f, "%.10g..%.10g", o->min, o->max);
		break;
	case OPT_DURATION: fputs("e.g. 30s, 10m, 2h, 7d, 0", f); break;
	case OPT_PREFIX: fputs("an address or CIDR, host bits zero", f); break;
	case OPT_ADDR: fputs("one address", f); break;
	case OPT_IFACE: fprintf(f, "an interface name: 1..%d bytes, no '/', ':' or blank",
				IF_NAMESIZE - 1); break;
	default: fputs("must not be empty", f);
	}
}

static int invalid(const struct opts_cmd *c, const struct opt *o, const char *s)
{
	char *why = NULL, l[40];
	size_t len;
	FILE *f = open_memstream(&why, &len);

	if (f) {
		describe(f, o);
		fclose(f);
	}
	pr_warn("%s%sinvalid %s '%s' (%s)", WHERE(c), label(o, l), s, why ? why : "?");
	free(why);
	return -EINVAL;
}

static bool iface_name_ok(const char *s)
{
	/* The kernel's dev_valid_name(). */
	return *s && strlen(s) < IF_NAMESIZE && strcmp(s, ".") && strcmp(s, "..") &&
	       !strpbrk(s, "/: \t\n\r\v\f");
}

/* Check s and store it in the field o describes; base is the struct. */
static int set_value(const struct opts_cmd *c, const struct opt *o, const char *s, void *base)
{
	void *p = (char *)base + o->off;
	struct ig_prefix pfx;
	char *end, l[40];
	double d;
	int *n;

	switch (o->type) {
	case OPT_FLAG: *(bool *)p = true; return 0;
	case OPT_COUNT: (*(int *)p)++; return 0;
	case OPT_IFACE:
		if (!iface_name_ok(s))
			return invalid(c, o, s);
		break;
	case OPT_PATH:
		if (!*s)
			return invalid(c, o, s);
		break;
	case OPT_STR: break;
	case OPT_END: return 0;
	case OPT_DURATION:
		return parse_duration_ns(s, p) ? invalid(c, o, s) : 0;
	case OPT_PREFIX: case OPT_ADDR:
		if (addr_parse(s, &pfx, false) || (o->type == OPT_ADDR && pfx.plen != 128))
			return invalid(c, o, s);
		memcpy(p, &pfx, sizeof(pfx));
		return 0;
	case OPT_U32: case OPT_INT: case OPT_DOUBLE:
		errno = 0;
		d = o->type == OPT_DOUBLE ? strtod(s, &end) : (double)strtoll(s, &end, 10);
		/* written so that NaN fails too */
		if (errno || end == s || *end || isspace((unsigned char)*s) ||
		    !(d >= o->min && d <= o->max))
			return invalid(c, o, s);
		if (o->type == OPT_U32)
			*(uint32_t *)p = d;
		else if (o->type == OPT_INT)
			*(int *)p = d;
		else
			*(double *)p = d;
		return 0;
	case OPT_ENUM:
		for (int i = 0; o->names[i]; i++)
			if (!strcmp(s, o->names[i])) {
				*(int *)p = i;
				return 0;
			}
		return invalid(c, o, s);
	}
	if (!o->max) {
		*(const char **)p = s;
		return 0;
	}
	n = (int *)((char *)base + o->count_off);
	if (*n >= o->max) {
		pr_warn("%s%stoo many %s (at most %.10g)", WHERE(c), label(o, l), o->max);
		return -EINVAL;
	}
	((const char **)p)[(*n)++] = s;
	return 0;
}

/* Add o to the getopt_long tables. A letter or name used twice is a bug in
 * the command's table: refuse it loudly. */
static int add(struct parser *ps, const struct opt *o)
{
	int i = ps->n, nlong = 0;

	if (positional(o))
		return 0;
	for (int j = 0; j < i; j++) {
		if ((o->key && o->key == ps->all[j]->key) ||
		    (o->name && ps->all[j]->name && !strcmp(o->name, ps->all[j]->name))) {
			pr_warn("%s%soption table: %s twice", WHERE(ps->c),
				o->name ? o->name : "a letter");
			return -EINVAL;
		}
		nlong += !!ps->all[j]->name;
	}
	if (i == OPTS_MAX) {
		pr_warn("%s%soption table: more than %d options", WHERE(ps->c), OPTS_MAX);
		return -EINVAL;
	}
	ps->all[i] = o;
	if (o->name)
		ps->lo[nlong] = (struct option){ o->name, takes_value(o) ? required_argument :
						 no_argument, NULL, 256 + i };
	if (o->key) {
		size_t k = strlen(ps->shorts);

		ps->shorts[k] = o->key;
		if (takes_value(o))
			ps->shorts[k + 1] = ':';
	}
	ps->n++;
	return 0;
}

/* The index of the entry getopt_long's value v stands for, or -1. */
static int find(const struct parser *ps, int v)
{
	for (int i = 0; i < ps->n; i++)
		if (v == 256 + i || (v > 0 && v < 256 && v == ps->all[i]->key))
			return i;
	return -1;
}

static bool is_common(const struct opt *o)
{
	return o >= common_opts && o < common_opts + sizeof(common_opts) / sizeof(common_opts[0]);
}

/* The option loop, over all of argv or up to the first argument (stop);
 * ps is zeroed but for ps->c. */
static int parse_options(struct parser *ps, int argc, char **argv, void *out, bool stop)
{
	const struct opts_cmd *c = ps->c;
	const struct opt *o;
	char l[40];
	int r, i, err = 0;

	strcpy(ps->shorts, stop ? "+:" : ":");
	for (o = c->opts; o && o->type && !err; o++)
		err = add(ps, o);
	for (o = common_opts; o->type && !err; o++)
		if (!(o->key == 'P' && (c->flags & OPTS_NO_PIN_DIR)))
			err = add(ps, o);
	if (err)
		return err;
	optind = 0;	/* glibc: start over, with this optstring's mode */
	opterr = 0;
	while ((r = getopt_long(argc, argv, ps->shorts, ps->lo, NULL)) != -1) {
		if (r == ':' || r == '?') {
			i = find(ps, optopt);
			if (r == ':' && i >= 0)
				pr_warn("%s%soption %s needs a value (%s)", WHERE(c),
					label(ps->all[i], l), ps->all[i]->arg);
			else if (i >= 0)	/* --json=x */
				pr_warn("%s%soption %s takes no value", WHERE(c),
					label(ps->all[i], l));
			else if (optopt)
				pr_warn("%s%sunknown option '-%c' (see '%s%s%s --help')", WHERE(c),
					optopt, PATH(c));
			else
				pr_warn("%s%sunknown option '%s' (see '%s%s%s --help')", WHERE(c),
					argv[optind - 1], PATH(c));
			return -EINVAL;
		}
		i = find(ps, r);
		ps->seen[i] = true;
		o = ps->all[i];
		if ((err = set_value(c, o, optarg, is_common(o) ? (void *)&ps->com : out)))
			return err;
	}
	if (ps->com.help) {
		opts_help(c, stdout);
		return OPTS_EXIT;
	}
	if (ps->com.pin_dir)
		env.pin_dir = ps->com.pin_dir;
	while (ps->com.verbose--)
		log_set_level(log_get_level() + (log_get_level() < LL_LIBBPF));
	return 0;
}

int opts_parse(const struct opts_cmd *c, int argc, char **argv, void *out)
{
	struct parser ps = { .c = c };
	const struct opt *o;
	char l[40];
	int err = parse_options(&ps, argc, argv, out, false);

	for (int i = 0; !err && i < ps.n; i++)
		if (ps.all[i]->required && !ps.seen[i]) {
			pr_warn("%s%s%s is required", WHERE(c), label(ps.all[i], l));
			err = -EINVAL;
		}
	/* getopt_long has moved the arguments after the options. */
	for (o = c->opts; !err && o && o->type; o++) {
		if (!positional(o))
			continue;
		if (is_list(o)) {
			int *n = (int *)((char *)out + o->count_off);

			if (o->max == OPTS_REST) {
				*(char ***)((char *)out + o->off) = argv + optind;
				*n = argc - optind;
				optind = argc;
			}
			while (!err && optind < argc)
				err = set_value(c, o, argv[optind++], out);
			if (!err && o->required && !*n)
				goto missing;
		} else if (optind < argc) {
			err = set_value(c, o, argv[optind++], out);
		} else {
			goto missing;
		}
	}
	if (!err && optind < argc) {
		pr_warn("%s%sunexpected argument '%s'", WHERE(c), argv[optind]);
		err = -EINVAL;
	}
	return err;
missing:
	pr_warn("%s%sexpected %s (see '%s%s%s --help')", WHERE(c), o->arg, PATH(c));
	return -EINVAL;
}

int opts_sub(const struct opts_cmd *c, int argc, char **argv, void *out,
	     const struct cmd **sub, int *argi)
{
	struct parser ps = { .c = c };
	int err = parse_options(&ps, argc, argv, out, true);

	if (err)
		return err;
	*sub = NULL;
	*argi = optind;
	if (optind >= argc && (c->flags & OPTS_SUB_OPTIONAL))
		return 0;
	if (optind >= argc) {
		opts_help(c, stderr);
		return -EINVAL;
	}
	for (const struct cmd *s = c->subs; s->name; s++)
		if (!strcmp(s->name, argv[optind])) {
			*sub = s;
			return 0;
		}
	pr_warn("%s%sunknown command '%s' (see '%s%s%s --help')", WHERE(c), argv[optind],
		PATH(c));
	return -EINVAL;
}

/* The help after a row's first column (n wide): at col, its further lines
 * under its first; on the next line when the column is too wide. */
static void row_help(FILE *f, int n, const char *help, int col)
{
	if (n + 2 > col)
		fprintf(f, "\n%*s", col, "");
	else
		fprintf(f, "%*s", col - n, "");
	for (const char *nl; (nl = strchr(help, '\n')); help = nl + 1)
		fprintf(f, "%.*s\n%*s", (int)(nl - help), help, col, "");
	fprintf(f, "%s\n", help);
}

/* "  -i, --iface IF", "  -n N" or "      --ca FILE"; returns its width. */
static int opt_left(FILE *f, const struct opt *o)
{
	const char *v = takes_value(o) ? o->arg : "";

	if (o->key && o->name)
		return fprintf(f, "  -%c, --%s%s%s", o->key, o->name, *v ? " " : "", v);
	if (o->key)
		return fprintf(f, "  -%c%s%s", o->key, *v ? " " : "", v);
	return fprintf(f, "      --%s%s%s", o->name, *v ? " " : "", v);
}

static int sub_width(const struct cmd *s)
{
	return strlen(s->name) + (*s->args ? 1 + strlen(s->args) : 0);
}

void opts_help(const struct opts_cmd *c, FILE *f)
{
	const struct opt *tabs[] = { c->opts, common_opts };
	int w = 0;

	fprintf(f, "Usage: %s%s%s %s\n", PATH(c), c->usage ? c->usage : "[options]");
	if (c->doc)
		fprintf(f, "\n%s\n", c->doc);
	for (const struct cmd *s = c->subs; s && s->name; s++)
		w = sub_width(s) > w ? sub_width(s) : w;
	for (const struct cmd *s = c->subs; s && s->name; s++) {
		if (s == c->subs)
			fprintf(f, "\nCommands:\n");
		fprintf(f, "  %s%s%s", s->name, *s->args ? " " : "", s->args);
		row_help(f, 2 + sub_width(s), s->help, w + 4);
	}
	fprintf(f, "\nOptions:\n");
	for (int t = 0; t < 2; t++)
		for (const struct opt *o = tabs[t]; o && o->type; o++)
			if (!positional(o) && !(o == common_opts && (c->flags & OPTS_NO_PIN_DIR)))
				row_help(f, opt_left(f, o), o->help, 24);
	if (c->epilog)
		fprintf(f, "\n%s\n", c->epilog);
}
