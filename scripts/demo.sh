#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `sudo make demo`: imapguard protecting a real Dovecot, in under a minute.
#
# Brings up the Dovecot lab (scripts/lab.sh: a server, a router, a
# legitimate client and an attacker, each in its own network namespace),
# starts the imapguard daemon with policies/default.conf on the server's
# only interface, and plays four attacks, saying what is tried and what
# happened: plaintext IMAP, a brute force, password spraying, a
# connection flood, and Dovecot asking imapguard before each password check
# (a tarpit, and an account protected from distributed spraying). Then the counters, the ban list and the events, and
# everything is removed again (also on Ctrl-C or an error).
#
# Builds nothing: the Makefile has built build/imapguard first. The lab,
# daemon and client helpers are tests/integration_lab.sh's (the end-to-end
# suite plays the same scenarios, and three more, with assertions).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration_lab.sh
source "$HERE/../tests/integration_lab.sh"

# Headings in bold on a terminal only: logs get plain text.
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
# run_ig ARGS...: show the command as a user would type it, then run it.
run_ig() { echo "\$ imapguard $*"; ig "$@" 2>&1 | sed 's/^/  /'; }
# legit_report NAME: stop the legitimate user's login loop (legit_start)
# and tell how it went.
legit_report()
{
	touch "$TW/$1.legit.stop"
	wait "$(cat "$TW/$1.legit.pid")" 2>/dev/null
	echo "  Meanwhile alice logged in from $CLI4 $(grep -c . "$TW/$1.legit") times:" \
		"$(sort "$TW/$1.legit" | uniq -c | awk '{ printf "%s%s x%d", n++ ? ", " : "", $2, $1 }')."
}
# daemon_says PATTERN: the daemon's log lines matching PATTERN so far.
daemon_says() { grep -E -- "$1" "$DLOG" | sed 's/^/  imapguard: /'; }

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (sudo make demo): it creates network namespaces and loads BPF" >&2
	exit 1
fi
if [ ! -x "$IG_BIN" ]; then
	echo "demo: no $IG_BIN; run make first" >&2
	exit 1
fi
if ! command -v dovecot >/dev/null; then
	echo "demo: Dovecot is not installed (scripts/deps.sh installs it)" >&2
	exit 1
fi

T0=$SECONDS
WORK=$(mktemp -d /tmp/igdemo.XXXXXX) || exit 1
# auto: native XDP on the veth, as on a real NIC.
lab_use "demo$$" "/sys/fs/bpf/igdemo-$$" "$WORK" auto
TW=$WORK	# for legit_start/legit_stop

