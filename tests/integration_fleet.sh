#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The fleet (issue #18): three imapguard nodes, each its own server and
# client namespace (tests/lib.sh lab) and its own daemon, sharing one real
# redis-server that this suite starts on a unix socket in its temp dir (with
# a password, so AUTH from password_file is exercised). Failures are fed by
# writing Dovecot lines into each daemon's followed auth log; enforcement is
# checked with real SYNs from each node's client namespace.
#
#   1 spread    2 failures on each of 3 nodes, max_failures = 5: banned on
#               all three, the next SYN to any of them dropped
#   2 share     ban add on A -> dropped at B; ban del on B -> lifted on A;
#               ban list on B names the deciding node
#   3 outage    Redis killed mid-attack: each node still bans what it sees;
#               Redis back (empty) -> queued bans everywhere, counting resumes
#   5 poison    stream entries 0.0.0.0/0, ::/0, an allow-listed address,
#               garbage; a poisoned ban key -> refused and counted, never applied
#   4 restart   a node down while others ban: restarted, it resyncs at once
# and: a success resets the fleet's count (reset_on_success); failures
# reported to node a's auth policy server count fleet-wide like log lines.
#
# The tests run in that order on one set of daemons (starting three takes a
# few seconds of verifier time), each with its own attacker addresses.
# Prints PASS/FAIL/SKIP lines; exit 1 if anything failed, 249 to skip.
#
# Environment: IG_BIN, FLEET_TIMEOUT (seconds for the whole suite, default
# 240), IG_LAB_LOG (see tests/run_all.sh).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SKIP_RC=249
# shellcheck source=tests/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/assert.sh
source "$HERE/assert.sh"

BASE_ID=$LAB_ID
NODES=(a b c)
OKT=2
DROPT=0.7
ALLOWED=198.18.0.250
AP_PORT=19701	# node a's auth policy server, on its own namespace's loopback
declare -A NODE_TMP NODE_PID
RTMP=
REDIS_PID=

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP fleet: needs root (namespaces, BPF)"
	exit $SKIP_RC
fi
for b in redis-server redis-cli; do
	if ! command -v $b >/dev/null; then
		echo "SKIP fleet: $b is not installed (scripts/deps.sh)"
		exit $SKIP_RC
	fi
done

# node N: point lib.sh's variables at node N's lab (its own LAB_ID).
node()
{
	local i

	for i in 0 1 2; do
		[ "${NODES[$i]}" = "$1" ] && break
	done
	LAB_ID=$BASE_ID$i
	NS_SRV=igt-srv-$LAB_ID NS_CLI=igt-cli-$LAB_ID
	IF_SRV=igs$LAB_ID IF_CLI=igc$LAB_ID
	PIN=/sys/fs/bpf/igtest-$LAB_ID PIN_PEER=$PIN-peer
	LAB_TMP=${NODE_TMP[$1]:-}
	CTL=$LAB_TMP/ctl.sock ALOG=$LAB_TMP/auth.log DLOG=$LAB_TMP/daemon.log
	STATE=$LAB_TMP/state POL=$LAB_TMP/policy.conf
}

# ---- redis -----------------------------------------------------------------

redis_start()
{
	local i

	redis-server --port 0 --unixsocket "$RTMP/redis.sock" --unixsocketperm 600 \
		--save '' --appendonly no --requirepass "$(cat "$RTMP/redis.pass")" \
		--dir "$RTMP" --logfile "$RTMP/redis.log" </dev/null &
	REDIS_PID=$!
	for ((i = 0; i < 50; i++)); do
		rcli PING 2>/dev/null | grep -q PONG && return 0
		sleep 0.1
	done
	return 1
}

redis_stop()
{
	[ -n "$REDIS_PID" ] || return 0
	kill "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=
}

rcli()
{
	rcli_in "$@" </dev/null
}

# rcli_in ARGS...: redis-cli reading its standard input (-x, --pipe).
rcli_in()
{
	REDISCLI_AUTH=$(cat "$RTMP/redis.pass") redis-cli -s "$RTMP/redis.sock" "$@"
}

