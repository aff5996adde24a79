#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for the netns integration suite and the demo: a small lab of
# network namespaces joined by veth pairs, real TCP listeners, a python3
# connect probe, a bounded SYN flood, and a cleanup that removes exactly what
# this lab created (by name or PID, never by pattern).
#
#   client ns  igt-cli-ID  igcID  198.18.0.2/24 2001:db8::2/64  (+ .3 / ::3)
#        |  veth
#   server ns  igt-srv-ID  igsID  198.18.0.1/24 2001:db8::1/64  listeners 143, 993
#        |  veth (lab_sink only)
#   sink ns    igt-snk-ID  igkID  (server side: igrID)
#
# Addresses are only from the benchmarking ranges 198.18.0.0/15 (RFC 2544) and
# the documentation prefix 2001:db8::/32 (RFC 3849), so nothing can leak out.
# Source this file; it defines functions and variables only.

IG_ROOT=${IG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
IG_BIN=${IG_BIN:-$IG_ROOT/build/imapguard}
# The system interpreter: pyenv shims depend on $HOME and friends, which
# `ip netns exec` keeps but sudo may not.
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi

LAB_ID=${LAB_ID:-$$}
NS_SRV=igt-srv-$LAB_ID
NS_CLI=igt-cli-$LAB_ID
NS_SNK=igt-snk-$LAB_ID
IF_SRV=igs$LAB_ID	# server end of the client link
IF_CLI=igc$LAB_ID	# client end
IF_RDR=igr$LAB_ID	# server end of the sink link (the redirect target)
IF_SNK=igk$LAB_ID	# sink end
PIN=/sys/fs/bpf/igtest-$LAB_ID
PIN_PEER=/sys/fs/bpf/igtest-$LAB_ID-peer	# see peer_xdp

SRV4=198.18.0.1 SRV6=2001:db8::1
CLI4=198.18.0.2 CLI6=2001:db8::2
CLI4B=198.18.0.3 CLI6B=2001:db8::3	# "another source" on the same client link

LAB_TMP=
LAB_PIDS=()	# background processes we started, killed by PID
LAB_NETNS=()	# namespaces we created, deleted by name

# ---- python helpers (kept inline so the suite is one directory) ----------

# Listener: accept on every port given, on :: (dual stack), send a banner, close.
# One process, select()-driven, so a flood of accepts never queues behind a slow one.
_PY_LISTEN='
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(4096)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept()
            c.send(b"* OK igtest\r\n")
            c.close()
        except OSError:
            pass
'

# probe ADDR PORT [SRC] [TIMEOUT]: exactly one of connected / refused / timeout.
# Anything else (unreachable, ...) is reported on stderr and counts as timeout:
# for these tests it means "no answer".
_PY_PROBE='
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
src = sys.argv[3] if len(sys.argv) > 3 else ""
tmo = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
if src:
    s.bind((src, 0))
s.settimeout(tmo)
try:
    s.connect((addr, port))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("probe: %s" % e, file=sys.stderr)
    print("timeout")
'

# flood ADDR PORT SRC N SECONDS: N non-blocking connects paced evenly over
# SECONDS. Each attempt gets 0.5 s, under the 1 s initial SYN retransmit
# timeout, so every attempt is exactly one SYN and the count of successes is
# the count of SYNs the firewall let through. Bounded: N attempts, and at most
# SECONDS + 0.5 s. Prints attempts= connected= refused= timeout= elapsed=
# where elapsed is the time from the first to the last SYN.
_PY_FLOOD='
import errno, resource, selectors, socket, sys, time
addr, port, src, n, dur = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
sel = selectors.DefaultSelector()
pending = {}
res = {"connected": 0, "refused": 0, "timeout": 0}
def done(s, what):
    res[what] += 1
    sel.unregister(s)
    del pending[s]
    s.close()
sent, t0 = 0, time.monotonic()
t_last = t0
while sent < n or pending:
    now = time.monotonic()
    while sent < n and now >= t0 + dur * sent / n:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        e = s.connect_ex((addr, port))
        sent += 1
        t_last = now
        if e != errno.EINPROGRESS:
            res["connected" if e == 0 else "refused" if e == errno.ECONNREFUSED else "timeout"] += 1
            s.close()
            continue
        sel.register(s, selectors.EVENT_WRITE)
        pending[s] = now + 0.5
    for key, _ in sel.select(timeout=0.002):
        e = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        done(key.fileobj, "connected" if e == 0 else "refused" if e == errno.ECONNREFUSED else "timeout")
    now = time.monotonic()
    for s in [s for s, dl in pending.items() if now >= dl]:
        done(s, "timeout")
print("attempts=%d connected=%d refused=%d timeout=%d elapsed=%.3f" %
      (sent, res["connected"], res["refused"], res["timeout"], t_last - t0))
'

# sniff IFNAME PORT FILE: count TCP SYNs (v4 and v6) to PORT seen on IFNAME,
# rewriting FILE with the count after each one. AF_PACKET sees frames whatever
# their destination MAC, so this counts arrivals even when the stack would not
# accept them. Runs until killed.
_PY_SNIFF='
import socket, struct, sys
ifname, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.bind((ifname, 0))
n = 0
open(path, "w").write("0\n")
while True:
    f, meta = s.recvfrom(2048)
    if meta[2] == socket.PACKET_OUTGOING:
        continue
    et = struct.unpack("!H", f[12:14])[0]
    if et == 0x0800 and len(f) >= 34 and f[23] == 6:
        l4 = 14 + (f[14] & 15) * 4
    elif et == 0x86DD and len(f) >= 54 and f[20] == 6:
        l4 = 54
    else:
        continue
    if len(f) >= l4 + 14 and struct.unpack("!H", f[l4+2:l4+4])[0] == port \
       and f[l4+13] & 0x12 == 0x02:
        n += 1
        open(path, "w").write("%d\n" % n)
'

# ethtool_set IFNAME gro|txcsum on|off: the SIOCETHTOOL ioctl (ethtool
# itself is not installed here). See lab_sink for why.
_PY_ETHTOOL='
import array, fcntl, socket, struct, sys
cmd = {"gro": 0x2c, "txcsum": 0x17}[sys.argv[2]]  # ETHTOOL_SGRO, ETHTOOL_STXCSUM
val = array.array("I", [cmd, 1 if sys.argv[3] == "on" else 0])
ifr = struct.pack("16sP", sys.argv[1].encode(), val.buffer_info()[0])
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8946, ifr)  # SIOCETHTOOL
'

