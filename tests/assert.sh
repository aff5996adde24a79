# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Assertions shared by the bash suites (sourced). Each check prints one line,
# "PASS $T.NAME" or "FAIL $T.NAME: why", and a failure sets FAILED=1. T is the
# running test's name, set by the suite. At the end, run_one: the per-test
# runner of the suites that run each test in a child of their own.

FAILED=0
T=

ok() { echo "PASS $T.$1"; }
# shellcheck disable=SC2034 # FAILED is read by the suites that source this
bad() { echo "FAIL $T.$1: $2"; FAILED=1; }
skip() { echo "SKIP $T: $1"; exit "${SKIP_RC:-249}"; }

# check NAME WANT GOT
check()
{
	if [ "$3" = "$2" ]; then ok "$1"; else bad "$1" "expected '$2', got '$3'"; fi
}

# check_probe NAME WANT ADDR PORT [SRC] [TIMEOUT]: a probe (tests/lib.sh)
# ends as WANT (connected, refused, timeout).
check_probe()
{
	local name=$1 want=$2

	shift 2
	check "$name" "$want" "$(probe "$@")"
}

# check_ge NAME MIN VALUE: integer VALUE >= MIN.
check_ge()
{
	if [[ $3 =~ ^[0-9]+$ ]] && [ "$3" -ge "$2" ]; then
		ok "$1"
	else
		bad "$1" "expected >= $2, got '$3'"
	fi
}

# check_range NAME MIN MAX VALUE: integer MIN <= VALUE <= MAX.
check_range()
{
	if [[ $4 =~ ^[0-9]+$ ]] && [ "$4" -ge "$2" ] && [ "$4" -le "$3" ]; then
		ok "$1"
	else
		bad "$1" "expected $2..$3, got '$4'"
	fi
}

# check_match NAME GLOB TEXT: TEXT matches the glob.
check_match()
{
	# shellcheck disable=SC2053 # unquoted: a glob on purpose
	if [[ $3 == $2 ]]; then ok "$1"; else bad "$1" "expected to match '$2', got '${3//$'\n'/ | }'"; fi
}

# check_empty NAME TEXT: TEXT is empty (a list of what is missing, or output
# that should not be there).
check_empty()
{
	if [ -z "$2" ]; then ok "$1"; else bad "$1" "${2//$'\n'/ | }"; fi
}

# check_cmd NAME WANT_RC OUT_GLOB CMD...: exit status and stdout+stderr glob.
check_cmd()
{
	local name=$1 want=$2 pat=$3 out rc

	shift 3
	out=$("$@" 2>&1)
	rc=$?
	# shellcheck disable=SC2053 # unquoted: PAT is a glob on purpose
	if [ "$rc" != "$want" ]; then
		bad "$name" "exit $rc, expected $want: ${out//$'\n'/ | }"
	elif [[ $out != $pat ]]; then
		bad "$name" "output does not match '$pat': ${out//$'\n'/ | }"
	else
		ok "$name"
	fi
}

# child_result TEST RC OUT LOG: after a test's child exited with RC, print
# its result lines (OUT), a FAIL line for a timeout or a silent failure, and
# its stderr (LOG, as # comments) when something went wrong. Returns 0 pass,
# 1 fail, 2 skip.
child_result()
{
	local t=$1 rc=$2 out=$3 log=$4 fails

	cat "$out"
	fails=$(grep -c '^FAIL ' "$out")
	if [ "$rc" -eq "${SKIP_RC:-249}" ]; then
		grep -q '^SKIP ' "$out" || echo "SKIP ${t#test_}: (no reason given)"
		return 2
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "FAIL ${t#test_}: timed out after ${TEST_TIMEOUT}s"
		fails=$((fails + 1))
	elif [ "$rc" -ne 0 ] && [ "$fails" -eq 0 ]; then
		echo "FAIL ${t#test_}: exited with status $rc"
		fails=1
	fi
	if [ "$fails" -gt 0 ] && [ -s "$log" ]; then
		sed 's/^/#   /' "$log"
	fi
	[ "$fails" -eq 0 ]
}

# run_one TEST: run "bash $SELF --child TEST" under $TEST_TIMEOUT (the suite
# sets SELF, LOGDIR, TEST_TIMEOUT and SKIP_RC) with its output in files (no
# pipe: a process a test leaves running cannot hold the runner up), then
# report it (child_result) and its duration. Returns 0 pass, 1 fail, 2 skip.
run_one()
{
	local t=$1 out=$LOGDIR/$1.out log=$LOGDIR/$1.log rc t0=$SECONDS

	timeout -k 5 "$TEST_TIMEOUT" bash "$SELF" --child "$t" >"$out" 2>"$log" </dev/null
	child_result "$t" $? "$out" "$log"
	rc=$?
	echo "# ${t#test_}: $((SECONDS - t0)) s"
	return $rc
}
