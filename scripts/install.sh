#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install or uninstall imapguard (called by `make install` / `make uninstall`).
#
#   bash scripts/install.sh install|uninstall
#
# Environment (empty means the default):
#   DESTDIR     staging root prepended to every path (packaging, tests)
#   PREFIX      /usr/local: binary in PREFIX/sbin, man pages, completion, docs
#   SYSCONFDIR  /etc: the policy goes to SYSCONFDIR/imapguard/imapguard.conf
#   UNITDIR     PREFIX/lib/systemd/system
#   LOCALSTATEDIR /var: the daemon's state directory is LOCALSTATEDIR/lib/imapguard
#   BIN         the program to install (default build/imapguard of this tree)
#
# Configuration files (the policy and the unit files) are never overwritten
# once edited: like dpkg, the script records the checksum of each one it
# installs; a file that still has that checksum is updated in place, one that
# differs (edited, or not installed by us) is kept and the new version is
# written next to it as FILE.dpkg-dist. Uninstall keeps edited configuration
# and a non-empty state directory, and removes everything else it installed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
LOCALSTATEDIR=${LOCALSTATEDIR:-/var}
DESTDIR=${DESTDIR:-}
BIN=${BIN:-$ROOT/build/imapguard}
SBINDIR=$PREFIX/sbin
MANDIR=$PREFIX/share/man
COMPDIR=$PREFIX/share/bash-completion/completions
DOCDIR=$PREFIX/share/doc/imapguard
DATADIR=$PREFIX/share/imapguard
CONFDIR=$SYSCONFDIR/imapguard
STATEDIR=$LOCALSTATEDIR/lib/imapguard
# Checksums of the configuration files as installed: "SHA256  PATH".
MANIFEST=$DATADIR/conffiles.sha256

say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

