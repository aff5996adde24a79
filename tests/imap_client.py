#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Small IMAP client for the lab (scripts/lab.sh): legitimate logins and
attacks. Run it inside a client namespace:

  ip netns exec ig-lab-cli python3 tests/imap_client.py login \\
      --host 198.18.0.1 --port 993 --tls --user alice --password alice-pass

Subcommands print ONE line:
  login   ok | auth-failed | refused | timeout | reset | error: ...
          (exit 0 only for ok)
  brute   attempts=N failed=N refused=N timeout=N ok=N reset=N error=N
  spray   same summary as brute
  flood   attempts=N connected=N refused=N timeout=N error=N

--source binds the local address before connecting, so one attacker
namespace can act as many addresses: a comma list is used round-robin
(per connection).
The client speaks just enough IMAP itself (greeting, STARTTLS, LOGIN or
AUTHENTICATE PLAIN, LOGOUT) so every step runs under one per-attempt
deadline. Certificates are not verified: the lab's is self-signed.
Python 3 standard library only.
"""
import argparse
import base64
import concurrent.futures
import errno
import selectors
import socket
import ssl
import sys
import time

# Results in the order the summaries print them.
BRUTE_KEYS = ("attempts", "failed", "refused", "timeout", "ok", "reset", "error")


class Result(Exception):
    """Ends an attempt with one of the result words."""

    def __init__(self, word, detail=""):
        super().__init__(word)
        self.word = word
        self.detail = detail

    def line(self):
        return "error: " + self.detail if self.word == "error" else self.word


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def os_result(e):
    """Map a socket exception to a result word."""
    if isinstance(e, Result):
        return e
    if isinstance(e, (socket.timeout, TimeoutError)):
        return Result("timeout")
    if isinstance(e, ConnectionRefusedError):
        return Result("refused")
    if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return Result("reset")
    if isinstance(e, ssl.SSLError):
        return Result("error", "tls: %s" % (e.reason or e))
    if isinstance(e, OSError):
        return Result("error", e.strerror or str(e))
    return Result("error", repr(e))


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Conn:
    """One IMAP connection, every operation bounded by the same deadline."""

    def __init__(self, host, port, source, timeout, tls, starttls):
        self.deadline = time.monotonic() + timeout
        self.buf = b""
        self.tag = 0
        s = socket.socket(family(host), socket.SOCK_STREAM)
        self.sock = s
        try:
            if source:
                s.bind((source, 0))
            self._arm()
            s.connect((host, port))
            if tls:
                self._tls()
            greeting = self.readline()
            if not greeting.startswith(b"* OK"):
                # e.g. "* BYE Too many connections" or a non-IMAP service.
                raise Result("error", "greeting: %s" % greeting.decode(errors="replace")[:80])
            if starttls:
                tag, text = self.command(b"STARTTLS")
                if tag != b"OK":
                    raise Result("error", "starttls: %s" % text)
                self._tls()
        except BaseException:
            s.close()
            raise

    def _arm(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Result("timeout")
        self.sock.settimeout(left)

    def _tls(self):
        self._arm()
        self.sock = tls_context().wrap_socket(self.sock)

    def readline(self):
        while b"\n" not in self.buf:
            self._arm()
            data = self.sock.recv(4096)
            if not data:
                raise Result("error", "connection closed by server")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def command(self, cmd):
        """Send a tagged command; return (OK|NO|BAD, text) of its reply."""
        self.tag += 1
        tag = b"a%d" % self.tag
        self._arm()
        self.sock.sendall(tag + b" " + cmd + b"\r\n")
        while True:
            line = self.readline()
            if line.startswith(b"* BYE"):
                raise Result("error", "bye: %s" % line[6:].decode(errors="replace")[:80])
            if line.startswith(tag + b" "):
                status, _, text = line[len(tag) + 1:].partition(b" ")
                return status, text.decode(errors="replace")

    def login(self, user, password, mech):
        """One authentication attempt: ok or auth-failed (or raises)."""
        if mech == "plain":
            ir = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
            status, text = self.command(b"AUTHENTICATE PLAIN " + ir)
        else:
            status, text = self.command(
                b"LOGIN " + quote(user).encode() + b" " + quote(password).encode())
        if status == b"OK":
            return "ok"
        if "[PRIVACYREQUIRED]" in text:
            raise Result("error", "plaintext auth disallowed")
        if status == b"NO":
            return "auth-failed"
        raise Result("error", "%s %s" % (status.decode(errors="replace"), text[:80]))

    def close(self, logout=False):
        try:
            if logout:
                self.command(b"LOGOUT")
        except Exception:
            pass
        self.sock.close()


def sources(arg):
    return [s for s in (arg or "").split(",") if s] or [None]


def run_creds(args, creds, srcs):
    """Try (user, password) pairs in order, args.per_connection of them per
    connection, each connection from the next of srcs. A connection that fails costs one attempt; an attempt whose
    connection dies is counted by how it died. Stops at a successful login.
    Returns a summary dict."""
    res = dict.fromkeys(BRUTE_KEYS, 0)
    i = n = 0
    while i < len(creds):
        src = srcs[n % len(srcs)]
        n += 1
        try:
            c = Conn(args.host, args.port, src, args.timeout, args.tls, args.starttls)
        except Exception as e:
            res[os_result(e).word] += 1
            res["attempts"] += 1
            i += 1
            continue
        try:
            for _ in range(args.per_connection):
                if i >= len(creds):
                    break
                user, password = creds[i]
                i += 1
                res["attempts"] += 1
                c.deadline = time.monotonic() + args.timeout
                word = c.login(user, password, args.mech)
                res["failed" if word == "auth-failed" else word] += 1
                if word == "ok":
                    return res
                if args.interval:
                    time.sleep(args.interval)
        except Exception as e:
            res[os_result(e).word] += 1
        finally:
            c.close(logout=True)
    return res


def attempts(args, creds):
    """Split creds and sources over --parallel workers (round-robin) and add
    up their summaries. Dovecot answers a
    failure only on its next 500 ms tick, so parallel workers are the way
    to a fast brute force."""
    srcs = sources(args.source)
    n = max(1, min(args.parallel, len(creds)))
    shares = [(creds[w::n], srcs[w::n] or [srcs[w % len(srcs)]]) for w in range(n)]
    if n == 1:
        results = [run_creds(args, *shares[0])]
    else:
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            results = list(pool.map(lambda sh: run_creds(args, *sh), shares))
    total = dict.fromkeys(BRUTE_KEYS, 0)
    for r in results:
        for k in BRUTE_KEYS:
            total[k] += r[k]
    return total


def summary(res, keys):
    return " ".join("%s=%d" % (k, res[k]) for k in keys)


def cmd_login(args):
    try:
        c = Conn(args.host, args.port, args.source, args.timeout, args.tls, args.starttls)
        try:
            word = c.login(args.user, args.password, args.mech)
        finally:
            c.close(logout=True)
        print(word)
        return 0 if word == "ok" else 1
    except Exception as e:
        print(os_result(e).line())
        return 1


def cmd_brute(args):
    pw = args.password or "wrong-%d"
    creds = [(args.user, pw % n if "%d" in pw else pw) for n in range(args.count)]
    print(summary(attempts(args, creds), BRUTE_KEYS))
    return 0


def cmd_spray(args):
    creds = [(u, args.password) for u in args.users.split(",") if u]
    print(summary(attempts(args, creds), BRUTE_KEYS))
    return 0


def cmd_flood(args):
    """args.count plain TCP connects spread evenly over args.seconds, each
    given args.timeout to complete; connected sockets are closed at once
    (or held until the end with --hold). Bounded: seconds + timeout."""
    res = {"attempts": 0, "connected": 0, "refused": 0, "timeout": 0, "error": 0}
    fam = family(args.host)
    srcs = sources(args.source)
    sel = selectors.DefaultSelector()
    pending, held = {}, []
    t0 = time.monotonic()

    def done(s, word, keep=False):
        res[word] += 1
        if s in pending:
            sel.unregister(s)
            del pending[s]
        if keep:
            held.append(s)
        else:
            s.close()

    while res["attempts"] < args.count or pending:
        now = time.monotonic()
        while res["attempts"] < args.count and \
                now >= t0 + args.seconds * res["attempts"] / args.count:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            res["attempts"] += 1
            try:
                src = srcs[res["attempts"] % len(srcs)]
                if src:
                    s.bind((src, 0))
                e = s.connect_ex((args.host, args.port))
            except OSError as ex:
                e = ex.errno
            if e == errno.EINPROGRESS:
                sel.register(s, selectors.EVENT_WRITE)
                pending[s] = now + args.timeout
            else:
                done(s, flood_word(e), keep=args.hold and e == 0)
        for key, _ in sel.select(timeout=0.005):
            s = key.fileobj
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            done(s, flood_word(e), keep=args.hold and e == 0)
        now = time.monotonic()
        for s in [s for s, dl in pending.items() if now >= dl]:
            done(s, "timeout")
    for s in held:
        s.close()
    print(summary(res, ("attempts", "connected", "refused", "timeout", "error")))
    return 0


def flood_word(e):
    if e == 0:
        return "connected"
    if e == errno.ECONNREFUSED:
        return "refused"
    if e == errno.ETIMEDOUT:
        return "timeout"
    return "error"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, port=993, timeout=3.0):
        sp.add_argument("--host", required=True)
        sp.add_argument("--port", type=int, default=port)
        sp.add_argument("--source", help="local address(es) to bind, comma list")
        sp.add_argument("--timeout", type=float, default=timeout,
                        help="seconds per attempt (default %(default)s)")

    def imap(sp):
        common(sp)
        sp.add_argument("--tls", action="store_true", help="implicit TLS (993)")
        sp.add_argument("--starttls", action="store_true")
        sp.add_argument("--mech", choices=("login", "plain"), default="login",
                        help="IMAP LOGIN or AUTHENTICATE PLAIN")

    sp = sub.add_parser("login", help="one login attempt")
    imap(sp)
    sp.add_argument("--user", required=True)
    sp.add_argument("--password", required=True)
    sp.set_defaults(func=cmd_login, port=143)

    sp = sub.add_parser("brute", help="COUNT wrong passwords for one user")
    imap(sp)
    sp.add_argument("--user", required=True)
    sp.add_argument("--count", type=int, required=True)
    sp.add_argument("--password", help="password to try; %%d = attempt number "
                    "(default wrong-%%d)")
    sp.add_argument("--per-connection", type=int, default=1)
    sp.add_argument("--interval", type=float, default=0.0,
                    help="seconds between attempts")
    sp.add_argument("--parallel", type=int, default=1,
                    help="concurrent connections (sources rotate per worker)")
    sp.set_defaults(func=cmd_brute)

    sp = sub.add_parser("spray", help="one password against many users")
    imap(sp)
    sp.add_argument("--users", required=True, help="comma list")
    sp.add_argument("--password", required=True)
    sp.add_argument("--per-connection", type=int, default=1)
    sp.add_argument("--interval", type=float, default=0.0)
    sp.add_argument("--parallel", type=int, default=1)
    sp.set_defaults(func=cmd_spray)

    sp = sub.add_parser("flood", help="COUNT TCP connects over SECONDS")
    common(sp, timeout=1.0)
    sp.add_argument("--count", type=int, required=True)
    sp.add_argument("--seconds", type=float, default=1.0)
    sp.add_argument("--hold", action="store_true",
                    help="keep connections open until the end")
    sp.set_defaults(func=cmd_flood)

    args = p.parse_args()
    # Implicit TLS on 993 unless asked otherwise: the common case.
    if args.cmd != "flood" and args.port == 993 and not args.starttls:
        args.tls = True
    if getattr(args, "per_connection", 1) < 1 or getattr(args, "count", 1) < 0:
        p.error("--per-connection must be >= 1 and --count >= 0")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
