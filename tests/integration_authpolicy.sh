#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# imapguard as Dovecot's auth policy server (issue #16), end to end: the real
# Dovecot 2.3 of scripts/lab.sh asks the real daemon over real HTTP before
# and after every authentication (settings from `imapguard authpolicy
# dovecot-config`), and real IMAP clients (tests/imap_client.py) attack it.
#
#   bash tests/integration_authpolicy.sh                 # every scenario
#   bash tests/integration_authpolicy.sh test_stale ...  # just these
#
# One lab, generic-mode XDP on srv0, scenarios in sequence (they share the
# daemon; each uses its own attacker /24 and its own account):
#   1 brute     5 wrong passwords: banned; the SYNs dropped at XDP on 993,
#               and a login on 143 (left unprotected by this policy: the path
#               XDP does not cover, as a proxy's would be) refused by Dovecot
#               through the policy, with the right password
#   2 stale     50 retries of one wrong password: counted once, no ban; then
#               distinct passwords from the same source: banned
#   3 spray     20 sources, one failure each, against one account: the 21st
#               source is refused (right password), the account's known-good
#               source logs in at once, another account is unaffected
#   4 key       wrong or missing key: 401, counted; Dovecot with the wrong key
#               and auth_policy_reject_on_fail = no still serves users; daemon
#               stopped: logins go on, nothing hangs; back: verdicts resume
#   5 hostile   malformed JSON, a 10 MB body, slow-loris, 1000 idle
#               connections: refused and counted, while Dovecot and the CLI
#               are served
# The policy's [detect] is policies/default.conf's (max_failures 5, window
# 10m, account_max_sources 10); [authpolicy] has tarpit_max 4s, timeout 12s (over Dovecot's 10 s idle).
#
# Environment: IG_BIN, TEST_TIMEOUT (per scenario, default 90 s).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The lab helpers (lab_use, mk_policy, daemon_start, atk, cli, wait_ban, ...).
# shellcheck source=tests/integration_lab.sh
source "$HERE/integration_lab.sh"
TEST_TIMEOUT=${TEST_TIMEOUT:-90}
AP_PORT=19601

# ap_http ARGS...: tests/authpolicy_client.py in the server namespace.
ap_http()
{
	ip netns exec "$NS_SRV" "$PY" "$IG_ROOT/tests/authpolicy_client.py" --port "$AP_PORT" "$@" \
		</dev/null
}

# metric NAME{LABELS}: one value of the daemon's metrics, 0 if absent.
metric()
{
	local v
	v=$(ig stats --prometheus -c "$CTL" 2>/dev/null | awk -v m="$1" '$1 == m { print $2; exit }')
	echo "${v:-0}"
}

# dovecot_conf KEYFILE: Dovecot's settings for this policy, with KEYFILE's key.
dovecot_conf()
{
	local p=$W/dc-policy.conf
	sed "s|^api_key_file = .*|api_key_file = $1|" "$POLICY" >"$p" &&
	"$IG_BIN" authpolicy dovecot-config -p "$p" >"$W/dovecot-policy.conf"
}

# lab_reconf: Dovecot picks up $W/dovecot-policy.conf (SIGHUP), then waits
# until its listeners are back.
lab_reconf()
{
	LAB_AUTH_POLICY=$W/dovecot-policy.conf lab_up
}

# ---- tests ------------------------------------------------------------------

# policy_rejects ADDR: Dovecot's log lines refusing a login from ADDR through
# the policy server.
policy_rejects() { dovecot_lines "policy\\([^,]*,$1,.*policy server refusal"; }

# 1. Brute force: banned after max_failures; XDP drops the SYNs on 993, and
#    Dovecot refuses the next login on 143 through the policy.
test_brute()
{
	local a=198.19.1.1 out r0 v0

	r0=$(policy_rejects $a)
	out=$(atk brute --host "$SRV4" --user bob --count 5 --source $a --timeout 8)
	check five_wrong_passwords 5 "$(kv failed "$out")"
	check_true banned "no ban on $a within 5 s" wait_ban $a 5
	check ban_reason "authlog brute f=5 u=1" "$(ban_field $a reason)"
	check_ge report_events 5 "$(events_match "e['type'] == 'authpolicy' and e['command'] == 'report' and e['rule'] == 'fail' and e['addr'] == '$a'")"
	check_ge tarpit_seen 1 "$(events_match "e['type'] == 'authpolicy' and e['rule'] == 'tarpit' and e['addr'] == '$a' and e['status'] > 0")"
	check next_syn_dropped timeout "$(syn_probe "$NS_ATK" $a "$SRV4" 993)"
	v0=$(metric 'imapguard_authpolicy_verdicts_total{status="reject",rule="banned"}')
	check login_143_refused auth-failed \
		"$(atk login --host "$SRV4" --port 143 --user bob --password bob-pass --source $a --timeout 5)"
	check_ge dovecot_logged_policy_reject $((r0 + 1)) "$(policy_rejects $a)"
	check_ge verdict_metric $((v0 + 1)) \
		"$(metric 'imapguard_authpolicy_verdicts_total{status="reject",rule="banned"}')"
	check_ge verdict_event 1 "$(events_match "e['type'] == 'authpolicy' and e['command'] == 'allow' and e['status'] == -1 and e['rule'] == 'banned' and e['addr'] == '$a'")"
	# Each attempt counted once although the log follower reads the same
	# Dovecot: the ban says f=5, and the log path counted none of these.
	check_true why_explains "why $a does not report the ban" \
		grep -q "banned 1 time" <<<"$(ig why $a -c "$CTL")"
}

