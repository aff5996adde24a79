#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# action = starttls end to end (issue #21): the real daemon in front of a
# real Dovecot on 143 that accepts plaintext LOGIN (disable_plaintext_auth =
# no, the worst case), in the lab of scripts/lab.sh.
#
#   bash tests/integration_starttls.sh
#
# enforce (native XDP, generic XDP, then tc):
#   - python imaplib starttls() then login() works over IPv4 and IPv6;
#   - a plain LOGIN, AUTHENTICATE PLAIN, and a LOGIN sent in two segments
#     with TCP_NODELAY ("a LOG" then "IN ...") are reset, and Dovecot's log
#     shows the connection with no authentication attempt;
#   - events name the verb (never the password), why ADDR and top show them;
# log (the policy reloaded with starttls_mode = log): the same plain LOGIN
#   works and is reported as starttls_logged with its verb.
#
# Prints PASS/FAIL per check, SKIP with the reason when it cannot run here.
# Cleanup removes what this run made: the daemon by PID, pins by path, the
# lab by name (scripts/lab.sh down). Bounded: every client has a deadline.
set -u

ST_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The lab helpers (lab_use, daemon_start, ig, peer_attach, checks, ...);
# sourcing runs nothing.
# shellcheck source=tests/integration_lab.sh
source "$ST_HERE/integration_lab.sh"

# One IMAP session from the client namespace with python's imaplib (the
# split LOGIN with a raw socket). Prints ok | reset | eof | timeout | no |
# error: ... and never the password.
_PY_IMAP='
import imaplib, socket, ssl, sys, time
mode, host = sys.argv[1], sys.argv[2]
user, pw = "alice", "alice-pass"
def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c
def word(e):
    s = str(e).lower()
    if isinstance(e, ConnectionResetError) or "reset" in s:
        return "reset"
    if isinstance(e, (socket.timeout, TimeoutError)) or "timed out" in s:
        return "timeout"
    if "eof" in s:
        return "eof"
    return "error: %s" % type(e).__name__
try:
    if mode == "split":
        s = socket.create_connection((host, 143), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.recv(4096)
        s.sendall(b"a LOG")
        time.sleep(0.3)
        s.sendall(("IN %s %s\r\n" % (user, pw)).encode())
        r = s.recv(4096)
        print("ok" if r.startswith(b"a OK") else "eof" if not r else "no")
    else:
        m = imaplib.IMAP4(host, 143, timeout=5)
        if mode == "starttls":
            m.starttls(ssl_context=ctx())
        if mode == "plain":
            m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (user, pw)).encode())
        else:
            m.login(user, pw)
        if mode == "starttls":  # more traffic inside TLS, none of it inspected
            m.select("INBOX")
            m.noop()
        m.logout()
        print("ok")
except imaplib.IMAP4.error as e:
    print(word(e) if not str(e).startswith("[AUTH") else "no")
except Exception as e:
    print(word(e))
'

# session MODE HOST: one session (see _PY_IMAP), within 15 s.
session()
{
	timeout -k 2 15 ip netns exec "$NS_CLI" "$PY" -c "$_PY_IMAP" "$1" "$2" </dev/null 2>&1 |
		tail -n 1
}

# st_policy MODE: the lab policy, 143 under action starttls in MODE.
st_policy()
{
	cat >"$POLICY" <<-EOF
	[port 143]
	action = starttls
	starttls_mode = $1
	[port 993]
	action = pass
	[limits]
	max_bans = 1024
	max_sources = 1024
	max_deny = 1024
	max_allow = 64
	max_flows = 4096
	[daemon]
	state_file = $STATE
	control_socket = $CTL
	EOF
}

# dovecot_after N PATTERN: lines after line N of Dovecot's log matching the ERE.
dovecot_after() { tail -n +$(($1 + 1)) "$DOVECOT_LOG" | grep -cE -- "$2"; }

