#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# imapguard benchmarks: figures, never pass/fail. Every figure is a ratio
# against a baseline measured in the same run (the machine is shared and
# noisy), medians over repeated runs, raw numbers printed too.
#
#   1 pkt   per-packet cost with BPF_PROG_RUN (pktcost), against XDP_DROP
#   2 rate  packets/s dropped on a veth pair, one CPU, against nftables netdev
#   3 auth  auth-log lines/s, against fail2ban-regex with fail2ban's dovecot filter
#   4 ttb   time from the ban-making log line to the attacker's SYN dropped
#   5 mem   daemon RSS and BPF map memory with full maps
#   6 policy the auth policy server: verdicts per daemon CPU second, p50/p99
#           latency with 32 keep-alive clients at 5000 requests/s
#   7 load  attach phase by phase, the CLI's attach, the daemon's cold start
#   (rate also runs a spoofed flood, and a legitimate client connecting
#   during it: section 8 of the report)
#   8 fleet three daemons and a redis-server: a ban decided on node A -> the
#           SYN dropped at node B, and shared counting throughput (section 9
#           of the report)
#
# Usage: tests/bench/bench.sh [--json] [--sections "pkt rate auth ttb knock mem policy load fleet"] [--runs N]
# Writes tests/bench/results/<UTC time>.md (and .tsv, the raw lines) and
# tests/bench/results/latest.md. Run as root, after `make all` and the
# bench binaries (make bench does both). Everything it creates (namespaces,
# pins, processes, temp files) is named after its PID and removed on exit.

set -uo pipefail

IG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$IG_ROOT" || exit 1
# shellcheck source=../lib.sh
source tests/lib.sh	# $PY, ethtool_set, lab_netns and the LAB_* arrays

BID=$$
B=$IG_ROOT/build
OBJ=$IG_ROOT/.output/bench/bench.bpf.o
RESULTS=$IG_ROOT/tests/bench/results
SECTIONS="pkt rate auth ttb knock mem policy load fleet"
LOAD_RUNS=5
RUNS=5		# rounds for pkt
RATE_RUNS=3	# runs of RATE_SECONDS per firewall mode
RATE_SECONDS=2
AUTH_LINES=1000000
AUTH_RUNS=3
F2B_RUNS=3
TTB_BANS=200
KNOCKS=200
FLEET_BANS=200		# bans timed from node A to node B
FLEET_FAILURES=6000	# failures per node for the counting rate
JSON=0
CPU=$(($(nproc) - 1))	# generator, receiver and pktcost share this one CPU

while [ $# -gt 0 ]; do
	case $1 in
	--json) JSON=1 ;;
	--sections) SECTIONS=$2; shift ;;
	--runs) RUNS=$2; shift ;;
	*) echo "usage: $0 [--json] [--sections \"pkt rate auth ttb knock mem policy load fleet\"] [--runs N]" >&2; exit 1 ;;
	esac
	shift
done

BT=
BPIN=/sys/fs/bpf/igbench-$BID	# rate modes
DPIN=/sys/fs/bpf/igbench-$BID-d	# the daemon
LPIN=/sys/fs/bpf/igbench-$BID-l	# load time
FPIN=/sys/fs/bpf/igbench-$BID-f	# the fleet's daemons: $FPIN0 .. $FPIN2
DPID=
STATS_WAS=

say() { echo "bench: $*" >&2; }

