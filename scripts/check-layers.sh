#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The userspace layering rule (README "Source layout"), checked on every
# build: a file in userspace/LAYER/ may include project headers only from
# LAYER itself and from the layers it uses. Arguments: one "LAYER:USES..."
# per layer, as the Makefile lists them. Only fastpath/ includes the BPF
# skeleton or libbpf; authlog/ never touches BPF.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

bad=0
layers=()
for spec in "$@"; do
	layers+=("${spec%%:*}")
done
for spec in "$@"; do
	layer=${spec%%:*}
	uses=" $layer ${spec#*:} "
	for f in userspace/"$layer"/*.[ch]; do
		[ -e "$f" ] || continue
		while IFS=: read -r lineno inc; do
			dir=${inc#*\"}
			dir=${dir%%/*}
			for l in "${layers[@]}"; do
				if [ "$dir" = "$l" ] && [[ $uses != *" $dir "* ]]; then
					echo "$f:$lineno: layer '$layer' must not include '$dir/' (uses:${spec#*:})" >&2
					bad=1
				fi
			done
		done < <(grep -n '^#include "[a-z]*/' "$f" | cut -d: -f1,2)
		if [ "$layer" != fastpath ] && grep -qE '^#include "imapguard\.skel\.h"' "$f"; then
			echo "$f: only fastpath/ includes the BPF skeleton" >&2
			bad=1
		fi
		if [ "$layer" = authlog ] && grep -qE '^#include <bpf/' "$f"; then
			echo "$f: authlog/ must not use libbpf" >&2
			bad=1
		fi
	done
done
[ "$bad" -eq 0 ] || echo "check-layers: the layering rule is broken (see README 'Source layout')" >&2
exit "$bad"
