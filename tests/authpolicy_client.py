#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""HTTP client for imapguard's auth policy endpoint, friendly and hostile
(tests/integration_authpolicy.sh). Python 3 standard library only.

  req        one POST; prints "STATUS BODY"
  big        a POST declaring SIZE bytes, body sent until the server stops
             reading; prints "STATUS" or "closed", and the bytes sent
  slowloris  request headers one byte a second; prints "closed after N s"
             or "open after N s"
  idle       COUNT connections that send nothing, held HOLD seconds; prints
             "held=N refused=N closed=N" (refused: a 503 at once; closed:
             closed by the server while held)
"""
import argparse
import json
import resource
import selectors
import socket
import sys
import time


def connect(args, source=None, timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect((args.host, args.port))
    return s


def read_response(s, timeout=3.0):
    """Status and body of one response (Content-Length framed), or None."""
    s.settimeout(timeout)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return None, b""
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v.strip())
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        return status, body
    except (socket.timeout, OSError, ValueError, IndexError):
        return None, b""


def request(command, body, key, header):
    hdrs = "Content-Type: application/json\r\n"
    if key is not None:
        hdrs += "%s:%s\r\n" % (header, key)
    return ("POST /?command=%s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n"
            % (command, hdrs, len(body))).encode() + body


def cmd_req(args):
    s = connect(args)
    body = args.body.encode()
    s.sendall(request(args.command, body, args.key, args.header))
    status, resp = read_response(s)
    print("%s %s" % (status if status else "none", resp.decode(errors="replace")))


def cmd_big(args):
    s = connect(args)
    head = ("POST /?command=allow HTTP/1.1\r\nHost: x\r\n%s:%s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (args.header, args.key, args.size)).encode()
    s.sendall(head)
    sent = 0
    chunk = b"x" * 65536
    s.settimeout(0.5)
    try:
        while sent < args.size:
            sent += s.send(chunk[:min(len(chunk), args.size - sent)])
    except (socket.timeout, OSError):
        pass
    status, _ = read_response(s)
    print("%s sent=%d" % (status if status else "closed", sent))


def cmd_slowloris(args):
    s = connect(args)
    text = b"POST /?command=allow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100
    t0 = time.monotonic()
    for b in text:
        if time.monotonic() - t0 > args.seconds:
            break
        try:
            s.send(bytes([b]))
            s.settimeout(1.0)
            d = s.recv(4096)
            if d == b"" or d.startswith(b"HTTP/"):
                print("closed after %d s" % round(time.monotonic() - t0))
                return
        except socket.timeout:
            continue
        except OSError:
            print("closed after %d s" % round(time.monotonic() - t0))
            return
    print("open after %d s" % round(time.monotonic() - t0))


def cmd_idle(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count + 64), hard))
    socks = []
    for _ in range(args.count):
        try:
            socks.append(connect(args, args.source))
        except OSError:
            pass
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    refused = closed = 0
    t0 = time.monotonic()
    gone = set()
    while time.monotonic() - t0 < args.hold:
        for k, _ in sel.select(0.2):
            s = k.fileobj
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if d.startswith(b"HTTP/1.0 503") and time.monotonic() - t0 < 1.5:
                refused += 1
            elif not d or d.startswith(b"HTTP/"):
                closed += 1
            sel.unregister(s)
            gone.add(s)
    print("held=%d refused=%d closed=%d" % (len(socks) - len(gone), refused, closed))
    for s in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--header", default="X-IMAPGuard-Key")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("req")
    sp.add_argument("--key")
    sp.add_argument("--command", default="allow")
    sp.add_argument("--body", default=json.dumps({"login": "x", "remote": "198.18.9.9"}))
    sp = sub.add_parser("big")
    sp.add_argument("--key", required=True)
    sp.add_argument("--size", type=int, default=10 << 20)
    sp = sub.add_parser("slowloris")
    sp.add_argument("--seconds", type=float, default=10)
    sp = sub.add_parser("idle")
    sp.add_argument("--count", type=int, default=1000)
    sp.add_argument("--source")
    sp.add_argument("--hold", type=float, default=5)
    args = ap.parse_args()
    {"req": cmd_req, "big": cmd_big, "slowloris": cmd_slowloris, "idle": cmd_idle}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
