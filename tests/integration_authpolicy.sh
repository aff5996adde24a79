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
#               stopped: logins go on, nothing hangs; back: verdicts resume,
#               known-good sources restored from the state file; with
#               reject_on_fail = yes, logins are refused while it is down
#   5 hostile   malformed JSON, a 10 MB body, slow-loris, 1000 idle
#               connections: refused and counted, while Dovecot and the CLI
#               are served
#   6 log_only  by reload: a banned source let through, what enforce would
#               answer logged and counted; back to enforce by reload
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

# dovecot_conf KEYFILE [REJECT_ON_FAIL]: Dovecot's settings for this policy,
# with KEYFILE's key and auth_policy_reject_on_fail (default no).
dovecot_conf()
{
	local p=$W/dc-policy.conf
	sed "s|^api_key_file = .*|api_key_file = $1|" "$POLICY" >"$p" &&
	"$IG_BIN" authpolicy dovecot-config -p "$p" --reject-on-fail "${2:-no}" \
		>"$W/dovecot-policy.conf"
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

# log_failures: failures the log follower counted, all parsers.
log_failures()
{
	ig stats --prometheus -c "$CTL" 2>/dev/null |
		awk '$1 ~ /^imapguard_authlog_failures_total/ { n += $2 } END { print n + 0 }'
}

# 1. Brute force: banned after max_failures; XDP drops the SYNs on 993, and
#    Dovecot refuses the next login on 143 through the policy.
test_brute()
{
	local a=198.19.1.1 out r0 v0 l0

	r0=$(policy_rejects $a)
	l0=$(log_failures)
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
	# Dovecot: the ban says f=5, and the log path counted none of these
	# (the policy server was asked about each session).
	check log_follower_skipped_claimed "$l0" "$(log_failures)"
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
		--per-connection 10 --parallel 5 --source $a --timeout 8)
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

ALL_TESTS=(test_brute test_stale test_spray test_key test_hostile test_log_only)

# 3. Distributed spraying: 20 sources, one wrong password each, against one
#    account. The account is protected: an unknown source is refused even
#    with the right password; its known-good source logs in at once; other
#    accounts are unaffected.
test_spray()
{
	local srcs i out t0 ms

	check known_good_first ok "$(cli login --host "$SRV4" --port 993 --user erin --password erin-pass --timeout 10)"
	srcs=$(for i in $(seq 1 20); do printf '198.19.3.%d,' "$i"; done)
	out=$(atk brute --host "$SRV4" --user erin --count 20 --source "${srcs%,}" --timeout 8)
	check twenty_failed 20 "$(kv failed "$out")"
	check no_source_banned "" "$(ban_addrs | tr ' ' '\n' | grep '^198\.19\.3\.')"
	check_ge account_rejects 9 "$(events_match "e['type'] == 'authpolicy' and e['command'] == 'allow' and e['rule'] == 'account' and e['status'] == -1 and e['user'] == 'erin'")"
	check source21_refused auth-failed \
		"$(atk login --host "$SRV4" --port 993 --user erin --password erin-pass --source 198.19.3.21 --timeout 8)"
	check_ge dovecot_logged_refusal 1 "$(policy_rejects 198.19.3.21)"
	t0=$EPOCHREALTIME
	check known_good_logs_in ok "$(cli login --host "$SRV4" --port 993 --user erin --password erin-pass --timeout 10)"
	ms=$(ms_since "$t0")
	# Not delayed by a tarpit (the verdict below says 0); the bound only
	# allows for a TLS login on a loaded machine.
	check_range known_good_at_once 0 4000 "$ms"
	check_ge known_good_verdict 1 "$(events_match "e['type'] == 'authpolicy' and e['rule'] == 'known_good' and e['addr'] == '$CLI4' and e['status'] == 0")"
	check other_account_unaffected ok \
		"$(atk login --host "$SRV4" --port 993 --user dave --password dave-pass --source 198.19.3.22 --timeout 8)"
	out=$(ig why --user erin -c "$CTL")
	check_true why_user_protected "why --user: $out" grep -q "PROTECTED" <<<"$out"
	check_true why_user_known_good "why --user: $out" grep -q "known-good source $CLI4" <<<"$out"
}

# 4. API key: wrong or missing -> 401, counted; Dovecot with the wrong key
#    and reject_on_fail = no serves users. Daemon stopped mid-traffic:
#    logins go on at once; back: verdicts resume.
test_key()
{
	local u0 e0 t0 ms key

	key=$(cat "$W/ap.key")
	u0=$(metric 'imapguard_authpolicy_refused_total{reason="unauthorized"}')
	check wrong_key_401 401 "$(ap_http req --key wrong-key-0123456789 | cut -d' ' -f1)"
	check missing_key_401 401 "$(ap_http req | cut -d' ' -f1)"
	check right_key_200 200 "$(ap_http req --key "$key" | cut -d' ' -f1)"
	check_ge unauthorized_counted $((u0 + 2)) \
		"$(metric 'imapguard_authpolicy_refused_total{reason="unauthorized"}')"
	check status_mode enforce "$(daemon_json 'j["daemon"]["authpolicy"]["mode"]')"
	check_ge status_unauthorized $((u0 + 2)) \
		"$(daemon_json 'j["daemon"]["authpolicy"]["refused"]["unauthorized"]')"
	# Dovecot with the wrong key.
	e0=$(dovecot_lines "Policy server HTTP error: 401")
	if ! dovecot_conf "$W/ap-wrong.key" || ! lab_reconf; then bad dovecot_reconf "lab up failed"; fi
	check wrong_key_dovecot_serves ok "$(cli login --host "$SRV4" --port 993 --user alice --password alice-pass --timeout 10)"
	check_ge dovecot_saw_401 $((e0 + 1)) "$(dovecot_lines "Policy server HTTP error: 401")"
	check_ge dovecot_401_counted $((u0 + 3)) \
		"$(metric 'imapguard_authpolicy_refused_total{reason="unauthorized"}')"
	if ! dovecot_conf "$W/ap.key" || ! lab_reconf; then bad dovecot_reconf "lab up failed"; fi
	# dave's known-good source, to be found again after the restart.
	check dave_logs_in ok "$(cli login --host "$SRV4" --port 993 --user dave --password dave-pass --timeout 10)"
	# The daemon stops in the middle of legitimate traffic.
	legit_start key
	sleep 1
	e0=$(dovecot_lines "Policy server HTTP error")
	check_true daemon_stopped "daemon did not stop" daemon_stop TERM
	t0=$EPOCHREALTIME
	check down_login ok "$(cli login --host "$SRV4" --port 993 --user bob --password bob-pass --timeout 5)"
	ms=$(ms_since "$t0")
	# Dovecot's connect is refused at once: no wait for its 2 s policy
	# timeout, nor for the client's 5 s.
	check_range down_login_no_hang 0 4000 "$ms"
	check_ge down_dovecot_noticed $((e0 + 1)) "$(dovecot_lines "Policy server HTTP error")"
	check_true daemon_back "see the daemon log" daemon_start
	check_true known_good_restored "why --user dave: $(ig why --user dave -c "$CTL")" \
		grep -q "known-good source $CLI4" <<<"$(ig why --user dave -c "$CTL")"
	ig ban add 198.19.4.4 -c "$CTL" >/dev/null 2>&1 || ig ban add 198.19.4.4 >/dev/null
	check back_banned_refused auth-failed \
		"$(atk login --host "$SRV4" --port 143 --user bob --password bob-pass --source 198.19.4.4 --timeout 8)"
	check_ge back_verdicts 1 "$(metric 'imapguard_authpolicy_verdicts_total{status="reject",rule="banned"}')"
	check back_login ok "$(cli login --host "$SRV4" --port 993 --user bob --password bob-pass --timeout 10)"
	check_ge back_allow_verdicts 1 "$(metric 'imapguard_authpolicy_verdicts_total{status="allow",rule="ok"}')"
	legit_stop key 3
	# The other setting: auth_policy_reject_on_fail = yes refuses while the
	# daemon is down, at once, and serves again when it is back.
	if ! dovecot_conf "$W/ap.key" yes || ! lab_reconf; then bad dovecot_reconf "lab up failed"; fi
	check_true yes_daemon_stopped "daemon did not stop" daemon_stop TERM
	t0=$EPOCHREALTIME
	check yes_down_refused auth-failed \
		"$(cli login --host "$SRV4" --port 993 --user bob --password bob-pass --timeout 5)"
	check_range yes_down_no_hang 0 4000 "$(ms_since "$t0")"
	check_true yes_daemon_back "see the daemon log" daemon_start
	check yes_back_login ok "$(cli login --host "$SRV4" --port 993 --user bob --password bob-pass --timeout 10)"
	if ! dovecot_conf "$W/ap.key" || ! lab_reconf; then bad dovecot_reconf "lab up failed"; fi
}

# 5. Hostile HTTP: errors, counted, bounded; Dovecot and the CLI served.
test_hostile()
{
	local key b0 v0 out lp ip n

	key=$(cat "$W/ap.key")
	b0=$(metric 'imapguard_authpolicy_refused_total{reason="bad_request"}')
	check malformed_json_400 400 "$(ap_http req --key "$key" --body '{"login": "x", "remote":' | cut -d' ' -f1)"
	check not_an_object_400 400 "$(ap_http req --key "$key" --body '[1, 2]' | cut -d' ' -f1)"
	check forged_remote_400 400 "$(ap_http req --key "$key" --body '{"remote": "rip=198.18.1.10"}' | cut -d' ' -f1)"
	check_ge bad_requests_counted $((b0 + 3)) \
		"$(metric 'imapguard_authpolicy_refused_total{reason="bad_request"}')"
	check unknown_command_400 400 "$(ap_http req --key "$key" --command delete | cut -d' ' -f1)"
	out=$(ap_http big --key "$key")
	check big_body_413 413 "${out%% *}"
	echo "# 10 MB body: $out" >&2
	check_ge too_large_counted 1 "$(metric 'imapguard_http_refused_total{server="authpolicy",reason="too_large"}')"
	# Slow-loris and 1000 idle connections (from the server's own address,
	# not Dovecot's 127.0.0.1: the per-address cap keeps Dovecot's room).
	ap_http slowloris --seconds 25 >"$TW/loris" &
	lp=$!
	ap_http idle --count 1000 --source "$SRV4" --hold 8 >"$TW/idle" &
	ip=$!
	sleep 3
	v0=$(metric 'imapguard_authpolicy_verdicts_total{status="allow",rule="ok"}')
	check during_dovecot_login ok "$(cli login --host "$SRV4" --port 993 --user alice --password alice-pass --timeout 10)"
	check_ge during_policy_answered $((v0 + 1)) "$(metric 'imapguard_authpolicy_verdicts_total{status="allow",rule="ok"}')"
	check during_cli_status True "$(daemon_json 'j["daemon"]["running"]')"
	# The flood's 64 (max_per_ip) and Dovecot's few.
	check_range during_conns_bounded 1 80 "$(metric 'imapguard_http_connections{server="authpolicy"}')"
	wait "$ip"
	out=$(cat "$TW/idle")
	echo "# idle: $out" >&2
	n=$(sed -n 's/.*held=\([0-9]*\).*/\1/p' <<<"$out")
	# At most max_per_ip held (fewer once the 12 s deadline cut them).
	check_range idle_held_per_ip_cap 0 64 "$n"
	# Every other one was answered 503 and closed, or (up to the listen
	# backlog of 64, connected by the kernel before we accepted) reset.
	check none_else_open $((1000 - n)) "$(( $(sed -n 's/.*refused=\([0-9]*\) closed=\([0-9]*\).*/\1 + \2/p' <<<"$out") ))"
	check_ge per_ip_counted $((1000 - 64 - 64)) "$(metric 'imapguard_http_refused_total{server="authpolicy",reason="per_ip"}')"
	wait "$lp"
	out=$(cat "$TW/loris")
	echo "# slow-loris: $out" >&2
	check_true loris_cut "slow-loris: $out" grep -Eq "closed after (1[0-9]) s" <<<"$out"
	check_ge timeouts_counted 1 "$(metric 'imapguard_http_refused_total{server="authpolicy",reason="timeout"}')"
	check after_dovecot_login ok "$(cli login --host "$SRV4" --port 993 --user alice --password alice-pass --timeout 10)"
}

# 6. mode = log_only (by reload): a banned source is let through, the log and
#    the events say what enforce would have answered; back to enforce.
test_log_only()
{
	local a=198.19.7.7 w0

	ig ban add $a >/dev/null || bad ban_add "ban add $a failed"
	sed -i 's/^mode = enforce$/mode = log_only/' "$POLICY"
	check reload_log_only True "$(ig reload -c "$CTL" | json_get 'j["ok"]')"
	w0=$(metric 'imapguard_authpolicy_would_total{status="reject"}')
	check banned_let_through ok \
		"$(atk login --host "$SRV4" --port 143 --user bob --password bob-pass --source $a --timeout 8)"
	check_ge would_counted $((w0 + 1)) "$(metric 'imapguard_authpolicy_would_total{status="reject"}')"
	check_ge event_would 1 "$(events_match "e['type'] == 'authpolicy' and e['addr'] == '$a' and e['status'] == 0 and e['would'] == -1 and e['mode'] == 'log_only'")"
	check_true daemon_logged "no 'would answer -1' in the daemon log" \
		grep -q "log_only: would answer -1 (banned)" "$DLOG"
	sed -i 's/^mode = log_only$/mode = enforce/' "$POLICY"
	check reload_enforce True "$(ig reload -c "$CTL" | json_get 'j["ok"]')"
	check enforced_again auth-failed \
		"$(atk login --host "$SRV4" --port 143 --user bob --password bob-pass --source $a --timeout 8)"
}

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
	head -c 24 /dev/urandom | base64 >"$W/ap.key" && chmod 600 "$W/ap.key" || return 1
	head -c 24 /dev/urandom | base64 >"$W/ap-wrong.key" && chmod 600 "$W/ap-wrong.key" || return 1
	cat >>"$POLICY" <<-EOF

	[authpolicy]
	listen = 127.0.0.1:$AP_PORT
	api_key_file = $W/ap.key
	mode = enforce
	tarpit_max = 4s
	timeout = 12s
	max_connections = 128
	max_per_ip = 64
	EOF
	"$IG_BIN" policy check "$POLICY" >/dev/null || return 1
	dovecot_conf "$W/ap.key" || return 1
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
