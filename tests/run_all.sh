#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make test` driver: every unit test binary that was built (build/test_*),
# then, side by side in four lanes, every fuzz harness for a short run
# (tests/fuzz/run.sh, FUZZ_TEST_SECONDS each, default 20) and the netns
# suites (tests/integration_*.sh; see the lanes below). Each prints
# PASS/FAIL/SKIP lines; this script echoes every line as it comes, counts
# them, and ends with exactly one line "N passed, N failed, N skipped". Exit 1
# if anything failed.
#
# A program that exits non-zero without printing a FAIL line (a crash, a
# missing library) counts as one failure named after it, so a broken test can
# never pass by printing nothing. Needs no terminal: CI runs it with no stdin.
set -u

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
SKIP_RC=249
NPASS=0 NFAIL=0 NSKIP=0
WORK=$(mktemp -d /tmp/igtest-run.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT

# run NAME CMD...: run CMD, echo and count its result lines.
run()
{
	local name=$1 line rc fails=0

	shift
	while IFS= read -r line || [ -n "$line" ]; do
		echo "$line"
		case $line in
		"PASS "*) NPASS=$((NPASS + 1)) ;;
		"FAIL "*) NFAIL=$((NFAIL + 1)) fails=$((fails + 1)) ;;
		"SKIP "*) NSKIP=$((NSKIP + 1)) ;;
		esac
	done < <("$@" </dev/null; echo $? >"$WORK/rc")
	rc=$(cat "$WORK/rc")
	if [ "$rc" -ne 0 ] && [ "$rc" -ne $SKIP_RC ] && [ "$fails" -eq 0 ]; then
		echo "FAIL $name: exited with status $rc and no FAIL line"
		NFAIL=$((NFAIL + 1))
	fi
}

for t in build/test_*; do
	if [ ! -x "$t" ] || [ ! -f "$t" ]; then
		continue
	fi
	run "$(basename "$t")" "$t"
done

# bg NAME CMD...: start CMD in the background, its output and exit status
# kept in $WORK for replay; the PID is in $!.
bg()
{
	local name=$1

	shift
	{ "$@" </dev/null >"$WORK/$name.out"; echo $? >"$WORK/$name.rc"; } &
}

# replay NAME: what a background run printed, and its exit status (for run).
replay()
{
	cat "$WORK/$1.out"
	return "$(cat "$WORK/$1.rc")"
}

# Each integration lab logs its id here, so leftovers can be told apart from
# the labs of another run going on at the same time.
export IG_LAB_LOG=$WORK/labs
: >"$IG_LAB_LOG"

# The suites share nothing (each names its namespaces, pins, temp dirs,
# daemons by its own lab id, and each suite its own loopback ports), and most of their time is
# spent waiting on timeouts and real servers, not on the CPU. So four lanes
# run side by side: the fuzz harnesses one at a time; the daemon, MFA and
# fleet suites; the CrowdSec and STARTTLS suites; and the other suites in
# turn. A lane's lines are printed whole when it
# ends; timing assertions hold on a busy machine (README "Quick start").
# A harness that crashes, leaks or times out on an input is a FAIL naming the
# saved reproducer; one that was not built (make fuzz-build) is a FAIL too.
bg fuzz bash tests/fuzz/run.sh -s "${FUZZ_TEST_SECONDS:-20}" -j 1
fuzz_pid=$!
# lane NAME...: the suites tests/NAME.sh one after another, in the
# background, each kept for replay like bg's; the PID is in $!.
lane()
{
	{
		local name

		for name in "$@"; do
			bash "tests/$name.sh" </dev/null >"$WORK/$name.out"
			echo $? >"$WORK/$name.rc"
		done
	} &
}
lane integration_daemon integration_mfa integration_fleet
daemon_pid=$!
lane integration_crowdsec integration_starttls
crowdsec_pid=$!
run integration bash tests/integration.sh
run integration_lab bash tests/integration_lab.sh
run integration_authpolicy bash tests/integration_authpolicy.sh
run integration_audit bash tests/integration_audit.sh
run integration_ops bash tests/integration_ops.sh
# Installs and purges a real package with apt-get: no other suite uses
# apt or dpkg, so it may run beside them, but never beside another
# package operation (tests/integration_deb.sh).
run integration_deb bash tests/integration_deb.sh
run integration_coexist bash tests/integration_coexist.sh
run integration_flood bash tests/integration_flood.sh
wait "$daemon_pid"
for s in integration_daemon integration_mfa integration_fleet; do
	run "$s" replay "$s"
done
wait "$crowdsec_pid"
for s in integration_crowdsec integration_starttls; do
	run "$s" replay "$s"
done
wait "$fuzz_pid"
run fuzz replay fuzz

# Nothing of ours may survive: namespaces igt-*-ID, pins igtest-ID*, temp
# dirs /tmp/igtest-ID.*, and processes (a daemon, a prober) still running
# with one of those in their command line.
left=()
# "PID command line" of every process, read once.
procs=$(for cmd in /proc/[0-9]*/cmdline; do
	line=$(tr '\0' ' ' <"$cmd" 2>/dev/null) && [ -n "$line" ] && echo "${cmd//[^0-9]/} $line"
done)
while read -r id; do
	[ -n "$id" ] || continue
	for ns in igt-srv-$id igt-cli-$id igt-snk-$id; do
		[ -e "/run/netns/$ns" ] && left+=("netns $ns")
	done
	for pin in /sys/fs/bpf/igtest-"$id" /sys/fs/bpf/igtest-"$id"-*; do
		[ -e "$pin" ] && left+=("pin $pin")
	done
	for dir in /tmp/igtest-"$id".*; do
		[ -e "$dir" ] && left+=("dir $dir")
	done
	while read -r pid _; do
		left+=("process $pid")
	done < <(grep -E "igtest-$id([^0-9]|$)|igt-[a-z]+-$id([^0-9]|$)" <<<"$procs")
done <"$IG_LAB_LOG"
if [ ${#left[@]} -gt 0 ]; then
	echo "FAIL leftovers: ${left[*]}"
	NFAIL=$((NFAIL + 1))
else
	echo "PASS leftovers"
	NPASS=$((NPASS + 1))
fi
# Anyone else's (a concurrent run, an older crash): worth a note, not ours to fail on.
others=$( (ip netns list 2>/dev/null | awk '{print $1}' | grep '^igt-'; \
	ls -d /sys/fs/bpf/igtest-* 2>/dev/null) | tr '\n' ' ')
[ -n "$others" ] && echo "# note: not from this run, still present: $others"

echo "$NPASS passed, $NFAIL failed, $NSKIP skipped"
[ "$NFAIL" -eq 0 ]