# ---- nodes -----------------------------------------------------------------

node_up()
{
	node "$1"
	echo "$LAB_ID" >>"${IG_LAB_LOG:-/dev/null}"
	lab_up || return 1
	NODE_TMP[$1]=$LAB_TMP
	node "$1"
	local a
	for a in 4 5 6 7 8; do
		ip -n "$NS_CLI" addr add 198.18.0.$a/24 dev "$IF_CLI"
	done
	ip -n "$NS_CLI" addr add $ALLOWED/24 dev "$IF_CLI"
	: >"$ALOG"
	cat >"$POL" <<-EOF
	[port 143]
	action = pass
	[port 993]
	action = pass
	[limits]
	max_bans = 1024
	max_sources = 1024
	max_deny = 1024
	max_allow = 1024
	[lists]
	allow = $ALLOWED
	[detect]
	max_failures = 5
	max_users = 0
	max_sources = 0
	ban_time = 10m
	[authlog f]
	path = $ALOG
	[fleet]
	redis = unix:$RTMP/redis.sock
	password_file = $RTMP/redis.pass
	prefix = igt$BASE_ID
	node = node-$1
	EOF
	# Node a is also Dovecot's auth policy server: its reports count too.
	if [ "$1" = a ]; then
		head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$LAB_TMP/ap.key"
		chmod 600 "$LAB_TMP/ap.key"
		printf '[authpolicy]\nlisten = 127.0.0.1:%s\napi_key_file = %s\nmode = log_only\n' \
			"$AP_PORT" "$LAB_TMP/ap.key" >>"$POL"
	fi
}

# daemon_launch N: start node N's daemon in its server namespace.
daemon_launch()
{
	node "$1"
	rm -f "$CTL"
	echo "--- daemon start $(date +%T.%N)" >>"$DLOG"
	nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" run --policy "$POL" \
		--iface "$IF_SRV" --mode tc --state-file "$STATE" --control-socket "$CTL" \
		</dev/null >>"$DLOG" 2>&1 &
	NODE_PID[$1]=$!
	LAB_PIDS+=("$!")
}

# daemon_wait N: up to 30 s for node N's control socket to answer.
daemon_wait()
{
	local i

	node "$1"
	for ((i = 0; i < 300; i++)); do
		if [ -S "$CTL" ] && ig events -c "$CTL" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "${NODE_PID[$1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "node $1: daemon did not come up" >&2
	return 1
}

daemon_start() { daemon_launch "$1" && daemon_wait "$1"; }