# ---- lab -----------------------------------------------------------------

# lab_netns NAME: create a namespace with lo up, and remember it for cleanup.
lab_netns()
{
	ip netns add "$1" || return 1
	LAB_NETNS+=("$1")
	ip -n "$1" link set lo up
}

# lab_bg NS CMD...: start CMD in the background inside NS, remember its PID.
# `ip netns exec` execs the command, so $! is the command's own PID.
lab_bg()
{
	local ns=$1
	shift
	ip netns exec "$ns" "$@" </dev/null &
	LAB_PIDS+=("$!")
}

# ethtool_set NS IFNAME gro|txcsum on|off
ethtool_set()
{
	ip netns exec "$1" "$PY" -c "$_PY_ETHTOOL" "$2" "$3" "$4"
}

# wait_listen NS PORT: up to 5 s for a TCP listener on PORT.
wait_listen()
{
	local i

	for ((i = 0; i < 50; i++)); do
		[ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2")" ] && return 0
		sleep 0.1
	done
	echo "lab: no listener on port $2 in $1" >&2
	return 1
}

# listen NS PORT...: a listener for PORTs in NS.
listen()
{
	local ns=$1 p
	shift
	lab_bg "$ns" "$PY" -c "$_PY_LISTEN" "$@"
	for p in "$@"; do
		wait_listen "$ns" "$p" || return 1
	done
}