cleanup()
{
	# A few seconds, and not to be cut short by a second Ctrl-C.
	trap - EXIT
	trap '' INT TERM
	say "Cleaning up"
	legit_kill
	lab_teardown
	rm -rf "$WORK"
	if [ -e "/run/netns/$NS_SRV" ] || [ -e "$PIN" ] || [ -e "$LAB_DIR" ]; then
		echo "  something was left behind: $NS_SRV $PIN $LAB_DIR"
	else
		echo "  daemon stopped, XDP programs detached, pins, namespaces, Dovecot"
		echo "  and $LAB_DIR removed: the machine is as it was."
	fi
	echo "  (demo took $((SECONDS - T0)) s)"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

# ---- the lab -------------------------------------------------------------------

say "The lab: a real Dovecot behind one interface"
if ! lab_up 2>"$WORK/lab.log"; then
	cat "$WORK/lab.log" >&2
	echo "demo: couldn't set up the lab (scripts/lab.sh up)" >&2
	exit 1
fi
cat <<EOF
  legitimate client  $NS_CLI  $CLI4, $CLI6
  attacker           $NS_ATK  any address of $ATK4_NET and $ATK6_NET
  router             $NS_RTR  forwards, no NAT: Dovecot sees the real sources
  IMAP server        $NS_SRV  $SRV4, $SRV6 on $IFACE
                     $(dovecot --version | cut -d' ' -f1 | sed 's/^/Dovecot /'), 143 (IMAP) and 993 (IMAPS),
                     users alice, bob, carol, dave, erin (password NAME-pass)
  Up in $((SECONDS - T0)) s.
EOF

say "Before imapguard: Dovecot accepts a plaintext LOGIN on 143"
n0=$(grep -c . "$DOVECOT_LOG")
echo "  client -> $SRV4:143  LOGIN alice alice-pass, no TLS: $(cli login --host "$SRV4" --port 143 --user alice --password alice-pass)"
sleep 0.2
tail -n +$((n0 + 1)) "$DOVECOT_LOG" | grep -m1 'Login:' | cut -d' ' -f4- | sed 's/^/  dovecot: /'
echo "  The password crossed the network in the clear."

# ---- the daemon ------------------------------------------------------------------

say "Start imapguard with policies/default.conf"
mk_policy "$POLICY" default || exit 1
cat <<EOF
  The default policy, unchanged: 143 reject; 993 pass with a per-source SYN
  budget of 20/s (bursts of 40); ban after 5 failed logins in 10 min, or
  failures for 4 distinct users; first ban 10 min, doubling on repeats.
  Appended for the lab: [authlog dovecot] path = $DOVECOT_LOG
  and a [daemon] section for the state file and control socket.
\$ imapguard run --policy policy.conf --iface $IFACE
EOF
# veth quirk, not imapguard's: a native-XDP reply (our TCP reset) is only
# delivered to a veth peer that runs XDP itself, so r-srv (the router's end
# of srv0's cable) gets a pass-only program. Real NICs need nothing of the kind.
peer_attach &
PEER=$!
daemon_start || { echo "demo: the daemon did not start" >&2; exit 1; }
wait $PEER || { echo "demo: couldn't prepare the router's veth end" >&2; exit 1; }
sed 's/^/  imapguard: /' "$DLOG"

# ---- 1 -------------------------------------------------------------------------------

say "1. Plaintext: a client tries LOGIN on 143"
n0=$(grep -c . "$DOVECOT_LOG")
echo "  client -> $SRV4:143       LOGIN alice: $(cli login --host "$SRV4" --port 143 --user alice --password alice-pass)"
echo "  client -> [$SRV6]:143 LOGIN alice: $(cli login --host "$SRV6" --port 143 --user alice --password alice-pass)"
echo "  Refused at the NIC: XDP answered each SYN with a TCP reset (reject counter: $(stat_packets reject))."
sleep 0.3
echo "  New lines in Dovecot's log: $(( $(grep -c . "$DOVECOT_LOG") - n0 )) (it never saw the connections)"
echo "  client -> $SRV4:993 (TLS) LOGIN alice: $(cli login --host "$SRV4" --port 993 --user alice --password alice-pass)"

# ---- 2 -------------------------------------------------------------------------------

A2=198.19.2.2
say "2. Brute force: $A2 guesses bob's password over IMAPS"
legit_start brute
for i in 1 2 3 4 5; do
	echo "  attempt $i: bob / guess$i -> $(atk login --host "$SRV4" --port 993 --user bob \
		--password "guess$i" --source $A2 --timeout 1.5)"
done
wait_ban $A2 5
daemon_says "^ban $A2 "
echo "  attempt 6: bob / guess6 -> $(atk login --host "$SRV4" --port 993 --user bob \
	--password guess6 --source $A2 --timeout 1.5)  (its SYN is dropped by XDP)"
echo "  Dovecot checked $(dovecot_lines "passwd-file\\(bob,$A2,") of the 6 passwords;" \
	"the ban has dropped $(ban_field $A2 packets) packets so far."
legit_report brute

# ---- 3 -------------------------------------------------------------------------------

A3=198.19.3.3
say "3. Password spraying: $A3 tries one password against many users"
for u in alice bob carol dave; do
	echo "  $u / Winter2025! -> $(atk login --host "$SRV4" --port 993 --user $u \
		--password 'Winter2025!' --source $A3 --timeout 1.5)"
done
wait_ban $A3 5
daemon_says "^ban $A3 "
echo "  Only 4 failures, under the 5 of the brute-force rule: banned for trying 4 distinct users."
echo "  erin / Winter2025! -> $(atk login --host "$SRV4" --port 993 --user erin \
	--password 'Winter2025!' --source $A3 --timeout 1.5)  (dropped at the NIC:" \
	"Dovecot checked $(dovecot_lines "passwd-file\\([a-z]*,$A3,") passwords from $A3)"

# ---- 4 -------------------------------------------------------------------------------

A4=198.19.4.4
say "4. Connection flood: $A4 opens 400 connections to 993 in 2 s"
legit_start flood
sleep 0.3
out=$(atk flood --host "$SRV4" --port 993 --count 400 --seconds 2 --timeout 0.9 --source $A4)
echo "  $out"
echo "  $(kv connected "$out") got through (a burst of 40, then 20/s); $(kv timeout "$out") SYNs were dropped by XDP."
echo "  Throttled, not banned: $A4 is $( [ -n "$(ban_field $A4 addr)" ] && echo "banned?!" || echo "not in the ban list")."
sleep 0.3
legit_report flood

# ---- 5 -------------------------------------------------------------------------------

say "5. Dovecot asks imapguard first: the auth policy server"
head -c 24 /dev/urandom | base64 >"$WORK/ap.key" && chmod 600 "$WORK/ap.key"
printf '\n[authpolicy]\nlisten = 127.0.0.1:19603\napi_key_file = %s\ntarpit_max = 15s\n' \
	"$WORK/ap.key" >>"$POLICY"
echo "  Added to the policy: [authpolicy] listen = 127.0.0.1:19603, api_key_file, tarpit_max = 15s"
run_ig reload -c "$CTL"
"$IG_BIN" authpolicy dovecot-config -p "$POLICY" >"$WORK/dovecot-policy.conf"
echo "\$ imapguard authpolicy dovecot-config -p policy.conf >> dovecot.conf   (key hidden)"
grep -E '^auth_policy_(server_url|server_api_header|reject_on_fail)' "$WORK/dovecot-policy.conf" |
	sed 's/\(api_header = [^:]*:\).*/\1.../; s/^/  /'
LAB_AUTH_POLICY=$WORK/dovecot-policy.conf lab_up 2>/dev/null || { echo "demo: couldn't reload Dovecot" >&2; exit 1; }
echo "  client -> dave logs in once from $CLI4: $(cli login --host "$SRV4" --port 993 --user dave --password dave-pass)"
echo "  ($CLI4 is now a known-good source of dave's.)"
A5=198.19.5.5
echo "  Tarpit: $A5 guesses carol's password; each failure delays the next check:"
for i in 1 2 3 4; do
	t0=$EPOCHREALTIME
	r=$(atk login --host "$SRV4" --port 993 --user carol --password "guess$i" --source $A5 --timeout 10)
	echo "    attempt $i: $r after $(( $(ms_since "$t0") / 100 ))00 ms"
done
echo "  Distributed spraying: 10 sources, one wrong password each, against dave"
srcs=$(for i in $(seq 1 10); do printf '198.19.6.%d,' "$i"; done)
out=$(atk brute --host "$SRV4" --user dave --count 10 --source "${srcs%,}" --timeout 8)
echo "    $out  (no source is banned: each failed once)"
echo "  198.19.6.11 -> dave / dave-pass (the RIGHT password): $(atk login --host "$SRV4" --port 993 \
	--user dave --password dave-pass --source 198.19.6.11 --timeout 8)"
grep "policy(dave,198.19.6.11," "$DOVECOT_LOG" | grep -m1 refusal | cut -d' ' -f4- | sed 's/^/  dovecot: /'
t0=$EPOCHREALTIME
echo "  $CLI4 -> dave / dave-pass (known-good): $(cli login --host "$SRV4" --port 993 --user dave \
	--password dave-pass) in $(ms_since "$t0") ms"
run_ig why --user dave -c "$CTL"

# ---- results --------------------------------------------------------------------------

say "Counters"
run_ig stats
say "Bans"
run_ig ban list
say "Events: every ban, and the first drop of each kind per source"
echo "\$ imapguard events --json   (condensed)"
ig events --json -c "$CTL" 2>&1 | "$PY" -c '
import json, sys, time
seen = set()
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    t = time.strftime("%H:%M:%S", time.localtime(e.get("ts", 0)))
    if e.get("type") == "authpolicy" and e["command"] == "allow" and e["status"] != 0:
        print("  %s  policy %-14s user=%s status=%d rule=%s" % (t, e["addr"], e["user"],
              e["status"], e["rule"]))
    elif e.get("type") == "ban":
        print("  %s  ban   %-15s rule=%s failures=%d users=%d for %ds" % (t, e["addr"],
              e["rule"], e["failures"], e["users"], e["duration_s"]))
    elif e.get("type") == "drop" and (e["reason"], e["addr"]) not in seen:
        seen.add((e["reason"], e["addr"]))
        print("  %s  drop  %-15s reason=%s port=%d" % (t, e["addr"], e["reason"], e["port"]))
'
