# SPDX-License-Identifier: GPL-2.0
"""The JSON field names C sources write through jansson.

Keys are string literals in a key position of a json_pack() format (each
object member is "s:<value>", its key one argument), or the second argument
of json_object_set_new()/json_object_set(). Used by tests/integration_ops.sh
to check that every field the code prints is documented in imapguard(8).

    python3 tests/json_keys.py userspace/*/*.c   # one key per line
"""
import re
import sys

# Arguments a value spec takes from the list ('s#' and 's%' add a length).
_SPEC_ARGS = {"s": 1, "o": 1, "O": 1, "i": 1, "I": 1, "b": 1, "f": 1, "F": 1, "n": 0}


def _calls(src, name):
    """The argument lists (text between the parentheses) of calls to name."""
    for m in re.finditer(r"\b%s\s*\(" % name, src):
        depth, i, in_str = 1, m.end(), None
        while i < len(src) and depth:
            c = src[i]
            if in_str:
                if c == "\\":
                    i += 1
                elif c == in_str:
                    in_str = None
            elif c in "\"'":
                in_str = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            i += 1
        yield src[m.end():i - 1]


def _split_args(args):
    """Top-level comma-separated arguments, stripped."""
    out, depth, cur, in_str, i = [], 0, "", None, 0
    while i < len(args):
        c = args[i]
        cur += c
        if in_str:
            if c == "\\":
                cur += args[i + 1]
                i += 1
            elif c == in_str:
                in_str = None
        elif c in "\"'":
            in_str = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(cur[:-1].strip())
            cur = ""
        i += 1
    if cur.strip():
        out.append(cur.strip())
    return out


def _literal(arg):
    """The value of a plain string literal argument (adjacent ones joined), or None."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', arg)
    if not parts or re.sub(r'"((?:[^"\\]|\\.)*)"|\s', "", arg):
        return None
    return "".join(parts)


def pack_keys(args):
    """Literal keys of one json_pack() call."""
    args = _split_args(args)
    fmt = _literal(args[0]) if args else None
    if fmt is None:
        return []
    keys, stack, want_key, ai = [], [], False, 1
    for i, c in enumerate(fmt):
        if c in " \t,:*?#%":
            continue
        if c in "{[":
            # The container itself is a value of its parent; inside an
            # object the next spec is a key.
            stack.append(c)
            want_key = c == "{"
            continue
        if c in "}]":
            stack.pop()
            want_key = bool(stack) and stack[-1] == "{"
            continue
        n = _SPEC_ARGS.get(c, 0) + (1 if fmt[i + 1:i + 2] in ("#", "%") else 0)
        if stack and stack[-1] == "{" and want_key:
            key = _literal(args[ai]) if ai < len(args) else None
            if key is not None:
                keys.append(key)
            want_key = False
        elif stack and stack[-1] == "{":
            want_key = True
        ai += n
    return keys


def jansson_keys(src):
    keys = set()
    for args in _calls(src, "json_pack"):
        keys.update(pack_keys(args))
    for name in ("json_object_set_new", "json_object_set"):
        for args in _calls(src, name):
            a = _split_args(args)
            if len(a) > 1 and _literal(a[1]) is not None:
                keys.add(_literal(a[1]))
    return keys


if __name__ == "__main__":
    found = set()
    for path in sys.argv[1:]:
        found |= jansson_keys(open(path).read())
    print("\n".join(sorted(found)))