# lab_up: server and client namespaces, one veth pair, listeners on 143 and
# 993 in the server namespace. Returns non-zero (having printed why) if any
# step fails; lab_down undoes whatever was done.
lab_up()
{
	LAB_TMP=$(mktemp -d "/tmp/igtest-$LAB_ID.XXXXXX") || return 1
	lab_netns "$NS_SRV" && lab_netns "$NS_CLI" || return 1
	ip link add "$IF_SRV" netns "$NS_SRV" type veth peer name "$IF_CLI" netns "$NS_CLI" ||
		return 1
	ip -n "$NS_SRV" addr add $SRV4/24 dev "$IF_SRV"
	ip -n "$NS_SRV" addr add $SRV6/64 dev "$IF_SRV" nodad
	ip -n "$NS_CLI" addr add $CLI4/24 dev "$IF_CLI"
	ip -n "$NS_CLI" addr add $CLI4B/24 dev "$IF_CLI"
	ip -n "$NS_CLI" addr add $CLI6/64 dev "$IF_CLI" nodad
	ip -n "$NS_CLI" addr add $CLI6B/64 dev "$IF_CLI" nodad
	ip -n "$NS_SRV" link set "$IF_SRV" up && ip -n "$NS_CLI" link set "$IF_CLI" up || return 1
	lab_neigh || return 1
	listen "$NS_SRV" 143 993
}

# lab_neigh: both ends know each other's addresses from the start. For a
# moment after a veth comes up the kernel can miss a neighbour solicitation
# (the first SYN-ACK to a new IPv6 source then waits a second, longer than a
# probe's timeout); neighbour discovery is not what these suites test.
lab_neigh()
{
	local srv_mac cli_mac a

	srv_mac=$(ip -n "$NS_SRV" -br link show "$IF_SRV" | awk '{print $3}')
	cli_mac=$(ip -n "$NS_CLI" -br link show "$IF_CLI" | awk '{print $3}')
	for a in $CLI4 $CLI4B $CLI6 $CLI6B; do
		ip -n "$NS_SRV" neigh replace "$a" lladdr "$cli_mac" dev "$IF_SRV" nud permanent ||
			return 1
	done
	for a in $SRV4 $SRV6; do
		ip -n "$NS_CLI" neigh replace "$a" lladdr "$srv_mac" dev "$IF_CLI" nud permanent ||
			return 1
	done
}

# lab_sink: a third namespace on a second veth pair from the server. The
# server end (IF_RDR) is what a policy's redirect_to names; the sink end
# (IF_SNK) is where redirected frames arrive. The sink end carries the server's
# MAC and addresses so a redirected SYN is addressed to it, and a listener on
# 143 there would accept it (the SYN-ACK has no way back: the sniffer is the
# proof of arrival).
lab_sink()
{
	local mac i

	lab_netns "$NS_SNK" || return 1
	ip link add "$IF_RDR" netns "$NS_SRV" type veth peer name "$IF_SNK" netns "$NS_SNK" ||
		return 1
	mac=$(ip -n "$NS_SRV" -br link show "$IF_SRV" | awk '{print $3}')
	ip -n "$NS_SNK" link set "$IF_SNK" address "$mac"
	ip -n "$NS_SNK" addr add $SRV4/24 dev "$IF_SNK"
	ip -n "$NS_SNK" addr add $SRV6/64 dev "$IF_SNK" nodad
	# Native XDP redirect into a veth queues the frame on the far end's XDP
	# ring, which only exists while that end runs NAPI: an XDP program or GRO.
	ethtool_set "$NS_SNK" "$IF_SNK" gro on || return 1
	# A redirected frame leaves the skb behind, and with it the "checksum
	# still to do" mark of locally sent veth traffic: the sink would drop the
	# SYN as corrupt. Full checksums from the client, as on a real wire.
	ethtool_set "$NS_CLI" "$IF_CLI" txcsum off || return 1
	ip -n "$NS_SRV" link set "$IF_RDR" up && ip -n "$NS_SNK" link set "$IF_SNK" up || return 1
	listen "$NS_SNK" 143 || return 1
	lab_bg "$NS_SNK" "$PY" -c "$_PY_SNIFF" "$IF_SNK" 143 "$LAB_TMP/sink143"
	for ((i = 0; i < 50; i++)); do
		[ -s "$LAB_TMP/sink143" ] && return 0
		sleep 0.1
	done
	echo "lab: sniffer did not start" >&2
	return 1
}

