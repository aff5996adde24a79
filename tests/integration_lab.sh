#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# imapguard end to end against a real Dovecot (issue #6): the seven attack
# scenarios, each a test_* function, run against the real daemon in the
# Dovecot lab of scripts/lab.sh, with real IMAP clients (tests/imap_client.py).
#
#   bash tests/integration_lab.sh                  # every scenario
#   bash tests/integration_lab.sh test_spray ...   # just these
#
# Prints one PASS/FAIL line per check ("PASS scenario.check"), SKIP with the
# reason when it cannot run here (no Dovecot, not root, ...), and a summary.
#
# Two labs, set up in parallel, so the scenarios that don't interact run at
# the same time (about 30 s in all on an idle machine; a minute or more on
# a busy one):
#
#   lab A  one daemon, native XDP on srv0, policies/default.conf unchanged
#          except for the lab's [authlog], small [limits] and a [daemon]
#          section. Scenario 1 runs alone first (it proves that Dovecot's log
#          stays silent, which concurrent traffic would spoil), then 2-5 in
#          parallel (distinct attacker addresses, in distinct /24s so the
#          subnet rule cannot join them), then 7 (it kills the daemon).
#   lab B  scenario 6 only, running alongside all of the above: the same
#          policy but ban_time = 5s (default 10m: a test cannot wait for an
#          expiry), and generic-mode XDP, so both XDP modes are exercised.
#
# Every other threshold is policies/default.conf's own: max_failures 5,
# max_users 4, v6_prefix 64, ban_factor 2, syn_rate 20/s burst 40.
#
# Each scenario runs in its own child process under a time limit
# (TEST_TIMEOUT, default 60 s). Cleanup removes exactly what this run made:
# daemons by PID, pinned state by path, labs by name (scripts/lab.sh down).
#
# Native XDP on a veth: XDP_TX (our TCP reset) is only delivered when the
# veth PEER runs an XDP program too, so lab A's router end r-srv gets a
# pass-only imapguard with its own pin dir (as tests/lib.sh's peer_xdp).
#
# scripts/demo.sh sources this file for its helpers (everything above the
# "tests" section); sourcing runs nothing.
#
# Environment: IG_BIN (binary, default build/imapguard), TEST_TIMEOUT.
set -u

IG_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IG_ROOT=$(cd "$IG_HERE/.." && pwd)
IG_BIN=${IG_BIN:-$IG_ROOT/build/imapguard}
LAB_SH=$IG_ROOT/scripts/lab.sh
CLIENT=$IG_ROOT/tests/imap_client.py
# The system interpreter: pyenv shims depend on $HOME and friends.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
SKIP_RC=249
TEST_TIMEOUT=${TEST_TIMEOUT:-60}

# ---- lab, policy and daemon helpers (shared with scripts/demo.sh) --------

# lab_use ID PIN WORKDIR MODE: point every helper below at the lab named ID
# (scripts/lab.sh's LAB_ID), its daemon's pin dir PIN, a private work
# directory (policy, state file, control socket, daemon log and pid file)
# and the XDP mode. Reads the lab's addresses from `lab.sh status` when the
# lab is up (SRV4, CLI4, NS_ATK, ...).
lab_use()
{
	LAB_ID=$1 PIN=$2 W=$3 MODE=$4
	LAB_DIR=/tmp/imapguard-$LAB_ID
	PIN_PEER=$PIN-peer
	POLICY=$W/policy.conf STATE=$W/state CTL=$W/ctl.sock
	DLOG=$W/daemon.log DPID=$W/daemon.pid
	NS_SRV=ig-$LAB_ID-srv NS_RTR=ig-$LAB_ID-rtr NS_CLI=ig-$LAB_ID-cli NS_ATK=ig-$LAB_ID-atk
	IFACE=srv0
	DOVECOT_LOG=$LAB_DIR/dovecot.log
	mkdir -p "$W"
	lab_status >/dev/null
}

# lab_status: scripts/lab.sh's KEY=value lines, also set here.
lab_status()
{
	local out
	out=$(LAB_ID=$LAB_ID LAB_DIR=$LAB_DIR bash "$LAB_SH" status 2>/dev/null)
	eval "$out"
	echo "$out"
	[ "${NETWORK:-}" = up ] && [ "${DOVECOT:-}" = up ]
}

lab_up()
{
	LAB_ID=$LAB_ID LAB_DIR=$LAB_DIR bash "$LAB_SH" up >/dev/null && lab_status >/dev/null
}

