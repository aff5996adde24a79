#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# imapguard netns integration suite. Each test_* function in ALL_TESTS runs in
# its own child process with a fresh lab (tests/lib.sh) and a time limit, and
# prints one PASS/FAIL line per check; a test that exits 249 is SKIP (with a
# printed reason). Assertions use real sockets against the real binary.
#
#   bash tests/integration.sh                    # every test
#   bash tests/integration.sh test_deny ...      # just these
#
# Environment: IG_BIN (binary, default build/imapguard), TEST_TIMEOUT
# (seconds per test, default 60), IG_LAB_LOG (file to append each lab id to,
# so tests/run_all.sh can check that nothing of ours was left behind).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
SKIP_RC=249
TEST_TIMEOUT=${TEST_TIMEOUT:-60}

ALL_TESTS=(
	test_before_attach
	test_reject_native test_reject_generic test_reject_tc
	test_drop_native test_drop_generic test_drop_tc
	test_stats_json
	test_stats_prometheus
	test_policy_apply_live
	test_policy_bad
	test_redirect
	test_allow_reject
	test_attach_twice_replace
	test_detach
	test_flood_throttle
	test_ban_ttl
	test_ban_v6
	test_ban_cidr
	test_deny
	test_allow_beats_ban
	test_grant_limit
)

# ---- assertions (child side) -----------------------------------------------

source "$(dirname "${BASH_SOURCE[0]}")/assert.sh"

# ---- fixtures --------------------------------------------------------------

# Small maps: the default capacities preallocate about 100 MB per load.
LIMITS='[limits]
max_bans = 1024
max_sources = 1024
max_deny = 1024
max_allow = 1024'

# pol_basic NAME ACTION_143 [EXTRA_143_LINES]: 143 with ACTION, 993 pass.
pol_basic()
{
	policy_file "$1" <<-EOF
	[port 143]
	action = $2
	${3:-}
	[port 993]
	action = pass
	$LIMITS
	EOF
}

# attach MODE POLICY: attach to the server veth, assert the message. Native
# mode (and auto, which picks native on veth) first gets the client end its
# pass-only program, without which a native XDP_TX never arrives (peer_xdp).
attach()
{
	local mode=$1 want out

	if [ "$mode" = native ] || [ "$mode" = auto ]; then
		if ! peer_xdp; then
			bad "attach_$mode" "couldn't attach the pass-only program to the client veth"
			return 1
		fi
	fi
	want="attached to $IF_SRV in $mode mode"
	[ "$mode" = auto ] && want="attached to $IF_SRV in native mode (auto)"
	if out=$(ig attach --iface "$IF_SRV" --mode "$mode" --policy "$2" 2>&1) &&
	   [ "$out" = "$want" ]; then
		ok "attach_$mode"
		return 0
	fi
	bad "attach_$mode" "expected '$want', got: ${out//$'\n'/ | }"
	return 1
}

# status_get FILTER: a value from `status --json` (see json_get).
status_get()
{
	ig status --json | json_get "$1"
}

# no_ig_running: no imapguard process in the server namespace (and the suite
# never leaves one running: every ig call is in the foreground).
no_ig_running()
{
	local p exe bin

	bin=$(readlink -f "$IG_BIN")
	for p in $(ip netns pids "$NS_SRV"); do
		exe=$(readlink -f "/proc/$p/exe" 2>/dev/null)
		[ "$exe" = "$bin" ] && return 1
	done
	return 0
}

# ---- tests -----------------------------------------------------------------

test_before_attach()
{
	check_probe v4_143 connected "$SRV4" 143 "$CLI4"
	check_probe v4_993 connected "$SRV4" 993 "$CLI4"
	check_probe v6_143 connected "$SRV6" 143 "$CLI6"
	check_probe v6_993 connected "$SRV6" 993 "$CLI6"
}

