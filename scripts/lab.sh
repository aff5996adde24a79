#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The Dovecot lab for the end-to-end tests and the demo:
#
#   lab.sh up | down | status        (as root)
#
# Four network namespaces and a real Dovecot. Every client and attacker packet
# reaches the server through ONE interface, srv0 in the server namespace, which
# is where imapguard attaches:
#
#   ig-ID-cli  cli0 198.18.1.10/24 2001:db8:1::10/64        legitimate client
#                |
#                | veth (peer r-cli: 198.18.1.1, 2001:db8:1::1)
#                |
#   ig-ID-rtr  router: r-cli, r-atk, r-srv; forwarding, no NAT
#                |                      \
#                | veth                  \ veth (peer r-atk: 198.18.2.1, 2001:db8:2::1)
#                |                       ig-ID-atk  atk0 198.18.2.2, 2001:db8:2::2
#                |                         attacker: owns all of 198.19.0.0/16 and
#                |                         2001:db8:666::/64 (any address bindable)
#                | (peer r-srv: 198.18.0.254, 2001:db8:0:1::fe)
#   ig-ID-srv  srv0 198.18.0.1/24 2001:db8:0:1::1/64        Dovecot on 143, 993
#
# Attach imapguard from the server namespace, e.g.
#   nsenter --net=/run/netns/ig-ID-srv imapguard attach --iface srv0 ...
# (nsenter, not `ip netns exec`, keeps the host's /sys/fs/bpf; see
# tests/lib.sh). Native XDP_TX on a veth needs an XDP program on the peer,
# here r-srv in the router namespace (see peer_xdp in tests/lib.sh).
#
# The router only forwards, so Dovecot logs rip= the real source address.
# Addresses come only from 198.18.0.0/15 (RFC 2544) and 2001:db8::/32
# (RFC 3849), so nothing can leak off the machine. Dovecot logs only to
# $LAB_DIR/dovecot.log: no syslog, no journald (no systemd runs here).
#
# Environment:
#   LAB_ID        name of this lab (default "lab"); every name derives from it,
#                 so several labs can run side by side.
#   LAB_DIR       state directory (default /tmp/imapguard-$LAB_ID): config,
#                 certificate, users, mail, dovecot.log, Dovecot's base_dir.
#   LAB_PLAINTEXT "yes" (default): LOGIN without TLS allowed on 143;
#                 "no": disable_plaintext_auth = yes.
#   LAB_AUTH_DELAY "fast" (default): auth_failure_delay = 0 and no anvil auth
#                 penalty, so a failed login is answered within 0.5 s (Dovecot
#                 2.3 flushes queued failures on a 500 ms timer; nothing
#                 configurable goes lower). "stock": Dovecot's defaults, a 2 s
#                 failure delay plus a per-IP penalty growing to 15 s (per /48
#                 for IPv6).
#   LAB_TLS_MIN   unset (default): Dovecot's own minimum, TLSv1.2 in 2.3.
#                 "TLSv1" or "TLSv1.1": accept that too (143 STARTTLS and 993),
#                 with OpenSSL security level 0, without which OpenSSL 3
#                 refuses anything below TLS 1.2 (for `imapguard audit` tests).
#   LAB_AUTH_POLICY unset (default): no auth policy server. A file: its
#                 Dovecot settings (e.g. from `imapguard authpolicy
#                 dovecot-config`) are added to dovecot.conf, so Dovecot asks
#                 imapguard before and after every authentication. A second
#                 `up` with another file reloads Dovecot (SIGHUP).
#
# `up` is idempotent and `down` removes exactly what `up` made (namespaces by
# name, Dovecot by PID, LAB_DIR only if it carries our marker), also after a
# failed `up`.
set -u -o pipefail

LAB_ID=${LAB_ID:-lab}
if [[ ! $LAB_ID =~ ^[A-Za-z0-9_-]{1,32}$ ]]; then
	echo "lab: LAB_ID must be 1-32 of [A-Za-z0-9_-]" >&2
	exit 2
