#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# imapguard beside other XDP and tc programs (issue #20, part 3): Debian's
# xdp-tools `xdp-filter` on the same veth, denying one port (110), and
# imapguard with 143 dropped and 993 served. Each test_* runs in its own
# child with a fresh lab (tests/lib.sh) and a time limit, and prints one
# PASS/FAIL line per check.
#
#   bash tests/integration_coexist.sh                  # every test
#   bash tests/integration_coexist.sh test_reverse ... # just these
#
# xdp-filter pins its maps under /sys/fs/bpf/xdp-filter and libxdp keeps a
# lock and dispatcher pins under /sys/fs/bpf/xdp. So that a test never
# touches the host's, every xdp-filter command runs in one private mount
# namespace per lab with a bpffs of its own (xf_up), held open by a sleeping
# process that lab_down kills by PID. libxdp's dispatcher needs freplace,
# which this kernel refuses: xdp-filter then attaches its one program
# directly, which is the case imapguard must live beside.
#
# Environment: IG_BIN (binary, default build/imapguard), TEST_TIMEOUT
# (seconds per test, default 60), IG_LAB_LOG (see tests/run_all.sh).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
SKIP_RC=249
TEST_TIMEOUT=${TEST_TIMEOUT:-60}

ALL_TESTS=(
	test_filter_native_then_auto
	test_filter_generic_then_auto
	test_refuse_forced_modes
	test_reverse_order
	test_daemon_beside_filter
	test_tc_neighbours
)

source "$HERE/assert.sh"

FPORT=110	# the port xdp-filter denies

# ---- fixtures --------------------------------------------------------------

# pol NAME: 143 dropped, 993 served, small maps.
pol()
{
	policy_file "$1" <<-EOF
	[port 143]
	action = drop
	[port 993]
	action = pass
	[limits]
	max_bans = 1024
	max_sources = 1024
	max_deny = 1024
	max_allow = 1024
	EOF
}

XF_PID=	# the holder of the private mount namespace

# xf_up: the private mount namespace with its own bpffs, and a listener on
# FPORT in the server namespace.
xf_up()
{
	local i

	unshare -m --propagation private sh -c \
		"mount -t bpf bpf /sys/fs/bpf && touch '$LAB_TMP/bpffs' && exec sleep $((TEST_TIMEOUT + 30))" \
		</dev/null &
	XF_PID=$!
	LAB_PIDS+=("$XF_PID")
	for ((i = 0; i < 50; i++)); do
		[ -e "$LAB_TMP/bpffs" ] && break
		sleep 0.1
	done
	[ -e "$LAB_TMP/bpffs" ] || { echo "no private bpffs" >&2; return 1; }
	listen "$NS_SRV" $FPORT
}

# xf ARGS...: xdp-filter in the server namespace and the private bpffs.
xf()
{
	nsenter --mount="/proc/$XF_PID/ns/mnt" --net="/run/netns/$NS_SRV" xdp-filter "$@" </dev/null
}

# xf_load MODE: load xdp-filter (native or skb) and deny FPORT.
xf_load()
{
	xf load "$IF_SRV" --mode "$1" >&2 && xf port $FPORT >&2
}

# xdp_id: the id of the program in the server interface's XDP slot ("" if none).
xdp_id()
{
	ip -n "$NS_SRV" -d link show dev "$IF_SRV" | awk '/prog\/xdp/ { print $3; exit }'
}

# xdp_name: its name.
xdp_name()
{
	ip -n "$NS_SRV" -d link show dev "$IF_SRV" | awk '/prog\/xdp/ { print $5; exit }'
}

# expect_enforced WHAT FILTER IG: probes over IPv4 and IPv6. FILTER: xdp-filter
# enforces (FPORT times out, else it connects); IG: imapguard drops 143.
# 993 is always served.
expect_enforced()
{
	local what=$1 f=$2 g=$3 a

	for a in "$SRV4" "$SRV6"; do
		local v=v4
		[ "$a" = "$SRV6" ] && v=v6
		check_probe "$what.$FPORT.$v" "$([ "$f" = 1 ] && echo timeout || echo connected)" \
			"$a" $FPORT "" 0.5
		check_probe "$what.143.$v" "$([ "$g" = 1 ] && echo timeout || echo connected)" \
			"$a" 143 "" 0.5
		check_probe "$what.993.$v" connected "$a" 993
	done
}

# ---- tests -----------------------------------------------------------------

