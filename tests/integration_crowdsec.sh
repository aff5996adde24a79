#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# CrowdSec suite: imapguard as a bouncer (and watcher) of a real CrowdSec
# local API, Debian's crowdsec 1.4.6. One lab (tests/lib.sh), in whose server
# namespace run both LAPI (`crowdsec -no-cs -no-capi`: the local API only, no
# central API, no log processing; its own config, sqlite database and data
# directory under the lab's temp dir, on the namespace's loopback) and the
# daemon (native XDP on the lab's veth). Credentials come from `cscli
# bouncers add` and `cscli machines add`; decisions from `cscli decisions
# add/delete`; real TCP from the client namespace tells dropped from passed.
# The tests run in order on the one LAPI (it takes seconds to start).
#
#   bash tests/integration_crowdsec.sh              # every test
#   bash tests/integration_crowdsec.sh test_cs_ip   # just these (setup is shared)
#
# Environment: IG_BIN (binary, default build/imapguard), IG_LAB_LOG (file to
# append the lab id to, see tests/run_all.sh), CS_PORT (LAPI's port inside
# the lab namespace, default 19750).
# Tests and their helpers are called through "$t": not unreachable.
# shellcheck disable=SC2317
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SKIP_RC=249
CS_PORT=${CS_PORT:-19750}
UPDATE=2		# update_frequency, seconds
# Within update_frequency, plus a generous margin for a loaded machine (a
# pull, the CLI's own polling).
WITHIN=$((UPDATE + 8))
# The bound checked for "within update_frequency": the interval, a pull, and
# the CLI's own polling on a loaded machine.
BOUND_MS=$((UPDATE * 1000 + 4000))
OKT=2
DROPT=0.7

ALL_TESTS=(
	test_cs_start
	test_cs_ip
	test_cs_range
	test_cs_delete
	test_cs_refused
	test_cs_local_ban_kept
	test_cs_push_alerts
	test_cs_lapi_restart
	test_cs_daemon_restart_resync
	test_cs_reload
	test_cs_key_rotation
	test_cs_hostile_lapi
	test_cs_tls
)

source "$HERE/assert.sh"

preflight()
{
	local c

	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, BPF)"; return 1; }
	[ -x "${IG_BIN:-$HERE/../build/imapguard}" ] || { echo "no binary (run make)"; return 1; }
	for c in ip nsenter crowdsec cscli ss timeout; do
		command -v "$c" >/dev/null || { echo "'$c' not installed (scripts/deps.sh)"; return 1; }
	done
	[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] ||
		{ echo "bpffs is not mounted on /sys/fs/bpf"; return 1; }
	return 0
}

# ---- helpers ---------------------------------------------------------------

CTL='' STATE='' ALOG='' DLOG='' CSD='' DPID='' LPID='' POL=''

alive()
{
	local st

	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$st" != Z ]
}

forget_pid()
{
	local p keep=()

	for p in "${LAB_PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	LAB_PIDS=("${keep[@]}")
}

# stop_pid PID: TERM, up to 10 s, then KILL; reaped and forgotten.
stop_pid()
{
	local i

	kill "$1" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		alive "$1" || break
		sleep 0.1
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	forget_pid "$1"
}

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

igc() { ig "$@" -c "$CTL"; }

# cs ARGS...: cscli on the lab's LAPI (inside the server namespace).
cs()
{
	nsenter --net="/run/netns/$NS_SRV" cscli -c "$CSD/config.yaml" "$@" </dev/null
}

# lapi_config: a config of our own: the package's profiles and hub, every
# path that is written under $CSD, no central API, no metrics listener.
lapi_config()
{
	mkdir -p "$CSD/data" "$CSD/notifications" || return 1
	: >"$CSD/acquis.yaml"
	cat >"$CSD/config.yaml" <<-EOF
	common:
	  daemonize: false
	  log_media: file
	  log_level: info
	  log_dir: $CSD/
	  working_dir: .
	config_paths:
	  config_dir: $CSD/
	  data_dir: $CSD/data/
	  simulation_path: /etc/crowdsec/simulation.yaml
	  hub_dir: /var/lib/crowdsec/hub/
	  index_path: /var/lib/crowdsec/hub/.index.json
	  notification_dir: $CSD/notifications/
	  plugin_dir: /usr/lib/crowdsec/plugins/
	crowdsec_service:
	  acquisition_path: $CSD/acquis.yaml
	cscli:
	  output: human
	  color: no
	db_config:
	  log_level: info
	  type: sqlite
	  db_path: $CSD/data/crowdsec.db
	  use_wal: true
	plugin_config:
	  user: nobody
	  group: nogroup
	api:
	  client:
	    insecure_skip_verify: false
	    credentials_path: $CSD/local_api_credentials.yaml
	  server:
	    log_level: info
	    listen_uri: 127.0.0.1:$CS_PORT
	    profiles_path: /etc/crowdsec/profiles.yaml
	    console_path: $CSD/console.yaml
	    trusted_ips:
	      - 127.0.0.1
	prometheus:
	  enabled: false
	EOF
}

