#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Spoofed SYN flood suite (issue #20): a flood of SYNs from forged random
# sources (raw socket, 198.19.0.0/16) at a veth lab's port 993 while
#  - a legitimate client connects throughout: every connect succeeds;
#  - the throttle map stays nearly empty: one-SYN sources get no bucket;
#  - a real source over its syn_rate is still dropped, and counted;
#  - a banned address is dropped even among the flood (bans skip nothing).
# Prints PASS/FAIL/SKIP lines; exits 1 if anything failed. Every traffic
# loop is bounded in count and time.
#
#   sudo bash tests/integration_flood.sh
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$ROOT/tests/lib.sh"

FAILS=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }
# verdict RC NAME WHY: PASS NAME when RC is 0, else FAIL NAME: WHY
verdict() { if [ "$1" -eq 0 ]; then pass "$2"; else fail "$2" "$3"; fi; }

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP integration_flood: needs root (BPF, namespaces)"
	exit 0
fi
trap lab_down EXIT
trap 'exit 130' INT TERM

# spoof DST PORT N SECONDS: N SYNs from random sources in 198.19.0.0/16,
# paced over SECONDS (at most SECONDS + 5 s), from the client namespace.
_PY_SPOOF='
import random, socket, struct, sys, time
dst, port, n, dur = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
d = socket.inet_aton(dst)
def csum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
sent, t0 = 0, time.monotonic()
while sent < n and time.monotonic() < t0 + dur + 5:
    if time.monotonic() < t0 + dur * sent / n:
        time.sleep(0.0005)
        continue
    src = bytes([198, 19, random.randrange(256), random.randrange(1, 255)])
    tcp = struct.pack("!HHIIBBHHH", random.randrange(1024, 65535), port,
                      random.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(src + d + struct.pack("!BBH", 0, 6, 20) + tcp)) + tcp[18:]
    # IP_HDRINCL: the kernel fills in the header checksum and total length
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, src, d)
    s.sendto(ip + tcp, (dst, 0))
    sent += 1
print(sent)
'

# legit N: N connects from CLI4, one every 0.1 s, 1 s each; prints successes.
legit()
{
	local i ok=0

	for ((i = 0; i < $1; i++)); do
		[ "$(probe $SRV4 993 $CLI4 1)" = connected ] && ok=$((ok + 1))
		sleep 0.1
	done
	echo "$ok"
}

prom_value()	# METRIC_WITH_LABELS
{
	ig stats --prometheus | awk -v m="$1" '$1 == m {print $2; exit}'
}

test_spoofed_flood()
{
	local pol ok n=30 spid out thr syn0 syn1 fl ban

	pol=$(policy_file flood <<-EOF
	[port 993]
	action = pass
	syn_rate = 20/s
	syn_burst = 40
	subnet_rate = 200/s
	subnet_burst = 400
	EOF
	) || return 1
	ig attach --iface "$IF_SRV" --mode native --policy "$pol" >/dev/null ||
		{ fail spoofed_flood "attach failed"; return; }
	ig ban add 198.19.77.77 --reason flood-test >/dev/null ||
		{ fail spoofed_flood "ban add failed"; return; }
	ip netns exec "$NS_CLI" "$PY" -c "$_PY_SPOOF" $SRV4 993 30000 4 </dev/null \
		>"$LAB_TMP/spoof.out" 2>&1 &
	spid=$!
	LAB_PIDS+=("$spid")
	sleep 0.3
	ok=$(legit $n)
	syn0=$(stat_packets syn_rate)
	fl=$(flood $SRV4 993 $CLI4B 120 1)
	syn1=$(stat_packets syn_rate)
	wait "$spid"
	out=$(cat "$LAB_TMP/spoof.out")
	thr=$(prom_value 'imapguard_map_entries{map="throttle"}')
	ban=$(ig ban list --json | json_get '[b["packets"] for b in (j if isinstance(j, list) else j["bans"]) if b["addr"].startswith("198.19.77.77")][0]' 2>/dev/null)
	[ "$ok" = "$n" ]
	verdict $? "spoofed flood: legitimate client $ok/$n connects" "$ok of $n connects (flood sent: $out)"
	[ "${out:-0}" -ge 20000 ] 2>/dev/null && [ -n "$thr" ] && [ "$thr" -lt 3000 ]
	verdict $? "spoofed flood: $out forged SYNs left $thr throttle buckets" "$thr buckets after $out forged SYNs"
	[ $((syn1 - syn0)) -gt 0 ] && [[ $fl =~ connected=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -le 65 ]
	verdict $? "spoofed flood: a real source over syn_rate still dropped ($fl)" "$fl, syn_rate +$((syn1 - syn0))"
	# the flood draws 198.19.77.77 now and then; the ban must match it
	# whenever it does, and a direct SYN from it too
	[ -n "$(ig stats --json | json_get "j['reasons']['new_bucket_skip']['packets']" 2>/dev/null)" ]
	verdict $? "spoofed flood: new_bucket_skip counted in stats" "no new_bucket_skip"
	[ -n "$ban" ]
	verdict $? "spoofed flood: ban entry intact ($ban packets)" "ban entry for 198.19.77.77 missing"
}

test_ban_among_flood()
{
	local before after

	ip -n "$NS_CLI" addr add 198.19.77.77/32 dev "$IF_CLI"
	ip -n "$NS_SRV" route add 198.19.77.77/32 dev "$IF_SRV"
	before=$(stat_packets ban)
	[ "$(probe $SRV4 993 198.19.77.77 1)" = timeout ]
	verdict $? "spoofed flood: the banned address among the flood is dropped" "198.19.77.77 connected"
	after=$(stat_packets ban)
	[ "$after" -gt "$before" ]
	verdict $? "spoofed flood: ban counted" "$before -> $after"
}

T0=$(date +%s)
if ! lab_up; then
	echo "FAIL integration_flood: lab setup"
	exit 1
fi
test_spoofed_flood
test_ban_among_flood
echo "integration_flood: $(($(date +%s) - T0)) s, $FAILS failed"
[ "$FAILS" -eq 0 ]