# reject_in MODE: 143 refused at once (v4, v6), 993 served, counted, and
# detach gives 143 back.
reject_in()
{
	local mode=$1 pol r before one fam dst src

	pol=$(pol_basic reject reject)
	attach "$mode" "$pol" || return
	check status_mode "$mode" "$(status_get 'j["interfaces"][0]["mode"]')"
	before=$(stat_packets reject)
	for fam in v4 v6; do
		if [ $fam = v4 ]; then dst=$SRV4 src=$CLI4; else dst=$SRV6 src=$CLI6; fi
		one=$(stat_packets reject)
		r=$(probe "$dst" 143 "$src" 2)
		check "${fam}_143_refused" refused "$r"
		# A RST to the first SYN, not a retransmission a second later:
		# counted by the fast path, not by a clock a busy CPU can stretch.
		check "${fam}_143_refused_first_syn" 1 "$(($(stat_packets reject) - one))"
		check_probe "${fam}_993_connected" connected "$dst" 993 "$src"
	done
	check_ge stats_reject "$((before + 2))" "$(stat_packets reject)"
	check_ge stats_pass 2 "$(stat_packets pass)"
	check_cmd detach 0 "detached from $IF_SRV" ig detach --iface "$IF_SRV"
	check_probe v4_143_after_detach connected "$SRV4" 143 "$CLI4"
	check_probe v6_143_after_detach connected "$SRV6" 143 "$CLI6"
}

test_reject_native() { reject_in native; }
test_reject_generic() { reject_in generic; }
test_reject_tc() { reject_in tc; }

# drop_in MODE: 143 silently dropped (v4, v6), 993 served, counted.
drop_in()
{
	local mode=$1 pol fam dst src

	pol=$(pol_basic drop drop)
	attach "$mode" "$pol" || return
	for fam in v4 v6; do
		if [ $fam = v4 ]; then dst=$SRV4 src=$CLI4; else dst=$SRV6 src=$CLI6; fi
		check_probe "${fam}_143_timeout" timeout "$dst" 143 "$src" 1
		check_probe "${fam}_993_connected" connected "$dst" 993 "$src"
	done
	check_ge stats_drop 2 "$(stat_packets drop)"
	check stats_reject_zero "0" "$(stat_packets reject)"
}

test_drop_native() { drop_in native; }
test_drop_generic() { drop_in generic; }
test_drop_tc() { drop_in tc; }

# Every reason is in the JSON with integer packets and bytes, and N refused
# SYNs show up as at least N rejects with their bytes.
test_stats_json()
{
	local pol i json missing

	pol=$(pol_basic reject reject)
	attach tc "$pol" || return
	for ((i = 0; i < 5; i++)); do
		probe "$SRV4" 143 "$CLI4" >/dev/null
	done
	json=$(ig stats --json)
	missing=$(json_get '",".join(k for k in ["pass","allow","drop","reject","reject_drop",
		"redirect","deny","ban","syn_rate","subnet_rate","bad_fragment","events_lost"]
		if not (isinstance(j["reasons"].get(k, {}).get("packets"), int) and
			isinstance(j["reasons"][k].get("bytes"), int)))' <<<"$json")
	check reasons_present "" "$missing"
	check_ge reject_packets 5 "$(json_get 'j["reasons"]["reject"]["packets"]' <<<"$json")"
	# A SYN is at least 14 + 20 + 20 bytes.
	check_ge reject_bytes $((5 * 54)) "$(json_get 'j["reasons"]["reject"]["bytes"]' <<<"$json")"
	check_cmd text_table 0 "*reject*" ig stats
}