# peer_xdp: attach a pass-only imapguard to the client end of the veth pair,
# with its own pin dir. Native XDP_TX on a veth (our RST) is queued to the
# peer's XDP ring, and veth only kicks the peer's NAPI to drain it when the
# peer itself has an XDP program (veth_xdp_flush checks rq->xdp_prog; GRO
# alone gives the peer a NAPI but the frame then waits for unrelated traffic).
# Without this, "reject" in native mode looks like "drop".
peer_xdp()
{
	local pol

	pol=$(policy_file peer <<-EOF
	[port 9]
	action = pass
	[limits]
	max_bans = 16
	max_sources = 16
	max_deny = 16
	max_allow = 16
	EOF
	) || return 1
	nsenter --net="/run/netns/$NS_CLI" "$IG_BIN" --pin-dir "$PIN_PEER" \
		attach --iface "$IF_CLI" --mode native --policy "$pol" </dev/null >/dev/null
}

# sink_count: SYNs to 143 that reached the sink so far.
sink_count()
{
	cat "$LAB_TMP/sink143" 2>/dev/null || echo 0
}

# lab_down: undo lab_up/lab_sink. Safe to call twice and after a partial
# setup. Order matters: detach through the binary first (a clean detach is
# also what removes the pins), then stop our processes (they hold the
# namespaces alive), then the namespaces (their veths go with them), then
# whatever pins a failed test left.
lab_down()
{
	local p ns

	if [ -d "$PIN" ] && [ -e "/run/netns/$NS_SRV" ]; then
		ig detach --all >/dev/null 2>&1
	fi
	if [ -d "$PIN_PEER" ] && [ -e "/run/netns/$NS_CLI" ]; then
		nsenter --net="/run/netns/$NS_CLI" "$IG_BIN" --pin-dir "$PIN_PEER" \
			detach --all </dev/null >/dev/null 2>&1
	fi
	for p in "${LAB_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${LAB_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	LAB_PIDS=()
	for ns in "${LAB_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	LAB_NETNS=()
	# bpffs: plain unlink/rmdir removes pins.
	rm -rf "$PIN" "$PIN_PEER"
	[ -n "$LAB_TMP" ] && rm -rf "$LAB_TMP"
	LAB_TMP=
	return 0
}

# ---- running things --------------------------------------------------------

# ig ARGS...: the binary, in the server namespace, on this lab's pin dir.
# nsenter, not `ip netns exec`: the latter gives the command a private mount
# namespace with a fresh /sys, which hides the host's bpffs at /sys/fs/bpf.
# The binary would then mount a private bpffs whose pins (maps and XDP links)
# die with the process, so nothing would stay attached.
ig()
{
	nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" "$@" </dev/null
}

# probe ADDR PORT [SRC] [TIMEOUT]: from the client namespace.
probe()
{
	ip netns exec "$NS_CLI" "$PY" -c "$_PY_PROBE" "$@" </dev/null
}

# flood ADDR PORT SRC N SECONDS: from the client namespace (see _PY_FLOOD).
flood()
{
	ip netns exec "$NS_CLI" "$PY" -c "$_PY_FLOOD" "$@" </dev/null
}

# policy_file NAME <<EOF ...: write a policy into the lab's temp dir, print its path.
policy_file()
{
	cat >"$LAB_TMP/$1.conf" && echo "$LAB_TMP/$1.conf"
}

# json_get FILTER: read JSON on stdin, print the python expression FILTER
# evaluated with the document as `j` (e.g. 'j["reasons"]["reject"]["packets"]').
json_get()
{
	"$PY" -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# stat_packets REASON: packets counted for REASON by `stats --json`.
stat_packets()
{
	ig stats --json | json_get "j['reasons']['$1']['packets']"
}
