#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Debian package suite (issue 19): build the package (make deb), install it
# with `apt-get install ./imapguard_*.deb` on this machine, check what it
# installed, upgrade it to a rebuild one version up (an edited policy and the
# attached fast path must survive; only running units restart), remove it
# (units stopped, fast path detached, policy and state kept), then purge it
# and check that nothing is left.
#
#   bash tests/integration_deb.sh
#
# SERIAL LANE ONLY: this suite installs and purges a real package with
# apt-get/dpkg. It must not run while any other dpkg or apt operation runs
# (another suite's apt-get, scripts/deps.sh, an admin's upgrade): it waits for
# the dpkg lock (DPkg::Lock::Timeout) but the "nothing is left" check compares
# the file system before and after, which a concurrent install would upset.
#
# The install, checks and purge run in private mount and network namespaces
# (unshare -m -n), so the maintainer scripts see:
#  - a fresh bpffs on /sys/fs/bpf: prerm's detach can only touch what this
#    suite attached, never the host's pins or another suite's;
#  - a stand-in systemctl (bind-mounted over the real one) that logs its
#    calls, and a tmpfs /run with /run/systemd/system, so the systemd branches
#    of the scripts run and the log shows what they asked for (a daemon-reload
#    and, on removal, a stop; never an enable or a start). The host's systemd,
#    if any, is never called;
#  - two veth interfaces with the fast path attached (XDP on the default pin
#    directory, tc on an imapguard@IF one), which the removal must detach.
# dpkg's database and the installed files are the real ones: the package is
# really installed and purged. SKIP when imapguard is already installed, or
# /etc/imapguard or /var/lib/imapguard exist (an admin's, not ours to purge).
#
# Prints PASS/FAIL/SKIP lines; exits 1 if anything failed, 249 on SKIP.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/tests/integration_deb.sh
SKIP_RC=249
source "$ROOT/tests/assert.sh"
T=deb

# Where the suite looks for anything named *imapguard* before and after.
SCAN_ROOTS=(/etc /lib/systemd /usr/lib/systemd /usr/sbin /usr/bin /usr/share/doc
	/usr/share/man /usr/share/bash-completion /usr/share/lintian /var/lib /var/cache/apt/archives)

scan()
{
	find "${SCAN_ROOTS[@]}" -xdev -name '*imapguard*' 2>/dev/null |
		grep -v -e '^/var/lib/dpkg/info/imapguard\.' | sort
}

# pkg_status: dpkg's status of imapguard, empty if dpkg does not know it.
pkg_status()
{
	dpkg-query -W -f='${db:Status-Abbrev}' imapguard 2>/dev/null | tr -d ' '
}

# log_as WHAT TEXT: TEXT on stderr, each line as a comment (the runners show
# a failing suite's stderr).
log_as()
{
	local l

	while IFS= read -r l; do
		echo "# $1: $l"
	done <<<"$2" >&2
}

# ---- inside the namespaces ---------------------------------------------------

# Everything below runs as `bash $SELF --ns DEB DEB2 WORK` under unshare -m -n.
# systemctl verbs that would start or enable a unit (a whole word of the
# logged call: try-restart is not restart).
VERBS_START='(^| )(start|restart|reload-or-restart|enable|reenable|isolate)( |$)'
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)

ns_purge_on_exit()
{
	if [ -n "$(pkg_status)" ]; then
		echo "# cleanup: purging imapguard" >&2
		DEBIAN_FRONTEND=noninteractive apt-get purge "${APT_OPTS[@]}" imapguard >&2 </dev/null
	fi
}

# ns_setup WORK: private bpffs, /run with a systemd marker, the stand-in
# systemctl, veth interfaces.
ns_setup()
{
	local work=$1 real

	mount -t bpf bpf /sys/fs/bpf || return 1
	mount -t tmpfs -o mode=0755 tmpfs /run || return 1
	mkdir -p /run/systemd/system /run/lock || return 1
	cat >"$work/systemctl" <<-EOF
		#!/bin/sh
		# Stand-in for systemctl: log the call; nothing is enabled or active.
		echo "\$*" >>"$work/systemctl.log"
		for a in "\$@"; do
			case \$a in
			-*) ;;
			is-active) exit 3 ;;
			is-enabled) echo disabled; exit 1 ;;
			*) exit 0 ;;
			esac
		done
		exit 0
	EOF
	chmod 0755 "$work/systemctl"
	: >"$work/systemctl.log"
	real=$(readlink -f "$(command -v systemctl)") || return 1
	mount --bind "$work/systemctl" "$real" || return 1
	# A policy-rc.d that forbids actions (scripts/deps.sh leaves one while
	# it installs) would hide the stop from the log: allow all, here only.
	if [ -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 0\n' >"$work/policy-rc.d"
		chmod 0755 "$work/policy-rc.d"
		mount --bind "$work/policy-rc.d" /usr/sbin/policy-rc.d || return 1
	fi
	# veth pairs (the kernel may have no dummy driver); only one end is used.
	ip link set lo up &&
		ip link add igdeb0 type veth peer name igdeb0p && ip link set igdeb0 up &&
		ip link add igdeb1 type veth peer name igdeb1p && ip link set igdeb1 up
}