# 2. Stale password: 50 retries of one wrong password, no ban; then
#    distinct wrong passwords from the same source: banned.
test_stale()
{
	local a=198.19.2.1 out s0

	s0=$(metric 'imapguard_authpolicy_reports_total{result="stale"}')
	out=$(atk brute --host "$SRV4" --user carol --count 50 --password old-carol-pass \
		--per-connection 10 --source $a --timeout 8)
	check fifty_failed 50 "$(kv failed "$out")"
	check_ge stale_reports $((s0 + 49)) "$(metric 'imapguard_authpolicy_reports_total{result="stale"}')"
	check not_banned "" "$(ban_field $a addr)"
	check still_connects connected "$(syn_probe "$NS_ATK" $a "$SRV4" 993)"
	check carol_logs_in ok \
		"$(atk login --host "$SRV4" --port 993 --user carol --password carol-pass --source $a --timeout 8)"
	out=$(atk brute --host "$SRV4" --user carol --count 6 --password "new-%d" --source $a --timeout 8)
	check_true banned_after_distinct "no ban on $a within 5 s ($out)" wait_ban $a 5
	check ban_reason "authlog brute f=5 u=1" "$(ban_field $a reason)"
}

ALL_TESTS=(test_brute test_stale test_spray test_key test_hostile)

# ---- runner -----------------------------------------------------------------

preflight_ap()
{
	preflight || return 1
	[ -x "$IG_BIN" ] || { echo "no binary"; return 1; }
}

setup()
{
	lab_use "igap$RUN_ID" "/sys/fs/bpf/igtest-ap-$RUN_ID" "$RUN_DIR/lab" generic
	mk_policy "$POLICY" small || return 1
	# 143 stays out of the policy: the path into Dovecot XDP does not guard.
	awk '/^\[/ { skip = ($0 == "[port 143]") } !skip' "$POLICY" >"$POLICY.tmp" &&
		mv "$POLICY.tmp" "$POLICY" || return 1
	head -c 24 /dev/urandom | base64 >"$W/key" && chmod 600 "$W/key" || return 1
	head -c 24 /dev/urandom | base64 >"$W/wrong.key" && chmod 600 "$W/wrong.key" || return 1
	cat >>"$POLICY" <<-EOF

	[authpolicy]
	listen = 127.0.0.1:$AP_PORT
	api_key_file = $W/key
	mode = enforce
	tarpit_max = 4s
	timeout = 12s
	max_connections = 128
	max_per_ip = 64
	EOF
	"$IG_BIN" policy check "$POLICY" >/dev/null || return 1
	dovecot_conf "$W/key" || return 1
	LAB_AUTH_POLICY=$W/dovecot-policy.conf lab_up || return 1
	daemon_start
}

main()
{
	local why t tests=() t0=$SECONDS

	if ! why=$(preflight_ap); then
		echo "SKIP integration_authpolicy: $why"
		exit "$SKIP_RC"
	fi
	if [ $# -gt 0 ]; then tests=("$@"); else tests=("${ALL_TESTS[@]}"); fi
	RUN_ID=$$
	RUN_DIR=$(mktemp -d /tmp/igtest-ap.XXXXXX) || exit 1
	export RUN_ID RUN_DIR
	NPASS=0 NFAIL=0
	trap ap_cleanup EXIT
	trap 'exit 130' INT TERM
	if ! setup >"$RUN_DIR/setup.log" 2>&1; then
		echo "FAIL authpolicy.setup: see below"
		sed 's/^/#   /' "$RUN_DIR/setup.log"
		exit 1
	fi
	echo "# lab up in $((SECONDS - t0)) s"
	for t in "${tests[@]}"; do
		start_one "$t"
		finish_ap "$t"
	done
	echo "# integration_authpolicy: $NPASS tests passed, $NFAIL failed in $((SECONDS - t0)) s"
	[ "$NFAIL" -eq 0 ]
}

finish_ap()
{
	local t=$1 rc out=$RUN_DIR/$1.out
	wait "${CPID[$t]}"
	rc=$?
	unset "CPID[$t]"
	touch "$out"
	if child_result "$t" "$rc" "$out" "$RUN_DIR/$t.log"; then
		NPASS=$((NPASS + 1))
	else
		NFAIL=$((NFAIL + 1))
		echo "#   daemon log (last 15 lines):"
		tail -n 15 "$DLOG" 2>/dev/null | sed 's/^/#     /'
		echo "#   Dovecot's policy lines (last 10):"
		grep -i policy "$DOVECOT_LOG" 2>/dev/null | tail -n 10 | sed 's/^/#     /'
	fi
	echo "# ${t#test_}: $((SECONDS - CT0[$t])) s"
}

ap_cleanup()
{
	trap - EXIT
	trap '' INT TERM
	for t in "${!CPID[@]}"; do
		kill -TERM "${CPID[$t]}" 2>/dev/null
		wait "${CPID[$t]}" 2>/dev/null
	done
	if [ -n "${W:-}" ]; then
		if [ "${KEEP_DAEMON_LOG:-}" ] && [ -s "$DLOG" ]; then
			echo "# daemon log:"; sed 's/^/#   /' "$DLOG"
		fi
		lab_teardown
	fi
	rm -rf "$RUN_DIR"
}

child_ap()
{
	lab_use "igap$RUN_ID" "/sys/fs/bpf/igtest-ap-$RUN_ID" "$RUN_DIR/lab" generic
	T=${1#test_}
	TW=$W/$T
	mkdir -p "$TW"
	trap 'exit 143' TERM INT
	"$1"
	exit $FAILED
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	if [ "${1:-}" = --child ]; then
		child_ap "$2"
	fi
	main "$@"
fi