# filter_then_auto MODE WORD: xdp-filter first in MODE, then imapguard auto
# goes to tc ingress, names it (WORD: native or generic), and both enforce;
# status lists it; detaching imapguard leaves it enforcing.
filter_then_auto()
{
	local mode=$1 word=$2 pol id out

	xf_up || { bad setup "private bpffs"; return; }
	xf_load "$mode" || { bad xdp_filter_load "xdp-filter load --mode $mode failed"; return; }
	id=$(xdp_id)
	check_match filter_attached "[0-9]*" "$id"
	expect_enforced filter_only 1 0
	pol=$(pol p)
	out=$(ig attach --iface "$IF_SRV" --policy "$pol" 2>&1)
	check attach_rc 0 $?
	check_match attach_names_it "*XDP slot holds another program (id $id, name 'xdpfilt_*', $word mode)*tc ingress*" "$out"
	check_match attach_tc "*attached to $IF_SRV in tc mode (auto)*" "$out"
	check xdp_untouched "$id" "$(xdp_id)"
	expect_enforced both 1 1
	out=$(ig status)
	check_match status_text "*beside: id $id, name 'xdpfilt_*', $word mode (runs before imapguard)*" "$out"
	out=$(ig status --json | json_get \
		'[(o["hook"], o["prog_id"], o["mode"], o["name"][:8]) for o in j["interfaces"][0]["others"]]')
	check status_json "[('xdp', $id, '$word', 'xdpfilt_')]" "$out"
	check_cmd detach 0 "detached from $IF_SRV*" ig detach --iface "$IF_SRV"
	check xdp_kept "$id" "$(xdp_id)"
	check no_tc_left "" "$(ip netns exec "$NS_SRV" tc filter show dev "$IF_SRV" ingress 2>/dev/null)"
	expect_enforced after_detach 1 0
	check_match filter_status "*$IF_SRV*" "$(xf status 2>&1)"
}

test_filter_native_then_auto()
{
	filter_then_auto native native
}

test_filter_generic_then_auto()
{
	filter_then_auto skb generic
}

# --mode native|generic refuse, naming the program, and leave nothing
# behind; --replace from tc to native refuses the same way and keeps tc, and
# succeeds once the other program is gone.
test_refuse_forced_modes()
{
	local pol id m out

	xf_up || { bad setup "private bpffs"; return; }
	xf_load native || { bad xdp_filter_load "xdp-filter load failed"; return; }
	id=$(xdp_id)
	pol=$(pol p)
	for m in native generic; do
		check_cmd "refuse_$m" 1 \
			"*Couldn't attach to iface '$IF_SRV' in $m mode: its XDP slot holds another program (id $id, name 'xdpfilt_*', native mode), and imapguard never replaces it*" \
			ig attach --iface "$IF_SRV" --mode "$m" --policy "$pol"
		check "no_pins_$m" no "$([ -e "$PIN" ] && echo yes || echo no)"
	done
	check_cmd attach_tc 0 "*tc mode*" ig attach --iface "$IF_SRV" --mode tc --policy "$pol"
	out=$(ig attach --iface "$IF_SRV" --mode native --replace 2>&1)
	check replace_rc 1 $?
	check_match replace_names_it "*holds another program (id $id,*" "$out"
	check still_tc tc "$(ig status --json | json_get 'j["interfaces"][0]["mode"]')"
	check xdp_untouched "$id" "$(xdp_id)"
	expect_enforced after_refusal 1 1
	# Once the other program is gone, --replace moves imapguard into XDP.
	xf unload "$IF_SRV" >&2 || { bad xdp_filter_unload "xdp-filter unload failed"; return; }
	check_cmd replace_native 0 "*native mode*" \
		ig attach --iface "$IF_SRV" --mode native --replace
	check now_ours ig_xdp "$(xdp_name)"
	check tc_gone "" "$(ip netns exec "$NS_SRV" tc filter show dev "$IF_SRV" ingress 2>/dev/null)"
	expect_enforced moved_to_xdp 0 1
}

# imapguard first (native XDP, a pinned link): xdp-filter's load fails, in
# either mode, and imapguard keeps its slot and keeps enforcing.
test_reverse_order()
{
	local pol id m out

	xf_up || { bad setup "private bpffs"; return; }
	pol=$(pol p)
	check_cmd attach 0 "*native mode (auto)*" ig attach --iface "$IF_SRV" --policy "$pol"
	id=$(xdp_id)
	check ours ig_xdp "$(xdp_name)"
	for m in native skb; do
		if out=$(xf load "$IF_SRV" --mode $m 2>&1); then
			bad "filter_load_fails_$m" "xdp-filter load --mode $m succeeded"
		else
			check_match "filter_load_fails_$m" "*busy*" "$out"
		fi
		check "slot_kept_$m" "$id" "$(xdp_id)"
	done
	expect_enforced imapguard_only 0 1
	check still_native native "$(ig status --json | json_get 'j["interfaces"][0]["mode"]')"
	check status_no_others "[]" "$(ig status --json | json_get 'j["interfaces"][0]["others"]')"
}

