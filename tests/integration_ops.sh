#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Operations suite: systemd units, man pages, bash completion, install and
# uninstall, Grafana dashboard. It checks each against the binary and the
# sources, so they cannot drift apart unnoticed:
#  - every command of `imapguard --help` and every option of each
#    `imapguard COMMAND --help` is in imapguard(8) and in the completion, and
#    the completion offers no option the helps do not list;
#  - every key the policy parser accepts (the section table and *_key()
#    functions of userspace/policy/policy.c) is in imapguard.conf(5) under its
#    section, and in policies/example-full.conf;
#  - every JSON field and Prometheus metric the sources print is in imapguard(8).
# Prints one PASS/FAIL line per check and SKIP lines (as tests/integration.sh);
# exits 1 if anything failed. Needs no root and never touches system paths:
# installs go to a DESTDIR under a temporary directory.
#
#   bash tests/integration_ops.sh                 # every test
#   bash tests/integration_ops.sh test_install    # just these
#
# Environment: IG_BIN (binary, default build/imapguard).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IG_BIN=${IG_BIN:-$ROOT/build/imapguard}
IG_BIN=$(readlink -f "$IG_BIN" 2>/dev/null || echo "$IG_BIN")
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
SKIP_RC=249
MAN8=$ROOT/man/imapguard.8
MAN5=$ROOT/man/imapguard.conf.5
COMPLETION=$ROOT/scripts/completion/imapguard

ALL_TESTS=(
	test_units
	test_unit_flags
	test_man_render
	test_man_commands
	test_man_json_metrics
	test_conf_keys
	test_conf_example
	test_completion
	test_install
	test_make_install
	test_grafana
	test_default_conf_dep
	test_policy_special_files
)

# ---- assertions ------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/assert.sh"

need_bin()
{
	[ -x "$IG_BIN" ] || skip "no binary at $IG_BIN (run make)"
}

# ---- what the binary and the sources say -----------------------------------

# commands: the command names of `imapguard --help`.
commands()
{
	"$IG_BIN" --help | awk '/^Commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }'
}

# long_opts: every --option in standard input, one per line.
long_opts()
{
	grep -oE '(^|[^A-Za-z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*//' | sort -u
}

# subcommands CMD: subcommands of CMD that have a help of their own
# ("imapguard policy keygen --help").
subcommands()
{
	local s

	for s in $("$IG_BIN" "$1" --help 2>/dev/null | grep -oE '[a-z]+(\|[a-z]+)+' | tr '|' '\n' | sort -u); do
		"$IG_BIN" "$1" "$s" --help 2>/dev/null | head -1 | grep -q "^Usage: .* $1 $s" && echo "$s"
	done
}

# cmd_opts CMD [SUB]: the long options of that help: its usage and option
# lines, not the prose (which may mention other commands' options).
cmd_opts()
{
	"$IG_BIN" "$@" --help 2>/dev/null | grep -E '^Usage:|^ +-' | long_opts
}