for d in PREFIX SYSCONFDIR UNITDIR LOCALSTATEDIR; do
	case ${!d} in
	/*) ;;
	*) die "$d must be an absolute path, got '${!d}'" ;;
	esac
done

sum() { sha256sum "$1" | cut -d' ' -f1; }

# recorded PATH: the checksum recorded at the last install, or nothing.
recorded()
{
	[ -f "$DESTDIR$MANIFEST" ] || return 0
	awk -v p="$1" '$2 == p { print $1 }' "$DESTDIR$MANIFEST"
}

# record PATH SUM: remember what we installed at PATH (replacing old lines).
record()
{
	local m=$DESTDIR$MANIFEST

	install -d -m 0755 "$(dirname "$m")"
	touch "$m"
	awk -v p="$1" '$2 != p' "$m" >"$m.tmp"
	echo "$2  $1" >>"$m.tmp"
	mv "$m.tmp" "$m"
}

unrecord()
{
	local m=$DESTDIR$MANIFEST

	[ -f "$m" ] || return 0
	awk -v p="$1" '$2 != p' "$m" >"$m.tmp"
	mv "$m.tmp" "$m"
}

# file MODE SRC DST: a plain file, always replaced.
file()
{
	install -D -m "$1" "$2" "$DESTDIR$3"
	echo "  $3"
}

# conffile MODE SRC DST: a configuration file the admin may have edited.
conffile()
{
	local mode=$1 src=$2 dst=$3 t=$DESTDIR$3 new old

	new=$(sum "$src")
	if [ ! -e "$t" ]; then
		install -D -m "$mode" "$src" "$t"
		echo "  $dst"
	elif [ "$(sum "$t")" = "$new" ]; then
		echo "  $dst (unchanged)"
		rm -f "$t.dpkg-dist"	# a leftover from an earlier conflict, now merged
	else
		old=$(recorded "$dst")
		if [ -n "$old" ] && [ "$(sum "$t")" = "$old" ]; then
			install -m "$mode" "$src" "$t"
			echo "  $dst (updated)"
		else
			install -m "$mode" "$src" "$t.dpkg-dist"
			echo "  $dst: kept, it was changed locally;" \
				"the new version is $dst.dpkg-dist (merge by hand)"
		fi
	fi
	record "$dst" "$new"
}

# unit SRC: a unit file with the paths of this installation.
unit()
{
	local tmp

	tmp=$(mktemp)
	sed -e "s|/usr/sbin/imapguard|$SBINDIR/imapguard|g" \
	    -e "s|/etc/imapguard/|$CONFDIR/|g" "$1" >"$tmp"
	conffile 0644 "$tmp" "$UNITDIR/$(basename "$1")"
	rm -f "$tmp"
}

do_install()
{
	local bin=$BIN f

	[ -x "$bin" ] || die "$bin is missing: run 'make' first"
	for f in man/imapguard.8 man/imapguard.conf.5 scripts/completion/imapguard \
		 scripts/systemd/imapguard.service scripts/systemd/imapguard@.service \
		 policies/default.conf policies/example-full.conf scripts/grafana/imapguard.json; do
		[ -f "$ROOT/$f" ] || die "$ROOT/$f is missing"
	done
	say "installing into ${DESTDIR:-/} (PREFIX=$PREFIX SYSCONFDIR=$SYSCONFDIR UNITDIR=$UNITDIR)"
	file 0755 "$bin" "$SBINDIR/imapguard"
	file 0644 "$ROOT/man/imapguard.8" "$MANDIR/man8/imapguard.8"
	file 0644 "$ROOT/man/imapguard.conf.5" "$MANDIR/man5/imapguard.conf.5"
	file 0644 "$ROOT/scripts/completion/imapguard" "$COMPDIR/imapguard"
	file 0644 "$ROOT/policies/example-full.conf" "$DOCDIR/example-full.conf"
	file 0644 "$ROOT/scripts/grafana/imapguard.json" "$DOCDIR/grafana-imapguard.json"
	install -d -m 0755 "$DESTDIR$CONFDIR"
	conffile 0644 "$ROOT/policies/default.conf" "$CONFDIR/imapguard.conf"
	unit "$ROOT/scripts/systemd/imapguard.service"
	unit "$ROOT/scripts/systemd/imapguard@.service"
	install -d -m 0700 "$DESTDIR$STATEDIR"
	echo "  $STATEDIR/"
	if [ "$CONFDIR" != /etc/imapguard ]; then
		say "note: commands run without --policy read /etc/imapguard/imapguard.conf," \
			"not $CONFDIR/imapguard.conf"
	fi
	if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
		say "next: systemctl daemon-reload; edit $CONFDIR/imapguard.conf;" \
			"systemctl enable --now imapguard"
	fi
}

# gone PATH: remove a plain file we installed.
gone()
{
	if [ -e "$DESTDIR$1" ] || [ -L "$DESTDIR$1" ]; then
		rm -f "$DESTDIR$1"
		echo "  removed $1"
	fi
}

# gone_conf PATH SHIPPED: remove a configuration file unless it was edited.
gone_conf()
{
	local t=$DESTDIR$1 rec

	rm -f "$t.dpkg-dist"
	if [ -e "$t" ]; then
		rec=$(recorded "$1")
		# No record (installed by hand or an older script): compare with
		# what we would install now.
		[ -n "$rec" ] || rec=$(sum "$2")
		if [ "$(sum "$t")" = "$rec" ]; then
			rm -f "$t"
			echo "  removed $1"
		else
			echo "  kept $1: it was changed locally"
		fi
	fi
	unrecord "$1"
}

# prune DIR: remove DIR if empty.
prune()
{
	if rmdir "$DESTDIR$1" 2>/dev/null; then
		echo "  removed $1/"
	fi
}

do_uninstall()
{
	local tmp u

	say "uninstalling from ${DESTDIR:-/} (PREFIX=$PREFIX SYSCONFDIR=$SYSCONFDIR UNITDIR=$UNITDIR)"
	if [ -z "$DESTDIR" ] && [ -d /sys/fs/bpf/imapguard ]; then
		say "note: enforcement stays pinned under /sys/fs/bpf/imapguard;" \
			"'imapguard detach --all' first removes it"
	fi
	gone "$SBINDIR/imapguard"
	gone "$MANDIR/man8/imapguard.8"
	gone "$MANDIR/man5/imapguard.conf.5"
	gone "$COMPDIR/imapguard"
	gone "$DOCDIR/example-full.conf"
	gone "$DOCDIR/grafana-imapguard.json"
	gone_conf "$CONFDIR/imapguard.conf" "$ROOT/policies/default.conf"
	tmp=$(mktemp)
	for u in imapguard.service imapguard@.service; do
		sed -e "s|/usr/sbin/imapguard|$SBINDIR/imapguard|g" \
		    -e "s|/etc/imapguard/|$CONFDIR/|g" "$ROOT/scripts/systemd/$u" >"$tmp"
		gone_conf "$UNITDIR/$u" "$tmp"
	done
	rm -f "$tmp"
	if [ -f "$DESTDIR$MANIFEST" ] && [ ! -s "$DESTDIR$MANIFEST" ]; then
		rm -f "$DESTDIR$MANIFEST"
	fi
	prune "$DATADIR"
	prune "$DOCDIR"
	prune "$CONFDIR"
	# Bans and the auth-log history live here: never delete them for the admin.
	if [ -d "$DESTDIR$STATEDIR" ]; then
		if rmdir "$DESTDIR$STATEDIR" 2>/dev/null; then
			echo "  removed $STATEDIR/"
		else
			echo "  kept $STATEDIR/: it holds state (remove it by hand if unwanted)"
		fi
	fi
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