lapi_start()
{
	nsenter --net="/run/netns/$NS_SRV" crowdsec -c "$CSD/config.yaml" -no-cs -no-capi \
		</dev/null >>"$CSD/lapi.out" 2>&1 &
	LPID=$!
	LAB_PIDS+=("$LPID")
	wait_listen "$NS_SRV" "$CS_PORT" 2>/dev/null || wait_listen "$NS_SRV" "$CS_PORT"
}

lapi_stop()
{
	[ -n "$LPID" ] && stop_pid "$LPID"
	LPID=
}

daemon_start()
{
	local i

	rm -f "$CTL"
	echo "--- daemon start $(date +%T.%N)" >>"$DLOG"
	nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" run --policy "$1" \
		--iface "$IF_SRV" --mode native --state-file "$STATE" --control-socket "$CTL" \
		</dev/null >>"$DLOG" 2>&1 &
	DPID=$!
	LAB_PIDS+=("$DPID")
	for ((i = 0; i < 200; i++)); do
		[ -S "$CTL" ] && igc events >/dev/null 2>&1 && return 0
		alive "$DPID" || break
		sleep 0.1
	done
	echo "daemon $DPID did not come up" >&2
	return 1
}

daemon_stop()
{
	[ -n "$DPID" ] && stop_pid "$DPID"
	DPID=
}

# cget EXPR: EXPR over the daemon's status, c being its "crowdsec" object.
cget()
{
	igc status --json | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
c = j.get("daemon", {}).get("crowdsec", {})
print(eval(sys.argv[1]))' "$1"
}

# cis EXPR: cget EXPR is True (for wait_for, which runs it each time).
cis() { [ "$(cget "$1")" = True ]; }

is_banned()
{
	[ "$(ig ban list --json |
		json_get "any(b['addr'] == '$1' and not b['expired'] for b in j)")" = True ]
}

not_banned() { ! is_banned "$1"; }

ban_field()
{
	ig ban list --json | json_get "next((b['$2'] for b in j if b['addr'] == '$1'), '')"
}