# drop <-> reject through `policy apply`, with the same program attached all along.
test_stats_prometheus()
{
	local pol out here rc none=$PIN-none
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

	# Nothing attached: still a valid exposition that says so, quietly, and
	# exit 0 (a scraper or textfile collector must not see an error).
	out=$(nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$none" stats --prometheus \
		-c "$none/control.sock" 2>&1 </dev/null)
	rc=$?
	check detached_exit 0 "$rc"
	check_cmd detached_format_valid 0 "" "$PY" "$here/check_prometheus.py" <<<"$out"
	check detached_up "imapguard_up 0" "$(grep '^imapguard_up' <<<"$out")"
	check detached_daemon_down "imapguard_daemon_up 0" "$(grep '^imapguard_daemon_up' <<<"$out")"
	check detached_no_pins_made "" "$(ls -d "$none" 2>/dev/null)"

	pol=$(pol_basic reject reject)
	attach tc "$pol" || return
	probe "$SRV4" 143 "$CLI4" >/dev/null
	out=$(ig stats --prometheus)
	check_cmd format_valid 0 "" "$PY" "$here/check_prometheus.py" <<<"$out"
	check up "imapguard_up 1" "$(grep '^imapguard_up' <<<"$out")"
	check_ge reject_counted 1 "$(sed -n 's/^imapguard_packets_total{reason="reject"} //p' <<<"$out")"
	check daemon_down "imapguard_daemon_up 0" "$(grep '^imapguard_daemon_up' <<<"$out")"
	# The ban hash also holds deny-list hosts: max_bans + max_deny.
	check capacity "imapguard_map_capacity{map=\"bans\"} 2048" \
		"$(grep '^imapguard_map_capacity{map="bans"}' <<<"$out")"
	# --watch prints rates per second; stop it after two samples.
	out=$(timeout 1 "$IG_BIN" --pin-dir "$PIN" stats --watch 0.3 2>&1)
	check watch_rates 1 "$(grep -c 'pkts/s' <<<"$out" | awk '{print ($1 >= 1)}')"
}

test_policy_apply_live()
{
	local rej drp prog

	rej=$(pol_basic reject reject)
	drp=$(pol_basic drop drop)
	attach auto "$rej" || return
	prog=$(status_get 'j["interfaces"][0]["prog_id"]')
	check_probe v4_143_refused refused "$SRV4" 143 "$CLI4"
	check_cmd apply_drop 0 "applied *" ig policy apply "$drp"
	check_probe v4_143_timeout timeout "$SRV4" 143 "$CLI4" 1
	check_probe v6_143_timeout timeout "$SRV6" 143 "$CLI6" 1
	check_probe v4_993_connected connected "$SRV4" 993 "$CLI4"
	check still_attached "$IF_SRV $prog" \
		"$(status_get 'j["interfaces"][0]["name"], j["interfaces"][0]["prog_id"]' | tr -d "(),'")"
	check_cmd apply_reject 0 "applied *" ig policy apply "$rej"
	check_probe v4_143_refused_again refused "$SRV4" 143 "$CLI4"
	check_probe v6_143_refused_again refused "$SRV6" 143 "$CLI6"
	check same_prog "$prog" "$(status_get 'j["interfaces"][0]["prog_id"]')"
	check_ge stats_drop 2 "$(stat_packets drop)"
}

# A bad file is reported as FILE:LINE: and changes nothing.
test_policy_bad()
{
	local good b1 b2 b3 b4 hash

	good=$(pol_basic reject reject)
	b1=$(policy_file bad1 <<-EOF
	[port 143]
	action = bogus
	EOF
	)
	b2=$(policy_file bad2 <<-EOF
	[port 993]
	action = pass
	syn_burst = 40
	EOF
	)
	b3=$(policy_file bad3 <<-EOF
	[port 143]
	action = reject
	allow = 198.18.0.0/33
	EOF
	)
	# Parses, but names an interface that does not exist: fails at apply.
	b4=$(policy_file bad4 <<-EOF
	[port 143]
	action = redirect
	redirect_to = nosuchif0
	$LIMITS
	EOF
	)
	check_cmd check_good 0 "*OK*" ig policy check "$good"
	check_cmd check_bad_action 1 "*$b1:2:*" ig policy check "$b1"
	check_cmd check_bad_burst 1 "*$b2:3:*" ig policy check "$b2"
	check_cmd check_bad_cidr 1 "*$b3:3:*" ig policy check "$b3"
	check_cmd check_missing 1 "*nosuch.conf*" ig policy check "$LAB_TMP/nosuch.conf"
	attach tc "$good" || return
	hash=$(status_get 'j["policy_hash"]')
	check_cmd apply_bad_action 1 "*$b1:2:*" ig policy apply "$b1"
	check_cmd apply_bad_burst 1 "*$b2:3:*" ig policy apply "$b2"
	check_cmd apply_bad_iface 1 "*nosuchif0*" ig policy apply "$b4"
	check hash_unchanged "$hash" "$(status_get 'j["policy_hash"]')"
	check ports_unchanged "143:reject 993:pass" \
		"$(status_get '" ".join("%d:%s" % (p["port"], p["action"]) for p in j["ports"])')"
	check_probe v4_143_still_refused refused "$SRV4" 143 "$CLI4"
	check_probe v4_993_still_connected connected "$SRV4" 993 "$CLI4"
}

# 143 goes out of the sink link instead of reaching the server's listener.
test_redirect()
{
	local pol mode n0 n1 r0

	lab_sink || { bad sink "couldn't set up the sink namespace"; return; }
	pol=$(pol_basic redirect redirect "redirect_to = $IF_RDR")
	for mode in native generic tc; do
		attach "$mode" "$pol" || continue
		n0=$(sink_count)
		r0=$(stat_packets redirect)
		# The sink cannot answer (no route back), so the server's
		# listener answering would be the only way to connect.
		check_probe "${mode}_v4_143_not_served" timeout "$SRV4" 143 "$CLI4" 0.5
		check_probe "${mode}_v6_143_not_served" timeout "$SRV6" 143 "$CLI6" 0.5
		sleep 0.2
		n1=$(sink_count)
		check_ge "${mode}_sink_got_syns" $((n0 + 2)) "$n1"
		check_ge "${mode}_stats_redirect" $((r0 + 2)) "$(stat_packets redirect)"
		check_probe "${mode}_v4_993_connected" connected "$SRV4" 993 "$CLI4"
		check "${mode}_redirect_error" 0 "$(stat_packets redirect_error)"
		check_cmd "${mode}_detach" 0 "detached*" ig detach --iface "$IF_SRV"
		# Detach removes pins; drop the client's pass-only program too,
		# so the next mode starts from the same state.
		nsenter --net="/run/netns/$NS_CLI" "$IG_BIN" --pin-dir "$PIN_PEER" \
			detach --all </dev/null >/dev/null 2>&1
	done
	check_probe v4_143_served_after_detach connected "$SRV4" 143 "$CLI4"
}

# A per-port allow entry (the second client address) bypasses reject.
test_allow_reject()
{
	local pol

	pol=$(pol_basic allow reject "allow = $CLI4B/32, $CLI6B/128")
	attach auto "$pol" || return
	check_probe v4_allowed_143 connected "$SRV4" 143 "$CLI4B"
	check_probe v4_other_143 refused "$SRV4" 143 "$CLI4"
	check_probe v6_allowed_143 connected "$SRV6" 143 "$CLI6B"
	check_probe v6_other_143 refused "$SRV6" 143 "$CLI6"
	check_ge stats_allow 2 "$(stat_packets allow)"
	# The same through the CLI list, for the other address.
	check_cmd cli_allow 0 "*" ig allow add "$CLI4/32"
	check_probe v4_cli_allowed_143 connected "$SRV4" 143 "$CLI4"
}

# prog_count: XDP and tc programs on the server veth, as "xdp=N tc=N".
prog_count()
{
	local net

	net=$(nsenter --net="/run/netns/$NS_SRV" bpftool -j net show dev "$IF_SRV")
	json_get '"xdp=%d tc=%d" % (len(j[0]["xdp"]), len(j[0]["tc"]))' <<<"$net"
}

test_attach_twice_replace()
{
	local pol lines

	pol=$(pol_basic reject reject)
	attach native "$pol" || return
	check_cmd again_refused 1 "*lready attached*$IF_SRV*" \
		ig attach --iface "$IF_SRV" --mode native --policy "$pol"
	check_cmd again_other_mode_refused 1 "*lready attached*" \
		ig attach --iface "$IF_SRV" --mode tc --policy "$pol"
	check one_prog_after_refusal "xdp=1 tc=0" "$(prog_count)"
	check_cmd replace_same 0 "attached to $IF_SRV in native mode*" \
		ig attach --iface "$IF_SRV" --replace --policy "$pol"
	check one_prog_after_replace "xdp=1 tc=0" "$(prog_count)"
	check_probe v4_143_after_replace refused "$SRV4" 143 "$CLI4"
	check_cmd replace_to_tc 0 "attached to $IF_SRV in tc mode*" \
		ig attach --iface "$IF_SRV" --mode tc --replace
	check one_prog_tc "xdp=0 tc=1" "$(prog_count)"
	check_probe v4_143_tc refused "$SRV4" 143 "$CLI4"
	check_cmd replace_to_generic 0 "attached to $IF_SRV in generic mode*" \
		ig attach --iface "$IF_SRV" --mode generic --replace
	check one_prog_generic "xdp=1 tc=0" "$(prog_count)"
	check_probe v4_143_generic refused "$SRV4" 143 "$CLI4"
	check_cmd replace_to_native 0 "attached to $IF_SRV in native mode*" \
		ig attach --iface "$IF_SRV" --mode native --replace
	check one_prog_native "xdp=1 tc=0" "$(prog_count)"
	lines=$(ip -n "$NS_SRV" link show "$IF_SRV" | grep -c 'prog/xdp')
	check ip_link_one_xdp 1 "$lines"
	check_probe v4_143_native refused "$SRV4" 143 "$CLI4"
	check interfaces_in_status 1 "$(status_get 'len(j["interfaces"])')"
}

test_detach()
{
	local pol mode extra=igd$LAB_ID

	pol=$(pol_basic reject reject)
	# A second interface, so the first detach is not the last one.
	if ! ip -n "$NS_SRV" link add "$extra" type veth peer name "ige$LAB_ID" ||
	   ! ip -n "$NS_SRV" link set "$extra" up; then
		bad extra_iface "couldn't create"
		return
	fi
	for mode in native tc; do
		attach "$mode" "$pol" || return
		check_cmd "${mode}_attach_second" 0 "attached*" \
			ig attach --iface "$extra" --mode generic
		check_probe "${mode}_143_refused" refused "$SRV4" 143 "$CLI4"
		check_cmd "${mode}_detach_first" 0 "detached from $IF_SRV" \
			ig detach --iface "$IF_SRV"
		check_probe "${mode}_v4_143_restored" connected "$SRV4" 143 "$CLI4"
		check_probe "${mode}_v6_143_restored" connected "$SRV6" 143 "$CLI6"
		check "${mode}_no_prog_left" "xdp=0 tc=0" "$(prog_count)"
		# Our clsact qdisc (tc mode) must go too.
		check "${mode}_no_clsact" "" \
			"$(ip netns exec "$NS_SRV" tc qdisc show dev "$IF_SRV" | grep clsact)"
		[ -d "$PIN" ]; check "${mode}_pins_kept_while_attached" 0 $?
		check "${mode}_status_one_left" "$extra" \
			"$(status_get '" ".join(i["name"] for i in j["interfaces"])')"
		check_cmd "${mode}_detach_again" 1 "*" ig detach --iface "$IF_SRV"
		check_cmd "${mode}_detach_last" 0 "detached from $extra" \
			ig detach --iface "$extra"
		[ -e "$PIN" ]; check "${mode}_pin_dir_gone" 1 $?
		check "${mode}_extra_clean" "" \
			"$(ip -n "$NS_SRV" link show "$extra" | grep -o 'prog/xdp.*')"
		check_cmd "${mode}_status_fails_after" 1 "*not attached*" ig status
		nsenter --net="/run/netns/$NS_CLI" "$IG_BIN" --pin-dir "$PIN_PEER" \
			detach --all </dev/null >/dev/null 2>&1
	done
}

# syn_rate 20/s burst 40 on 993: a flood from one address gets about
# burst + rate x time through, while another address is untouched.
test_flood_throttle()
{
	local pol out elapsed conn tmo exp lo hi n=0 failed=0 fpid i

	pol=$(policy_file throttle <<-EOF
	[port 993]
	action = pass
	syn_rate = 20/s
	syn_burst = 40
	source_prefix = 32, 64
	subnet_rate = 200/s
	subnet_burst = 400
	subnet_prefix = 24, 48
	$LIMITS
	EOF
	)
	attach auto "$pol" || return
	flood "$SRV4" 993 "$CLI4" 2000 2 >"$LAB_TMP/flood" &
	fpid=$!
	LAB_PIDS+=("$fpid")
	# The witness: the second client address, probing all along. Bounded
	# by the flood's own bound (2 s + 0.5 s).
	while kill -0 "$fpid" 2>/dev/null; do
		[ "$(probe "$SRV4" 993 "$CLI4B" 1)" = connected ] || failed=$((failed + 1))
		n=$((n + 1))
		sleep 0.05
	done
	wait "$fpid"
	out=$(cat "$LAB_TMP/flood")
	echo "# flood: $out; witness: $n probes" >&2
	elapsed=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$out")
	conn=$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$out")
	tmo=$(sed -n 's/.* timeout=\([0-9]*\).*/\1/p' <<<"$out")
	check flood_attempts 2000 "$(sed -n 's/^attempts=\([0-9]*\).*/\1/p' <<<"$out")"
	# burst + rate x elapsed, within 25 % either way.
	exp=$(awk -v e="${elapsed:-0}" 'BEGIN { printf "%d", 40 + 20 * e }')
	lo=$((exp * 3 / 4)) hi=$((exp * 5 / 4 + 5))
	check_range flood_connected "$lo" "$hi" "$conn"
	check_ge stats_syn_rate $(( ${tmo:-0} * 9 / 10 )) "$(stat_packets syn_rate)"
	check witness_during_flood "0 of $n failed" "$failed of $n failed"
	failed=0
	for ((i = 0; i < 5; i++)); do
		[ "$(probe "$SRV4" 993 "$CLI4B" 1)" = connected ] || failed=$((failed + 1))
	done
	check witness_after_flood "0 of 5 failed" "$failed of 5 failed"
	check v6_untouched connected "$(probe "$SRV6" 993 "$CLI6" 1)"
}

# A ban with a TTL expires in the kernel, with no process to lift it.
test_ban_ttl()
{
	local pol t0 t1 json left

	pol=$(pol_basic ban reject)
	attach tc "$pol" || return
	t0=$EPOCHREALTIME
	check_cmd ban_add 0 "ban add $CLI4*" ig ban add "$CLI4" --ttl 2s --reason test
	check_probe v4_banned_993 timeout "$SRV4" 993 "$CLI4" 0.5
	check_probe v4_banned_143 timeout "$SRV4" 143 "$CLI4" 0.5
	check_probe v4_other_993 connected "$SRV4" 993 "$CLI4B"
	check_probe v6_same_host_993 connected "$SRV6" 993 "$CLI6"
	json=$(ig ban list --json)
	check ban_listed "$CLI4 test" "$(json_get '" ".join(b["addr"] + " " + b["reason"] for b in j)' <<<"$json")"
	check_ge ban_packets 2 "$(json_get 'j[0]["packets"]' <<<"$json")"
	check_ge stats_ban 2 "$(stat_packets ban)"
	if no_ig_running; then ok no_daemon; else bad no_daemon "an imapguard process runs in $NS_SRV"; fi
	# Wait until 3 s after the ban, bounded.
	t1=$EPOCHREALTIME
	left=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { d = 3 - (b - a); printf "%.2f", (d > 0 ? d : 0) }')
	sleep "$left"
	check_probe v4_unbanned_993 connected "$SRV4" 993 "$CLI4" 1
	check_probe v4_unbanned_143 refused "$SRV4" 143 "$CLI4" 1
	check ban_list_expired "expired" \
		"$(ig ban list --json | json_get '"expired" if all(b["expired"] for b in j) else "live"')"
}

test_ban_v6()
{
	local pol

	pol=$(pol_basic ban6 reject)
	attach tc "$pol" || return
	check_cmd ban_addr 0 "*" ig ban add "$CLI6" --ttl 1m
	check_probe addr_banned timeout "$SRV6" 993 "$CLI6" 0.5
	check_probe same_64_not_banned connected "$SRV6" 993 "$CLI6B"
	check_probe v4_not_banned connected "$SRV4" 993 "$CLI4"
	check_cmd ban_del 0 "*" ig ban del "$CLI6"
	check_probe addr_unbanned connected "$SRV6" 993 "$CLI6"
	check_cmd ban_64 0 "*" ig ban add 2001:db8::/64 --ttl 1m
	check_probe in_64_banned timeout "$SRV6" 993 "$CLI6B" 0.5
	check_probe in_64_banned_too timeout "$SRV6" 993 "$CLI6" 0.5
	check_probe v4_still_fine connected "$SRV4" 993 "$CLI4"
	check_ge ban_64_packets 2 \
		"$(ig ban list --json | json_get 'sum(b["packets"] for b in j if b["addr"] == "2001:db8::/64")')"
	check_cmd ban_64_del 0 "*" ig ban del 2001:db8::/64
	check_probe v6_back connected "$SRV6" 993 "$CLI6B"
	check_cmd bad_cidr 1 "*" ig ban add 2001:db8::1/64
}

# A v4 prefix ban covers every address in it, and lifts cleanly.
test_ban_cidr()
{
	local pol

	pol=$(pol_basic bancidr reject)
	attach tc "$pol" || return
	check_cmd ban_31 0 "ban add 198.18.0.2/31*" ig ban add 198.18.0.2/31 --ttl 1m
	check_probe first_banned timeout "$SRV4" 993 "$CLI4" 0.5
	check_probe second_banned timeout "$SRV4" 993 "$CLI4B" 0.5
	check_probe v6_not_banned connected "$SRV6" 993 "$CLI6"
	check_ge ban_packets 2 \
		"$(ig ban list --json | json_get 'sum(b["packets"] for b in j if b["addr"] == "198.18.0.2/31")')"
	check_cmd ban_del 0 "*" ig ban del 198.18.0.2/31
	check_probe first_back connected "$SRV4" 993 "$CLI4"
	check_probe second_back connected "$SRV4" 993 "$CLI4B"
}

# [limits] max_grants sizes the grant map: past it, grant add is refused,
# counted as map_full, and the grants given stay.
test_grant_limit()
{
	local pol

	pol=$(policy_file grants <<-EOF
	[port 993]
	action = pass
	access = grant
	[limits]
	max_bans = 1024
	max_sources = 1024
	max_deny = 1024
	max_grants = 2
	EOF
	)
	attach tc "$pol" || return
	check_cmd first 0 "grant add $CLI4 bob" ig grant add "$CLI4" --user bob --ttl 1m
	check_cmd second 0 "grant add 2001:db8::/64 bob" ig grant add "$CLI6" --user bob --ttl 1m \
		--policy "$pol"
	check_cmd third_refused 1 "*the grant map is full*" ig grant add "$CLI4B" --user bob --ttl 1m
	check map_full_counted 1 "$(stat_packets map_full)"
	check_probe granted_connects connected "$SRV4" 993 "$CLI4"
	check_probe refused_times_out timeout "$SRV4" 993 "$CLI4B" 0.5
}

test_deny()
{
	local pol

	pol=$(pol_basic deny reject)
	attach tc "$pol" || return
	check_cmd deny_v4 0 "*" ig deny add 198.18.0.2/31
	check_probe v4_a_denied timeout "$SRV4" 993 "$CLI4" 0.5
	check_probe v4_b_denied timeout "$SRV4" 993 "$CLI4B" 0.5
	check_probe v6_not_denied connected "$SRV6" 993 "$CLI6"
	check_cmd deny_v6 0 "*" ig deny add 2001:db8::3/128
	check_probe v6_denied timeout "$SRV6" 993 "$CLI6B" 0.5
	check_probe v6_neighbour_ok connected "$SRV6" 993 "$CLI6"
	check_ge stats_deny 3 "$(stat_packets deny)"
	check deny_list "198.18.0.2/31 2001:db8::3" \
		"$(ig deny list --json | json_get '" ".join(sorted(e["cidr"] for e in j))')"
	check_cmd deny_del 0 "*" ig deny del 198.18.0.2/31
	check_probe v4_back connected "$SRV4" 993 "$CLI4B"
	# From the policy file too.
	pol=$(policy_file deny2 <<-EOF
	[port 993]
	action = pass
	[lists]
	deny = $CLI4/32
	$LIMITS
	EOF
	)
	check_cmd apply_policy_deny 0 "applied*" ig policy apply "$pol"
	check_probe v4_policy_denied timeout "$SRV4" 993 "$CLI4" 0.5
	check_probe v4_policy_other_ok connected "$SRV4" 993 "$CLI4B"
}

test_allow_beats_ban()
{
	local pol

	pol=$(pol_basic allowban reject)
	attach tc "$pol" || return
	check_cmd allow 0 "*" ig allow add "$CLI4B"
	check_cmd ban_allowed 0 "*" ig ban add "$CLI4B" --ttl 1m
	check_cmd ban_other 0 "*" ig ban add "$CLI4" --ttl 1m
	check_probe allowed_and_banned connected "$SRV4" 993 "$CLI4B"
	check_probe banned_only timeout "$SRV4" 993 "$CLI4" 0.5
	check_cmd allow6 0 "*" ig allow add "$CLI6B"
	check_cmd ban_64 0 "*" ig ban add 2001:db8::/64 --ttl 1m
	check_probe v6_allowed_in_banned_64 connected "$SRV6" 993 "$CLI6B"
	check_probe v6_banned_64 timeout "$SRV6" 993 "$CLI6" 0.5
	check_cmd deny_allowed 0 "*" ig deny add "$CLI4B"
	check_probe allowed_and_denied connected "$SRV4" 993 "$CLI4B"
}

# ---- runner ----------------------------------------------------------------

# Child: one test in its own lab. The lab id is this process's PID, unique
# among live runs, and logged first so a leftover can be traced to its run.
if [ "${1:-}" = --child ]; then
	LAB_ID=$$
	# shellcheck source=tests/lib.sh
	source "$HERE/lib.sh"
	[ -n "${IG_LAB_LOG:-}" ] && echo "$LAB_ID" >>"$IG_LAB_LOG"
	T=${2#test_}
	trap lab_down EXIT
	trap 'exit 143' TERM INT
	if ! lab_up; then
		echo "FAIL $T.lab: couldn't set up the lab (see log)"
		exit 1
	fi
	"$2"
	exit $FAILED
fi

# preflight: prints a reason and returns 1 if the suite cannot run here.
preflight()
{
	local bin=${IG_BIN:-$HERE/../build/imapguard} c

	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, BPF)"; return 1; }
	[ -x "$bin" ] || { echo "no binary at $bin (run make)"; return 1; }
	for c in ip nsenter bpftool tc timeout awk; do
		command -v $c >/dev/null || { echo "'$c' not installed"; return 1; }
	done
	[ -x /usr/bin/python3 ] || command -v python3 >/dev/null || { echo "no python3"; return 1; }
	[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] ||
		{ echo "bpffs is not mounted on /sys/fs/bpf"; return 1; }
	return 0
}

main()
{
	local why t tests npass=0 nfail=0 nskip=0

	if ! why=$(preflight); then
		echo "SKIP integration: $why"
		exit $SKIP_RC
	fi
	if [ $# -gt 0 ]; then tests=("$@"); else tests=("${ALL_TESTS[@]}"); fi
	LOGDIR=$(mktemp -d /tmp/igtest-logs.XXXXXX)
	trap 'rm -rf "$LOGDIR"' EXIT
	for t in "${tests[@]}"; do
		if ! declare -F "$t" >/dev/null; then
			echo "FAIL ${t#test_}: no such test"
			nfail=$((nfail + 1))
			continue
		fi
		run_one "$t"
		case $? in
		0) npass=$((npass + 1)) ;;
		1) nfail=$((nfail + 1)) ;;
		*) nskip=$((nskip + 1)) ;;
		esac
	done
	echo "# integration: $npass tests passed, $nfail failed, $nskip skipped"
	[ "$nfail" -eq 0 ]
}

main "$@"
