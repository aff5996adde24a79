#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Test helpers for tests/integration_mfa.sh (issue 17), written apart from
the C code on purpose: TOTP (RFC 6238) from python's hmac, knock datagrams,
an IMAPS session held across a grant's expiry, and headless Chromium driven
over the DevTools protocol (--remote-debugging-pipe) to use the unlock page.

  mfa_tool.py vectors
  mfa_tool.py totp SECRET_B32 [--at UNIXTIME]
  mfa_tool.py step SECRET_B32 [--after STEP]     -> "STEP CODE", a fresh step
  mfa_tool.py knock --host H --port P --user U --key HEX --code C
                    [--time T] [--source ADDR] [--save FILE | --replay FILE]
  mfa_tool.py hold --host H --source ADDR --user U --password P --sleep S
  mfa_tool.py browser --url URL --user U --code C [--timeout S]
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

STEP = 30


def totp(secret, t, digits=6, step=STEP):
    counter = int(t) // step
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    value = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 10 ** digits
    return str(value).zfill(digits)


RFC6238 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
           (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


def b32(s):
    s = s.strip().upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def cmd_vectors(_a):
    bad = [(t, want, totp(b"12345678901234567890", t, 8)) for t, want in RFC6238
           if totp(b"12345678901234567890", t, 8) != want]
    for t, want, got in bad:
        print("vector t=%d: want %s got %s" % (t, want, got))
    print("ok" if not bad else "bad")
    return 1 if bad else 0


def cmd_totp(a):
    print(totp(b32(a.secret), a.at if a.at is not None else time.time()))
    return 0


def cmd_step(a):
    """A code of a step the server has not seen (> after), still within its
    window of ±1 step: waits for the next step when it must."""
    # The server accepts its step ±1; a few seconds between here and there
    # move it by at most one, so cur and cur + 1 both stay valid.
    while True:
        now = time.time()
        cur = int(now) // STEP
        step = max(cur, a.after + 1)
        if step <= cur + 1:
            break
        time.sleep(STEP - now % STEP + 0.2)
    print(step, totp(b32(a.secret), step * STEP))
    return 0


def datagram(user, code, t, nonce, key):
    head = "IGK1 %s %s %d %s" % (user, code, t, nonce.hex())
    mac = hmac.new(key, head.encode(), hashlib.sha256).hexdigest()
    return (head + " " + mac).encode()


def cmd_knock(a):
    if a.replay:
        with open(a.replay, "rb") as f:
            data = f.read()
    else:
        t = a.time if a.time is not None else int(time.time())
        data = datagram(a.user, a.code, t, os.urandom(16), bytes.fromhex(a.key))
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if a.source:
        s.bind((a.source, 0))
    s.sendto(data, (a.host, a.port))
    if a.save:
        with open(a.save, "wb") as f:
            f.write(data)
    print("sent %d bytes" % len(data))
    return 0


def cmd_hold(a):
    """Log in over IMAPS, sleep, then NOOP on the same connection."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    raw = socket.socket(fam, socket.SOCK_STREAM)
    raw.settimeout(5)
    raw.bind((a.source, 0))
    try:
        raw.connect((a.host, a.port))
    except OSError as e:
        print("connect_failed %s" % e)
        return 0
    s = ctx.wrap_socket(raw)
    f = s.makefile("rb")
    f.readline()

    def cmd(tag, line):
        s.sendall(("%s %s\r\n" % (tag, line)).encode())
        while True:
            resp = f.readline()
            if not resp:
                return "eof"
            if resp.startswith(tag.encode() + b" "):
                return resp.split()[1].decode()

    if cmd("a1", "LOGIN %s %s" % (a.user, a.password)) != "OK":
        print("login_failed")
        return 0
    print("logged_in", flush=True)
    time.sleep(a.sleep)
    try:
        print("noop_" + ("ok" if cmd("a2", "NOOP") == "OK" else "failed"))
    except OSError as e:
        print("noop_failed %s" % e)
    return 0


class Cdp:
    """The DevTools protocol over --remote-debugging-pipe: JSON messages
    ended by NUL, ours on fd 3 of the browser, its own on fd 4."""

    def __init__(self, wfd, rfd):
        self.w, self.r, self.buf, self.n = wfd, rfd, b"", 0

    def send(self, method, params=None, session=None, timeout=20):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        end = time.time() + timeout
        while time.time() < end:
            m = self.recv(end - time.time())
            if m and m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
        raise TimeoutError(method)

    def recv(self, timeout):
        import select
        while b"\0" not in self.buf:
            r, _, _ = select.select([self.r], [], [], max(timeout, 0))
            if not r:
                return None
            chunk = os.read(self.r, 65536)
            if not chunk:
                raise EOFError("browser closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)


def cmd_browser(a):
    """Open the unlock page, fill the form, submit it, print the result text.
    The page has no scripts; the driver types into it through CDP."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    profile = tempfile.mkdtemp(prefix="igtest-chromium.")
    args = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-pipe", "--ignore-certificate-errors", "--no-first-run",
            "--disable-extensions", "--disable-background-networking",
            "--user-data-dir=" + profile, "about:blank"]

    def fds():
        os.dup2(to_browser_r, 3)
        os.dup2(from_browser_w, 4)

    p = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=fds, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_browser_r)
    os.close(from_browser_w)
    cdp = Cdp(to_browser_w, from_browser_r)
    try:
        tid = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = cdp.send("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
        cdp.send("Page.enable", session=sid)

        def evaluate(expr):
            r = cdp.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                         session=sid)
            return r.get("result", {}).get("value")

        def wait_for(expr):
            end = time.time() + a.timeout
            while time.time() < end:
                try:
                    v = evaluate(expr)
                except RuntimeError:
                    v = None
                if v:
                    return v
                time.sleep(0.1)
            return None

        cdp.send("Page.navigate", {"url": a.url}, session=sid)
        if not wait_for("document.readyState === 'complete' && !!document.getElementById('code')"):
            print("no_form %s" % (evaluate("document.body && document.body.innerText") or ""))
            return 0
        scripts = evaluate("document.scripts.length")
        # Type the values like a user would (focus, insertText), then click.
        for field, value in (("user", a.user), ("code", a.code)):
            evaluate("document.getElementById(%s).focus()" % json.dumps(field))
            cdp.send("Input.insertText", {"text": value}, session=sid)
        evaluate("document.getElementById('unlock').click()")
        text = wait_for("document.readyState === 'complete' && "
                        "document.getElementById('result') && "
                        "document.getElementById('result').className + ': ' + "
                        "document.getElementById('result').innerText")
        print("scripts=%s %s" % (scripts, text or "no_result"))
    finally:
        try:
            cdp.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", profile])
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("vectors")
    sp = sub.add_parser("totp")
    sp.add_argument("secret")
    sp.add_argument("--at", type=int)
    sp = sub.add_parser("step")
    sp.add_argument("secret")
    sp.add_argument("--after", type=int, default=0)
    sp = sub.add_parser("knock")
    sp.add_argument("--host", required=True)
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--user")
    sp.add_argument("--key")
    sp.add_argument("--code")
    sp.add_argument("--time", type=int)
    sp.add_argument("--source")
    sp.add_argument("--save")
    sp.add_argument("--replay")
    sp = sub.add_parser("hold")
    sp.add_argument("--host", required=True)
    sp.add_argument("--port", type=int, default=993)
    sp.add_argument("--source", required=True)
    sp.add_argument("--user", required=True)
    sp.add_argument("--password", required=True)
    sp.add_argument("--sleep", type=float, required=True)
    sp = sub.add_parser("browser")
    sp.add_argument("--url", required=True)
    sp.add_argument("--user", required=True)
    sp.add_argument("--code", required=True)
    sp.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    return {"vectors": cmd_vectors, "totp": cmd_totp, "step": cmd_step, "knock": cmd_knock,
            "hold": cmd_hold, "browser": cmd_browser}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
