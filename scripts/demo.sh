#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `sudo make demo`: imapguard on a throwaway two-namespace lab, in under a
# minute. A client and an "IMAP server" (listeners on 143 and 993) are joined
# by a veth pair; we probe both ports, attach imapguard with its built-in
# default policy, probe again, show stats and status, then detach and remove
# everything (tests/lib.sh does the lab and its cleanup). Builds nothing: the
# Makefile has built build/imapguard first.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib.sh
source "$HERE/../tests/lib.sh"

# Headings in bold on a terminal only: CI logs get plain text.
if [ -t 1 ]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; else BOLD='' PLAIN=''; fi
say() { printf '\n%s== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
# run_ig ARGS...: show the command as a user would type it, then run it.
run_ig() { echo "\$ imapguard $*"; ig "$@"; }

# show PORT: probe PORT over IPv4 and IPv6 from the client.
show()
{
	printf '  port %-4s IPv4: %-10s IPv6: %s\n' "$1" \
		"$(probe $SRV4 "$1" $CLI4 1)" "$(probe $SRV6 "$1" $CLI6 1)"
}

if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (sudo make demo): it creates network namespaces and loads BPF" >&2
	exit 1
fi
if [ ! -x "$IG_BIN" ]; then
	echo "demo: no $IG_BIN; run make first" >&2
	exit 1
fi

trap lab_down EXIT
trap 'exit 130' INT TERM

say "Lab"
lab_up || { echo "demo: couldn't set up the lab" >&2; exit 1; }
cat <<EOF
  client namespace $NS_CLI   $CLI4, $CLI6 (and $CLI4B, $CLI6B)
        | veth $IF_CLI <-> $IF_SRV
  server namespace $NS_SRV   $SRV4, $SRV6, listening on 143 and 993
  imapguard runs in the server namespace with --pin-dir $PIN
EOF

say "Before imapguard: both ports answer"
show 143
show 993

say "Attach with the built-in default policy (143 reject, 993 pass + SYN budget)"
[ -e /etc/imapguard/imapguard.conf ] &&
	echo "  note: /etc/imapguard/imapguard.conf exists, so attach uses it instead"
# veth quirk, not imapguard's: a native-XDP reply (our TCP reset) is only
# delivered to a veth peer that runs XDP itself, so the client end gets a
# pass-only program first. Real NICs need nothing of the kind.
peer_xdp || { echo "demo: couldn't prepare the client veth" >&2; exit 1; }
run_ig attach --iface "$IF_SRV" || exit 1

say "After: plaintext IMAP is refused at once, IMAPS is served"
show 143
show 993

say "A burst of 400 connects in 1 s from $CLI4 to 993 (budget: 40 at once, then 20/s)"
flood $SRV4 993 $CLI4 400 1 | sed 's/^/  /'
echo "  meanwhile another client, $CLI4B: $(probe $SRV4 993 $CLI4B 1)"

say "Counters"
run_ig stats

say "Status"
run_ig status

say "Detach: everything back as it was"
run_ig detach --iface "$IF_SRV"
show 143
[ -e "$PIN" ] && echo "  pins still present?!" || echo "  pin dir $PIN removed"

say "Cleaning up the lab"
lab_down
echo "  namespaces, veths, listeners and pins removed"