cleanup()
{
	local p ns

	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	for p in "${LAB_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ns in "${LAB_NETNS[@]}"; do
		local pin
		for pin in "$BPIN" "$DPIN" "$LPIN" "${FPIN}0" "${FPIN}1" "${FPIN}2"; do
			[ -d "$pin" ] && nsenter --net="/run/netns/$ns" "$IG_BIN" --pin-dir "$pin" \
				detach --all </dev/null >/dev/null 2>&1
		done
		ip netns del "$ns" 2>/dev/null
	done
	LAB_NETNS=()
	rm -rf "$BPIN" "$DPIN" "$LPIN" "${FPIN}0" "${FPIN}1" "${FPIN}2"
	[ -n "$STATS_WAS" ] && echo "$STATS_WAS" >/proc/sys/kernel/bpf_stats_enabled
	[ -n "$BT" ] && rm -rf "$BT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- preflight -------------------------------------------------------------

if [ "$(id -u)" -ne 0 ]; then
	say "needs root (BPF, namespaces, nftables)"
	exit 1
fi
for t in imapguard bench_pktcost bench_livegen bench_authbench bench_timetoban bench_mapfill \
	bench_policyload bench_loadtime bench_stcost; do
	if [ ! -x "$B/$t" ]; then
		say "missing $B/$t: run 'make bench'"
		exit 1
	fi
done
BT=$(mktemp -d "/tmp/igbench-$BID.XXXXXX") || exit 1
RAW=$BT/raw.tsv
LOG=$BT/log
: >"$RAW"
mkdir -p "$IG_ROOT/.output/bench" "$RESULTS"
say "compiling the baseline BPF programs"
ARCH=$(uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/;s/ppc64le/powerpc/;s/mips.*/mips/')
clang -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_"$ARCH" -Wall -Werror -I.output -Ibpf \
	-c tests/bench/bench.bpf.c -o "$OBJ" || exit 1

# Statistics make every BPF program pay two clock reads per run.
STATS_WAS=$(cat /proc/sys/kernel/bpf_stats_enabled)
if [ "$STATS_WAS" != 0 ]; then
	say "turning kernel.bpf_stats_enabled off for the run (restored at exit)"
	echo 0 >/proc/sys/kernel/bpf_stats_enabled
else
	STATS_WAS=
fi

# fail2ban (section auth) and ipset (section rate) are the alternatives we
# compare against; installing them must not start a service.
ensure_pkgs()
{
	local missing=() own=0 guard=/usr/sbin/policy-rc.d p

	command -v fail2ban-regex >/dev/null || missing+=(fail2ban)
	command -v ipset >/dev/null || missing+=(ipset)
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing ${missing[*]} (services kept from starting by $guard)"
	if [ ! -e "$guard" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod +x "$guard" && own=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >>"$LOG" 2>&1 ||
		{ apt-get update -qq >>"$LOG" 2>&1 &&
		  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >>"$LOG" 2>&1; }
	p=$?
	[ "$own" = 1 ] && rm -f "$guard"
	return $p
}
ensure_pkgs || say "could not install fail2ban/ipset: those comparisons will be missing"

machine()
{
	local model load
	model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	printf -- '- CPU: %s, %s CPUs (benchmarks pinned to CPU %s)\n' "$model" "$(nproc)" "$CPU"
	printf -- '- memory: %s GiB; kernel %s; clang %s; libbpf %s\n' \
		"$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" "$(uname -r)" \
		"$(clang --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)" \
		"$(pkg-config --modversion libbpf 2>/dev/null || echo ?)"
	printf -- '- load average at start: %s; kernel.bpf_stats_enabled: 0 during the run\n' "$load"
	printf -- '- alternatives: %s; %s; %s; %s\n' "$(nft --version 2>/dev/null | cut -d' ' -f1-2)" \
		"$(iptables-legacy --version 2>/dev/null)" "$(ipset --version 2>/dev/null | cut -d, -f1)" \
		"fail2ban $(fail2ban-regex --version 2>/dev/null | head -1 | awk '{print $NF}')"
}
machine >"$BT/machine.md"

# ---- 1: per-packet cost ----------------------------------------------------

sec_pkt()
{
	say "1/8 per-packet cost (BPF_PROG_RUN, $RUNS rounds, maps filled to 1M)"
	"$B/bench_pktcost" --obj "$OBJ" --cpu "$CPU" --runs "$RUNS" --diag >>"$RAW" 2>>"$LOG" ||
		say "pktcost failed (see below)"
	# action starttls (issue #21): rows st_*, each against its lower bound
	"$B/bench_stcost" --obj "$OBJ" --cpu "$CPU" --runs "$RUNS" >>"$RAW" 2>>"$LOG" ||
		say "stcost failed (see below)"
}

# ---- 2: drop rate on a veth pair ---------------------------------------------

NSG=igb-g-$BID NSR=igb-r-$BID IFG=igbg$BID IFR=igbr$BID
FLOOD_SRC=198.18.100.4	# not banned, not denied, among denied neighbours (fill.h)
SPOOF_SRC=198.19.0.1	# the spoofed flood: random low SPOOF_BITS bits
# 4096 sources in 16 /24s: a flood the subnet budgets can attribute, so both
# firewalls drop nearly all of it (with a /16, 256 subnets' budgets pass ~10%
# to the kernel, whose SYN handling then dominates both figures)
SPOOF_BITS=12

rate_policy()
{
	cat >"$BT/rate.conf" <<-EOF
	[port 143]
	action = drop
	[port 993]
	action = pass
	syn_rate = 20/s
	syn_burst = 40
	subnet_rate = 200/s
	subnet_burst = 400
	EOF
}

# Fresh namespaces for every mode: an iptables-legacy table, once
# registered, stays on every later packet's path.
rate_lab_up()
{
	local gmac

	lab_netns "$NSG" && lab_netns "$NSR" || return 1
	ip link add "$IFG" netns "$NSG" type veth peer name "$IFR" netns "$NSR" || return 1
	ip -n "$NSR" addr add 198.18.0.1/24 dev "$IFR"
	ip -n "$NSG" addr add 198.18.0.2/24 dev "$IFG"
	ip -n "$NSG" link set "$IFG" up && ip -n "$NSR" link set "$IFR" up || return 1
	RMAC=$(ip -n "$NSR" -br link show "$IFR" | awk '{print $3}')
	gmac=$(ip -n "$NSG" -br link show "$IFG" | awk '{print $3}')
	# The floods' sources (198.18.100.4, 198.19.0.0/20) are off-link, as a
	# flood's are: answers go to the generator's side as to a router, and
	# the two lab addresses never wait on ARP. On-link, thousands of
	# unresolved neighbours overflowed the table, and the legitimate client
	# got no answer while the flood lasted.
	ip -n "$NSR" route add 198.18.0.0/15 via 198.18.0.2 &&
		ip -n "$NSR" neigh replace 198.18.0.2 lladdr "$gmac" dev "$IFR" nud permanent &&
		ip -n "$NSG" neigh replace 198.18.0.1 lladdr "$RMAC" dev "$IFG" nud permanent
}

# Delete namespace NAME and drop it from lib.sh's cleanup list.
netns_del()
{
	local keep=() ns

	ip netns del "$1" 2>/dev/null
	for ns in "${LAB_NETNS[@]}"; do
		[ "$ns" != "$1" ] && keep+=("$ns")
	done
	LAB_NETNS=("${keep[@]}")
}

rate_lab_down()
{
	[ -d "$BPIN" ] && nsenter --net="/run/netns/$NSR" "$IG_BIN" --pin-dir "$BPIN" detach --all \
		</dev/null >/dev/null 2>&1
	rm -rf "$BPIN"
	netns_del "$NSG"
	netns_del "$NSR"
}

# The lists of the 993 modes, the same entries for every firewall.
export_lists()
{
	[ -s "$BT/lists/bans4" ] && return 0
	mkdir -p "$BT/lists"
	"$B/bench_mapfill" --export "$BT/lists" --bans 131070 --deny4 90000 --allow
}

ig_attach()	# MODE(native|tc) FULL(0|1)
{
	nsenter --net="/run/netns/$NSR" "$IG_BIN" --pin-dir "$BPIN" attach --iface "$IFR" \
		--mode "$1" --policy "$BT/rate.conf" </dev/null >>"$LOG" 2>&1 || return 1
	[ "$2" = 1 ] || return 0
	"$B/bench_mapfill" --pin-dir "$BPIN" --bans 131070 --deny4 90000 --allow >>"$LOG" 2>&1
}

nft_lists()
{
	printf ' set allow4 { type ipv4_addr; flags interval; elements = { %s } }\n' \
		"$(paste -sd, "$BT/lists/allow4")"
	printf ' set bans4 { type ipv4_addr; size 1048576; elements = { %s } }\n' \
		"$(sed 's|/32$||' "$BT/lists/bans4" | paste -sd,)"
	printf ' set deny4 { type ipv4_addr; flags interval; auto-merge; size 1048576; elements = { %s } }\n' \
		"$(paste -sd, "$BT/lists/deny4")"
	echo ' set syn4 { type ipv4_addr; size 1048576; flags dynamic,timeout; timeout 1m; }'
	echo ' set net4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 1m; }'
}

# What imapguard's 993 path does, written the nftables way.
nft_993_rules()
{
	echo '  ip saddr @allow4 accept'
	echo '  ip saddr @bans4 counter drop'
	echo '  ip saddr @deny4 counter drop'
	echo '  tcp dport 993 tcp flags & (syn | ack | rst) == syn update @syn4 { ip saddr limit rate over 20/second burst 40 packets } counter drop'
	echo '  tcp dport 993 tcp flags & (syn | ack | rst) == syn update @net4 { ip saddr and 255.255.255.0 limit rate over 200/second burst 400 packets } counter drop'
}

# The spoofed flood's rules: the SYN meters alone (no lists, as imapguard there).
nft_meters()
{
	echo ' set syn4 { type ipv4_addr; size 1048576; flags dynamic,timeout; timeout 1m; }'
	echo ' set net4 { type ipv4_addr; size 65536; flags dynamic,timeout; timeout 1m; }'
}

nft_load()	# FAMILY(netdev|inet) PORT(143|993|spoof)
{
	{
		if [ "$1" = netdev ]; then
			echo 'table netdev igbench {'
			[ "$2" = 993 ] && nft_lists
			[ "$2" = spoof ] && nft_meters
			echo " chain in { type filter hook ingress device $IFR priority -500;"
		else
			echo 'table inet igbench {'
			[ "$2" = 993 ] && nft_lists
			echo ' chain in { type filter hook input priority 0;'
		fi
		if [ "$2" = 993 ]; then nft_993_rules
		elif [ "$2" = spoof ]; then nft_993_rules | grep update
		else echo '  tcp dport 143 counter drop'; fi
		echo ' }'
		echo '}'
	} >"$BT/nft.conf"
	ip netns exec "$NSR" nft -f "$BT/nft.conf" >>"$LOG" 2>&1
}

ipt_load()	# PORT
{
	local I=(ip netns exec "$NSR" iptables-legacy -t raw -A PREROUTING)

	if [ "$1" = 143 ]; then
		"${I[@]}" -p tcp --dport 143 -j DROP
		return
	fi
	{
		echo "create igb_allow hash:net"
		echo "create igb_bans hash:ip maxelem 1048576"
		echo "create igb_deny hash:net maxelem 1048576"
		sed 's|^|add igb_allow |' "$BT/lists/allow4"
		sed 's|^|add igb_bans |; s|/32$||' "$BT/lists/bans4"
		sed 's|^|add igb_deny |' "$BT/lists/deny4"
	} | ip netns exec "$NSR" ipset restore || return 1
	"${I[@]}" -m set --match-set igb_allow src -j ACCEPT &&
	"${I[@]}" -m set --match-set igb_bans src -j DROP &&
	"${I[@]}" -m set --match-set igb_deny src -j DROP &&
	"${I[@]}" -p tcp --dport 993 --tcp-flags SYN,ACK,RST SYN -m hashlimit --hashlimit-above 20/sec \
		--hashlimit-burst 40 --hashlimit-mode srcip --hashlimit-name syn993 -j DROP &&
	"${I[@]}" -p tcp --dport 993 --tcp-flags SYN,ACK,RST SYN -m hashlimit --hashlimit-above 200/sec \
		--hashlimit-burst 400 --hashlimit-mode srcip --hashlimit-srcmask 24 --hashlimit-name net993 -j DROP
}

# Set up MODE on the receiving veth; prints the flood's port.
rate_setup()
{
	local mode=$1 port=${1##*_}

	[ "$port" = 993 ] || [ "$port" = spoof ] || port=143
	case $mode in
	ig_xdp_spoof) ig_attach native 0 ;;
	nft_netdev_spoof) ethtool_set "$NSR" "$IFR" gro on && nft_load netdev spoof ;;
	floor) ip -n "$NSR" link set dev "$IFR" xdpdrv obj "$OBJ" program floor_drop >>"$LOG" 2>&1 ;;
	lb_143) ip -n "$NSR" link set dev "$IFR" xdpdrv obj "$OBJ" program lb_143 >>"$LOG" 2>&1 ;;
	ig_xdp_143) ig_attach native 0 ;;
	ig_xdp_143_full) export_lists && ig_attach native 1 ;;
	ig_xdp_993) export_lists && ig_attach native 1 ;;
	ig_tc_*)
		# tc and nftables see skbs: GRO gives the veth the NAPI the frames need
		ethtool_set "$NSR" "$IFR" gro on && export_lists && ig_attach tc "$([ "$port" = 993 ] && echo 1 || echo 0)" ;;
	nft_netdev_*) ethtool_set "$NSR" "$IFR" gro on && export_lists && nft_load netdev "$port" ;;
	nft_inet_*) ethtool_set "$NSR" "$IFR" gro on && export_lists && nft_load inet "$port" ;;
	ipt_raw_*) ethtool_set "$NSR" "$IFR" gro on && export_lists && ipt_load "$port" >>"$LOG" 2>&1 ;;
	*) return 1 ;;
	esac || return 1
	# the flood's destination port
	[ "$port" = spoof ] && port=993
	echo "$port"
}