# mk_policy OUT LIMITS [KEY=VALUE ...]: policies/default.conf with the lab's
# [authlog dovecot] and a [daemon] section appended; LIMITS "small" replaces
# its [limits] (the 1M-entry defaults preallocate ~60 MB per load), "default"
# keeps them. KEY=VALUE replaces that [detect] key, marked as an override.
mk_policy()
{
	local out=$1 limits=$2
	shift 2
	awk -v ovr="$*" -v keep_limits="$([ "$limits" = default ] && echo 1)" '
	BEGIN { n = split(ovr, kv, " ")
		for (i = 1; i <= n; i++) { split(kv[i], p, "="); o[p[1]] = p[2] } }
	/^\[/ { sec = $0; skip = (sec == "[limits]" && !keep_limits) }
	skip { next }
	sec == "[detect]" && /^[a-z_]+[ \t]*=/ {
		k = $0; sub(/[ \t]*=.*/, "", k)
		if (k in o) { print k " = " o[k] "   ; overridden for the lab"; next }
	}
	{ print }' "$IG_ROOT/policies/default.conf" >"$out" || return 1
	{
		if [ "$limits" != default ]; then
			printf '\n[limits]\n; small maps for the lab\n'
			printf 'max_bans = 65536\nmax_sources = 65536\nmax_deny = 65536\nmax_allow = 1024\n'
		fi
		printf '\n[authlog dovecot]\npath = %s\nformat = dovecot\n' "$DOVECOT_LOG"
		printf '\n[daemon]\nstate_file = %s\ncontrol_socket = %s\n' "$STATE" "$CTL"
	} >>"$out"
}

# ig ARGS...: the binary in the server namespace on this lab's pin dir.
# nsenter, not `ip netns exec`: the latter hides the host's bpffs.
ig() { nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" "$@" </dev/null; }

# peer_attach: the pass-only program on r-srv (see the header).
peer_attach()
{
	printf '[port 9]\naction = pass\n[limits]\nmax_bans = 16\nmax_sources = 16\nmax_deny = 16\nmax_allow = 16\n' \
		>"$W/peer.conf" &&
	nsenter --net="/run/netns/$NS_RTR" "$IG_BIN" --pin-dir "$PIN_PEER" \
		attach --iface r-srv --mode native --policy "$W/peer.conf" </dev/null >/dev/null
}

# is_our_daemon PID: a live imapguard in this lab's server namespace.
is_our_daemon()
{
	local pid=$1 exe
	[[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[ "${exe% (deleted)}" = "$(readlink -f "$IG_BIN")" ] || return 1
	[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = \
	  "$(stat -L -c %i "/run/netns/$NS_SRV" 2>/dev/null)" ]
}

daemon_pid() { cat "$DPID" 2>/dev/null; }

# daemon_json FILTER: a value from `status --json` (daemon part), or "".
daemon_json()
{
	ig status --json -c "$CTL" 2>/dev/null | json_get "$1" 2>/dev/null
}

# daemon_start: `imapguard run` in the background, in its own session (it
# must outlive the test process that restarts it), its PID in $DPID. Waits
# up to 15 s for its control socket to answer with that PID.
daemon_start()
{
	local pid i

	setsid nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" run \
		--policy "$POLICY" --iface "$IFACE" --mode "$MODE" \
		--state-file "$STATE" --control-socket "$CTL" </dev/null >>"$DLOG" 2>&1 &
	pid=$!
	echo "$pid" >"$DPID"
	for ((i = 0; i < 150; i++)); do
		[ "$(daemon_json 'j["daemon"].get("pid")')" = "$pid" ] && return 0
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	echo "daemon did not come up; its log:" >&2
	sed 's/^/  /' "$DLOG" >&2
	return 1
}

# daemon_stop [SIGNAL]: signal our daemon (TERM by default) and wait up to
# 5 s for it to go; KILL if it does not.
daemon_stop()
{
	local pid i sig=${1:-TERM}

	pid=$(daemon_pid)
	is_our_daemon "$pid" || return 0
	kill -"$sig" "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		is_our_daemon "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	sleep 0.2
	! is_our_daemon "$pid"
}

# lab_teardown: the daemon (by PID), the attachments and pins (by path),
# then the lab (scripts/lab.sh down: Dovecot by PID, namespaces by name).
lab_teardown()
{
	daemon_stop TERM
	if [ -d "$PIN" ] && [ -e "/run/netns/$NS_SRV" ]; then
		ig detach --all >/dev/null 2>&1
	fi
	if [ -d "$PIN_PEER" ] && [ -e "/run/netns/$NS_RTR" ]; then
		nsenter --net="/run/netns/$NS_RTR" "$IG_BIN" --pin-dir "$PIN_PEER" \
			detach --all </dev/null >/dev/null 2>&1
	fi
	case $PIN in /sys/fs/bpf/?*) rm -rf "$PIN" "$PIN_PEER" ;; esac
	LAB_ID=$LAB_ID LAB_DIR=$LAB_DIR bash "$LAB_SH" down >/dev/null 2>&1
	return 0
}

# imap NS ARGS...: tests/imap_client.py in a client namespace.
imap() { local ns=$1; shift; ip netns exec "$ns" "$PY" "$CLIENT" "$@" </dev/null; }
cli() { imap "$NS_CLI" "$@"; }
atk() { imap "$NS_ATK" "$@"; }

# syn_probe NS SRC DST [PORT] [TIMEOUT]: one TCP connect from SRC, printing
# connected | refused | timeout | error. TIMEOUT (default 0.8 s) is under
# the 1 s SYN retransmission time: one probe is exactly one SYN.
syn_probe()
{
	imap "$1" flood --host "$3" --port "${4:-993}" --count 1 --timeout "${5:-0.8}" \
		--source "$2" | awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "=");
			if (kv[2] == 1) { print kv[1]; exit } } print "error" }'
}