# man_text FILE: troff source with \- and font escapes resolved, so option
# and key names can be grepped.
man_text()
{
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' -e 's/\\(lq/"/g' -e 's/\\(rq/"/g' "$1"
}

# man_section FILE REGEX: the lines of the .SH section whose title matches
# REGEX (extended, against the title without quotes), up to the next .SH.
man_section()
{
	man_text "$1" | awk -v re="$2" '
		/^\.SH / { t = substr($0, 5); gsub(/"/, "", t); on = (t ~ re); next }
		on'
}

# policy_keys: "SECTION KEY" for every key policy.c accepts, from its section
# table ({ "port", port_open, port_key, port_close }) and the strcmp(k, "...")
# tests in each key function.
policy_keys()
{
	"$PY" - "$ROOT/userspace/policy/policy.c" <<-'EOF'
	import re, sys
	src = open(sys.argv[1]).read()
	table = re.findall(r'\{\s*"(\w+)",\s*\w+,\s*(\w+),\s*\w+\s*\}', src)
	for sect, fn in table:
	    m = re.search(r'static int ' + fn + r'\(struct ctx \*c, const char \*k, const char \*v\)\s*\{(.*?)\n\}', src, re.S)
	    if not m:
	        print(sect, "?no-function-" + fn)
	        continue
	    for key in sorted(set(re.findall(r'strcmp\(k, "(\w+)"\)', m.group(1)))):
	        print(sect, key)
	EOF
}

# ---- tests -----------------------------------------------------------------

# The units pass systemd-analyze verify, with ExecStart pointed at the built
# binary (verify checks that it is executable) and the man pages of this tree
# on MANPATH (verify runs man for each Documentation= entry).
test_units()
{
	local d out u

	need_bin
	command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed"
	d=$(mktemp -d /tmp/igops-units.XXXXXX)
	mkdir -p "$d/man/man8" "$d/man/man5"
	cp "$MAN8" "$d/man/man8/" && cp "$MAN5" "$d/man/man5/"
	for u in imapguard.service imapguard@.service; do
		sed "s#^ExecStart=/usr/sbin/imapguard #ExecStart=$IG_BIN #" \
			"$ROOT/scripts/systemd/$u" >"$d/$u"
		check "${u}_execstart_rewritten" 1 "$(grep -c "^ExecStart=$IG_BIN run " "$d/$u")"
	done
	for u in imapguard.service imapguard@.service imapguard@eth0.service; do
		if out=$(cd "$d" && MANPATH=$d/man systemd-analyze verify "./$u" 2>&1) &&
		   [ -z "$out" ]; then
			ok "verify_$u"
		else
			bad "verify_$u" "${out//$'\n'/ | }"
		fi
	done
	rm -rf "$d"
}

# What the units ask of the binary exists: every --flag of each ExecStart is
# in `run --help`, Type=notify is backed by sd_notify, and the settings the
# brief requires are there.
test_unit_flags()
{
	local u help f missing key

	need_bin
	help=$("$IG_BIN" run --help)
	for u in imapguard.service imapguard@.service; do
		missing=
		for f in $(grep '^ExecStart=' "$ROOT/scripts/systemd/$u" | long_opts); do
			grep -qe "${f}[= ]" <<<"$help" || missing+=" $f"
		done
		check_empty "${u}_flags_in_run_help" "$missing"
		missing=
		# shellcheck disable=SC2016 # $MAINPID is the unit's, not ours
		for key in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure \
			   ProtectSystem=strict ProtectHome=yes \
			   'ReadWritePaths=/var/lib/imapguard /sys/fs/bpf /run/imapguard' \
			   RuntimeDirectory=imapguard StateDirectory=imapguard \
			   After=network-online.target Wants=network-online.target \
			   'CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_ADMIN'; do
			grep -qF -- "$key" "$ROOT/scripts/systemd/$u" || missing+=" [$key]"
		done
		check_empty "${u}_settings" "$missing"
	done
	check_cmd execstart_main 0 "*" grep -qxF \
		'ExecStart=/usr/sbin/imapguard run --policy /etc/imapguard/imapguard.conf' \
		"$ROOT/scripts/systemd/imapguard.service"
	check_cmd execstart_template 0 "*" grep -qxF \
		'ExecStart=/usr/sbin/imapguard run --policy /etc/imapguard/imapguard.conf --iface %i --pin-dir /sys/fs/bpf/imapguard-%i --state-file /var/lib/imapguard/state-%i --control-socket /run/imapguard/%i.sock' \
		"$ROOT/scripts/systemd/imapguard@.service"
	if command -v nm >/dev/null; then
		check_cmd sd_notify_linked 0 "*" sh -c "nm -D '$IG_BIN' | grep -qw sd_notify"
	fi
}

# Both pages render without a single groff warning, and through man(1).
test_man_render()
{
	local f out

	command -v groff >/dev/null || skip "groff not installed (apt-get install groff-base)"
	for f in "$MAN8" "$MAN5"; do
		if out=$(groff -man -Tutf8 -ww "$f" 2>&1 >/dev/null) && [ -z "$out" ]; then
			ok "groff_$(basename "$f")"
		else
			bad "groff_$(basename "$f")" "${out//$'\n'/ | }"
		fi
		if command -v man >/dev/null; then
			out=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
			check_empty "man_l_warnings_$(basename "$f")" "$out"
			check_cmd "man_l_$(basename "$f")" 0 "*NAME*" env MANWIDTH=80 man -l "$f"
		fi
	done
	if [ -x "$IG_BIN" ]; then
		check th_version "$("$IG_BIN" --version | awk '{ print $2 }')" \
			"$(awk -F'"' '/^\.TH/ { sub(/^imapguard /, "", $8); print $8 }' "$MAN8")"
	fi
}

# Every command has its section in imapguard(8), with every option its help
# (and its subcommands' helps) lists; the global options are documented.
test_man_commands()
{
	local cmd sect missing missing_opts o s opts

	need_bin
	missing=
	for cmd in $(commands); do
		[ "$cmd" = help ] && continue	# its --help is the global one
		sect=$(man_section "$MAN8" "^The ([A-Z]+ and )?${cmd^^}( and [A-Z]+)? commands?$")
		if [ -z "$sect" ]; then
			missing+=" $cmd"
			continue
		fi
		opts=$(cmd_opts "$cmd"; for s in $(subcommands "$cmd"); do cmd_opts "$cmd" "$s"; done)
		missing_opts=
		# shellcheck disable=SC2013 # one option per word
		for o in $(sort -u <<<"$opts"); do
			grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" <<<"$sect" || missing_opts+=" $o"
		done
		check_empty "options_$cmd" "$missing_opts"
	done
	check_empty sections "$missing"
	sect=$(man_section "$MAN8" '^GLOBAL OPTIONS$')
	missing=
	for o in $("$IG_BIN" --help | grep -E '^Usage:|^ +-' | long_opts); do
		grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)" <<<"$sect" || missing+=" $o"
	done
	check_empty global_options "$missing"
	missing=
	for s in NAME SYNOPSIS DESCRIPTION 'EXIT STATUS' FILES EXAMPLES 'JSON OUTPUT' 'SEE ALSO'; do
		grep -q "^\.SH \"$s\"" "$MAN8" || missing+=" [$s]"
	done
	check_empty required_sections "$missing"
}

# Every --json command has a JSON OUTPUT subsection; every JSON field name and
# every Prometheus metric the sources print is in imapguard(8).
test_man_json_metrics()
{
	local cmd json missing

	need_bin
	json=$(man_text "$MAN8" | awk '/^\.SH "JSON OUTPUT"/ { on = 1; next } /^\.SH / { on = 0 } on')
	missing=
	for cmd in $(commands); do
		[ "$cmd" = help ] && continue
		cmd_opts "$cmd" | grep -qx -- '--json' || continue
		grep -qE "^\.SS \"([a-z ]+ --json, )?$cmd( [a-z]+)? --json" <<<"$json" || missing+=" $cmd"
	done
	check_empty json_subsections "$missing"
	# Bold words of the page (.B/.BR/.BI lines) against what the sources
	# print: \"field\": in printf formats, imapguard_* metric names. "stream"
	# is the control protocol's own acknowledgement, never printed.
	man_text "$MAN8" >"$WORK/man8.txt"
	missing=$(PYTHONPATH="$ROOT/tests" "$PY" - "$WORK/man8.txt" "$ROOT"/userspace/*/*.c <<-'EOF'
	import re, sys
	words = set()
	for line in open(sys.argv[1]):
	    if re.match(r'\.(B|BR|RB|BI)\b', line):
	        words.update(re.findall(r'[A-Za-z0-9_]+', line))
	src = "".join(open(f).read() for f in sys.argv[2:])
	fields = set(re.findall(r'\\"([a-z][a-z0-9_]*)\\":', src))
	# ... and the keys of what is built with jansson (tests/json_keys.py).
	from json_keys import jansson_keys
	fields = (fields | jansson_keys(src)) - {"stream"}
	metrics = {m for m in re.findall(r'imapguard_[a-z_]+', src) if not m.startswith("imapguard_bpf")}
	print(" ".join(sorted(fields - words)) + "|" + " ".join(sorted(metrics - words)))
	EOF
	)
	check_empty json_fields "${missing%%|*}"
	missing=${missing#*|}
	check_empty prometheus_metrics "$missing"
}

# Every key the parser accepts is documented under its section in
# imapguard.conf(5) and shown in policies/example-full.conf.
test_conf_keys()
{
	local keys sect key man_missing ex_missing stext

	keys=$(policy_keys)
	[ -n "$keys" ] || { bad parse_policy_c "no keys found in userspace/policy/policy.c"; return; }
	if grep -q '?no-function-' <<<"$keys"; then
		bad parse_policy_c "$(grep '?no-function-' <<<"$keys" | tr '\n' ' ')"
	else
		ok "parse_policy_c_$(wc -l <<<"$keys")_keys"
	fi
	man_missing='' ex_missing=''
	while read -r sect key; do
		stext=$(man_section "$MAN5" "^\\[$sect( [A-Za-z]+)?\\]$")
		grep -qE "^\.BI \"$key = \"" <<<"$stext" || man_missing+=" [$sect] $key"
		# Uncommented, or commented out when it needs a file beside it.
		awk -v s="$sect" -v k="$key" '
			/^\[/ { t = $0; gsub(/[][]/, "", t); split(t, w, " "); in_s = (w[1] == s); next }
			in_s && $0 ~ "^#? *" k " *=" { found = 1 }
			END { exit !found }' "$ROOT/policies/example-full.conf" || ex_missing+=" [$sect] $key"
	done <<<"$keys"
	check_empty keys_in_man5 "$man_missing"
	check_empty keys_in_example_full "$ex_missing"
	# Nothing documented that the parser does not know.
	man_missing=
	for key in $(man_text "$MAN5" | sed -n 's/^\.BI "\([a-z0-9_]*\) = ".*/\1/p' | sort -u); do
		grep -q " $key\$" <<<"$keys" || man_missing+=" $key"
	done
	check_empty no_stale_keys_in_man5 "$man_missing"
}

# The example files parse: example-full.conf, default.conf, and the EXAMPLE
# of imapguard.conf(5) (with the deny.txt it names).
test_conf_example()
{
	local d

	need_bin
	d=$(mktemp -d /tmp/igops-conf.XXXXXX)
	man_text "$MAN5" | awk '/^\.SH "EXAMPLE"/ { on = 1 } on && /^\.nf/ { p = 1; next }
		p && /^\.fi/ { exit } p' >"$d/example.conf"
	echo "192.0.2.66" >"$d/deny.txt"
	check_cmd man5_example "0" "*OK*" "$IG_BIN" policy check "$d/example.conf"
	check_cmd example_full "0" "*OK*" "$IG_BIN" policy check "$ROOT/policies/example-full.conf"
	check_cmd default_conf "0" "*OK*" "$IG_BIN" policy check "$ROOT/policies/default.conf"
	rm -rf "$d"
}

# comp WORD...: what the completion offers for the command line WORD... (the
# last word is the one being completed), space-separated.
comp()
{
	(
		# shellcheck disable=SC1090
		source "$COMPLETION"
		COMP_WORDS=("$@")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMPREPLY=()
		_imapguard 2>/dev/null
		echo " ${COMPREPLY[*]} "
	)
}

# Every command and every option of the binary's helps is offered; values
# complete for --iface, --mode, policy files and subcommands.
test_completion()
{
	local cmd o s missing got d

	need_bin
	check_cmd syntax 0 "" bash -n "$COMPLETION"
	got=$(comp imapguard '')
	missing=
	for cmd in $(commands); do
		[[ $got == *" $cmd "* ]] || missing+=" $cmd"
	done
	check_empty commands "$missing"
	missing=
	for cmd in $(commands); do
		[ "$cmd" = help ] && continue
		got=$(comp imapguard "$cmd" --)
		for o in $(cmd_opts "$cmd"); do
			[[ $got == *" $o "* ]] || missing+=" $cmd:$o"
		done
		for s in $(subcommands "$cmd"); do
			got=$(comp imapguard "$cmd" "$s" --)
			for o in $(cmd_opts "$cmd" "$s"); do
				[[ $got == *" $o "* ]] || missing+=" $cmd-$s:$o"
			done
		done
	done
	check_empty options "$missing"
	# And the other way: nothing offered that the help does not list (short
	# options included), globally, per command and per subcommand.
	missing=
	for cmd in '' $(commands); do
		[ "$cmd" = help ] && continue
		for s in '' $([ -n "$cmd" ] && subcommands "$cmd"); do
			# shellcheck disable=SC2086 # empty words vanish on purpose
			got=$("$IG_BIN" $cmd $s --help 2>/dev/null | grep -E '^ +-')
			# shellcheck disable=SC2086
			for o in $(comp imapguard $cmd $s -); do
				grep -qE -- "(^|[^A-Za-z0-9-])$o([^A-Za-z0-9-]|\$)" <<<"$got" ||
					missing+=" ${cmd:-global}${s:+-$s}:$o"
			done
		done
	done
	check_empty nothing_stale "$missing"
	got=$(comp imapguard -)
	missing=
	for o in $("$IG_BIN" --help | grep -E '^Usage:|^ +-' | long_opts); do
		[[ $got == *" $o "* ]] || missing+=" $o"
	done
	check_empty global_options "$missing"
	check_match iface_lo '* lo *' "$(comp imapguard attach --iface '')"
	check mode_values " auto native generic tc " "$(comp imapguard run --mode '')"
	check ban_subcommands " add del list " "$(comp imapguard ban '')"
	check allow_subcommands " add del list " "$(comp imapguard allow '')"
	check deny_subcommands " add del list " "$(comp imapguard deny '')"
	check authlog_subcommands " test " "$(comp imapguard authlog '')"
	got=$(comp imapguard policy '')
	missing=
	for s in check apply $(subcommands policy); do
		[[ $got == *" $s "* ]] || missing+=" $s"
	done
	check_empty policy_subcommands "$missing"
	d=$(mktemp -d /tmp/igops-comp.XXXXXX)
	touch "$d/a.conf" "$d/b.txt"
	mkdir "$d/sub"
	check policy_files " $d/a.conf $d/sub " \
		"$(comp imapguard policy check "$d/" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/^ */ /')"
	check attach_policy_files " $d/a.conf $d/sub " \
		"$(comp imapguard attach --policy "$d/" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/^ */ /')"
	# Short options mean different things per command: stats -p is a flag.
	check_match stats_p_is_a_flag '* --json *' "$(comp imapguard stats -p --)"
	check attach_p_takes_policy " $d/a.conf $d/sub " \
		"$(comp imapguard attach -p "$d/" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/^ */ /')"
	rm -rf "$d"
}

# install.sh with a copy of the tree as its source, so the "new release" steps
# can change the shipped files.
stage_tree()
{
	local src=$1

	mkdir -p "$src/build" "$src/scripts" "$src/man" "$src/policies"
	cp "$IG_BIN" "$src/build/imapguard"
	cp -r "$ROOT/scripts/systemd" "$ROOT/scripts/completion" "$ROOT/scripts/grafana" \
		"$ROOT/scripts/install.sh" "$src/scripts/"
	cp "$MAN8" "$MAN5" "$src/man/"
	cp "$ROOT/policies/default.conf" "$ROOT/policies/example-full.conf" "$src/policies/"
}

# run_install SRC DEST ACTION [VAR=VALUE...]: the script's output; status in $IRC.
run_install()
{
	local src=$1 dest=$2 action=$3

	shift 3
	IOUT=$(env -u PREFIX -u SYSCONFDIR -u UNITDIR -u LOCALSTATEDIR DESTDIR="$dest" "$@" \
		bash "$src/scripts/install.sh" "$action" 2>&1)
	IRC=$?
}

# Install, reinstall, upgrade, local edits (.dpkg-dist), uninstall: all in a
# DESTDIR.
test_install()
{
	local t src dest conf unit left

	need_bin
	t=$(mktemp -d /tmp/igops-inst.XXXXXX)
	src=$t/src dest=$t/root
	stage_tree "$src"
	conf=$dest/etc/imapguard/imapguard.conf
	unit=$dest/usr/lib/systemd/system/imapguard.service

	run_install "$src" "$dest" install PREFIX=/usr
	check install_rc 0 "$IRC"
	check bin_mode 755 "$(stat -c %a "$dest/usr/sbin/imapguard" 2>/dev/null)"
	check bin_same "$(sha256sum <"$IG_BIN")" "$(sha256sum <"$dest/usr/sbin/imapguard" 2>/dev/null)"
	check conf_is_default "$(sha256sum <"$ROOT/policies/default.conf")" "$(sha256sum <"$conf" 2>/dev/null)"
	check state_dir_mode 700 "$(stat -c %a "$dest/var/lib/imapguard" 2>/dev/null)"
	left=
	for f in usr/share/man/man8/imapguard.8 usr/share/man/man5/imapguard.conf.5 \
		 usr/share/bash-completion/completions/imapguard \
		 usr/lib/systemd/system/imapguard.service usr/lib/systemd/system/imapguard@.service \
		 usr/share/doc/imapguard/example-full.conf usr/share/doc/imapguard/grafana-imapguard.json; do
		[ -f "$dest/$f" ] || left+=" $f"
	done
	check_empty files_present "$left"
	check unit_execstart 1 "$(grep -c '^ExecStart=/usr/sbin/imapguard run --policy /etc/imapguard/imapguard.conf$' "$unit")"

	# Again, nothing changed: nothing to do, no .dpkg-dist.
	run_install "$src" "$dest" install PREFIX=/usr
	check reinstall_rc 0 "$IRC"
	check_match reinstall_unchanged '*imapguard.conf (unchanged)*' "$IOUT"
	check_empty reinstall_no_dpkg_dist "$(find "$dest" -name '*.dpkg-dist')"

	# A new release with an untouched config: updated in place.
	echo "# release 2" >>"$src/policies/default.conf"
	run_install "$src" "$dest" install PREFIX=/usr
	check_match upgrade_updates_untouched '*imapguard.conf (updated)*' "$IOUT"
	check upgrade_conf_new "$(sha256sum <"$src/policies/default.conf")" "$(sha256sum <"$conf")"

	# The admin edits the config and a unit; the next release keeps both
	# and puts the new files beside them.
	echo "# local edit" >>"$conf"
	echo "# local edit" >>"$unit"
	echo "# release 3" >>"$src/policies/default.conf"
	echo "# release 3" >>"$src/scripts/systemd/imapguard.service"
	run_install "$src" "$dest" install PREFIX=/usr
	check edited_rc 0 "$IRC"
	check edited_conf_kept 1 "$(grep -c '^# local edit$' "$conf")"
	check edited_conf_dist "$(sha256sum <"$src/policies/default.conf")" \
		"$(sha256sum <"$conf.dpkg-dist" 2>/dev/null)"
	check edited_unit_kept 1 "$(grep -c '^# local edit$' "$unit")"
	check edited_unit_dist 1 "$(grep -c '^# release 3$' "$unit.dpkg-dist" 2>/dev/null)"
	check_match edited_says_so '*imapguard.conf: kept*imapguard.conf.dpkg-dist*' "$IOUT"
	# Still edited, still different: the .dpkg-dist is refreshed, never the file.
	run_install "$src" "$dest" install PREFIX=/usr
	check edited_again_kept 1 "$(grep -c '^# local edit$' "$conf")"

	# A file that was there before any install (no record) is not overwritten.
	mkdir -p "$t/root2/etc/imapguard"
	echo "# hand made" >"$t/root2/etc/imapguard/imapguard.conf"
	run_install "$src" "$t/root2" install PREFIX=/usr
	check preexisting_kept "# hand made" "$(cat "$t/root2/etc/imapguard/imapguard.conf")"
	check preexisting_dist 0 "$(cmp -s "$src/policies/default.conf" \
		"$t/root2/etc/imapguard/imapguard.conf.dpkg-dist"; echo $?)"

	# Uninstall: program files go, the edited config and a state file stay.
	echo "ban 192.0.2.1 0 0 manual" >"$dest/var/lib/imapguard/state"
	run_install "$src" "$dest" uninstall PREFIX=/usr
	check uninstall_rc 0 "$IRC"
	check_empty uninstall_removed "$(cd "$dest" && ls -d usr/sbin/imapguard \
		usr/share/man/man8/imapguard.8 usr/share/bash-completion/completions/imapguard \
		usr/lib/systemd/system/imapguard@.service usr/share/doc/imapguard 2>/dev/null)"
	check uninstall_kept_edited_conf 1 "$(grep -c '^# local edit$' "$conf" 2>/dev/null)"
	check uninstall_kept_edited_unit 1 "$(grep -c '^# local edit$' "$unit" 2>/dev/null)"
	check_empty uninstall_no_dpkg_dist "$(find "$dest" -name '*.dpkg-dist')"
	check uninstall_kept_state "ban 192.0.2.1 0 0 manual" "$(cat "$dest/var/lib/imapguard/state" 2>/dev/null)"
	check_match uninstall_says_so '*kept /etc/imapguard/imapguard.conf*kept /var/lib/imapguard/*' "$IOUT"

	# Defaults (PREFIX=/usr/local): install then uninstall leaves no file.
	run_install "$src" "$t/root3" install
	check default_prefix_bin 0 "$([ -x "$t/root3/usr/local/sbin/imapguard" ]; echo $?)"
	check default_prefix_unit 1 "$(grep -c '^ExecStart=/usr/local/sbin/imapguard run ' \
		"$t/root3/usr/local/lib/systemd/system/imapguard.service" 2>/dev/null)"
	check default_conf_in_etc 0 "$([ -f "$t/root3/etc/imapguard/imapguard.conf" ]; echo $?)"
	run_install "$src" "$t/root3" uninstall
	check_empty clean_uninstall "$(find "$t/root3" -type f)"
	check_empty clean_uninstall_dirs "$(find "$t/root3" -path '*imapguard*')"

	# SYSCONFDIR and UNITDIR are honoured, and the units follow them.
	run_install "$src" "$t/root4" install PREFIX=/opt/ig SYSCONFDIR=/opt/ig/etc UNITDIR=/opt/ig/units
	check custom_conf 0 "$([ -f "$t/root4/opt/ig/etc/imapguard/imapguard.conf" ]; echo $?)"
	check custom_unit 1 "$(grep -c '^ExecStart=/opt/ig/sbin/imapguard run --policy /opt/ig/etc/imapguard/imapguard.conf$' \
		"$t/root4/opt/ig/units/imapguard.service" 2>/dev/null)"
	check_match custom_conf_warns '*not /opt/ig/etc/imapguard/imapguard.conf*' "$IOUT"
	run_install "$src" "$t/root5" install PREFIX=relative
	check relative_prefix_refused 1 "$IRC"
	rm -rf "$t"
}

# The Makefile's targets, once they exist, install and uninstall the same way.
test_make_install()
{
	local t

	need_bin
	grep -q '^install:' "$ROOT/Makefile" || skip "the Makefile has no install target yet"
	t=$(mktemp -d /tmp/igops-make.XXXXXX)
	check_cmd make_install 0 "*" make -s -C "$ROOT" install DESTDIR="$t" PREFIX=/usr
	check make_install_bin 0 "$([ -x "$t/usr/sbin/imapguard" ]; echo $?)"
	check make_install_conf 0 "$([ -f "$t/etc/imapguard/imapguard.conf" ]; echo $?)"
	if grep -q '^uninstall:' "$ROOT/Makefile"; then
		check_cmd make_uninstall 0 "*" make -s -C "$ROOT" uninstall DESTDIR="$t" PREFIX=/usr
		check_empty make_uninstall_clean "$(find "$t" -type f)"
	fi
	rm -rf "$t"
}

# The dashboard is valid JSON, has the panels asked for, and uses only metrics
# the sources export.
test_grafana()
{
	local f=$ROOT/scripts/grafana/imapguard.json missing m

	check_cmd json_valid 0 "" "$PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$f"
	missing=$("$PY" - "$f" <<-'EOF'
	import json, sys
	d = json.load(open(sys.argv[1]))
	titles = [p.get("title", "") for p in d["panels"]]
	want = ["Drop rate per reason", "Bans active", "Map fill %", "Auth failures rate", "Daemon up"]
	print(" ".join(w for w in want if w not in titles))
	EOF
	)
	check_empty panels "$missing"
	missing=
	# shellcheck disable=SC2013 # one metric per word
	for m in $(grep -oE 'imapguard_[a-z_]+' "$f" | sort -u); do
		grep -qr -- "$m" "$ROOT"/userspace/*/*.c || missing+=" $m"
	done
	check_empty metrics_exist "$missing"
}

# policies/default.conf is compiled into the binary (.incbin in
# userspace/cli/common.c): a newer default.conf must rebuild cli/common.o and
# relink. Asked of make with -n -W (what if the file were new), so nothing is
# built or touched; the up-to-date check first keeps it from passing merely
# because everything would be rebuilt anyway.
test_default_conf_dep()
{
	local out

	command -v make >/dev/null || skip "no make"
	grep -q 'incbin.*policies/default.conf' "$ROOT/userspace/cli/common.c" ||
		{ bad incbin "userspace/cli/common.c no longer embeds policies/default.conf"; return; }
	make -q -C "$ROOT" build/imapguard >/dev/null 2>&1 ||
		skip "build/imapguard is not up to date (run make first)"
	out=$(make -n -C "$ROOT" -W policies/default.conf build/imapguard 2>&1)
	check_match default_conf_rebuilds_common "*-c userspace/cli/common.c -o .output/cli/common.o*" "$out"
	check_match default_conf_relinks "*-o build/imapguard*" "$out"
	out=$(make -n -C "$ROOT" -W policies/example-full.conf build/imapguard 2>&1)
	check_match other_policy_no_rebuild "*is up to date*" "$out"
}

# A FIFO or a device where a policy, deny_file or signature belongs is refused
# at once ("not a regular file"), never read until memory runs out nor
# waited on; each command runs under a deadline so a regression fails here.
test_policy_special_files()
{
	local d

	need_bin
	d=$(mktemp -d /tmp/igops-fifo.XXXXXX)
	mkfifo "$d/fifo.conf" "$d/feed"
	printf '[port 143]\naction = reject\n' >"$d/p.conf"
	printf '[port 143]\naction = reject\n[lists]\ndeny_file = feed\n' >"$d/f.conf"
	check_cmd check_dev_zero 1 "*/dev/zero: not a regular file*" \
		timeout 10 "$IG_BIN" policy check /dev/zero
	check_cmd check_fifo 1 "*fifo.conf: not a regular file*" \
		timeout 10 "$IG_BIN" policy check "$d/fifo.conf"
	check_cmd check_fifo_deny_file 1 "*cannot read*feed*: not a regular file*" \
		timeout 10 "$IG_BIN" policy check "$d/f.conf"
	"$IG_BIN" policy keygen --out "$d/k" >/dev/null 2>&1
	check_cmd sign 0 "signed*" "$IG_BIN" policy sign "$d/p.conf" --key "$d/k"
	cp "$d/p.conf.sig" "$d/fifo.conf.sig"
	rm -f "$d/p.conf.sig"
	mkfifo "$d/p.conf.sig"
	check_cmd verify_fifo_sig 1 "*p.conf.sig*not a regular file*" \
		timeout 10 "$IG_BIN" policy verify "$d/p.conf" --pub "$d/k.pub"
	check_cmd verify_fifo_policy 1 "*fifo.conf*not a regular file*" \
		timeout 10 "$IG_BIN" policy verify "$d/fifo.conf" --pub "$d/k.pub"
	rm -rf "$d"
}

# ---- runner ----------------------------------------------------------------

run_one()
{
	local t=$1 rc

	(
		T=${t#test_}
		"$t"
		exit $FAILED
	)
	rc=$?
	[ $rc -eq $SKIP_RC ] && return 0
	return $rc
}

main()
{
	local t fails=0 list=("$@")

	WORK=$(mktemp -d /tmp/igops-test.XXXXXX) || exit 1
	trap 'rm -rf "$WORK"' EXIT

	[ ${#list[@]} -gt 0 ] || list=("${ALL_TESTS[@]}")
	for t in "${list[@]}"; do
		if ! declare -F "$t" >/dev/null; then
			echo "FAIL $t: no such test"
			fails=1
			continue
		fi
		run_one "$t" || fails=1
	done
	return $fails
}

main "$@"