# Packets the firewall under test counted as dropped (a cross-check).
rate_dropped()
{
	case $1 in
	floor | lb_*) echo "-" ;;
	ig_*) nsenter --net="/run/netns/$NSR" "$IG_BIN" --pin-dir "$BPIN" stats --json </dev/null 2>/dev/null |
		"$PY" -c 'import json, sys
j = json.load(sys.stdin)["reasons"]
print(sum(j[k]["packets"] for k in ("drop", "reject", "reject_drop", "deny", "ban",
                                     "syn_rate", "subnet_rate", "bad_fragment") if k in j))' 2>/dev/null || echo "?" ;;
	nft_*) ip netns exec "$NSR" nft list ruleset | grep -o 'counter packets [0-9]*' |
		awk '{s += $3} END {print s + 0}' ;;
	ipt_*) ip netns exec "$NSR" iptables-legacy -t raw -L PREROUTING -v -x -n |
		awk '$3 == "DROP" {s += $1} END {print s + 0}' ;;
	esac
}

rx_packets()
{
	ip -n "$NSR" -s -j link show "$IFR" |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'
}

rate_mode()	# MODE LABEL
{
	local mode=$1 label=$2 port i out d r rx0 drops gen vals=() walls=() via=

	# RATE_ONLY="MODE ...": just those (for a quick look at one comparison)
	[ -n "${RATE_ONLY:-}" ] && [[ " $RATE_ONLY " != *" $mode "* ]] && return 0

	rate_lab_up || { say "rate: lab setup failed"; rate_lab_down; return 1; }
	port=$(rate_setup "$mode") || { say "rate: $mode setup failed (see log)"; rate_lab_down; return 1; }
	gen=("$B/bench_livegen" --obj "$OBJ" --iface "$IFG" --dmac "$RMAC" --src "$FLOOD_SRC"
	     --dst 198.18.0.1 --dport "$port" --cpu "$CPU" --ksoftirqd "$(pgrep -x "ksoftirqd/$CPU" || echo 0)")
	# spoofed: every frame from a random source in 198.19.0.0/20, outside the
	# legitimate client's /24 and /16
	[[ $mode = *_spoof ]] && gen=("${gen[@]}" --src "$SPOOF_SRC" --spoof "$SPOOF_BITS")
	rx0=$(rx_packets)
	nsenter --net="/run/netns/$NSG" "${gen[@]}" --seconds 0.3 >/dev/null 2>>"$LOG"	# warm-up
	for ((i = 0; i < RATE_RUNS; i++)); do
		d=$(rx_packets)
		out=$(nsenter --net="/run/netns/$NSG" "${gen[@]}" --seconds "$RATE_SECONDS" 2>>"$LOG") ||
			{ say "rate: $mode generator failed"; break; }
		d=$(($(rx_packets) - d))
		# out: sent=N seconds=S cpu=C ksoftirqd=K (C includes K)
		r=$(echo "$out" | awk -v rx="$d" '{
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			printf "%.0f %.0f", rx / v["cpu"], rx / v["seconds"] }')
		vals+=("${r% *}")
		walls+=("${r#* }")
		[[ $out = *via=packet* ]] && via="; sent via AF_PACKET (this kernel refuses live frames)"
	done
	drops=$(rate_dropped "$mode")
	printf 'M\trate\t%s\t%s\tpkt/s\t%s\treceived per CPU second (generator + receiver + ksoftirqd on CPU %s); wall-clock %s pkt/s; the firewall counted %s drops of the %s frames that arrived (warm-up included)%s\n' \
		"$mode" "$label" "$(IFS=,; echo "${vals[*]}")" "$CPU" "$(IFS=,; echo "${walls[*]}")" \
		"$drops" "$(($(rx_packets) - rx0))" "$via" >>"$RAW"
	# LEGIT_PPS, or a quarter of what this mode took (wall clock, median) if less
	r=$(printf '%s\n' "${walls[@]}" | sort -n | awk -v cap="$LEGIT_PPS" '{v[NR] = $1}
		END {r = NR ? v[int((NR + 1) / 2)] / 4 : 0; printf "%.0f", (r > 0 && r < cap) ? r : cap}')
	[[ $mode = *_spoof ]] && legit_client "$mode" "$label" "$r" "${gen[@]}"
	rate_lab_down
}

# A legitimate client (198.18.0.2, the generator's side) opens CONNECTS
# connections to a listener on 198.18.0.1:993 while the spoofed flood runs
# at LEGIT_PPS, one every 0.1 s (under its own syn_rate), each given 3 s:
# one SYN retransmission, as any TCP client makes. The generator sends in
# 10 ms bursts at line rate, and a SYN that meets a burst can be lost in the
# veth's ring before any firewall sees it; the retransmission is what a real
# client does about such a loss. Paced, because a flood past what the
# receiving CPU can take loses SYNs in the ring all the time: that would
# measure the ring, not the policy: at most LEGIT_PPS, and at most a quarter of the
# wall-clock rate the mode reached in its runs (AF_PACKET reaches less).
CONNECTS=30
LEGIT_PPS=500000	# asked; live frames reach ~0.2 Mpps of it here (10 ms bursts)
legit_client()	# MODE LABEL PPS GENERATOR...
{
	local mode=$1 label=$2 pps=$3 lpid gpid out gen_pps
	shift 3

	ip netns exec "$NSR" "$PY" -c 'import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 993))
s.listen(4096)
s.settimeout(0.2)
end = time.monotonic() + 20
while time.monotonic() < end:
    try:
        c, _ = s.accept()
        c.close()
    except OSError:
        pass' </dev/null >/dev/null 2>&1 &
	lpid=$!
	LAB_PIDS+=("$lpid")
	# python starts slowly on a busy host: a connect before the listen()
	# would count against the firewall
	wait_listen "$NSR" 993 || return 1
	nsenter --net="/run/netns/$NSG" "$@" --seconds $((CONNECTS / 10 + 6)) --pps "$pps" \
		</dev/null >"$BT/legit-gen.out" 2>>"$LOG" &
	gpid=$!
	LAB_PIDS+=("$gpid")
	sleep 0.5
	out=$(ip netns exec "$NSG" "$PY" -c 'import socket, sys, time
ok, n, failed = 0, int(sys.argv[1]), []
for i in range(n):
    t = time.monotonic()
    try:
        socket.create_connection(("198.18.0.1", 993), timeout=3, source_address=("198.18.0.2", 0)).close()
        ok += 1
    except OSError as e:
        failed.append("#%d after %.1f s: %s" % (i + 1, time.monotonic() - t, e.strerror or e))
    time.sleep(0.1)
print(ok, n, "; ".join(failed))' "$CONNECTS" </dev/null 2>>"$LOG")
	wait "$gpid" 2>/dev/null
	# the rate the generator reached (it asks for LEGIT_PPS)
	gen_pps=$(awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		if (v["seconds"] > 0) printf "%.0f", v["sent"] / v["seconds"]}' "$BT/legit-gen.out")
	kill "$lpid" 2>/dev/null
	wait "$lpid" 2>/dev/null
	local ok n failed
	read -r ok n failed <<<"$out"
	[ -n "$out" ] && [ "$n" -gt 0 ] 2>/dev/null || return 1
	[ -n "$failed" ] && failed="; failed: $failed"
	printf 'M\tconn\t%s\t%s\t%%\t%s\t%s of %s connects from 198.18.0.2 succeeded, one every 0.1 s, 3 s each (one SYN retry), during the spoofed flood at %s pps (wall clock)%s\n' \
		"$mode" "a legitimate client during the flood: $label" "$(awk -v a="$ok" -v b="$n" 'BEGIN {printf "%.1f", 100 * a / b}')" \
		"$ok" "$n" "${gen_pps:-?}" "$failed" >>"$RAW"
}

sec_rate()
{
	say "2/8 drop rate on a veth pair ($RATE_RUNS x ${RATE_SECONDS}s per mode)"
	rate_policy
	rate_mode floor "bare XDP_DROP on the receiving veth (the floor)"
	rate_mode nft_netdev_143 "nftables netdev ingress: tcp dport 143 drop"
	rate_mode lb_143 "lower bound: parse, port, one counter, XDP_DROP (no port table, allow list or event)"
	rate_mode ig_xdp_143 "imapguard native XDP: 143 drop, empty lists"
	rate_mode ig_xdp_143_full "imapguard native XDP: 143 drop, lists filled"
	rate_mode ig_tc_143 "imapguard tc: 143 drop, empty lists"
	rate_mode nft_inet_143 "nftables inet input: tcp dport 143 drop"
	rate_mode ipt_raw_143 "iptables-legacy raw PREROUTING: --dport 143 -j DROP"
	rate_mode nft_netdev_993 "nftables netdev: allow/ban/deny sets + SYN meters, 993 flood"
	rate_mode ig_xdp_993 "imapguard native XDP: 993 flood (lists, bans, throttle, counters)"
	rate_mode ig_tc_993 "imapguard tc: 993 flood (lists, bans, throttle, counters)"
	rate_mode nft_inet_993 "nftables inet input: allow/ban/deny sets + SYN meters, 993 flood"
	rate_mode ipt_raw_993 "iptables-legacy raw: ipset allow/ban/deny + hashlimit, 993 flood"
	rate_mode nft_netdev_spoof "nftables netdev ingress: SYN meters, spoofed 993 flood ($((1 << SPOOF_BITS)) random sources)"
	rate_mode ig_xdp_spoof "imapguard native XDP: spoofed 993 flood ($((1 << SPOOF_BITS)) random sources, empty lists)"
}

# ---- 3: auth-log throughput ------------------------------------------------------

sec_auth()
{
	say "3/8 auth-log throughput ($AUTH_LINES lines; imapguard x$AUTH_RUNS, fail2ban x$F2B_RUNS)"
	"$B/bench_authbench" gen "$BT/auth.log" "$AUTH_LINES" || return 1
	"$B/bench_authbench" run "$BT/auth.log" --runs "$AUTH_RUNS" >>"$RAW" 2>>"$LOG"
	if ! command -v fail2ban-regex >/dev/null; then
		say "fail2ban-regex missing: no baseline for auth"
		return 1
	fi
	# CPU time of the child, as for imapguard: wall time on a shared machine
	# measures the neighbours.
	"$PY" - "$BT/auth.log" "$F2B_RUNS" >>"$RAW" 2>>"$LOG" <<-'EOF'
	import re, resource, subprocess, sys, time
	log, runs = sys.argv[1], int(sys.argv[2])
	filt = "/etc/fail2ban/filter.d/dovecot.conf"
	rates, walls, note = [], [], ""
	for _ in range(runs):
	    before = resource.getrusage(resource.RUSAGE_CHILDREN)
	    t = time.monotonic()
	    out = subprocess.run(["fail2ban-regex", log, filt], capture_output=True, text=True).stdout
	    wall = time.monotonic() - t
	    after = resource.getrusage(resource.RUSAGE_CHILDREN)
	    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
	    m = re.search(r"Lines: (\d+) lines, (\d+) ignored, (\d+) matched", out)
	    if not m:
	        sys.exit("fail2ban-regex printed no summary")
	    lines = int(m.group(1))
	    rates.append(lines / cpu)
	    walls.append(lines / wall)
	    note = "%d lines, %s matched" % (lines, m.group(3))
	walls.sort()
	print("M\tauth\tfail2ban\tfail2ban-regex, dovecot filter\tlines/s\t%s\tper CPU second; %s; wall-clock median %.0f lines/s"
	      % (",".join("%.0f" % r for r in rates), note, walls[len(walls) // 2]))
	EOF
}

# ---- 4 and 5: the daemon ---------------------------------------------------------

NSD=igb-d-$BID IFD=igbd$BID
POLICY_PORT=19602	# inside the daemon's own namespace

daemon_up()
{
	local i

	lab_netns "$NSD" || return 1
	ip link add "$IFD" netns "$NSD" type veth peer name "igbe$BID" netns "$NSD" || return 1
	ip -n "$NSD" link set "$IFD" up && ip -n "$NSD" link set "igbe$BID" up || return 1
	: >"$BT/ttb.log"
	cat >"$BT/daemon.conf" <<-EOF
	[port 143]
	action = reject
	[port 993]
	action = pass
	[detect]
	max_failures = 5
	window = 10m
	ban_time = 1h
	# one rule at a time: no spraying or subnet bans between the measured ones
	max_users = 0
	max_sources = 0
	[limits]
	# section 5 fills 1M throttled sources
	max_sources = 1048576
	[authlog bench]
	path = $BT/ttb.log
	format = dovecot
	[mfa]
	secrets = $BT/mfa.secrets
	knock_port = 19653
	[authpolicy]
	listen = 127.0.0.1:$POLICY_PORT
	api_key_file = $BT/policy.key
	EOF
	head -c 24 /dev/urandom | base64 >"$BT/policy.key" && chmod 600 "$BT/policy.key" || return 1
	nsenter --net="/run/netns/$NSD" "$IG_BIN" --pin-dir "$DPIN" run --policy "$BT/daemon.conf" \
		--iface "$IFD" --state-file "$BT/state" --control-socket "$BT/ctl.sock" \
		--detach-on-exit </dev/null >>"$BT/daemon.log" 2>&1 &
	DPID=$!
	# The control socket appears when the daemon is fully up.
	for ((i = 0; i < 600; i++)); do
		[ -S "$BT/ctl.sock" ] && return 0
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	say "the daemon did not come up:"
	tail -5 "$BT/daemon.log" >&2
	return 1
}

daemon_down()
{
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
		DPID=
	fi
	[ -d "$DPIN" ] && nsenter --net="/run/netns/$NSD" "$IG_BIN" --pin-dir "$DPIN" detach --all \
		</dev/null >/dev/null 2>&1
	rm -rf "$DPIN"
	netns_del "$NSD"
}

# utime + stime of a process, in seconds
proc_cpu()
{
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

sec_ttb()
{
	say "4/8 time to ban ($TTB_BANS bans through the real daemon, file source)"
	"$B/bench_timetoban" --pin-dir "$DPIN" --log "$BT/ttb.log" --failures 5 --bans "$TTB_BANS" \
		--syn-every 2 --daemon-pid "$DPID" >>"$RAW" 2>>"$LOG" || say "timetoban failed (see below)"
}

sec_knock()
{
	say "knock to grant ($KNOCKS knocks through the real daemon, UDP on lo)"
	nsenter --net="/run/netns/$NSD" "$B/bench_knocklat" --pin-dir "$DPIN" \
		--secrets "$BT/mfa.secrets" --port 19653 --knocks "$KNOCKS" >>"$RAW" 2>>"$LOG" ||
		say "knocklat failed (see below)"
}

sec_mem()
{
	local rss0 rss1 hwm c0 c1 i t0 t1 scrape=()

	say "5/8 memory with 1M bans and 1M throttled sources"
	rss0=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
	"$B/bench_mapfill" --pin-dir "$DPIN" --bans 1044480 --throttle6 900000 >>"$LOG" 2>&1 ||
		{ say "mapfill failed"; return 1; }
	sleep 2	# a few of the daemon's 1 s ticks over the full maps
	c0=$(proc_cpu "$DPID")
	sleep 5
	c1=$(proc_cpu "$DPID")
	rss1=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
	hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
	# What one scrape of the full maps costs (the daemon's /metrics does
	# the same work in its loop): wall clock of the CLI's exposition
	for ((i = 0; i < 3; i++)); do
		t0=$(date +%s%N)
		"$IG_BIN" --pin-dir "$DPIN" stats --prometheus </dev/null >/dev/null 2>>"$LOG" || break
		t1=$(date +%s%N)
		scrape+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}')")
	done
	{
		printf 'M\tmem\tdaemon_rss_idle\tdaemon RSS, maps empty\tKiB\t%s\tafter time-to-ban\n' "$rss0"
		printf 'M\tmem\tdaemon_rss_full\tdaemon RSS, 1M bans + 1M throttled sources\tKiB\t%s\t\n' "$rss1"
		printf 'M\tmem\tdaemon_hwm\tdaemon peak RSS (VmHWM)\tKiB\t%s\t\n' "$hwm"
		[ ${#scrape[@]} -gt 0 ] && printf 'M\tmem\tscrape_full\tmetrics scrape with 1M bans + 1M throttled sources (stats --prometheus)\tms\t%s\twall clock, process start to exit; counted in BPF (the census program)\n' \
			"$(IFS=,; echo "${scrape[*]}")"
		printf 'M\tmem\tdaemon_cpu_full\tdaemon CPU while idle with full maps\t%%\t%s\tover 5 s, no log lines, no traffic\n' \
			"$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.1f", (b - a) / 5 * 100}')"
	} >>"$RAW"
	"$B/bench_mapfill" --pin-dir "$DPIN" --memory >>"$RAW" 2>>"$LOG"
	sec_mem_save
}

# The policy server's latency while the state file, with all of those bans
# in it, is saved: five failures from a fresh source make a detector ban,
# and the daemon saves on its next tick.
sec_mem_save()
{
	local k wr

	{
		sleep 0.5
		for ((k = 0; k < 5; k++)); do
			printf 'Nov 23 04:30:01 host dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<save>, method=PLAIN, rip=2001:db8:5a7e::1, lip=198.18.0.1, session=<save%d>\n' "$k"
		done >>"$BT/ttb.log"
	} &
	wr=$!
	nsenter --net="/run/netns/$NSD" "$B/bench_policyload" --port "$POLICY_PORT" \
		--key-file "$BT/policy.key" --daemon-pid "$DPID" --clients 32 --rate 5000 --seconds 4 \
		--tag "save:while the state file (1M bans) is saved" </dev/null >>"$RAW" 2>>"$LOG" ||
		say "policyload failed (see below)"
	wait "$wr"
	"$IG_BIN" --pin-dir "$DPIN" stats --prometheus --control-socket "$BT/ctl.sock" </dev/null \
		2>>"$LOG" | awk '$1 == "imapguard_state_save_seconds" {
			printf "M\tmem\tstate_save\tstate file save with 1M bans (a child process writes it)\tms\t%.1f\tthe daemon'"'"'s own figure, fork to exit\n", $2 * 1000 }' >>"$RAW"
}

sec_policy()
{
	local nice=()

	say "6/8 auth policy server (32 keep-alive clients, 5000 requests/s, 5 s)"
	# POLICY_NICE=N: daemon and clients at nice N (e.g. -15), to tell the
	# code's latency from the neighbours' on a shared machine.
	if [ -n "${POLICY_NICE:-}" ]; then
		renice -n "$POLICY_NICE" -p "$DPID" >/dev/null
		nice=(nice -n "$POLICY_NICE")
	fi
	"${nice[@]}" nsenter --net="/run/netns/$NSD" "$B/bench_policyload" --port "$POLICY_PORT" \
		--key-file "$BT/policy.key" --daemon-pid "$DPID" --clients 32 --rate 5000 \
		--seconds 5 </dev/null >>"$RAW" 2>>"$LOG" || say "policyload failed (see below)"
}

# ---- 7: load time ------------------------------------------------------------------

NSL=igb-l-$BID IFL=igbl$BID

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Milliseconds from the daemon's exec to its control socket: load, policy,
# attach, everything it does before it serves.
daemon_cold()
{
	local t0 t1 pid i

	rm -rf "$LPIN" "$BT/lctl.sock"
	t0=$(date +%s%N)
	nsenter --net="/run/netns/$NSL" "$IG_BIN" --pin-dir "$LPIN" run --policy "$BT/load.conf" \
		--iface "$IFL" --state-file "$BT/lstate" --control-socket "$BT/lctl.sock" \
		</dev/null >>"$LOG" 2>&1 &
	pid=$!
	LAB_PIDS+=("$pid")
	for ((i = 0; i < 30000; i++)); do
		[ -S "$BT/lctl.sock" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.001
	done
	t1=$(date +%s%N)
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	nsenter --net="/run/netns/$NSL" "$IG_BIN" --pin-dir "$LPIN" detach --all </dev/null >/dev/null 2>&1
	rm -rf "$LPIN" "$BT/lstate"
	[ -S "$BT/lctl.sock" ] || [ "$i" -lt 30000 ] || return 1
	rm -f "$BT/lctl.sock"
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}'
}

sec_load()
{
	local i t0 t1 cli=() cold=() v

	say "7/8 load time (attach phases x$LOAD_RUNS, CLI attach and daemon cold start x3)"
	lab_netns "$NSL" || return 1
	ip link add "$IFL" netns "$NSL" type veth peer name "igbm$BID" netns "$NSL" &&
		ip -n "$NSL" link set "$IFL" up && ip -n "$NSL" link set "igbm$BID" up || return 1
	printf '[port 143]\naction = reject\n[port 993]\naction = pass\nsyn_rate = 20/s\nsubnet_rate = 200/s\n' \
		>"$BT/load.conf"
	nsenter --net="/run/netns/$NSL" "$B/bench_loadtime" --iface "$IFL" --policy "$BT/load.conf" \
		--pin-dir "$LPIN" --runs "$LOAD_RUNS" >>"$RAW" 2>>"$LOG" || say "loadtime failed (see below)"
	for ((i = 0; i < 3; i++)); do
		t0=$(date +%s%N)
		nsenter --net="/run/netns/$NSL" "$IG_BIN" --pin-dir "$LPIN" attach --iface "$IFL" \
			--mode native --policy "$BT/load.conf" </dev/null >>"$LOG" 2>&1 || break
		t1=$(date +%s%N)
		cli+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}')")
		nsenter --net="/run/netns/$NSL" "$IG_BIN" --pin-dir "$LPIN" detach --all </dev/null >/dev/null 2>&1
		rm -rf "$LPIN"
		v=$(daemon_cold) && cold+=("$v")
	done
	[ ${#cli[@]} -gt 0 ] && printf 'M\tload\tattach_cli\tattach: imapguard attach, process start to exit (default limits)\tms\t%s\t%s runs, native XDP, wall clock\n' \
		"$(IFS=,; echo "${cli[*]}")" "${#cli[@]}" >>"$RAW"
	[ ${#cold[@]} -gt 0 ] && printf 'M\tload\tdaemon_cold\tdaemon cold start: exec to control socket (load, policy, attach)\tms\t%s\t%s runs, no pins before, wall clock\n' \
		"$(IFS=,; echo "${cold[*]}")" "${#cold[@]}" >>"$RAW"
	netns_del "$NSL"
}

# ---- 7: the fleet --------------------------------------------------------------------

FPIDS=()

# fleet_up: a redis-server on a unix socket, three namespaces, three daemons
# with a [fleet] section; 0 once every daemon is connected.
fleet_up()
{
	local i n ns

	redis-server --port 0 --unixsocket "$BT/redis.sock" --unixsocketperm 600 --save '' \
		--appendonly no --dir "$BT" --logfile "$BT/redis.log" </dev/null &
	LAB_PIDS+=("$!")
	for i in 0 1 2; do
		ns=igb-f$i-$BID
		lab_netns "$ns" || return 1
		ip link add "igbf$i$BID" netns "$ns" type veth peer name "igbg$i$BID" netns "$ns" || return 1
		ip -n "$ns" link set "igbf$i$BID" up && ip -n "$ns" link set "igbg$i$BID" up || return 1
		: >"$BT/f$i.log"
		cat >"$BT/f$i.conf" <<-EOF
		[port 143]
		action = reject
		[port 993]
		action = pass
		[limits]
		max_bans = 65536
		[detect]
		max_failures = 5
		ban_time = 1h
		max_users = 0
		max_sources = 0
		account_max_sources = 0
		[authlog bench]
		path = $BT/f$i.log
		format = dovecot
		[fleet]
		redis = unix:$BT/redis.sock
		prefix = igbench$BID
		node = n$i
		queue = 100000
		EOF
		nsenter --net="/run/netns/$ns" "$IG_BIN" --pin-dir "$FPIN$i" run --policy "$BT/f$i.conf" \
			--iface "igbf$i$BID" --state-file "$BT/f$i.state" --control-socket "$BT/f$i.sock" \
			--detach-on-exit </dev/null >>"$BT/f$i.dlog" 2>&1 &
		FPIDS[i]=$!
		LAB_PIDS+=("$!")
	done
	for i in 0 1 2; do
		for ((n = 0; n < 600; n++)); do
			"$IG_BIN" fleet status --json -c "$BT/f$i.sock" 2>/dev/null |
				grep -q '"stream_connected": *true' && break
			kill -0 "${FPIDS[i]}" 2>/dev/null || break
			sleep 0.1
		done
		if [ "$n" -ge 600 ] || ! kill -0 "${FPIDS[i]}" 2>/dev/null; then
			say "fleet daemon $i did not come up:"
			tail -5 "$BT/f$i.dlog" >&2
			return 1
		fi
	done
}

# fleet_figures: fleet figures received back, summed over the three nodes.
fleet_figures()
{
	local i sum=0 v

	for i in 0 1 2; do
		v=$("$IG_BIN" fleet status --json -c "$BT/f$i.sock" 2>/dev/null |
		    "$PY" -c 'import json, sys; print(json.load(sys.stdin)["figures_received"])' 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

sec_fleet()
{
	local i t0 t1 base want got writers=()

	say "8/8 fleet: a ban on node A -> SYN dropped at node B ($FLEET_BANS bans), shared counting"
	if ! command -v redis-server >/dev/null; then
		say "redis-server missing: no fleet figures"
		return 1
	fi
	fleet_up || return 1
	"$B/bench_timetoban" --pin-dir "${FPIN}1" --log "$BT/f0.log" --failures 5 \
		--bans "$FLEET_BANS" --syn-every 2 --daemon-pid "${FPIDS[0]}" --fleet \
		>>"$RAW" 2>>"$LOG" || say "timetoban --fleet failed (see below)"
	# Shared counting: FLEET_FAILURES lines on each node at once, each from a
	# source of its own (nothing is banned), timed until every node has its
	# fleet-wide figures back from Redis.
	base=$(fleet_figures)
	want=$((base + 3 * FLEET_FAILURES))
	t0=$EPOCHREALTIME
	for i in 0 1 2; do
		"$PY" - "$BT/f$i.log" "$i" "$FLEET_FAILURES" <<-'EOF' &
		import sys
		path, node, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
		out = []
		for k in range(n):
		    a = "198.19.%d.%d" % (node * 80 + k // 250, k % 250 + 1)
		    out.append("Nov 23 04:30:01 host dovecot: imap-login: Disconnected (auth failed, "
		               "1 attempts in 2 secs): user=<u%d>, method=PLAIN, rip=%s, lip=198.18.0.1, "
		               "session=<fc%dx%d>\n" % (k, a, node, k))
		with open(path, "a") as f:
		    f.write("".join(out))
		EOF
		writers+=("$!")
	done
	# Only the writers: the daemons and Redis are children of this shell too.
	wait "${writers[@]}"
	for ((i = 0; i < 1200; i++)); do
		got=$(fleet_figures)
		[ "$got" -ge "$want" ] && break
		sleep 0.1
	done
	t1=$EPOCHREALTIME
	"$PY" - "$t0" "$t1" "$((got - base))" "$((3 * FLEET_FAILURES))" >>"$RAW" <<-'EOF'
	import sys
	t0, t1 = (float(x.replace(",", ".")) for x in sys.argv[1:3])
	got, sent = int(sys.argv[3]), int(sys.argv[4])
	print("M\tfleet\tfleet_count\tshared counting, 3 nodes: failures/s (line written -> "
	      "fleet figures back)\tfailures/s\t%.0f\t%d of %d failures counted in %.2f s, one "
	      "EVALSHA each; wall clock, polling every 0.1 s" % (got / (t1 - t0), got, sent, t1 - t0))
	EOF
}

# ---- run -----------------------------------------------------------------------------

T0=$(date +%s)
for s in $SECTIONS; do
	ts=$(date +%s)
	case $s in
	pkt) sec_pkt ;;
	rate) sec_rate ;;
	auth) sec_auth ;;
	load) sec_load ;;
	ttb|knock|mem|policy)
		if [ -z "$DPID" ]; then
			daemon_up || { daemon_down; continue; }
		fi
		"sec_$s" ;;
	fleet) sec_fleet ;;
	*) say "unknown section '$s'" ;;
	esac
	say "$s took $(($(date +%s) - ts)) s"
done
daemon_down
ELAPSED=$(($(date +%s) - T0))

STAMP=$(date -u +%Y%m%d-%H%M%S)
cp "$RAW" "$RESULTS/$STAMP.tsv"
"$PY" tests/bench/report.py --machine "$BT/machine.md" --elapsed "$ELAPSED" "$RAW" \
	>"$RESULTS/$STAMP.md" || exit 1
cp "$RESULTS/$STAMP.md" "$RESULTS/latest.md"
if [ "$JSON" = 1 ]; then
	"$PY" tests/bench/report.py --json --machine "$BT/machine.md" --elapsed "$ELAPSED" "$RAW"
else
	cat "$RESULTS/$STAMP.md"
fi
if grep -qiE "failed|error|expected|couldn't|missing" "$LOG" 2>/dev/null; then
	say "messages from the tools:"
	grep -iE "failed|error|expected|couldn't|missing" "$LOG" | tail -20 >&2
fi
say "saved $RESULTS/$STAMP.md (raw lines: $STAMP.tsv) and latest.md; took ${ELAPSED}s"