# kv KEY LINE: the number after KEY= in an imap_client summary line.
kv() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }

# json_get FILTER: the python expression FILTER over the JSON on stdin (j).
json_get()
{
	"$PY" -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# stat_packets REASON: packets counted for REASON by `stats --json`.
stat_packets() { ig stats --json | json_get "j['reasons']['$1']['packets']"; }

# ban_field ADDR KEY: KEY of the live (unexpired) ban on ADDR, "" if none.
ban_field()
{
	ig ban list --json | "$PY" -c 'import json, sys
for b in json.load(sys.stdin):
    if b["addr"] == sys.argv[1] and not b.get("expired"):
        print(b[sys.argv[2]])
        break' "$1" "$2"
}

# ban_addrs: the live bans, sorted, space separated.
ban_addrs()
{
	ig ban list --json | json_get '" ".join(sorted(b["addr"] for b in j if not b.get("expired")))'
}

# wait_ban ADDR SECONDS: until ADDR has a live ban; fails after SECONDS.
wait_ban()
{
	local end=$((SECONDS + $2))
	while [ $SECONDS -le $end ]; do
		[ -n "$(ban_field "$1" addr)" ] && return 0
		sleep 0.1
	done
	return 1
}

# events_match EXPR: how many of the daemon's recent events satisfy the
# python expression EXPR over the event e (a dict).
events_match()
{
	ig events --json -c "$CTL" | "$PY" -c 'import json, sys
n = 0
for line in sys.stdin:
    try:
        e = json.loads(line)
        n += bool(eval(sys.argv[1]))
    except Exception:
        pass
print(n)' "$1"
}

# event_field EXPR KEY: KEY of the last recent event satisfying EXPR.
event_field()
{
	ig events --json -c "$CTL" | "$PY" -c 'import json, sys
v = ""
for line in sys.stdin:
    try:
        e = json.loads(line)
        if eval(sys.argv[1]):
            v = e[sys.argv[2]]
    except Exception:
        pass
print(v)' "$1" "$2"
}

# since_ms TS: milliseconds since the wall time TS (seconds, decimals).
since_ms()
{
	local s=${1%.*} f=000 now=${EPOCHREALTIME/[.,]/}
	[[ $1 == *.* ]] && f=${1#*.}000
	echo $(( now / 1000 - (s * 1000 + 10#${f:0:3}) ))
}

# sleep_until TS SECONDS: until SECONDS after the wall time TS.
sleep_until()
{
	local left=$(( $(printf '%.0f' "${2}e3") - $(since_ms "$1") ))
	[ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
	return 0
}

# ms_since T0: milliseconds since T0 (an $EPOCHREALTIME value).
ms_since()
{
	local t1=$EPOCHREALTIME
	echo $(( (10#${t1//[.,]/} - 10#${1//[.,]/}) / 1000 ))
}

# ---- assertions -------------------------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/assert.sh"

# check_true NAME DETAIL CMD...: CMD succeeds.
check_true()
{
	local name=$1 detail=$2
	shift 2
	if "$@"; then ok "$name"; else bad "$name" "$detail"; fi
}

# ---- the legitimate user ---------------------------------------------------

# legit_start NAME [HOST]: in the background, alice logs in over IMAPS from
# the legitimate client, again and again (one every ~0.25 s) until
# legit_stop NAME (at most 45 s, or until $TW goes); each result is a line
# of $TW/NAME.legit. The loop's PID is also in LEGIT_PIDS, for legit_kill.
LEGIT_PIDS=()
legit_start()
{
	local f=$TW/$1.legit host=${2:-$SRV4}
	: >"$f"
	rm -f "$f.stop"
	(
		end=$((SECONDS + 45))
		while [ -d "$TW" ] && [ ! -e "$f.stop" ] && [ $SECONDS -lt $end ]; do
			cli login --host "$host" --port 993 --user alice --password alice-pass \
				--timeout 3 >>"$f" 2>/dev/null
			sleep 0.25
		done
	) &
	echo $! >"$f.pid"
	LEGIT_PIDS+=("$!")
}

# legit_kill: end every loop legit_start started (an interrupted run).
legit_kill()
{
	local p
	for p in "${LEGIT_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	LEGIT_PIDS=()
}

# legit_stop NAME MIN: stop the loop; every login succeeded, at least MIN.
legit_stop()
{
	local f=$TW/$1.legit n nok
	touch "$f.stop"
	wait "$(cat "$f.pid")" 2>/dev/null
	n=$(grep -c . "$f")
	nok=$(grep -cx ok "$f")
	check_ge legit_logins_during_attack "$2" "$n"
	if [ "$n" = "$nok" ]; then ok legit_logins_all_ok; else
		bad legit_logins_all_ok "$nok of $n ok: $(grep -vx ok "$f" | sort | uniq -c | tr -s ' \n' ' ')"
	fi
}

# dovecot_lines PATTERN: lines of the lab's Dovecot log matching the ERE.
dovecot_lines() { grep -cE -- "$1" "$DOVECOT_LOG"; }

# ---- tests --------------------------------------------------------------------
# Attacker addresses: one /24 (or the /64) per scenario, never reused.

# 1. Plaintext LOGIN on 143 is refused by the NIC, Dovecot never sees it;
#    the same client logs in over IMAPS.
test_plaintext()
{
	local n0 n1 r0 fam dst src

	check baseline_143_login_without_imapguard ok "$(cat "$W/baseline143" 2>/dev/null)"
	check attached_native "$MODE" "$(ig status --json | json_get 'j["interfaces"][0]["mode"]')"
	n0=$(grep -c . "$DOVECOT_LOG")
	r0=$(stat_packets reject)
	for fam in v4 v6; do
		if [ $fam = v4 ]; then dst=$SRV4 src=$CLI4; else dst=$SRV6 src=$CLI6; fi
		check "${fam}_143_login_refused" refused \
			"$(cli login --host "$dst" --port 143 --user alice --password alice-pass --timeout 2)"
		# Refused at once: a reset to the first SYN (the probe gives up
		# before the kernel would retransmit it).
		check "${fam}_143_reset_to_first_syn" refused "$(syn_probe "$NS_CLI" "$src" "$dst" 143 0.9)"
	done
	sleep 0.3
	n1=$(grep -c . "$DOVECOT_LOG")
	check dovecot_log_silent 0 $((n1 - n0))
	check_ge stats_reject $((r0 + 4)) "$(stat_packets reject)"
	check_ge event_reject_v4 1 "$(events_match "e['type'] == 'drop' and e['reason'] == 'reject' and e['addr'] == '$CLI4' and e['port'] == 143")"
	check_ge event_reject_v6 1 "$(events_match "e['type'] == 'drop' and e['reason'] == 'reject' and e['addr'] == '$CLI6' and e['port'] == 143")"
	check v4_993_tls_login ok "$(cli login --host "$SRV4" --port 993 --user alice --password alice-pass)"
	check v6_993_tls_login ok "$(cli login --host "$SRV6" --port 993 --user alice --password alice-pass)"
	check_ge dovecot_logged_tls_login 1 \
		"$(tail -n +$((n1 + 1)) "$DOVECOT_LOG" | grep -cE "Login: user=<alice>.*rip=$CLI4, .*TLS")"
}

# 2. One address, wrong passwords for one user: banned after max_failures,
#    the next SYN dropped by XDP; the legitimate user unaffected.
test_brute_force()
{
	local a=198.19.2.2 out p0 b0 d0

	legit_start brute
	out=$(atk brute --host "$SRV4" --user bob --count 5 --source $a --timeout 1.5)
	check five_wrong_passwords 5 "$(kv failed "$out")"
	check_true banned "no ban on $a within 5 s" wait_ban $a 5
	check ban_reason "authlog brute f=5 u=1" "$(ban_field $a reason)"
	check_range ban_time_10m 590 600 "$(ban_field $a expires_in_s | cut -d. -f1)"
	check_ge event_ban 1 "$(events_match "e['type'] == 'ban' and e['rule'] == 'brute' and e['addr'] == '$a' and e['failures'] == 5 and e['duration_s'] == 600")"
	p0=$(ban_field $a packets)
	b0=$(stat_packets ban)
	d0=$(dovecot_lines "rip=$a, .*no auth attempts")
	check next_syn_dropped timeout "$(syn_probe "$NS_ATK" $a "$SRV4")"
	check next_login_times_out timeout \
		"$(atk login --host "$SRV4" --port 993 --user bob --password bob-pass --source $a --timeout 1)"
	check_ge ban_entry_packets $((p0 + 2)) "$(ban_field $a packets)"
	check_ge stats_ban $((b0 + 2)) "$(stat_packets ban)"
	check_ge event_drop_ban 1 "$(events_match "e['type'] == 'drop' and e['reason'] == 'ban' and e['addr'] == '$a' and e['port'] == 993")"
	check dovecot_saw_no_new_connection "$d0" "$(dovecot_lines "rip=$a, .*no auth attempts")"
	check_true why_explains "why $a does not report the ban" \
		grep -q "banned 1 time" <<<"$(ig why $a -c "$CTL")"
	legit_stop brute 3
}

# 3. One address, one password, many users: banned by the distinct-users
#    rule (max_users 4) with fewer failures than max_failures (5).
test_spray()
{
	local a=198.19.3.3 out p0

	legit_start spray
	out=$(atk spray --host "$SRV4" --users alice,bob,carol,dave --password Winter2025! \
		--source $a --timeout 1.5)
	check four_users_failed 4 "$(kv failed "$out")"
	check_true banned "no ban on $a within 5 s" wait_ban $a 5
	check ban_reason "authlog spray f=4 u=4" "$(ban_field $a reason)"
	check_ge event_ban_spray 1 "$(events_match "e['type'] == 'ban' and e['rule'] == 'spray' and e['addr'] == '$a' and e['users'] == 4")"
	p0=$(ban_field $a packets)
	check next_syn_dropped timeout "$(syn_probe "$NS_ATK" $a "$SRV4")"
	check_ge ban_entry_packets $((p0 + 1)) "$(ban_field $a packets)"
	# The fifth user is still free to log in (from the legitimate client).
	check other_user_logs_in ok "$(cli login --host "$SRV4" --port 993 --user erin --password erin-pass)"
	legit_stop spray 3
}

# 4. One address floods 993 with connects far above syn_rate (20/s, burst
#    40): throttled at the NIC, not banned; the legitimate user unaffected.
test_flood()
{
	local a=198.19.4.4 out s0 conn tmo t0 ms

	s0=$(stat_packets syn_rate)
	legit_start flood
	sleep 0.5
	# 400 connects paced over 2 s (200/s, ten times syn_rate): the budget
	# lets 40 + 2 * 20 = 80 through. Each attempt waits 0.9 s, under the
	# SYN retransmission time, so one attempt is one SYN. The bound allows
	# for a slow machine stretching the flood: 20/s over the whole run.
	t0=$EPOCHREALTIME
	out=$(atk flood --host "$SRV4" --port 993 --count 400 --seconds 2 --timeout 0.9 --source $a)
	ms=$(ms_since "$t0")
	conn=$(kv connected "$out") tmo=$(kv timeout "$out")
	echo "# flood: $out in $ms ms" >&2
	check_range connected_within_budget 40 $((40 + 20 * ms / 1000 + 5)) "$conn"
	check all_others_dropped $((400 - conn)) "$tmo"
	check_ge mostly_dropped 200 "$tmo"
	check_ge stats_syn_rate $((s0 + tmo)) "$(stat_packets syn_rate)"
	check_ge event_syn_rate 1 "$(events_match "e['type'] == 'drop' and e['reason'] == 'syn_rate' and e['addr'] == '$a'")"
	check not_banned "" "$(ban_field $a addr)"
	sleep 0.5
	legit_stop flood 3
	# The budget refills: a second later the flooder may connect again.
	sleep 0.5
	check attacker_budget_refills connected "$(syn_probe "$NS_ATK" $a "$SRV4")"
}

# 5. IPv6: one failure each from five addresses of one /64: the /64 is
#    banned (v6_prefix 64) and covers addresses never seen.
test_ipv6_rotation()
{
	local net=2001:db8:666::/64 srcs out p0 i

	srcs=$(for i in 1 2 3 4 5; do printf '2001:db8:666::5:%d,' $i; done)
	legit_start ipv6 "$SRV6"
	out=$(atk brute --host "$SRV6" --user carol --count 5 --source "${srcs%,}" --timeout 1.5)
	check five_failures 5 "$(kv failed "$out")"
	check_true prefix_banned "no ban on $net within 5 s" wait_ban $net 5
	check ban_reason "authlog v6prefix f=5 u=1" "$(ban_field $net reason)"
	check_ge event_ban_v6prefix 1 "$(events_match "e['type'] == 'ban' and e['rule'] == 'v6prefix' and e['addr'] == '$net'")"
	check no_single_address_bans "" \
		"$(ban_addrs | tr ' ' '\n' | grep '^2001:db8:666:' | grep -vxF $net)"
	p0=$(ban_field $net packets)
	check fresh_address_dropped timeout "$(syn_probe "$NS_ATK" 2001:db8:666::beef "$SRV6")"
	check far_address_dropped timeout \
		"$(syn_probe "$NS_ATK" 2001:db8:666:0:ffff:ffff:ffff:fffe "$SRV6")"
	check_ge ban_entry_packets $((p0 + 2)) "$(ban_field $net packets)"
	check_ge event_drop_fresh 1 "$(events_match "e['type'] == 'drop' and e['reason'] == 'ban' and e['addr'] == '2001:db8:666::beef'")"
	legit_stop ipv6 3
}

# 6. (lab B, ban_time 5s) A ban expires on its own; the same address's
#    second offence is banned ban_factor (2) times longer: 10 s.
#    The time-critical probes come first, timed from the ban event's
#    timestamp; the rest is checked after them. Each brute force runs in
#    the background so the probe need not wait for its last connection
#    (whose LOGOUT the ban drops).
test_expiry_escalation()
{
	local a=198.19.6.6 ts bpid

	# ban_event REPEAT KEY: KEY of the ban (not extension) number REPEAT.
	ban_event()
	{
		event_field "e['type'] == 'ban' and e['addr'] == '$a' and e['repeat'] == $1 and not e['extend']" "$2"
	}
	# probe_at NAME WANT TS SECONDS: the probe SECONDS after wall time TS.
	probe_at()
	{
		local r late
		sleep_until "$3" "$4"
		r=$(syn_probe "$NS_ATK" $a "$SRV4" 993 0.5)
		late=$(since_ms "$3")
		echo "# expiry: $1 at +${late} ms: $r" >&2
		check "$1" "$2" "$r"
	}

	atk brute --host "$SRV4" --user dave --count 5 --source $a --timeout 1 >"$TW/b1.out" &
	bpid=$!
	check_true first_ban "no ban on $a within 10 s" wait_ban $a 10
	ts=$(ban_event 0 ts)
	[ -n "$ts" ] || { bad first_ban_event "no ban event"; wait $bpid; return; }
	probe_at first_ban_drops timeout "$ts" 0
	probe_at first_ban_expired connected "$ts" 5.5
	check first_ban_not_listed "" "$(ban_field $a addr)"
	wait $bpid
	check first_offence_failures 5 "$(kv failed "$(cat "$TW/b1.out")")"
	check first_ban_5s 5 "$(ban_event 0 duration_s)"

	atk brute --host "$SRV4" --user dave --count 5 --source $a --timeout 1 >"$TW/b2.out" &
	bpid=$!
	check_true second_ban "no second ban on $a within 10 s" wait_ban $a 10
	ts=$(ban_event 1 ts)
	[ -n "$ts" ] || { bad second_ban_event "no ban event"; wait $bpid; return; }
	# Past the first ban's length, still banned ...
	probe_at still_banned_after_5s timeout "$ts" 6.5
	# ... and free again after its own.
	probe_at second_ban_expired connected "$ts" 10.5
	wait $bpid
	check second_offence_failures 5 "$(kv failed "$(cat "$TW/b2.out")")"
	check second_ban_10s 10 "$(ban_event 1 duration_s)"
	check_true why_two_bans "why $a does not report 2 bans" \
		grep -q "banned 2 time" <<<"$(ig why $a -c "$CTL")"
}

# 7. The daemon is SIGKILLed in the middle of an attack and restarted: bans
#    stay enforced while it is down and after; the attack in progress is
#    still caught, failures logged while it was down included.
test_restart()
{
	local x=198.19.7.1 y=198.19.7.2 ypid xpid out pid0 pid1 i before after missing tk fy
	local yfail="passwd-file\\(erin,$y,"

	legit_start restart
	# X: five wrong passwords, banned: the ban that must survive.
	out=$(atk brute --host "$SRV4" --user dave --count 5 --source $x --timeout 1)
	check_true x_banned "no ban on $x within 5 s" wait_ban $x 5
	# Y: a brute force in progress when the daemon dies (stopped below).
	# Started directly, not through atk, so that $! is the client's PID.
	ip netns exec "$NS_ATK" "$PY" "$CLIENT" brute --host "$SRV4" --user erin --count 40 \
		--interval 0.3 --source $y --timeout 1 >"$TW/y.out" </dev/null &
	ypid=$!
	# X keeps knocking, 10 SYNs a second for 8 s: none may get through.
	ip netns exec "$NS_ATK" "$PY" "$CLIENT" flood --host "$SRV4" --port 993 --count 80 \
		--seconds 8 --timeout 0.5 --source $x >"$TW/x.out" </dev/null &
	xpid=$!
	for ((i = 0; i < 50; i++)); do
		[ "$(dovecot_lines "$yfail")" -ge 2 ] && break
		sleep 0.1
	done
	check_ge y_failing_before_kill 2 "$(dovecot_lines "$yfail")"
	before=$(ban_addrs)
	pid0=$(daemon_pid)
	tk=$EPOCHREALTIME
	daemon_stop KILL
	if is_our_daemon "$pid0"; then bad daemon_killed "pid $pid0 still running"; else
		ok daemon_killed; fi
	# While it is down: the pinned maps alone enforce the bans.
	check down_daemon_not_running False "$(daemon_json 'j["daemon"]["running"]')"
	check down_ban_listed $x "$(ban_field $x addr)"
	check down_x_dropped timeout "$(syn_probe "$NS_ATK" $x "$SRV4" 993 0.5)"
	check down_legit_login ok "$(cli login --host "$SRV4" --port 993 --user bob --password bob-pass)"
	check_true restarted "see the daemon log" daemon_start
	fy=$(dovecot_lines "$yfail")
	echo "# restart: daemon back $(ms_since "$tk") ms after the kill; Y failures so far: $fy" >&2
	pid1=$(daemon_pid)
	check_true new_pid "same pid $pid1" test "$pid1" != "$pid0"
	check_true adopted_pinned "no 'adopted' in the daemon log" \
		grep -q "adopted pinned fast path" "$DLOG"
	check_true state_restored "no 'restored state' in the daemon log" \
		grep -q "restored state" "$DLOG"
	after=$(ban_addrs)
	missing=$(comm -23 <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$after" | sort) | tr '\n' ' ')
	check bans_kept "" "$missing"
	# The ban kept its expiry: it neither restarted at 10m nor got lost.
	check_range x_expiry_kept 560 598 "$(ban_field $x expires_in_s | cut -d. -f1)"
	# Y: the restarted daemon reads on from its saved log position, so
	# the failures of its downtime count: with five already, Y is banned
	# as soon as it is back.
	if [ "$fy" -ge 5 ]; then
		check_true y_banned_on_catch_up "no ban on $y within 2 s of the restart ($fy failures)" \
			wait_ban $y 2
	else
		check_true y_banned_after_restart "no ban on $y within 8 s" wait_ban $y 8
	fi
	check y_next_syn_dropped timeout "$(syn_probe "$NS_ATK" $y "$SRV4" 993 0.5)"
	kill "$ypid" 2>/dev/null
	wait "$ypid"
	wait "$xpid"
	out=$(cat "$TW/x.out")
	check x_flood_attempts 80 "$(kv attempts "$out")"
	check x_never_got_through 0 "$(kv connected "$out")"
	legit_stop restart 3
}

# ---- runner --------------------------------------------------------------------

# Which lab a scenario runs in.
lab_of() { [ "$1" = test_expiry_escalation ] && echo B || echo A; }

# use_lab A|B: lab_use with this run's names.
use_lab()
{
	local mode=native
	[ "$1" = B ] && mode=generic
	lab_use "igl${RUN_ID}$1" "/sys/fs/bpf/igtest-lab-$RUN_ID-$1" "$RUN_DIR/$1" "$mode"
}

# preflight: prints a reason and returns 1 if the suite cannot run here.
preflight()
{
	local c
	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, BPF)"; return 1; }
	[ -x "$IG_BIN" ] || { echo "no binary at $IG_BIN (run make)"; return 1; }
	command -v dovecot >/dev/null || { echo "dovecot not installed (scripts/deps.sh)"; return 1; }
	for c in ip nsenter setsid openssl timeout awk; do
		command -v $c >/dev/null || { echo "'$c' not installed"; return 1; }
	done
	[ -n "$PY" ] || { echo "no python3"; return 1; }
	if ! id dovecot >/dev/null 2>&1 || ! id dovenull >/dev/null 2>&1; then
		echo "the dovecot/dovenull users are missing (dovecot package)"
		return 1
	fi
	[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] ||
		{ echo "bpffs is not mounted on /sys/fs/bpf"; return 1; }
	return 0
}

# setup_lab A|B: lab, peer program (native), policy, baseline, daemon.
setup_lab()
{
	local pp=''

	use_lab "$1"
	lab_up || { echo "lab $LAB_ID did not come up" >&2; return 1; }
	if [ "$1" = A ]; then
		mk_policy "$POLICY" small || return 1
		# Before imapguard: Dovecot itself accepts plaintext LOGIN on 143
		# (scenario 1 reports it).
		cli login --host "$SRV4" --port 143 --user alice --password alice-pass \
			>"$W/baseline143" 2>&1
		# Loading a program takes seconds on a busy machine: the peer's
		# and the daemon's load at the same time.
		peer_attach &
		pp=$!
	else
		# Scenario 6 waits for expiries: ban_time 5s instead of 10m.
		mk_policy "$POLICY" small ban_time=5s || return 1
	fi
	daemon_start || return 1
	if [ -n "$pp" ] && ! wait "$pp"; then
		echo "couldn't attach the pass-only program to r-srv" >&2
		return 1
	fi
}

# start_one TEST: the child in the background under its time limit.
declare -A CPID CT0
SETUP_PIDS=()
start_one()
{
	timeout -k 5 "$TEST_TIMEOUT" bash "$0" --child "$1" \
		>"$RUN_DIR/$1.out" 2>"$RUN_DIR/$1.log" </dev/null &
	CPID[$1]=$!
	CT0[$1]=$SECONDS
}

# finish_one TEST: wait for it, print its lines (and its log if it failed),
# count it. A timeout or a crash without a FAIL line is a failure.
finish_one()
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
		tail -n 15 "$RUN_DIR/$(lab_of "$t")/daemon.log" 2>/dev/null | sed 's/^/#     /'
	fi
	echo "# ${t#test_}: $((SECONDS - CT0[$t])) s"
}

cleanup()
{
	local t lab t0=$SECONDS
	# Bounded, and not to be cut short: a second Ctrl-C (or timeout(1)'s
	# signal to the whole group right after the one to us) is ignored.
	trap - EXIT
	trap '' INT TERM
	for t in "${!CPID[@]}"; do
		kill -TERM "${CPID[$t]}" 2>/dev/null	# timeout(1) passes it on to its group
	done
	for t in "${!CPID[@]}"; do
		wait "${CPID[$t]}" 2>/dev/null
	done
	# Interrupted during setup: let it finish (it is bounded), so that
	# nothing comes up after the teardown.
	for t in "${SETUP_PIDS[@]}"; do
		[ -n "$t" ] && wait "$t" 2>/dev/null
	done
	for lab in A B; do
		[ -d "$RUN_DIR/$lab" ] || continue
		use_lab $lab
		if [ "${KEEP_DAEMON_LOG:-}" ] && [ -s "$DLOG" ]; then
			echo "# daemon log, lab $lab:"; sed 's/^/#   /' "$DLOG"
		fi
		lab_teardown &
	done
	wait
	rm -rf "$RUN_DIR"
	echo "# cleaned up in $((SECONDS - t0)) s"
}

# in_list WORD LIST...
in_list() { local w=$1; shift; [[ " $* " == *" $w "* ]]; }

main()
{
	local why t tests=() t0=$SECONDS need_a=0 need_b=0 group=() ok_a=1 ok_b=1

	if ! why=$(preflight); then
		echo "SKIP integration_lab: $why"
		exit $SKIP_RC
	fi
	if [ $# -gt 0 ]; then tests=("$@"); else tests=("${ALL_TESTS[@]}"); fi
	for t in "${tests[@]}"; do
		if ! in_list "$t" "${ALL_TESTS[@]}"; then
			echo "FAIL ${t#test_}: no such test"
			exit 1
		fi
		if [ "$(lab_of "$t")" = A ]; then need_a=1; else need_b=1; fi
	done

	RUN_ID=$$
	RUN_DIR=$(mktemp -d /tmp/igtest-lab.XXXXXX) || exit 1
	export RUN_ID RUN_DIR TEST_TIMEOUT
	NPASS=0 NFAIL=0
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	# Both labs come up at the same time (each ~4 s with its daemon).
	local pa='' pb=''
	if [ $need_a = 1 ]; then setup_lab A >"$RUN_DIR/setupA.log" 2>&1 & pa=$!; fi
	if [ $need_b = 1 ]; then setup_lab B >"$RUN_DIR/setupB.log" 2>&1 & pb=$!; fi
	SETUP_PIDS=("$pa" "$pb")
	if [ -n "$pa" ] && ! wait "$pa"; then ok_a=0; fi
	if [ -n "$pb" ] && ! wait "$pb"; then ok_b=0; fi
	SETUP_PIDS=()
	echo "# labs up in $((SECONDS - t0)) s"

	for t in "${tests[@]}"; do
		if { [ "$(lab_of "$t")" = A ] && [ $ok_a = 0 ]; } ||
		   { [ "$(lab_of "$t")" = B ] && [ $ok_b = 0 ]; }; then
			echo "FAIL ${t#test_}.lab: couldn't set up lab $(lab_of "$t"):"
			sed 's/^/#   /' "$RUN_DIR/setup$(lab_of "$t").log"
			NFAIL=$((NFAIL + 1))
		fi
	done

	# Lab B's scenario runs alongside everything in lab A.
	if [ $ok_b = 1 ] && in_list test_expiry_escalation "${tests[@]}"; then
		start_one test_expiry_escalation
	fi
	if [ $ok_a = 1 ]; then
		# 1 alone: it asserts that Dovecot's log stays silent.
		if in_list test_plaintext "${tests[@]}"; then
			start_one test_plaintext
			finish_one test_plaintext
		fi
		# 2-5 at once: distinct attackers, and none bans the legitimate client.
		group=()
		for t in test_brute_force test_spray test_flood test_ipv6_rotation; do
			in_list $t "${tests[@]}" && { start_one $t; group+=("$t"); }
		done
		for t in "${group[@]}"; do
			finish_one "$t"
		done
		# 7 last: it kills the daemon.
		if in_list test_restart "${tests[@]}"; then
			start_one test_restart
			finish_one test_restart
		fi
	fi
	if [ -n "${CPID[test_expiry_escalation]:-}" ]; then
		finish_one test_expiry_escalation
	fi
	echo "# integration_lab: $NPASS tests passed, $NFAIL failed in $((SECONDS - t0)) s"
	[ "$NFAIL" -eq 0 ]
}

ALL_TESTS=(
	test_plaintext
	test_brute_force
	test_spray
	test_flood
	test_ipv6_rotation
	test_expiry_escalation
	test_restart
)

# child TEST: one scenario against its (running) lab.
child()
{
	use_lab "$(lab_of "$1")"
	T=${1#test_}
	TW=$W/$T
	mkdir -p "$TW"
	trap 'exit 143' TERM INT
	"$1"
	exit $FAILED
}

# Sourced (by scripts/demo.sh): define only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	if [ "${1:-}" = --child ]; then
		child "$2"
	fi
	main "$@"
fi
