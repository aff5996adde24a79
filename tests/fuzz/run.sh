#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs the libFuzzer harnesses (build/fuzz_NAME, from tests/fuzz/fuzz_NAME.c;
# `make fuzz-build`) for SECONDS each, JOBS at a time, and prints one line per
# harness for tests/run_all.sh to count:
#   PASS fuzz_NAME: N executions in S s (N/s), corpus N, cov N
#   FAIL fuzz_NAME: crash|leak|timeout|oom after N executions, reproducer PATH
# A harness reads its committed corpus (tests/fuzz/corpus/NAME) and its
# regression seeds (tests/fuzz/regressions/NAME, every one replayed first)
# and writes what it learns to a work corpus: temporary, or DIR/NAME with -k.
# A reproducer is copied to ARTDIR/NAME/ (-a, default .output/fuzz/artifacts)
# and rerun with `build/fuzz_NAME PATH`. Per-input limit: 10 s, 2 GB.
# Optional per harness: tests/fuzz/fuzz_NAME.dict (libFuzzer dictionary) and
# tests/fuzz/fuzz_NAME.options (more libFuzzer flags; '#' starts a comment line).
#
# Usage: run.sh [-s SECONDS] [-j JOBS] [-k DIR] [-a ARTDIR] [fuzz_NAME...]
set -u

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
SECONDS_EACH=20 JOBS=2 KEEP='' ARTDIR=.output/fuzz/artifacts
while getopts "s:j:k:a:" opt; do
	case $opt in
	s) SECONDS_EACH=$OPTARG ;;
	j) JOBS=$OPTARG ;;
	k) KEEP=$OPTARG ;;
	a) ARTDIR=$OPTARG ;;
	*) echo "usage: $0 [-s SECONDS] [-j JOBS] [-k DIR] [-a ARTDIR] [fuzz_NAME...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do
		[ -f "$src" ] && names+=("$(basename "$src" .c)")
	done
fi

# tmpfs when there is one: fuzz_state writes a file per input (FUZZ_TMPDIR).
WORK=$(mktemp -d /dev/shm/igfuzz.XXXXXX 2>/dev/null || mktemp -d /tmp/igfuzz.XXXXXX) || exit 1
# shellcheck disable=SC2317  # called from the trap
stop()
{
	local f

	for f in "$WORK"/*/pid; do
		[ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
}
trap 'stop; exit 130' INT TERM
trap 'rm -rf "$WORK"' EXIT

# run_one NAME: run one harness, leaving its log and exit status in $WORK/NAME.
run_one()
{
	local name=$1 short=${1#fuzz_} dir=$WORK/$1 corpus args=() dirs=() extra=() d

	mkdir -p "$dir/art" "$dir/tmp"
	corpus=${KEEP:+$KEEP/$short}
	corpus=${corpus:-$dir/corpus}
	mkdir -p "$corpus"
	args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	      -artifact_prefix="$dir/art/")
	[ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
	if [ -f "tests/fuzz/$name.options" ]; then
		read -ra extra < <(grep -v '^#' "tests/fuzz/$name.options" | tr '\n' ' ')
		args+=("${extra[@]}")
	fi
	dirs=("$corpus")
	for d in "tests/fuzz/corpus/$short" "tests/fuzz/regressions/$short"; do
		[ -d "$d" ] && dirs+=("$d")
	done
	# The outer limit only catches a harness wedged beyond libFuzzer's own
	# timers (replaying a large corpus takes a while before they start).
	FUZZ_TMPDIR=$dir/tmp UBSAN_OPTIONS=print_stacktrace=1 \
		timeout -k 10 $((SECONDS_EACH + 600)) "build/$name" "${args[@]}" "${dirs[@]}" \
		>"$dir/log" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	wait $!
	echo $? >"$dir/rc"
	rm -f "$dir/pid"
}

# The value of libFuzzer's final "stat::KEY: N" line.
stat()
{
	sed -n "s/^stat::$2: *\([0-9]*\).*/\1/p" "$1" | tail -1
}

# report NAME: one PASS or FAIL line, and the sanitizer report as comments.
report()
{
	local name=$1 short=${1#fuzz_} dir=$WORK/$1 rc execs rate corp cov art kind dest first f

	rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
	execs=$(stat "$dir/log" number_of_executed_units)
	rate=$(stat "$dir/log" average_exec_per_sec)
	corp=$(grep -a -o 'corp: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
	cov=$(grep -a -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
	art=
	for f in "$dir"/art/crash-* "$dir"/art/leak-* "$dir"/art/timeout-* "$dir"/art/oom-*; do
		[ -f "$f" ] && art=${f##*/} && break
	done
	if [ -z "$art" ] && [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "PASS $name: $execs executions in $SECONDS_EACH s (${rate:-?}/s), corpus ${corp:-?}, cov ${cov:-?}"
		return 0
	fi
	if [ -n "$art" ]; then
		kind=${art%%-*}
		mkdir -p "$ARTDIR/$short"
		dest=$ARTDIR/$short/$art
		cp "$dir/art/$art" "$dest"
		echo "FAIL $name: $kind after ${execs:-?} executions, reproducer $dest (rerun: build/$name $dest)"
	else
		echo "FAIL $name: exited with status $rc after ${execs:-?} executions, no reproducer saved"
	fi
	# The report: from the first error line (else the log's end), 40 lines.
	first=$(grep -a -n -m1 -E '^==[0-9]+==ERROR|^fuzz property violated|^ALARM|runtime error:' \
		"$dir/log" | cut -d: -f1)
	if [ -n "$first" ]; then
		tail -n "+$first" "$dir/log" | head -40 | sed 's/^/# /'
	else
		tail -20 "$dir/log" | sed 's/^/# /'
	fi
	return 1
}

echo "# fuzz: ${#names[@]} harnesses, $SECONDS_EACH s each, $JOBS at a time"
for name in "${names[@]}"; do
	if [ ! -x "build/$name" ]; then
		mkdir -p "$WORK/$name"
		continue
	fi
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n
	done
	run_one "$name" &
done
wait

failed=0
for name in "${names[@]}"; do
	if [ ! -x "build/$name" ]; then
		echo "FAIL $name: build/$name is missing (make fuzz-build)"
		failed=1
		continue
	fi
	report "$name" || failed=1
done
exit $failed
