#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Strict checker for the Prometheus text exposition format (0.0.4), used
where promtool is not available: every sample line parses, every metric has
one HELP and one TYPE before its samples, names and labels are valid,
counters end in _total, values are numbers, no sample is repeated.
Reads stdin; prints problems and exits 1 on any."""
import re
import sys

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)( -?\d+)?$')


def main():
    errors, helps, types, seen = [], {}, {}, set()
    for n, line in enumerate(sys.stdin.read().split('\n'), 1):
        if not line:
            continue
        if line.startswith('# HELP ') or line.startswith('# TYPE '):
            parts = line.split(' ', 3)
            if len(parts) < 4 or not NAME.match(parts[2]):
                errors.append(f'{n}: bad comment: {line}')
                continue
            table = helps if parts[1] == 'HELP' else types
            if parts[2] in table:
                errors.append(f'{n}: second {parts[1]} for {parts[2]}')
            table[parts[2]] = parts[3]
            if parts[1] == 'TYPE' and parts[3] not in ('counter', 'gauge', 'histogram',
                                                       'summary', 'untyped'):
                errors.append(f'{n}: unknown type {parts[3]}')
            continue
        if line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if not m:
            errors.append(f'{n}: unparsable sample: {line}')
            continue
        name, labels, value = m.group(1), m.group(3) or '', m.group(4)
        if name not in types or name not in helps:
            errors.append(f'{n}: {name} has no HELP/TYPE before its samples')
        if types.get(name) == 'counter' and not name.endswith('_total'):
            errors.append(f'{n}: counter {name} should end in _total')
        if labels and LABEL.sub('', labels).replace(',', '') != '':
            errors.append(f'{n}: bad labels {{{labels}}}')
        try:
            float(value)
        except ValueError:
            errors.append(f'{n}: bad value {value}')
        key = (name, labels)
        if key in seen:
            errors.append(f'{n}: duplicate sample {name}{{{labels}}}')
        seen.add(key)
    if not seen:
        errors.append('no samples')
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