# wait_ban ADDR: up to WITHIN s; prints milliseconds taken or "timeout".
wait_ban()
{
	local t0=$EPOCHREALTIME t1

	wait_for "$WITHIN" is_banned "$1" || { echo timeout; return 1; }
	t1=$EPOCHREALTIME
	echo $(((10#${t1//[.,]/} - 10#${t0//[.,]/}) / 1000))
}

# cs_has ADDR: `cscli decisions list` shows a decision for ADDR.
cs_has()
{
	cs decisions list -o json 2>/dev/null |
		"$PY" -c 'import json, sys
j = json.load(sys.stdin) or []
print(any(d["value"] == sys.argv[1] for a in j for d in (a.get("decisions") or [])))' "$1" |
		grep -qx True
}

cs_origin_of()
{
	cs decisions list -o json 2>/dev/null |
		"$PY" -c 'import json, sys
j = json.load(sys.stdin) or []
print(" ".join(sorted(set(a["scenario"] for a in j for d in (a.get("decisions") or [])
                          if d["value"] == sys.argv[1]))))' "$1"
}

fail_lines()
{
	local i

	for ((i = 0; i < $3; i++)); do
		printf 'Nov 23 04:30:01 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<%s>, method=PLAIN, rip=%s, lip=198.18.0.1, session=<cs%s%d>\n' \
			"$2" "$1" "${EPOCHREALTIME//[.,]/}" "$i"
	done
}

write_policy()
{
	cat >"$POL" <<-EOF
	[port 143]
	action = pass
	[port 993]
	action = pass
	[lists]
	allow = 198.18.5.0/24
	[limits]
	max_bans = 1024
	max_sources = 1024
	max_deny = 1024
	max_allow = 1024
	[detect]
	max_failures = 3
	window = 1m
	ban_time = 10m
	[authlog f]
	path = $ALOG
	[crowdsec]
	lapi = http://127.0.0.1:$CS_PORT
	api_key_file = $CSD/bouncer.key
	update_frequency = ${UPDATE}s
	scopes = ip, range
	push_alerts = yes
	machine_credentials = $CSD/local_api_credentials.yaml
	$*
	EOF
}

# ---- setup -----------------------------------------------------------------

setup()
{
	lab_up || { echo "FAIL cs.lab: couldn't set up the lab"; return 1; }
	CSD=$LAB_TMP/crowdsec CTL=$LAB_TMP/ctl.sock STATE=$LAB_TMP/state
	ALOG=$LAB_TMP/auth.log DLOG=$LAB_TMP/daemon.log POL=$LAB_TMP/cs.conf
	: >"$ALOG"
	lapi_config || { echo "FAIL cs.lapi_config: couldn't write it"; return 1; }
	lapi_start || { echo "FAIL cs.lapi_start: LAPI did not listen (log: $(tail -3 "$CSD/lapi.out" "$CSD"/crowdsec*.log 2>/dev/null))"; return 1; }
	# The bouncer's key and a watcher for cscli and imapguard's alerts.
	cs bouncers add "igtest-$LAB_ID" -o raw >"$CSD/bouncer.key" 2>>"$CSD/cscli.err"
	[ -s "$CSD/bouncer.key" ] || { echo "FAIL cs.bouncer: cscli bouncers add failed"; return 1; }
	chmod 600 "$CSD/bouncer.key"
	cs machines add "igtest-$LAB_ID" --password "igtest-$LAB_ID-$RANDOM$RANDOM$RANDOM" \
		-f "$CSD/local_api_credentials.yaml" >/dev/null 2>>"$CSD/cscli.err" ||
		{ echo "FAIL cs.machine: cscli machines add failed"; return 1; }
	write_policy
	return 0
}

# ---- tests -----------------------------------------------------------------

# The daemon starts with [crowdsec], pulls at once (startup=true) and says so.
test_cs_start()
{
	daemon_start "$POL" || { bad start "daemon did not come up"; return 1; }
	if wait_for "$WITHIN" cis 'c["pulls_ok"] >= 1'; then
		ok first_pull
	else
		bad first_pull "no successful pull: $(cget c)"
	fi
	check connected True "$(cget 'c["connected"]')"
	check resync True "$(cget 'c["resyncs"] >= 1')"
	check_match status_text "*crowdsec:*connected to http://127.0.0.1:$CS_PORT*" "$(igc status)"
	check_match metrics_up "*imapguard_crowdsec_up 1*" "$(igc stats --prometheus)"
	check_probe before_connected connected "$SRV6" 143 "$CLI6" "$OKT"
}

# cscli decisions add --ip: dropped at XDP within update_frequency, shown
# with its origin and scenario; another source is untouched.
test_cs_ip()
{
	local ms s0

	s0=$(stat_packets ban)
	cs decisions add --ip "$CLI6" --duration 1h --reason "igtest ip" >/dev/null 2>&1 ||
		{ bad add "cscli decisions add --ip failed"; return 1; }
	ms=$(wait_ban "$CLI6")
	echo "# ip decision in the map after $ms ms" >&2
	check_range banned_within_update 0 "$BOUND_MS" "$ms"
	check origin crowdsec "$(ban_field "$CLI6" origin)"
	check_match reason "crowdsec/*" "$(ban_field "$CLI6" reason)"
	check_match ttl_about_1h "3[56][0-9][0-9].*" "$(ban_field "$CLI6" expires_in_s)"
	check_probe v6_dropped timeout "$SRV6" 143 "$CLI6" "$DROPT"
	check_probe other_connected connected "$SRV6" 143 "$CLI6B" "$OKT"
	check_ge xdp_ban_counter $((s0 + 1)) "$(stat_packets ban)"
	check_ge ban_packets 1 "$(ban_field "$CLI6" packets)"
	check_match ban_list_origin "*crowdsec*crowdsec/*" "$(ig ban list | grep -F "$CLI6")"
	check_match metric_by_origin '*imapguard_bans_by_origin{origin="crowdsec"} 1*' \
		"$(ig stats --prometheus)"
}

# --range: both v4 clients (198.18.0.2 and .3) in 198.18.0.2/31 are dropped.
test_cs_range()
{
	local ms

	cs decisions add --range 198.18.0.2/31 --duration 2h >/dev/null 2>&1 ||
		{ bad add "cscli decisions add --range failed"; return 1; }
	ms=$(wait_ban 198.18.0.2/31)
	echo "# range decision in the map after $ms ms" >&2
	check_range banned_within_update 0 "$BOUND_MS" "$ms"
	check origin crowdsec "$(ban_field 198.18.0.2/31 origin)"
	check_probe first_dropped timeout "$SRV4" 143 "$CLI4" "$DROPT"
	check_probe second_dropped timeout "$SRV4" 143 "$CLI4B" "$DROPT"
	# An IPv6 range: 2001:db8::2 (already banned by itself) and ::3.
	cs decisions add --range 2001:db8::2/127 --duration 2h >/dev/null 2>&1 ||
		{ bad add6 "cscli decisions add --range (IPv6) failed"; return 1; }
	wait_ban 2001:db8::2/127 >/dev/null || bad v6_range_banned "no ban for 2001:db8::2/127"
	check_probe v6_second_dropped timeout "$SRV6" 143 "$CLI6B" "$DROPT"
	check decisions_in_force 3 "$(cget 'c["decisions"]')"
}

# cscli decisions delete: lifted within update_frequency, traffic passes.
test_cs_delete()
{
	cs decisions delete --ip "$CLI6" >/dev/null 2>&1 || bad delete_ip "cscli failed"
	cs decisions delete --range 198.18.0.2/31 >/dev/null 2>&1 || bad delete_range "cscli failed"
	cs decisions delete --range 2001:db8::2/127 >/dev/null 2>&1 || bad delete_range6 "cscli failed"
	if wait_for "$WITHIN" not_banned "$CLI6" && wait_for "$WITHIN" not_banned 198.18.0.2/31 &&
	   wait_for "$WITHIN" not_banned 2001:db8::2/127; then
		ok lifted
	else
		bad lifted "still banned: $(ig ban list)"
	fi
	check_probe v6_passes connected "$SRV6" 143 "$CLI6" "$OKT"
	check_probe v6_second_passes connected "$SRV6" 143 "$CLI6B" "$OKT"
	check_probe v4_passes connected "$SRV4" 143 "$CLI4" "$OKT"
	check decisions_in_force 0 "$(cget 'c["decisions"]')"
	check lifted_count True "$(cget 'c["bans_lifted"] >= 3')"
}

# What must not be banned: an allow-listed source, a range wider than /8,
# a scope other than Ip/Range. Each refusal is counted by reason.
test_cs_refused()
{
	local a0 p0 s0

	a0=$(cget 'c["refused"]["allowed"]') p0=$(cget 'c["refused"]["prefix"]')
	s0=$(cget 'c["refused"]["scope"]')
	cs decisions add --ip 198.18.5.5 --duration 1h >/dev/null 2>&1
	cs decisions add --range 10.0.0.0/7 --duration 1h >/dev/null 2>&1
	cs decisions add --scope username --value mallory --duration 1h >/dev/null 2>&1
	# A marker decision after them: once it is in, they were all seen.
	cs decisions add --ip 198.18.6.6 --duration 1h >/dev/null 2>&1
	wait_for "$WITHIN" is_banned 198.18.6.6 || bad marker "the marker decision never came"
	check allowed_not_banned false "$(is_banned 198.18.5.5 && echo true || echo false)"
	check wide_not_banned false "$(is_banned 10.0.0.0/7 && echo true || echo false)"
	check refused_allowed True "$(cget "c['refused']['allowed'] > $a0")"
	check refused_prefix True "$(cget "c['refused']['prefix'] > $p0")"
	# LAPI itself leaves a username out of a scopes=ip,range stream, so it
	# may never reach us; when it does, it is refused.
	check refused_scope_not_less True "$(cget "c['refused']['scope'] >= $s0")"
	check_match metric_refused '*imapguard_crowdsec_refused_total{reason="allowed"} [1-9]*' \
		"$(igc stats --prometheus)"
	cs decisions delete --ip 198.18.5.5 >/dev/null 2>&1
	cs decisions delete --range 10.0.0.0/7 >/dev/null 2>&1
	cs decisions delete --ip 198.18.6.6 >/dev/null 2>&1
	cs decisions delete --scope username --value mallory >/dev/null 2>&1
}

# A longer ban of another origin (the CLI's) is not shortened by a decision
# for the same address, nor lifted when the decision is deleted.
test_cs_local_ban_kept()
{
	local addr=198.18.8.8

	ig ban add "$addr" --ttl 3h --reason "igtest local" >/dev/null ||
		{ bad cli_ban "ban add failed"; return 1; }
	cs decisions add --ip "$addr" --duration 1h >/dev/null 2>&1
	# A marker decision after it: once it is in, the first was seen.
	cs decisions add --ip 198.18.6.7 --duration 1h >/dev/null 2>&1
	wait_for "$WITHIN" is_banned 198.18.6.7 || bad marker "the marker decision never came"
	check origin_kept cli "$(ban_field "$addr" origin)"
	check reason_kept "igtest local" "$(ban_field "$addr" reason)"
	check_match ttl_kept "10[0-9][0-9][0-9].*" "$(ban_field "$addr" expires_in_s)"
	cs decisions delete --ip "$addr" >/dev/null 2>&1
	cs decisions delete --ip 198.18.6.7 >/dev/null 2>&1
	wait_for "$WITHIN" not_banned 198.18.6.7 || bad marker_lifted "the marker stayed"
	check still_banned True "$(is_banned "$addr" && echo True || echo False)"
	ig ban del "$addr" >/dev/null
}

# push_alerts: a ban of imapguard's own detector becomes a CrowdSec alert
# with its decision (cscli decisions list shows it); it does not come back
# to imapguard as a CrowdSec ban (origin stays the detector's).
test_cs_push_alerts()
{
	local addr=198.18.7.7

	fail_lines "$addr" eve 3 >>"$ALOG"
	wait_for "$WITHIN" is_banned "$addr" || { bad detector_ban "no ban for $addr"; return 1; }
	check origin_daemon daemon "$(ban_field "$addr" origin)"
	if wait_for "$WITHIN" cs_has "$addr"; then
		ok in_cscli_decisions
	else
		bad in_cscli_decisions "cscli decisions list has no $addr: $(cget 'c["alerts"]'), $(cs decisions list 2>&1 | tail -5)"
	fi
	check_match scenario "imapguard/*" "$(cs_origin_of "$addr")"
	check pushed True "$(cget 'c["alerts"]["pushed"] >= 1')"
	# Next pulls bring our own decision back: refused as ours, never re-banned.
	if wait_for "$WITHIN" cis 'c["refused"]["own"] >= 1'; then
		ok own_refused
	else
		bad own_refused "$(cget 'c["refused"]')"
	fi
	check origin_still_daemon daemon "$(ban_field "$addr" origin)"
}

# LAPI stops: enforcement of what is known goes on (a decision added before
# stays dropped), the daemon says it is not connected; LAPI back: a full
# resync, the old decision still enforced, a new one arrives.
test_cs_lapi_restart()
{
	local r0

	cs decisions add --ip "$CLI4" --duration 1h >/dev/null 2>&1
	wait_for "$WITHIN" is_banned "$CLI4" || { bad before "no ban before the stop"; return 1; }
	r0=$(cget 'c["resyncs"]')
	lapi_stop
	if wait_for "$WITHIN" cis 'not c["connected"]'; then
		ok noticed_down
	else
		bad noticed_down "$(cget c)"
	fi
	check_probe dropped_while_down timeout "$SRV4" 143 "$CLI4" "$DROPT"
	check still_banned_while_down True "$(is_banned "$CLI4" && echo True || echo False)"
	check_match down_in_status "*NOT connected*" "$(igc status)"
	lapi_start || { bad lapi_restart "LAPI did not come back"; return 1; }
	if wait_for $((WITHIN + 60)) cis 'c["connected"]'; then
		ok reconnected
	else
		bad reconnected "$(cget c)"
	fi
	check full_resync True "$(cget "c['resyncs'] > $r0")"
	check_probe dropped_after timeout "$SRV4" 143 "$CLI4" "$DROPT"
	cs decisions add --ip "$CLI4B" --duration 1h >/dev/null 2>&1
	if wait_for "$WITHIN" is_banned "$CLI4B"; then
		ok new_after_restart
	else
		bad new_after_restart "no ban for $CLI4B"
	fi
	cs decisions delete --ip "$CLI4B" >/dev/null 2>&1
}

# The daemon away while a decision is deleted: its next start resyncs
# (startup=true) and lifts the ban LAPI no longer holds. Bans it still holds
# were never lifted (they live in the pinned maps).
test_cs_daemon_restart_resync()
{
	is_banned "$CLI4" || cs decisions add --ip "$CLI4" --duration 1h >/dev/null 2>&1
	wait_for "$WITHIN" is_banned "$CLI4" || { bad before "no ban for $CLI4"; return 1; }
	cs decisions add --ip "$CLI6" --duration 1h >/dev/null 2>&1
	wait_for "$WITHIN" is_banned "$CLI6" || { bad before6 "no ban for $CLI6"; return 1; }
	daemon_stop
	cs decisions delete --ip "$CLI4" >/dev/null 2>&1
	check_probe enforced_without_daemon timeout "$SRV6" 143 "$CLI6" "$DROPT"
	daemon_start "$POL" || { bad restart "daemon did not come back"; return 1; }
	if wait_for "$WITHIN" not_banned "$CLI4"; then ok stale_lifted; else bad stale_lifted "$(ig ban list)"; fi
	check kept True "$(is_banned "$CLI6" && echo True || echo False)"
	check_probe v4_passes connected "$SRV4" 143 "$CLI4" "$OKT"
	check_probe v6_dropped timeout "$SRV6" 143 "$CLI6" "$DROPT"
	cs decisions delete --ip "$CLI6" >/dev/null 2>&1
}

# A reload that changes [crowdsec] (a scenario filter) takes effect with a
# full resync: a decision whose scenario does not match is lifted.
test_cs_reload()
{
	cs decisions add --ip "$CLI6" --duration 1h --reason "igtest other" >/dev/null 2>&1
	wait_for "$WITHIN" is_banned "$CLI6" || { bad before "no ban for $CLI6"; return 1; }
	write_policy "scenarios_containing = nomatch-$LAB_ID"
	igc reload >/dev/null 2>&1
	if wait_for "$WITHIN" not_banned "$CLI6"; then ok filtered_lifted; else bad filtered_lifted "$(ig ban list)"; fi
	# LAPI applies the filter too (it is passed on), so nothing may reach
	# the local one: what counts is that nothing is in force.
	check none_in_force 0 "$(cget 'c["decisions"]')"
	write_policy
	igc reload >/dev/null 2>&1
	if wait_for "$WITHIN" is_banned "$CLI6"; then
		ok back_after_reload
	else
		bad back_after_reload "$(ig ban list)"
	fi
	cs decisions delete --ip "$CLI6" >/dev/null 2>&1
}

# A fake LAPI: its first answer is not JSON, its second a valid one of 70 MB
# (over the 64 MiB cap), then it holds every request open for 40 s, sending nothing.
# Each request is logged to FILE. Bounded: it exits after 60 s.
_PY_FAKE_LAPI='
import socket, sys, threading, time
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(16)
s.settimeout(1)
n = [0]
def serve(c, i):
    try:
        c.recv(65536)
        open(log, "a").write("%d\n" % i)
        if i == 1:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!")
        elif i == 2:
            # A valid answer but for its size: only the cap refuses it.
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 70000000\r\n\r\n{\"new\":[")
            chunk = b" " * 1000000
            for _ in range(69):
                c.sendall(chunk)
            c.sendall(b" " * (1000000 - 10) + b"]}")
        else:
            time.sleep(40)
    except OSError:
        pass
    c.close()
t0 = time.time()
while time.time() - t0 < 60:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    n[0] += 1
    threading.Thread(target=serve, args=(c, n[0]), daemon=True).start()
'

# A new API key in the same file, a reload: the next pull uses it (a full
# one); the old bouncer can then be deleted from LAPI and pulls go on.
test_cs_key_rotation()
{
	local r0 ok0

	cs bouncers add "igtest-$LAB_ID-2" -o raw >"$CSD/bouncer.key.new" 2>>"$CSD/cscli.err"
	[ -s "$CSD/bouncer.key.new" ] || { bad new_key "cscli bouncers add failed"; return 1; }
	chmod 600 "$CSD/bouncer.key.new"
	mv "$CSD/bouncer.key.new" "$CSD/bouncer.key"
	r0=$(cget 'c["resyncs"]')
	igc reload >/dev/null 2>&1
	if wait_for "$WITHIN" cis "c['resyncs'] > $r0 and c['connected']"; then
		ok full_pull_with_new_key
	else
		bad full_pull_with_new_key "$(cget c)"
	fi
	cs bouncers delete "igtest-$LAB_ID" >/dev/null 2>&1 || bad old_deleted "cscli bouncers delete failed"
	ok0=$(cget 'c["pulls_ok"]')
	if wait_for "$WITHIN" cis "c['pulls_ok'] >= $ok0 + 2 and c['connected']"; then
		ok pulls_go_on
	else
		bad pulls_go_on "$(cget c)"
	fi
}

# fake_requests N: the fake LAPI has seen at least N requests.
fake_requests() { [ "$(wc -l <"$LAB_TMP/fake.log" 2>/dev/null || echo 0)" -ge "$1" ]; }

# A hostile LAPI: garbage, an answer over the cap, then one that never
# comes. Each is a failed pull (counted, with backoff); the loop never
# stalls (status answers at once while a pull hangs); bans stay.
test_cs_hostile_lapi()
{
	local port=$((CS_PORT + 1)) t0 ms fake

	cs decisions add --ip "$CLI6" --duration 1h >/dev/null 2>&1
	wait_for "$WITHIN" is_banned "$CLI6" || { bad before "no ban for $CLI6"; return 1; }
	lab_bg "$NS_SRV" "$PY" -c "$_PY_FAKE_LAPI" "$port" "$LAB_TMP/fake.log"
	fake=${LAB_PIDS[-1]}
	wait_listen "$NS_SRV" "$port" || { bad fake "fake LAPI did not listen"; return 1; }
	sed -i "s|^lapi = .*|lapi = http://127.0.0.1:$port|" "$POL"
	igc reload >/dev/null 2>&1
	# Two failures (garbage, too large), then the third request hangs.
	if wait_for 20 fake_requests 3; then
		ok three_requests
	else
		bad three_requests "the fake LAPI saw $(wc -l <"$LAB_TMP/fake.log") requests"
	fi
	# A changed [crowdsec] is a new client: its counters start from zero.
	check two_failures True "$(cget "c['pulls_failed'] >= 2 and c['pulls_ok'] == 0")"
	# The second answer was valid JSON: only the size cap refused it.
	check cap_refused "answer larger than the cap" "$(cget 'c["last_error"]')"
	check not_connected False "$(cget 'c["connected"]')"
	t0=$EPOCHREALTIME
	igc status >/dev/null
	ms=$(( (10#${EPOCHREALTIME//[.,]/} - 10#${t0//[.,]/}) / 1000 ))
	echo "# status took $ms ms while a pull hangs" >&2
	check_range status_while_hanging 0 1500 "$ms"
	check still_banned True "$(is_banned "$CLI6" && echo True || echo False)"
	check_probe still_dropped timeout "$SRV6" 143 "$CLI6" "$DROPT"
	sed -i "s|^lapi = .*|lapi = http://127.0.0.1:$CS_PORT|" "$POL"
	igc reload >/dev/null 2>&1
	if wait_for "$WITHIN" cis 'c["connected"]'; then ok back; else bad back "$(cget c)"; fi
	stop_pid "$fake"
	cs decisions delete --ip "$CLI6" >/dev/null 2>&1
}

# An https LAPI whose certificate a CA of its own signed: trusted through
# ca_file, refused without it (the system's CAs do not know that one). Last:
# the LAPI serves TLS only from here on.
test_cs_tls()
{
	local tls=$CSD/tls

	mkdir -p "$tls" || return 1
	printf 'subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' >"$tls/ext"
	if ! { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
		-subj "/CN=igtest LAPI CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" &&
	       openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=127.0.0.1" -keyout "$tls/lapi.key" -out "$tls/lapi.csr" &&
	       openssl x509 -req -in "$tls/lapi.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
		-CAcreateserial -days 1 -extfile "$tls/ext" -out "$tls/lapi.pem"; } \
		</dev/null >"$tls/openssl.log" 2>&1; then
		bad certs "openssl: $(tail -2 "$tls/openssl.log")"
		return 1
	fi
	lapi_stop
	# cscli talks to it without checking: its trust is not what is tested.
	sed -i "s|^    listen_uri: .*|&\n    tls:\n      cert_file: $tls/lapi.pem\n      key_file: $tls/lapi.key|
		s|insecure_skip_verify: false|insecure_skip_verify: true|" "$CSD/config.yaml"
	sed -i "s|http://|https://|" "$CSD/local_api_credentials.yaml"
	lapi_start || { bad lapi_tls "LAPI did not listen: $(tail -3 "$CSD/lapi.out")"; return 1; }
	sed -i "s|^lapi = .*|lapi = https://127.0.0.1:$CS_PORT\nca_file = $tls/ca.pem|" "$POL"
	check_cmd reload_https 0 "*" igc reload
	if wait_for "$WITHIN" cis 'c["connected"] and c["pulls_ok"] >= 1'; then
		ok https_pulls
	else
		bad https_pulls "$(cget c)"
	fi
	check_match status_https "*connected to https://127.0.0.1:$CS_PORT*" "$(igc status)"
	cs decisions add --ip "$CLI4B" --duration 1h >/dev/null 2>&1
	if wait_for "$WITHIN" is_banned "$CLI4B"; then ok https_ban; else bad https_ban "no ban for $CLI4B"; fi
	check_probe https_ban_dropped timeout "$SRV4" 143 "$CLI4B" "$DROPT"
	# Without ca_file, the system's CAs: not this one.
	sed -i "/^ca_file = /d" "$POL"
	check_cmd reload_system_cas 0 "*" igc reload
	if wait_for 20 cis 'c["pulls_failed"] >= 1'; then ok untrusted_refused; else
		bad untrusted_refused "$(cget c)"; fi
	check_match untrusted_error "*certificate*" "$(cget 'c["last_error"]')"
	check untrusted_not_connected False "$(cget 'c["connected"]')"
	check still_banned True "$(is_banned "$CLI4B" && echo True || echo False)"
	# A ca_file the daemon cannot read is refused at once.
	sed -i "s|^lapi = .*|&\nca_file = $tls/missing.pem|" "$POL"
	check_cmd missing_ca_refused 0 "*" igc reload
	check_match missing_ca_said "*couldn't read ca_file '$tls/missing.pem'*" "$(tail -5 "$DLOG")"
	cs decisions delete --ip "$CLI4B" >/dev/null 2>&1
}

# ---- runner ----------------------------------------------------------------

main()
{
	local why t tests t0=$SECONDS

	if ! why=$(preflight); then
		echo "SKIP integration_crowdsec: $why"
		exit "$SKIP_RC"
	fi
	LAB_ID=$$
	# shellcheck source=tests/lib.sh
	source "$HERE/lib.sh"
	[ -n "${IG_LAB_LOG:-}" ] && echo "$LAB_ID" >>"$IG_LAB_LOG"
	if [ $# -gt 0 ]; then tests=("$@"); else tests=("${ALL_TESTS[@]}"); fi
	trap 'if [ "$FAILED" != 0 ]; then
		[ -s "$DLOG" ] && tail -40 "$DLOG" | sed "s/^/# daemon: /"
		[ -n "$CSD" ] && tail -5 "$CSD"/crowdsec_api.log 2>/dev/null | sed "s/^/# lapi: /"
	fi; lab_down' EXIT
	trap 'exit 143' TERM INT
	if ! setup; then
		FAILED=1
		exit 1
	fi
	# test_cs_start brings the daemon up; a subset starts it first.
	[[ " ${tests[*]} " == *" test_cs_start "* ]] || daemon_start "$POL" || exit 1
	for t in "${tests[@]}"; do
		if ! declare -F "$t" >/dev/null || [[ $t != test_* ]]; then
			echo "FAIL ${t#test_}: no such test"
			FAILED=1
			continue
		fi
		T=${t#test_}
		"$t"
	done
	echo "# integration_crowdsec: $((SECONDS - t0)) s"
	exit "$FAILED"
}

main "$@"