daemon_stop()
{
	local pid=${NODE_PID[$1]:-} keep=() p

	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	NODE_PID[$1]=
	for p in "${LAB_PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	LAB_PIDS=("${keep[@]}")
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup()
{
	local n

	for n in "${NODES[@]}"; do
		node "$n"
		[ -n "${NODE_PID[$n]:-}" ] && daemon_stop "$n"
		if [ -d "$PIN" ] && [ -e "/run/netns/$NS_SRV" ]; then
			ig detach --all >/dev/null 2>&1
		fi
	done
	redis_stop
	for n in "${NODES[@]}"; do
		node "$n"
		lab_down
		rm -rf "$PIN"
		[ -n "${NODE_TMP[$n]:-}" ] && rm -rf "${NODE_TMP[$n]}"
	done
	[ -n "$RTMP" ] && rm -rf "$RTMP"
}

# ---- helpers ---------------------------------------------------------------

SEQ=0
# fail_lines ADDR USER N: N Dovecot login failures (see integration_daemon.sh).
fail_lines()
{
	local i

	for ((i = 0; i < $3; i++)); do
		SEQ=$((SEQ + 1))
		printf 'Nov 23 04:30:01 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=%s, lip=198.18.0.1, session=<f%s%d>\n' \
			"$2" "$1" "${EPOCHREALTIME//[.,]/}" "$SEQ"
	done
}

# ok_line ADDR USER: a successful Dovecot login.
ok_line()
{
	SEQ=$((SEQ + 1))
	printf 'Nov 23 04:30:01 mx dovecot: imap-login: Login: user=<%s>, method=PLAIN, rip=%s, lip=198.18.0.1, mpid=1, TLS, session=<k%s%d>\n' \
		"$2" "$1" "${EPOCHREALTIME//[.,]/}" "$SEQ"
}

# feed N ADDR USER COUNT: COUNT failures into node N's auth log.
feed()
{
	node "$1"
	fail_lines "$2" "$3" "$4" >>"$ALOG"
}

# banned N ADDR: a live ban for ADDR on node N.
banned()
{
	node "$1"
	[ "$(ig ban list --json | json_get "any(b['addr'] == '$2' and not b['expired'] for b in j)")" = True ]
}

# wait_for SECONDS CMD...
wait_for()
{
	local i n=$(($1 * 10))

	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# fstat N EXPR: EXPR over node N's `fleet status --json` (as f).
fstat()
{
	node "$1"
	ig fleet status --json -c "$CTL" | "$PY" -c '
import json, sys
f = json.load(sys.stdin)
print(eval(sys.argv[1]))' "$2"
}

# shellcheck disable=SC2317 # called through eval and wait_for
connected() { [ "$(fstat "$1" 'f["connected"] and f["stream_connected"]')" = True ]; }

# syn N SRC: a probe from node N's client namespace to its server's 143.
syn()
{
	node "$1"
	probe "$SRV4" 143 "$2" "${3:-$DROPT}"
}

# ---- tests -----------------------------------------------------------------

test_spread()
{
	T=spread
	local a=198.18.0.2 n

	for n in "${NODES[@]}"; do
		check "connected_$n" connected "$(syn "$n" $a $OKT)"
	done
	for n in "${NODES[@]}"; do
		feed "$n" $a "u$n" 2
		# Each node's lines counted before the next node's (the last node
		# may send only one: the fleet bans on its first).
		node "$n"
		# shellcheck disable=SC2016 # expanded by eval, each time
		wait_for 10 eval '[ "$(ig fleet status --json -c "$CTL" | json_get "j[\"failures_sent\"]")" -ge 1 ]' ||
			bad "sent_$n" "node $n sent no failures to Redis"
	done
	for n in "${NODES[@]}"; do
		if wait_for 15 banned "$n" $a; then ok "banned_$n"; else bad "banned_$n" "$a not banned on $n"; fi
	done
	for n in "${NODES[@]}"; do
		check "dropped_$n" timeout "$(syn "$n" $a)"
	done
	# No node saw more than 2 failures: every ban came from fleet figures.
	check fleet_counts_ban 1 "$(rcli EXISTS "igt$BASE_ID:ban:$a")"
}

test_share()
{
	T=share
	local a=198.18.0.3 t0 origin

	check before_b connected "$(syn b $a $OKT)"
	node a
	ig ban add $a --ttl 10m --reason "by hand" -c "$CTL" >/dev/null
	t0=$EPOCHREALTIME
	if wait_for 10 banned b $a; then ok banned_b; else bad banned_b "$a not banned on b"; fi
	echo "# share: ban add on a seen on b after $(( (10#${EPOCHREALTIME//[.,]/} - 10#${t0//[.,]/}) / 1000 )) ms (CLI polling included)"
	check dropped_b timeout "$(syn b $a)"
	node b
	origin=$(ig ban list --json | json_get "next((b['origin'] + ' ' + b['reason'] for b in j if b['addr'] == '$a'), '')")
	check origin_b "fleet node-a: by hand" "$origin"
	node b
	ig ban del $a -c "$CTL" >/dev/null
	if wait_for 10 eval '! banned a '$a; then ok lifted_a; else bad lifted_a "$a still banned on a"; fi
	check served_a connected "$(syn a $a $OKT)"
	check served_c connected "$(syn c $a $OKT)"
}

# report ADDR USER: a failed login reported to node a's auth policy server,
# as Dovecot sends it after the password check.
report()
{
	node a
	ip netns exec "$NS_SRV" "$PY" - "$AP_PORT" "$(cat "$LAB_TMP/ap.key")" "$1" "$2" <<-'EOF'
	import http.client, json, sys
	port, key, addr, user = sys.argv[1:5]
	c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
	body = json.dumps({"login": user, "remote": addr, "success": False, "protocol": "imap"})
	c.request("POST", "/?command=report", body, {"X-IMAPGuard-Key": key,
	          "Content-Type": "application/json"})
	sys.exit(0 if c.getresponse().status == 200 else 1)
	EOF
}

# Failures reported to the policy server are counted fleet-wide like log lines.
test_policy_reports()
{
	T=policy_reports
	local a=198.18.1.30 i n0

	n0=$(fstat a 'f["failures_sent"]')
	for i in 1 2 3; do
		report $a "p$i" || bad "report_$i" "the policy server refused the report"
	done
	# shellcheck disable=SC2016 # expanded by eval, each time
	if wait_for 10 eval '[ "$(fstat a "f[\"failures_sent\"]")" -ge $((n0 + 3)) ]'; then
		ok reports_sent
	else
		bad reports_sent "node a sent $(( $(fstat a 'f["failures_sent"]') - n0 )) of 3 reports to Redis"
	fi
	feed b $a ub 2
	for n in "${NODES[@]}"; do
		if wait_for 10 banned "$n" $a; then ok "banned_$n"; else bad "banned_$n" "$a not banned on $n"; fi
	done
}

# figures N: fleet-wide figures node N has had back from Redis.
figures() { fstat "$1" 'f["figures_received"]'; }

# A success clears the source's fleet-wide failures (reset_on_success).
test_reset()
{
	T=reset
	local a=198.18.1.20 n0

	n0=$(figures a)
	feed a $a ua 3
	# a's three failures are in Redis before b's success resets them.
	# shellcheck disable=SC2016 # expanded by eval, each time
	wait_for 10 eval '[ "$(figures a)" -ge $((n0 + 3)) ]' || bad figures_a "node a got no figures back"
	node b
	ok_line $a ub >>"$ALOG"
	# shellcheck disable=SC2016 # expanded by eval, each time
	wait_for 10 eval '[ "$(fstat b "f[\"queue\"]")" = 0 ]'
	sleep 0.5
	# shellcheck disable=SC2034 # read by the eval below
	n0=$(figures c)
	feed c $a uc 3
	# shellcheck disable=SC2016 # expanded by eval, each time
	wait_for 10 eval '[ "$(figures c)" -ge $((n0 + 3)) ]' || bad figures_c "node c got no figures back"
	sleep 0.5
	if banned c $a; then bad not_banned_c "$a banned: the success on b did not reset the fleet's count"; else ok not_banned_c; fi
	feed c $a uc 2
	if wait_for 10 banned a $a; then ok banned_after_5_more; else bad banned_after_5_more "$a not banned after 5 failures since the success"; fi
}

test_outage()
{
	T=outage
	local a=198.18.0.4 s=198.18.0.5 n

	redis_stop
	wait_for 15 eval '! connected a' || bad disconnected "node a still says connected"
	# Alone, each node still bans what it sees itself.
	feed a $a ua 5
	if wait_for 10 banned a $a; then ok local_ban_a; else bad local_ban_a "$a not banned on a"; fi
	check dropped_local_a timeout "$(syn a $a)"
	# Under the threshold on each node: only the fleet's figures ban it.
	feed b $s ub 3
	feed c $s uc 3
	sleep 1
	check queued_b True "$(fstat b 'f["queue"] >= 3')"
	banned b $s && bad not_yet_b "$s banned with Redis down"
	# Redis back, empty (no persistence): queues flush, nodes refill it.
	redis_start || { bad redis_restart "redis-server did not come back"; return; }
	for n in b c; do
		if wait_for 20 banned "$n" $a; then ok "queued_ban_$n"; else bad "queued_ban_$n" "$a not banned on $n"; fi
	done
	for n in "${NODES[@]}"; do
		if wait_for 20 banned "$n" $s; then ok "counted_ban_$n"; else bad "counted_ban_$n" "$s not banned on $n"; fi
	done
	check dropped_queued_c timeout "$(syn c $a)"
	# Redis came back empty: fleet bans from before it stay (nobody lifted them).
	for n in "${NODES[@]}"; do
		if banned "$n" 198.18.0.2; then ok "kept_$n"; else bad "kept_$n" "198.18.0.2 lifted on $n after Redis came back empty"; fi
	done
	check dropped_counted_a timeout "$(syn a $s)"
	check epoch_back 1 "$(rcli EXISTS "igt$BASE_ID:epoch")"
	check queue_empty_b 0 "$(fstat b 'f["queue"]')"
}

test_poison()
{
	T=poison
	local st="igt$BASE_ID:bans" n r

	wait_for 10 connected b || bad connected "node b not connected"
	rcli XADD "$st" '*' v 1 op add cidr 0.0.0.0/0 exp 0 ttl 0 level 0 reason x node evil >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr ::/0 exp 0 ttl 0 level 0 reason x node evil >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr ::/32 exp 0 ttl 0 level 0 reason x node evil >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr $ALLOWED exp 0 ttl 0 level 0 reason x node evil >/dev/null
	rcli XADD "$st" '*' garbage yes >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr 198.18.0.1/33 exp 0 ttl 0 level 0 reason x node evil >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr 198.18.0.7 exp 99999999999999 ttl 0 level 0 reason x node evil >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr 198.18.0.7 exp 0 ttl 0 level 0 reason "$(printf 'a\033[2Jb')" node evil >/dev/null
	# And a valid one after them: the stream goes on past the bad ones.
	rcli XADD "$st" '*' v 1 op add cidr 198.18.0.8 exp 0 ttl 0 level 0 reason good node other >/dev/null
	for n in "${NODES[@]}"; do
		if wait_for 10 banned "$n" 198.18.0.8; then ok "valid_after_$n"; else bad "valid_after_$n" "198.18.0.8 not banned on $n"; fi
	done
	for n in "${NODES[@]}"; do
		r=$(fstat "$n" 'f["refused"]')
		check "refused_prefix_$n" 3 "$(fstat "$n" 'f["refused"]["prefix"]')"
		check "refused_allowed_$n" 1 "$(fstat "$n" 'f["refused"]["allowed"]')"
		check "refused_malformed_$n" 1 "$(fstat "$n" 'f["refused"]["malformed"]')"
		check "refused_address_$n" 1 "$(fstat "$n" 'f["refused"]["address"]')"
		check "refused_expiry_$n" 1 "$(fstat "$n" 'f["refused"]["expiry"]')"
		check "refused_size_$n" 1 "$(fstat "$n" 'f["refused"]["size"]')"
		node "$n"
		check "no_world_ban_$n" 0 "$(ig ban list --json | json_get "sum(b['addr'] in ('0.0.0.0/0', '::/0', '::/32', '$ALLOWED', '198.18.0.7') for b in j)")"
		check "allowed_served_$n" connected "$(syn "$n" $ALLOWED $OKT)"
		echo "# poison: refused on $n: $r"
	done
	# A poisoned authoritative key, met by the next resync (test_restart).
	rcli SET "igt$BASE_ID:ban:0.0.0.0/0" '{"v":"1","op":"add","cidr":"0.0.0.0/0","exp":"0","ttl":"0","level":"0","reason":"x","node":"evil"}' >/dev/null
	rcli SET "igt$BASE_ID:ban:198.18.0.9" '{"v":"1","op":"add","cidr":"198.18.0.7","exp":"0","ttl":"0","level":"0","reason":"x","node":"evil"}' >/dev/null
}

test_restart()
{
	T=restart
	local a=198.18.0.6 t0 ms

	daemon_stop c
	node a
	ig ban add $a --ttl 10m -c "$CTL" >/dev/null
	wait_for 10 banned b $a || bad banned_b "$a not banned on b"
	banned c $a && bad not_before "$a banned on c while its daemon was down"
	t0=$EPOCHREALTIME
	daemon_start c || { bad start_c "daemon c did not come back"; return; }
	if wait_for 10 banned c $a; then ok resynced_c; else bad resynced_c "$a not banned on c after restart"; fi
	ms=$(( (10#${EPOCHREALTIME//[.,]/} - 10#${t0//[.,]/}) / 1000 ))
	echo "# restart: node c enforced the ban $ms ms after its daemon was started (BPF adoption included)"
	check dropped_c timeout "$(syn c $a)"
	# The poisoned keys the resync met.
	check key_refused_prefix_c True "$(fstat c 'f["refused"]["prefix"] >= 1')"
	check key_refused_malformed_c True "$(fstat c 'f["refused"]["malformed"] >= 1')"
	node c
	check no_world_ban_c 0 "$(ig ban list --json | json_get "sum(b['addr'] in ('0.0.0.0/0', '198.18.0.7') for b in j)")"
	# Heartbeats every 5 s: the list is at most that old.
	# shellcheck disable=SC2016 # expanded by eval, each time
	if wait_for 12 eval '[ "$(fstat a "len(f[\"nodes\"])")" = 3 ]'; then ok nodes_seen; else
		bad nodes_seen "expected 3 nodes, got $(fstat a 'len(f["nodes"])')"; fi
	node a
	check_cmd status_text 0 "*node-c*" ig fleet status -c "$CTL"
	check_cmd metrics_connected 0 "*imapguard_fleet_connected 1*" ig stats --prometheus -c "$CTL"
	check_cmd metrics_refused 0 '*imapguard_fleet_refused_total{reason="prefix"} 3*' \
		ig stats --prometheus -c "$CTL"
	check_cmd status_fleet_line 0 "*fleet: node node-a*connected*" ig status -c "$CTL"
}

# big_fields KEY N: the RESP of one XADD to stream KEY with N fields, for
# redis-cli --pipe (too many arguments for a command line).
big_fields()
{
	"$PY" - "$1" "$2" <<-'EOF'
	import sys
	key, n = sys.argv[1], int(sys.argv[2])
	args = ["XADD", key, "*"] + ["f%d" % i if j == 0 else "x" for i in range(n) for j in (0, 1)]
	out = ["*%d\r\n" % len(args)] + ["$%d\r\n%s\r\n" % (len(a), a) for a in args]
	sys.stdout.write("".join(out))
	EOF
}

# Replies over the limits (4 MiB, 65536 objects) drop the connection, and
# the daemons go on: the stream steps over each entry that alone is too
# large, and a resync that met one is not repeated on the next connect.
# Neither 64 MiB string is ever held whole: each daemon's peak RSS stays
# far below it.
test_oversize()
{
	T=oversize
	local st="igt$BASE_ID:bans" big="igt$BASE_ID:ban:198.18.0.13" n hwm
	local -A size0

	for n in "${NODES[@]}"; do
		wait_for 10 connected "$n" || bad "connected_$n" "node $n not connected"
		size0[$n]=$(fstat "$n" 'f["refused"]["size"]')
	done
	# One 64 MiB string, then an entry of 70000 fields, then a valid ban.
	head -c $((64 << 20)) /dev/zero | tr '\0' a |
		rcli_in -x XADD "$st" '*' v 1 op add cidr 198.18.0.11 exp 0 ttl 0 level 0 node evil \
		reason >/dev/null
	big_fields "$st" 70000 | rcli_in --pipe >/dev/null
	rcli XADD "$st" '*' v 1 op add cidr 198.18.0.12 exp 0 ttl 0 level 0 reason good node other >/dev/null
	for n in "${NODES[@]}"; do
		if wait_for 30 banned "$n" 198.18.0.12; then ok "valid_after_$n"; else
			bad "valid_after_$n" "198.18.0.12 not banned on $n"; fi
		check "dropped_twice_$n" True "$(fstat "$n" 'f["oversized"] >= 2')"
		check "stepped_over_$n" $((size0[$n] + 2)) "$(fstat "$n" 'f["refused"]["size"]')"
		if banned "$n" 198.18.0.11; then bad "big_not_banned_$n" "198.18.0.11 banned on $n"; else
			ok "big_not_banned_$n"; fi
	done
	# A 64 MiB value under a ban key, met by the resync of every reconnect.
	head -c $((64 << 20)) /dev/zero | tr '\0' a | rcli_in -x SET "$big" >/dev/null
	rcli CLIENT KILL TYPE normal >/dev/null
	sleep 1
	for n in "${NODES[@]}"; do
		if wait_for 20 connected "$n"; then ok "reconnected_$n"; else
			bad "reconnected_$n" "node $n not connected after an oversized resync"; fi
		check "resync_dropped_$n" True "$(fstat "$n" 'f["oversized"] >= 3')"
	done
	rcli XADD "$st" '*' v 1 op add cidr 198.18.0.14 exp 0 ttl 0 level 0 reason good node other >/dev/null
	for n in "${NODES[@]}"; do
		if wait_for 10 banned "$n" 198.18.0.14; then ok "stream_goes_on_$n"; else
			bad "stream_goes_on_$n" "198.18.0.14 not banned on $n"; fi
		node "$n"
		check_match "warned_$n" "*reply over the limits*" "$(cat "$DLOG")"
		hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/${NODE_PID[$n]}/status")
		echo "# oversize: daemon $n peak RSS ${hwm} kB"
		check "peak_rss_under_32MiB_$n" True "$([ "${hwm:-999999}" -lt 32768 ] && echo True || echo False)"
	done
	rcli DEL "$big" >/dev/null
}

main()
{
	local n t0=$EPOCHREALTIME

	trap cleanup EXIT
	trap 'exit 143' TERM
	RTMP=$(mktemp -d "/tmp/igtest-${BASE_ID}r.XXXXXX") || exit 1
	head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$RTMP/redis.pass"
	chmod 600 "$RTMP/redis.pass"
	redis_start || { echo "FAIL fleet.redis: redis-server did not start"; exit 1; }
	for n in "${NODES[@]}"; do
		node_up "$n" || { echo "FAIL fleet.lab_$n: lab did not come up"; exit 1; }
	done
	for n in "${NODES[@]}"; do
		daemon_launch "$n"
	done
	for n in "${NODES[@]}"; do
		daemon_wait "$n" || { echo "FAIL fleet.daemon_$n: did not come up"; tail -5 "$DLOG"; exit 1; }
	done
	for n in "${NODES[@]}"; do
		wait_for 15 connected "$n" || echo "FAIL fleet.connected_$n: not connected to Redis"
	done
	test_spread
	test_share
	test_reset
	test_policy_reports
	test_outage
	test_poison
	test_restart
	test_oversize
	echo "# fleet suite: $(( (10#${EPOCHREALTIME//[.,]/} - 10#${t0//[.,]/}) / 1000000 )) s"
	if [ "$FAILED" != 0 ]; then
		for n in "${NODES[@]}"; do
			node "$n"
			echo "# --- daemon $n log (tail)"
			tail -20 "$DLOG" | sed 's/^/# /'
		done
	fi
	[ "$FAILED" = 0 ]
}

# The whole suite under one time limit; the sleeper holds no pipe of ours.
timeout_s=${FLEET_TIMEOUT:-240}
main &
mainpid=$!
sleep "$timeout_s" >/dev/null 2>&1 &
sleeper=$!
wait -n "$mainpid" "$sleeper"
if kill -0 "$mainpid" 2>/dev/null; then
	echo "FAIL fleet.timeout: the suite ran over ${timeout_s} s"
	kill -TERM "$mainpid"
	wait "$mainpid"
	rc=1
else
	wait "$mainpid"
	rc=$?
	kill "$sleeper" 2>/dev/null
	wait "$sleeper" 2>/dev/null
fi
exit $rc
