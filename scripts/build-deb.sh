#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make deb`: build the Debian package (debian/) into build/deb/.
#
# dpkg-buildpackage builds in the source tree (build/, .output/, debian/ get
# its files) and writes the .deb next to it, so it runs on a copy:
# build/deb/imapguard-VERSION/ holds the tree as it is now (committed or not;
# build/, .output/ and .git left out), and the package, .buildinfo and .changes
# land in build/deb/. The copy is removed afterwards; the tree stays as it was.
# Then lintian checks the package, if it is installed (any error or warning
# fails the build; debian/imapguard.lintian-overrides explains each exception).
#
# Needs the build dependencies of debian/control (scripts/deps.sh installs
# them). No root: debian/control says Rules-Requires-Root: no.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build/deb

say() { echo "build-deb: $*"; }
die() { echo "build-deb: $*" >&2; exit 1; }

command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage missing (apt-get install dpkg-dev debhelper)"
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -SVersion)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
src=$OUT/imapguard-$version

# Only this script's own outputs are replaced; anything else in build/deb stays.
rm -rf "$src"
rm -f "$OUT"/imapguard_"$version"_"$arch".{deb,buildinfo,changes} \
	"$OUT"/imapguard-dbgsym_"$version"_"$arch".deb
mkdir -p "$src"
trap 'rm -rf "$src"' EXIT
tar -C "$ROOT" --exclude=./build --exclude=./.output --exclude=./.git -cf - . | tar -C "$src" -xf -

say "building imapguard $version ($arch) in $src"
# -b: binary only (a native source package would need a clean tree anyway).
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1 ||
	{ tail -n 40 "$OUT/build.log" >&2; die "dpkg-buildpackage failed; full log: $OUT/build.log"; }

deb=$OUT/imapguard_${version}_$arch.deb
[ -f "$deb" ] || die "no $deb after the build; see $OUT/build.log"
if command -v lintian >/dev/null; then
	say "lintian $(basename "$deb")"
	lintian --fail-on error,warning --info "$deb" ||
		die "lintian found problems in $deb"
else
	say "lintian is not installed: package not checked"
fi
say "$deb"