# wait_dovecot N PATTERN COUNT: up to 5 s for COUNT such lines.
# shellcheck disable=SC2317 # called through check_true
wait_dovecot()
{
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(dovecot_after "$1" "$2")" -ge "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_event EXPR: up to 5 s for the daemon to have an event matching EXPR
# (see events_match); prints how many it has.
wait_event()
{
	local i n=0
	for ((i = 0; i < 50; i++)); do
		n=$(events_match "$1")
		[ "${n:-0}" -ge 1 ] && break
		sleep 0.1
	done
	echo "${n:-0}"
}

# refused_attempts FAM ADDR SRC: the three plaintext attempts, each reset,
# none an authentication attempt for Dovecot.
refused_attempts()
{
	local fam=$1 dst=$2 src=$3 n0 p0 m

	n0=$(grep -c . "$DOVECOT_LOG")
	p0=$(stat_packets starttls_plaintext)
	for m in login plain split; do
		check "${fam}_${m}_reset" reset "$(session $m "$dst")"
	done
	# Each connection ends in Dovecot's log as reset (our RST toward the
	# server) with no auth attempt.
	check_true "${fam}_dovecot_reset_no_auth_attempt" \
		"expected 3 'reset by peer (no auth attempts' lines for $src" \
		wait_dovecot "$n0" "reset by peer \\(no auth attempts .*rip=$src," 3
	check "${fam}_dovecot_no_login_for_alice" 0 "$(dovecot_after "$n0" "user=<alice>")"
	check "${fam}_dovecot_no_auth_failure" 0 "$(dovecot_after "$n0" "auth failed|Aborted login")"
	check_ge "${fam}_stats_plaintext" $((p0 + 3)) "$(stat_packets starttls_plaintext)"
}

test_enforce()
{
	local n0 out

	T=starttls_${MODE}
	check baseline_plaintext_login_without_imapguard ok "$(cat "$W/baseline" 2>/dev/null)"
	check attached "$MODE" "$(ig status --json | json_get 'j["interfaces"][0]["mode"]')"
	check status_flow_table 4096 "$(ig status --json | json_get 'j["maps"]["flows"]["capacity"]')"
	check status_shows_mode enforce \
		"$(ig status --json | json_get '[p.get("starttls_mode") for p in j["ports"] if p["port"] == 143][0]')"
	n0=$(grep -c . "$DOVECOT_LOG")
	check v4_starttls_login ok "$(session starttls "$SRV4")"
	check v6_starttls_login ok "$(session starttls "$SRV6")"
	check_ge dovecot_logged_tls_logins 2 \
		"$(dovecot_after "$n0" "Login: user=<alice>.*(TLS|secured)")"
	refused_attempts v4 "$SRV4" "$CLI4"
	refused_attempts v6 "$SRV6" "$CLI6"
	check_ge event_verb_login 1 "$(wait_event "e['reason'] == 'starttls_plaintext' and e['addr'] == '$CLI4' and e.get('verb') in ('LOGIN', 'AUTHENTICATE') and e['port'] == 143")"
	out=$(ig events --json -c "$CTL")
	check events_never_hold_the_password 0 "$(grep -c 'alice-pass' <<<"$out")"
	out=$(ig why "$CLI4" -c "$CTL")
	check_match why_shows_plaintext "*STARTTLS guard:*plaintext*" "$out"
	out=$(ig top -c "$CTL")
	check_match top_shows_plaintext "*starttls_plaintext=*" "$out"
	check_match top_shows_verb "*verb=LOGIN*" "$out"
	check dovecot_log_no_password 0 "$(grep -c 'alice-pass' "$DOVECOT_LOG")"
	check daemon_log_no_password 0 "$(grep -c 'alice-pass' "$DLOG")"
}

test_log_mode()
{
	local l0

	T=starttls_log
	st_policy log
	check reload ok "$(ig reload -c "$CTL" >/dev/null 2>&1 && echo ok)"
	check status_shows_mode log \
		"$(ig status --json | json_get '[p.get("starttls_mode") for p in j["ports"] if p["port"] == 143][0]')"
	l0=$(stat_packets starttls_logged)
	check v4_plain_login_passes ok "$(session login "$SRV4")"
	check v6_split_login_passes ok "$(session split "$SRV6")"
	check v4_starttls_login ok "$(session starttls "$SRV4")"
	check_ge stats_logged $((l0 + 2)) "$(stat_packets starttls_logged)"
	check_ge event_logged_verb 1 "$(wait_event "e['type'] == 'logged' and e['reason'] == 'starttls_logged' and e['addr'] == '$CLI4' and e.get('verb') == 'LOGIN'")"
	check_match why_shows_logged "*STARTTLS guard:*logged*verb LOGIN*" "$(ig why "$CLI4" -c "$CTL")"
}

# setup MODE: lab (once), policy, daemon attached in MODE.
setup()
{
	MODE=$1
	st_policy enforce
	daemon_start
}

# shellcheck disable=SC2317 # the EXIT trap
cleanup()
{
	trap - EXIT
	trap '' INT TERM
	lab_teardown
	rm -rf "$W"
	echo "# cleaned up"
}

main()
{
	local why m t0=$SECONDS

	if ! why=$(preflight); then
		echo "SKIP integration_starttls: $why"
		exit "$SKIP_RC"
	fi
	W=$(mktemp -d /tmp/igtest-st.XXXXXX) || exit 1
	lab_use "igst$$" "/sys/fs/bpf/igtest-st-$$" "$W" native
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	if ! lab_up; then
		echo "FAIL starttls.lab: the lab did not come up"
		exit 1
	fi
	# Without imapguard Dovecot takes a plaintext LOGIN on 143: the worst case.
	session login "$SRV4" >"$W/baseline"
	if ! peer_attach || ! setup native; then
		echo "FAIL starttls.setup: peer program or daemon (native)"
		exit 1
	fi
	echo "# lab and daemon up in $((SECONDS - t0)) s"
	test_enforce
	# The same with generic XDP and with the tc hook: a new daemon on fresh pins.
	for m in generic tc; do
		daemon_stop TERM
		ig detach --all >/dev/null 2>&1
		rm -rf "$PIN"
		if setup $m; then
			test_enforce
		else
			T=starttls_$m
			bad setup "daemon did not start in $m mode"
		fi
	done
	test_log_mode
	echo "# integration_starttls: $((SECONDS - t0)) s"
	exit "$FAILED"
}

main "$@"