ns_main()
{
	local deb=$1 deb2=$2 work=$3 out rc f u left conf=/etc/imapguard/imapguard.conf

	T=deb
	trap ns_purge_on_exit EXIT
	if ns_setup "$work"; then ok ns_setup; else bad ns_setup "see stderr"; exit 1; fi

	out=$(DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "$deb" 2>&1 </dev/null)
	rc=$?
	log_as install "$out"
	check apt_install_rc 0 "$rc"
	check installed ii "$(pkg_status)"
	[ "$(pkg_status)" = ii ] || exit 1

	check_cmd version 0 "imapguard $(dpkg-query -W -f='${Version}' imapguard) *" imapguard --version
	check_cmd in_path 0 /usr/sbin/imapguard command -v imapguard
	check conffile 1 "$(dpkg-query -W -f='${Conffiles}\n' imapguard | grep -c '^ /etc/imapguard/imapguard.conf ')"
	check statedir_mode 700 "$(stat -c %a /var/lib/imapguard 2>&1)"
	check_cmd man_imapguard 0 /usr/share/man/man8/imapguard.8.gz man -w imapguard
	check_cmd man_conf 0 /usr/share/man/man5/imapguard.conf.5.gz man -w 5 imapguard.conf
	check_cmd completion 0 "complete -F * imapguard" \
		bash -c 'source /usr/share/bash-completion/completions/imapguard && complete -p imapguard'
	for u in imapguard.service imapguard@.service imapguard@eth0.service; do
		out=$(cd /lib/systemd/system && systemd-analyze verify "./$u" 2>&1)
		rc=$?
		if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
			ok "verify_$u"
		else
			bad "verify_$u" "exit $rc: ${out//$'\n'/ | }"
		fi
	done

	# Nothing enabled or started: no start/enable asked of systemctl, no
	# symlink, no daemon, no pins; the units were made known (daemon-reload).
	check_empty no_start_asked "$(grep -E "$VERBS_START|(^| )try-restart( |\$)" "$work/systemctl.log")"
	check daemon_reload 1 "$(grep -c '^--system daemon-reload$' "$work/systemctl.log")"
	check_empty no_enable_symlink "$(find /etc/systemd/system -name 'imapguard*' 2>/dev/null)"
	check_empty no_pins "$(ls -d /sys/fs/bpf/imapguard* 2>/dev/null)"
	check_empty no_daemon "$(for f in /proc/[0-9]*/exe; do
		[ "$(readlink "$f" 2>/dev/null)" = /usr/sbin/imapguard ] && echo "${f//[^0-9]/}"; done)"

	# What the admin may have left running: removal must lift it.
	check_cmd attach_xdp 0 "*" imapguard attach --iface igdeb0 --mode generic
	check_cmd attach_tc 0 "*" imapguard --pin-dir /sys/fs/bpf/imapguard-igdeb1 attach --iface igdeb1 --mode tc
	check_match xdp_attached "*xdpgeneric*" "$(ip link show igdeb0)"
	check_match tc_attached "*ig_tc*" "$(tc filter show dev igdeb1 ingress)"

	# Upgrade: the admin's edit of the policy stays, enforcement stays
	# attached (prerm upgrade detaches nothing), and only units already
	# running are restarted (try-restart), none started.
	echo '; igtest: a local edit' >>"$conf"
	: >"$work/systemctl.log"
	out=$(DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "$deb2" 2>&1 </dev/null)
	rc=$?
	log_as upgrade "$out"
	check apt_upgrade_rc 0 "$rc"
	check upgraded "$(dpkg-deb -f "$deb2" Version)" "$(dpkg-query -W -f='${Version}' imapguard)"
	check conffile_kept 1 "$(grep -c '^; igtest: a local edit$' "$conf")"
	check_empty no_dpkg_files "$(ls /etc/imapguard/*.dpkg-* 2>/dev/null)"
	check_match xdp_kept "*xdpgeneric*" "$(ip link show igdeb0)"
	check_match tc_kept "*ig_tc*" "$(tc filter show dev igdeb1 ingress)"
	check upgrade_try_restart 2 "$(grep -cE "try-restart (imapguard.service|imapguard@\\*.service)$" "$work/systemctl.log")"
	check_empty upgrade_no_start "$(grep -E "$VERBS_START" "$work/systemctl.log")"

	# Remove: the units are stopped and the fast path lifted from both
	# interfaces; the policy and the daemon's state (a stand-in file here)
	# stay for a reinstall.
	# A stale, empty pin directory is no attachment: removal says nothing
	# about it, purge deletes it.
	echo igtest >/var/lib/imapguard/state
	mkdir /sys/fs/bpf/imapguard-stale
	: >"$work/systemctl.log"
	out=$(DEBIAN_FRONTEND=noninteractive apt-get remove "${APT_OPTS[@]}" imapguard 2>&1 </dev/null)
	rc=$?
	log_as remove "$out"
	check apt_remove_rc 0 "$rc"
	check_empty remove_no_warning "$(grep -iE 'could not|warning|error' <<<"$out")"
	check removed rc "$(pkg_status)"
	check stop_asked 1 "$(grep -cE "(^| )stop imapguard.service imapguard@\*.service$" "$work/systemctl.log")"
	check_empty xdp_detached "$(ip link show igdeb0 | grep -i xdp)"
	check_empty tc_detached "$(tc filter show dev igdeb1 ingress)"
	check pins_gone /sys/fs/bpf/imapguard-stale "$(ls -d /sys/fs/bpf/imapguard* 2>/dev/null)"
	check remove_keeps_conf 1 "$(grep -c '^; igtest: a local edit$' "$conf" 2>&1)"
	check remove_keeps_state igtest "$(cat /var/lib/imapguard/state 2>&1)"

	out=$(DEBIAN_FRONTEND=noninteractive apt-get purge "${APT_OPTS[@]}" imapguard 2>&1 </dev/null)
	rc=$?
	log_as purge "$out"
	check apt_purge_rc 0 "$rc"
	check_empty purge_no_warning "$(grep -iE 'could not|warning|error' <<<"$out")"
	check_empty purge_pins_gone "$(ls -d /sys/fs/bpf/imapguard* 2>/dev/null)"

	# Nothing left: dpkg forgot the package, every file it shipped is gone,
	# and so are the directories it and its daemon made.
	check not_known "" "$(pkg_status)"
	left=
	while read -r f; do
		[ -e "$f" ] || [ -L "$f" ] && left+=" $f"
	done < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }')
	check_empty files_gone "${left# }"
	left=
	for f in /etc/imapguard /var/lib/imapguard /run/imapguard /usr/share/doc/imapguard \
		 /var/lib/dpkg/info/imapguard.*; do
		[ -e "$f" ] && left+=" $f"
	done
	left+=$(find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
		-name '*imapguard*' 2>/dev/null | tr '\n' ' ')
	check_empty dirs_gone "${left# }"
	trap - EXIT
	[ "$FAILED" -eq 0 ]
}