fi
LAB_DIR=${LAB_DIR:-/tmp/imapguard-$LAB_ID}
[[ $LAB_DIR == /* ]] || LAB_DIR=$PWD/$LAB_DIR	# Dovecot wants absolute paths
LAB_PLAINTEXT=${LAB_PLAINTEXT:-yes}
LAB_AUTH_DELAY=${LAB_AUTH_DELAY:-fast}
LAB_TLS_MIN=${LAB_TLS_MIN:-}
LAB_AUTH_POLICY=${LAB_AUTH_POLICY:-}
if [ -n "$LAB_AUTH_POLICY" ] && [ ! -r "$LAB_AUTH_POLICY" ]; then
	echo "lab: LAB_AUTH_POLICY '$LAB_AUTH_POLICY' is not a readable file" >&2
	exit 2
fi
if [[ ! $LAB_TLS_MIN =~ ^(|TLSv1|TLSv1\.[123])$ ]]; then
	echo "lab: LAB_TLS_MIN must be TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3" >&2
	exit 2
fi

NS_SRV=ig-$LAB_ID-srv
NS_CLI=ig-$LAB_ID-cli
NS_ATK=ig-$LAB_ID-atk
NS_RTR=ig-$LAB_ID-rtr
# Interfaces are created directly inside their namespaces, so these short
# fixed names never clash between labs.
IF_SRV=srv0	# the server-facing interface: imapguard attaches here
IF_CLI=cli0
IF_ATK=atk0

SRV4=198.18.0.1 SRV6=2001:db8:0:1::1
CLI4=198.18.1.10 CLI6=2001:db8:1::10
ATK4_NET=198.19.0.0/16 ATK6_NET=2001:db8:666::/64
ATK4=198.19.0.1 ATK6=2001:db8:666::1	# the attacker's default source
RTR_SRV4=198.18.0.254 RTR_SRV6=2001:db8:0:1::fe
RTR_CLI4=198.18.1.1 RTR_CLI6=2001:db8:1::1
RTR_ATK4=198.18.2.1 RTR_ATK6=2001:db8:2::1
ATK_T4=198.18.2.2 ATK_T6=2001:db8:2::2	# attacker's transit address

USERS=(alice bob carol dave erin)	# password: NAME-pass
MAIL_USER=dovecot			# owns the mailboxes; an unprivileged system user
MARKER=.imapguard-lab			# in LAB_DIR: proof that `down` may delete it
BASE_DIR=$LAB_DIR/run			# Dovecot's private base_dir

log() { echo "lab[$LAB_ID]: $*" >&2; }
die() { log "$*"; exit 1; }

have_ns() { [ -e "/run/netns/$1" ]; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---- network ---------------------------------------------------------------

# mk_ns NS: the namespace with lo up. IPv6 duplicate address detection off
# before any interface exists, so addresses (link-local ones too) are usable
# at once instead of after a 1-2 s DAD wait.
mk_ns()
{
	have_ns "$1" || ip netns add "$1" || return 1
	nsx "$1" sysctl -q -w net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 >/dev/null || return 1
	ip -n "$1" link set lo up
}

# veth NS_A IF_A NS_B IF_B: a veth pair created straight into both namespaces
# (nothing ever appears in the host namespace).
veth()
{
	ip -n "$1" link show "$2" >/dev/null 2>&1 ||
		ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || return 1
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

# addr NS IF ADDR/LEN: idempotent ("replace"); IPv6 without DAD.
addr()
{
	local extra=
	[[ $3 == *:* ]] && extra=nodad
	ip -n "$1" addr replace "$3" dev "$2" $extra
}

net_up()
{
	local ns

	for ns in "$NS_SRV" "$NS_RTR" "$NS_CLI" "$NS_ATK"; do
		mk_ns "$ns" || return 1
	done
	# The router forwards between the three links. rp_filter off: the
	# lab's asymmetric-looking AnyIP sources must never be dropped there.
	nsx "$NS_RTR" sysctl -q -w net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 >/dev/null || return 1

	veth "$NS_SRV" "$IF_SRV" "$NS_RTR" r-srv || return 1
	veth "$NS_CLI" "$IF_CLI" "$NS_RTR" r-cli || return 1
	veth "$NS_ATK" "$IF_ATK" "$NS_RTR" r-atk || return 1

	addr "$NS_SRV" "$IF_SRV" $SRV4/24 && addr "$NS_SRV" "$IF_SRV" $SRV6/64 &&
	addr "$NS_RTR" r-srv $RTR_SRV4/24 && addr "$NS_RTR" r-srv $RTR_SRV6/64 &&
	addr "$NS_CLI" "$IF_CLI" $CLI4/24 && addr "$NS_CLI" "$IF_CLI" $CLI6/64 &&
	addr "$NS_RTR" r-cli $RTR_CLI4/24 && addr "$NS_RTR" r-cli $RTR_CLI6/64 &&
	addr "$NS_ATK" "$IF_ATK" $ATK_T4/24 && addr "$NS_ATK" "$IF_ATK" $ATK_T6/64 &&
	addr "$NS_RTR" r-atk $RTR_ATK4/24 && addr "$NS_RTR" r-atk $RTR_ATK6/64 &&
	# The attacker's default sources, as real addresses: a route's "src"
	# must be one (for IPv6, an AnyIP route is not enough).
	addr "$NS_ATK" lo $ATK4/32 && addr "$NS_ATK" lo $ATK6/128 || return 1

	# The attacker owns whole prefixes ("AnyIP"): a local route makes every
	# address in them local, so a socket can bind any of the 65536 IPv4
	# sources and the replies are delivered. IPv6 bind() checks the address
	# list rather than routes, hence ip_nonlocal_bind for it.
	ip -n "$NS_ATK" route replace local $ATK4_NET dev lo &&
	ip -n "$NS_ATK" -6 route replace local $ATK6_NET dev lo &&
	nsx "$NS_ATK" sysctl -q -w net.ipv6.ip_nonlocal_bind=1 >/dev/null &&
	ip -n "$NS_RTR" route replace $ATK4_NET via $ATK_T4 &&
	ip -n "$NS_RTR" -6 route replace $ATK6_NET via $ATK_T6 || return 1

	# Default routes through the router; the attacker's unbound traffic
	# comes from its own network, not from the transit address.
	ip -n "$NS_SRV" route replace default via $RTR_SRV4 &&
	ip -n "$NS_SRV" -6 route replace default via $RTR_SRV6 &&
	ip -n "$NS_CLI" route replace default via $RTR_CLI4 &&
	ip -n "$NS_CLI" -6 route replace default via $RTR_CLI6 &&
	ip -n "$NS_ATK" route replace default via $RTR_ATK4 src $ATK4 &&
	ip -n "$NS_ATK" -6 route replace default via $RTR_ATK6 src $ATK6
}

# ---- Dovecot ---------------------------------------------------------------

# lab_dir: create LAB_DIR (or reuse one of ours); refuse a foreign directory,
# since `down` deletes it.
lab_dir()
{
	if [ -d "$LAB_DIR" ] && [ ! -e "$LAB_DIR/$MARKER" ] &&
	   [ -n "$(ls -A "$LAB_DIR")" ]; then
		die "$LAB_DIR exists and is not a lab directory; refusing to use it"
	fi
	mkdir -p "$LAB_DIR" && touch "$LAB_DIR/$MARKER" && chmod 755 "$LAB_DIR"
}

# A self-signed EC certificate, made once per LAB_DIR.
mk_cert()
{
	[ -s "$LAB_DIR/server.crt" ] && [ -s "$LAB_DIR/server.key" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$LAB_DIR/server.key" -out "$LAB_DIR/server.crt" -days 3650 \
		-subj "/CN=imap.lab.test" \
		-addext "subjectAltName=DNS:imap.lab.test,IP:$SRV4,IP:$SRV6" \
		>/dev/null 2>&1 || { log "openssl req failed"; return 1; }
	chmod 600 "$LAB_DIR/server.key"
}

mk_users()
{
	local u f=$LAB_DIR/users

	: >"$f.tmp" || return 1
	for u in "${USERS[@]}"; do
		echo "$u:{PLAIN}$u-pass" >>"$f.tmp"
	done
	# The auth process runs as the internal user "dovecot".
	chown root:dovecot "$f.tmp" && chmod 640 "$f.tmp" && mv "$f.tmp" "$f"
	mkdir -p "$LAB_DIR/mail" && chown "$MAIL_USER:$MAIL_USER" "$LAB_DIR/mail"
}

# mk_conf: a stand-alone dovecot.conf (nothing from /etc/dovecot). Sets
# CONF_CHANGED=1 if it differs from the one in place.
CONF_CHANGED=0
mk_conf()
{
	local plain=no delay=0 penalty='' uid tls='' policy=''

	[ "$LAB_PLAINTEXT" = no ] && plain=yes
	[ -n "$LAB_TLS_MIN" ] && tls="ssl_min_protocol = $LAB_TLS_MIN
ssl_cipher_list = ALL:@SECLEVEL=0"
	uid=$(id -u "$MAIL_USER") || return 1
	if [ -n "$LAB_AUTH_POLICY" ]; then
		policy="# Auth policy server ($LAB_AUTH_POLICY):
$(grep -v '^[[:space:]]*#' "$LAB_AUTH_POLICY")" || return 1
	fi
	# mode 0 removes anvil's penalty socket; auth then skips the penalty.
	if [ "$LAB_AUTH_DELAY" = stock ]; then
		delay="2 secs"
	else
		penalty='service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}'
	fi
	cat >"$LAB_DIR/dovecot.conf.tmp" <<-EOF || return 1
	# Generated by scripts/lab.sh for lab "$LAB_ID"; rewritten by each "up".
	instance_name = imapguard-$LAB_ID
	base_dir = $BASE_DIR
	state_dir = $LAB_DIR/state
	protocols = imap
	listen = *, ::
	default_internal_user = dovecot
	default_login_user = dovenull

	# Logging to a file the imapguard daemon follows: no syslog needed.
	log_path = $LAB_DIR/dovecot.log
	info_log_path = $LAB_DIR/dovecot.log
	auth_verbose = yes

	# Authentication: a passwd-file, PLAIN and LOGIN mechanisms.
	auth_mechanisms = plain login
	disable_plaintext_auth = $plain
	auth_cache_size = 0
	# 0: no fixed 2 s delay of a failure reply (tests stay fast); a failure
	# still waits for the next tick of auth's 500 ms failure-flush timer.
	auth_failure_delay = $delay
	# Nobody is trusted: every address is logged and penalised as itself.
	login_trusted_networks =
	passdb {
	  driver = passwd-file
	  args = scheme=PLAIN username_format=%u $LAB_DIR/users
	}
	userdb {
	  driver = static
	  args = uid=$MAIL_USER gid=$MAIL_USER home=$LAB_DIR/mail/%u
	}
	mail_location = maildir:~/Maildir
	first_valid_uid = $uid
	first_valid_gid = $(id -g "$MAIL_USER")

	# STARTTLS on 143, implicit TLS on 993.
	ssl = yes
	ssl_cert = <$LAB_DIR/server.crt
	ssl_key = <$LAB_DIR/server.key
	$tls

	# One long-lived login process serves many clients ("high-performance
	# mode"): a connection flood does not fork a process per connection.
	service imap-login {
	  inet_listener imap {
	    port = 143
	  }
	  inet_listener imaps {
	    port = 993
	    ssl = yes
	  }
	  service_count = 0
	  process_min_avail = 1
	  client_limit = 4096
	}
	default_client_limit = 4096
	$penalty
	$policy
	EOF
	if cmp -s "$LAB_DIR/dovecot.conf.tmp" "$LAB_DIR/dovecot.conf"; then
		rm -f "$LAB_DIR/dovecot.conf.tmp"
	else
		mv "$LAB_DIR/dovecot.conf.tmp" "$LAB_DIR/dovecot.conf"
		CONF_CHANGED=1
	fi
}

# is_our_dovecot PID: PID is a live dovecot process in this lab's server
# namespace (guards against a stale pid file naming a recycled PID).
is_our_dovecot()
{
	local pid=$1
	[[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dovecot ] || return 1
	have_ns "$NS_SRV" &&
		[ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = \
		  "$(stat -L -c %i "/run/netns/$NS_SRV" 2>/dev/null)" ]
}

# dovecot_pids: master.pid, and the PID we launched (covers a master that
# died or had not yet written its pid file), live and ours only.
dovecot_pids()
{
	local f p seen=
	for f in "$BASE_DIR/master.pid" "$LAB_DIR/dovecot.launch.pid"; do
		p=$(cat "$f" 2>/dev/null) || continue
		[[ " $seen " == *" $p "* ]] && continue
		seen="$seen $p"
		is_our_dovecot "$p" && echo "$p"
	done
}

dovecot_running()
{
	local p
	p=$(cat "$BASE_DIR/master.pid" 2>/dev/null) && is_our_dovecot "$p"
}

# listening NS PORT: a TCP listener on PORT in NS. Checked with ss rather
# than by connecting, so readiness checks leave no lines in dovecot.log
# (the daemon follows it). The kernel accepts on a listening socket even
# before the login process takes the connection.
listening()
{
	[ -n "$(nsx "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]
}

# reaches NS ADDR: a TCP connect from NS to ADDR port 9 (nothing listens
# there) is refused at once, which proves the route both ways without
# touching Dovecot.
reaches()
{
	local out
	# shellcheck disable=SC2016 # $0 and $1 expand in the inner bash
	out=$(nsx "$1" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/9"' "$2" 2>&1)
	[[ $out == *"refused"* ]]
}

net_check()
{
	local ns a

	for ns in "$NS_CLI" "$NS_ATK"; do
		for a in $SRV4 $SRV6; do
			reaches "$ns" "$a" || { log "no route from $ns to $a"; return 1; }
		done
	done
}

dovecot_up()
{
	local i pid

	lab_dir && mk_cert && mk_users && mk_conf || return 1
	if dovecot_running; then
		# Already up (second `up`): pick up a changed config by SIGHUP.
		pid=$(cat "$BASE_DIR/master.pid")
		[ "$CONF_CHANGED" = 1 ] && kill -HUP "$pid"
	else
		rm -f "$BASE_DIR/master.pid"
		touch "$LAB_DIR/dovecot.log"
		# -F: foreground, so $! is the master (ip netns exec and setsid
		# exec, they do not fork). setsid detaches it from our session;
		# no fd of the caller stays open in it.
		setsid ip netns exec "$NS_SRV" dovecot -F -c "$LAB_DIR/dovecot.conf" \
			</dev/null >"$LAB_DIR/dovecot.out" 2>&1 &
		echo $! >"$LAB_DIR/dovecot.launch.pid"
	fi
	# Up to 10 s for the pid file and both listeners.
	for ((i = 0; i < 100; i++)); do
		if dovecot_running && listening "$NS_SRV" 143 && listening "$NS_SRV" 993; then
			return 0
		fi
		[ -z "$(dovecot_pids)" ] && [ "$i" -gt 10 ] && break	# it died
		sleep 0.1
	done
	log "Dovecot did not come up; its output and log:"
	cat "$LAB_DIR/dovecot.out" "$LAB_DIR/dovecot.log" >&2 2>/dev/null
	return 1
}

dovecot_down()
{
	local p i left

	for p in $(dovecot_pids); do
		kill -TERM "$p" 2>/dev/null
		# The master stops its children before exiting.
		for ((i = 0; i < 50; i++)); do
			is_our_dovecot "$p" || break
			sleep 0.1
		done
		if is_our_dovecot "$p"; then
			log "dovecot $p ignored SIGTERM; SIGKILL"
			kill -KILL "$p" 2>/dev/null
		fi
	done
	# Its children exit when the master is gone; wait for them so that
	# deleting the namespace really frees it.
	if have_ns "$NS_SRV"; then
		for ((i = 0; i < 50; i++)); do
			left=$(ip netns pids "$NS_SRV" 2>/dev/null)
			[ -z "$left" ] && return 0
			sleep 0.1
		done
		log "processes still in $NS_SRV (not ours to kill?): $left"
	fi
	return 0
}

# ---- commands --------------------------------------------------------------

cmd_up()
{
	local t0=$SECONDS

	[ "$(id -u)" -eq 0 ] || die "must run as root"
	command -v dovecot >/dev/null || die "dovecot not installed (scripts/deps.sh)"
	if ! net_up || ! net_check; then
		die "network setup failed; run '$0 down' to clean up"
	fi
	dovecot_up || die "Dovecot setup failed; run '$0 down' to clean up"
	cmd_status
	log "up in $((SECONDS - t0)) s"
}

cmd_down()
{
	local ns

	[ "$(id -u)" -eq 0 ] || die "must run as root"
	dovecot_down
	# Deleting a namespace removes the veth ends inside it (and so their
	# peers), addresses and routes.
	for ns in "$NS_CLI" "$NS_ATK" "$NS_RTR" "$NS_SRV"; do
		have_ns "$ns" && ip netns del "$ns"
	done
	if [ -e "$LAB_DIR/$MARKER" ]; then
		rm -rf "$LAB_DIR"
	elif [ -d "$LAB_DIR" ]; then
		log "$LAB_DIR has no $MARKER; left alone"
	fi
	return 0
}

# status: KEY=value lines (readable, and `eval`-able by tests). Exit 0 if
# the namespaces exist and Dovecot runs.
cmd_status()
{
	local net=up ns pid='' dv=down

	for ns in "$NS_SRV" "$NS_RTR" "$NS_CLI" "$NS_ATK"; do
		have_ns "$ns" || net=down
	done
	if dovecot_running; then
		pid=$(cat "$BASE_DIR/master.pid")
		dv=up
	fi
	cat <<-EOF
	LAB_ID=$LAB_ID
	LAB_DIR=$LAB_DIR
	NETWORK=$net
	NS_SRV=$NS_SRV
	NS_CLI=$NS_CLI
	NS_ATK=$NS_ATK
	NS_RTR=$NS_RTR
	IFACE=$IF_SRV
	SRV4=$SRV4
	SRV6=$SRV6
	CLI4=$CLI4
	CLI6=$CLI6
	ATK4_NET=$ATK4_NET
	ATK6_NET=$ATK6_NET
	ATK4=$ATK4
	ATK6=$ATK6
	PORTS=143,993
	USERS=$(IFS=,; echo "${USERS[*]}")
	PASSWORD_FORMAT=USER-pass
	DOVECOT=$dv
	DOVECOT_PID=$pid
	DOVECOT_LOG=$LAB_DIR/dovecot.log
	DOVECOT_CONF=$LAB_DIR/dovecot.conf
	EOF
	[ $net = up ] && [ $dv = up ]
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: [LAB_ID=id] [LAB_DIR=dir] $0 up|down|status" >&2
	exit 2
	;;
esac