# The daemon, like attach --mode auto, goes to tc beside xdp-filter and
# says so in its log.
test_daemon_beside_filter()
{
	local pol id dpid i log=$LAB_TMP/daemon.log

	xf_up || { bad setup "private bpffs"; return; }
	xf_load native || { bad xdp_filter_load "xdp-filter load failed"; return; }
	id=$(xdp_id)
	pol=$(pol d)
	nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" run --policy "$pol" \
		--iface "$IF_SRV" --state-file "$LAB_TMP/state" --control-socket "$LAB_TMP/ctl.sock" \
		--detach-on-exit </dev/null >"$log" 2>&1 &
	dpid=$!
	LAB_PIDS+=("$dpid")
	for ((i = 0; i < 300; i++)); do
		grep -q "attached in" "$log" && break
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	check_match daemon_names_it "*XDP slot holds another program (id $id, name 'xdpfilt_*', native mode)*" "$(cat "$log")"
	check_match daemon_tc "*attached in tc mode*" "$(cat "$log")"
	expect_enforced daemon 1 1
	kill -TERM "$dpid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$dpid"
	check daemon_exit 0 $?
	check xdp_kept "$id" "$(xdp_id)"
	expect_enforced after_daemon 1 0
}

# tc neighbours: imapguard in tc mode creates clsact; someone else's filter
# added after it is listed by status, and detach removes only ours (clsact
# stays for the other filter). A clsact that was there before is never
# removed. The other filter matches only port 9: a filter that matches runs
# its verdict before ours (its prio 3 is lower than ours), as tc does.
test_tc_neighbours()
{
	local pol out

	pol=$(pol t)
	check_cmd attach 0 "*tc mode*" ig attach --iface "$IF_SRV" --mode tc --policy "$pol"
	ip netns exec "$NS_SRV" tc filter add dev "$IF_SRV" ingress prio 3 protocol ip \
		u32 match ip dport 9 0xffff classid 1:1 || { bad setup "tc u32 filter"; return; }
	out=$(ig status)
	check_match status_lists_u32 "*beside: tc ingress u32 filter prio 3 handle 0x80000800 (runs before imapguard)*" "$out"
	out=$(ig status --json | json_get \
		'sorted(set((o["hook"], o["kind"], o["prio"], o["prog_id"]) for o in j["interfaces"][0]["others"]))')
	check status_json_u32 "[('tc_ingress', 'u32', 3, 0)]" "$out"
	check_cmd detach 0 "*" ig detach --iface "$IF_SRV"
	out=$(ip netns exec "$NS_SRV" tc filter show dev "$IF_SRV" ingress)
	check_match u32_kept "*u32*" "$out"
	check_empty ours_gone "$(grep -F 'handle 0x1a9' <<<"$out")"
	check_match clsact_kept "*clsact*" "$(ip netns exec "$NS_SRV" tc qdisc show dev "$IF_SRV")"
	check_probe served_143 connected "$SRV4" 143
	# Now clsact is someone else's: attach and detach leave it.
	check_cmd attach_again 0 "*tc mode*" ig attach --iface "$IF_SRV" --mode tc --policy "$pol"
	check_probe dropped_143 timeout "$SRV4" 143 "" 0.5
	check_cmd detach_again 0 "*" ig detach --iface "$IF_SRV"
	ip netns exec "$NS_SRV" tc filter del dev "$IF_SRV" ingress
	check_match clsact_not_ours "*clsact*" "$(ip netns exec "$NS_SRV" tc qdisc show dev "$IF_SRV")"
}

# ---- runner ----------------------------------------------------------------

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

preflight()
{
	local bin=${IG_BIN:-$HERE/../build/imapguard} c

	[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, BPF)"; return 1; }
	[ -x "$bin" ] || { echo "no binary at $bin (run make)"; return 1; }
	for c in ip nsenter unshare tc timeout awk xdp-filter; do
		command -v $c >/dev/null || { echo "'$c' not installed (xdp-tools for xdp-filter)"; return 1; }
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
		echo "SKIP integration_coexist: $why"
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
	echo "# integration_coexist: $npass tests passed, $nfail failed, $nskip skipped"
	[ "$nfail" -eq 0 ]
}

main "$@"