if [ "${1:-}" = --ns ]; then
	ns_main "$2" "$3" "$4"
	exit $?
fi

# ---- outside: preconditions, build, the namespaced run, the final scan -------

[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get, dpkg, namespaces)"
for c in dpkg-buildpackage apt-get unshare systemd-analyze man tc; do
	command -v "$c" >/dev/null || skip "$c is not installed (scripts/deps.sh)"
done
[ -z "$(pkg_status)" ] || skip "imapguard is already known to dpkg ($(pkg_status)): not ours to purge"
for d in /etc/imapguard /var/lib/imapguard; do
	[ -e "$d" ] && skip "$d exists (an installation not from this suite)"
done

t0=$SECONDS
WORK=$(mktemp -d /tmp/igtest-deb$$.XXXXXX) || exit 1
trap 'rm -rf "$WORK"' EXIT
before=$(scan)

if out=$(bash "$ROOT/scripts/build-deb.sh" 2>&1); then
	ok build_lintian
else
	bad build_lintian "${out//$'\n'/ | }"
	exit 1
fi
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -SVersion)
deb=$ROOT/build/deb/imapguard_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
check deb_built yes "$([ -f "$deb" ] && echo yes)"

# The "next release", for the upgrade: the same tree, one changelog entry up.
mkdir "$WORK/src"
tar -C "$ROOT" --exclude=./build --exclude=./.output --exclude=./.git -cf - . | tar -C "$WORK/src" -xf -
{
	printf 'imapguard (%s+igtest1) unstable; urgency=medium\n\n' "$version"
	printf '  * Test upgrade (tests/integration_deb.sh).\n\n'
	printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -SMaintainer)" \
		"$(date -R)"
	cat "$ROOT/debian/changelog"
} >"$WORK/src/debian/changelog"
if out=$(bash "$WORK/src/scripts/build-deb.sh" 2>&1); then
	ok build_upgrade
else
	bad build_upgrade "${out//$'\n'/ | }"
	exit 1
fi
deb2=$(ls "$WORK"/src/build/deb/imapguard_"$version"+igtest1_*.deb)

timeout -k 10 900 unshare --mount --net --propagation private bash "$SELF" --ns "$deb" "$deb2" "$WORK"
rc=$?
[ "$rc" -eq 0 ] || FAILED=1
if [ -n "$(pkg_status)" ]; then
	bad still_installed "dpkg status $(pkg_status) after the run"
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 imapguard >&2 </dev/null
fi
check_empty nothing_left "$(comm -13 <(echo "$before") <(scan))"
echo "# deb suite: $((SECONDS - t0)) s"
[ "$FAILED" -eq 0 ]
