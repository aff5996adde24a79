#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install, idempotently, every Debian package imapguard's build, tests and demo need.
# Only what is missing is installed, so a second run is a no-op and needs no network.
set -euo pipefail

PKGS=(
	make gcc clang llvm libclang-rt-14-dev pkg-config
	libbpf-dev libelf-dev zlib1g-dev libssl-dev libinih-dev libsystemd-dev libjansson-dev libmicrohttpd-dev
	bpftool iproute2 nftables iptables
	python3 util-linux procps kmod
	cppcheck shellcheck
	openssl dovecot-core dovecot-imapd systemd
	libhiredis-dev redis-server
	liboath-dev libqrencode-dev libcurl4-openssl-dev
	crowdsec xdp-tools
	chromium
	debhelper dpkg-dev fakeroot lintian man-db
	stress-ng
)

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: must run as root (apt-get install)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps.sh: all ${#PKGS[@]} packages present"
else
	echo "deps.sh: installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Packages like dovecot start their service on install; the lab runs
	# its own private instance, so forbid service starts during install.
	policy_rc=/usr/sbin/policy-rc.d
	own_policy=0
	if [ ! -e "$policy_rc" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
		chmod +x "$policy_rc"
		own_policy=1
	fi
	trap 'if [ "$own_policy" = 1 ]; then rm -f "$policy_rc"; fi' EXIT
	# crowdsec's postinst registers with the central API (CAPI) when its
	# credentials file is empty, and fails without a network. The tests run
	# a local API (LAPI) only: a non-empty file tells the package to skip.
	capi=/etc/crowdsec/online_api_credentials.yaml
	if [ ! -s "$capi" ]; then
		mkdir -p /etc/crowdsec
		echo '# imapguard: no central API (CAPI) registration' >"$capi"
	fi
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# bpffs is needed for pinning; mount it if the host did not.
if ! mount | grep -q ' /sys/fs/bpf type bpf '; then
	mount -t bpf bpf /sys/fs/bpf
fi
