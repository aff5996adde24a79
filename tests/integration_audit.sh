#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# issue #9 end to end: `imapguard audit` against the real Dovecot of
# scripts/lab.sh, and signed policies through the real CLI and daemon.
#
#   bash tests/integration_audit.sh                 # everything
#   bash tests/integration_audit.sh test_pop3 ...   # just these
#
# One lab, reconfigured between tests with `lab.sh up` (Dovecot re-reads its
# config on SIGHUP): plaintext allowed on 143 (fail), disable_plaintext_auth
# (ok), TLS 1.2+ (Dovecot's default) versus LAB_TLS_MIN=TLSv1. The audit
# runs from the client namespace, like a scanner on another host. Small
# python servers in the server namespace cover what Dovecot cannot show: a
# silent server (the per-host deadline), a plaintext-only POP3 server that
# records every command it gets (proof that no credentials are sent), and a
# hostile server whose every string carries terminal escapes.
#
# Prints PASS/FAIL lines ("PASS audit.plaintext.verdict"), SKIP with a reason
# when it cannot run here, and removes what it made: python servers and the
# daemon by PID, the pin dir by path, the lab by name (lab.sh down).
#
# Environment: IG_BIN (default build/imapguard).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
IG_BIN=${IG_BIN:-$ROOT/build/imapguard}
LAB_SH=$ROOT/scripts/lab.sh
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
SKIP_RC=249

ALL_TESTS=(
	test_plaintext
	test_no_plaintext
	test_tls_legacy
	test_hostname
	test_timeout_and_limits
	test_pop3
	test_hostile_server
	test_sign_cli
	test_signed_reload
)

LAB_ID=aud$$
NS_SRV=ig-$LAB_ID-srv NS_CLI=ig-$LAB_ID-cli NS_ATK=ig-$LAB_ID-atk
LAB_DIR=/tmp/imapguard-$LAB_ID
SRV4=198.18.0.1 SRV6=2001:db8:0:1::1
PIN=/sys/fs/bpf/igaudit-$LAB_ID
W=$(mktemp -d /tmp/igaudit.XXXXXX) || exit 1
PIDS=()		# python servers and the daemon, killed by PID
NFAIL=0
T=

ok() { echo "PASS audit.$T.$1"; }
bad() { echo "FAIL audit.$T.$1: $2"; NFAIL=$((NFAIL + 1)); }

# check NAME WANT GOT
check() { if [ "$3" = "$2" ]; then ok "$1"; else bad "$1" "expected '$2', got '$3'"; fi; }

# check_has NAME NEEDLE HAYSTACK
check_has()
{
	if [[ $3 == *"$2"* ]]; then ok "$1"; else bad "$1" "no '$2' in: ${3//$'\n'/ | }"; fi
}

cleanup()
{
	local p

	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ -d "$PIN" ]; then
		nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" detach --all \
			</dev/null >/dev/null 2>&1
		rm -rf "$PIN"
	fi
	LAB_ID=$LAB_ID bash "$LAB_SH" down >/dev/null 2>&1
	rm -rf "$W"
}

# audit ARGS...: the audit from the client namespace; stdout+stderr in $OUT,
# exit status in $RC.
audit()
{
	OUT=$(ip netns exec "$NS_CLI" "$IG_BIN" audit "$@" 2>&1 </dev/null)
	RC=$?
}

# jget EXPR: EXPR over the last --json audit ($OUT). H: address -> host (the
# last one), L: every host in order, P(addr, port): that port's object,
# R(addr): its reason texts, S: summary.
jget()
{
	"$PY" -c '
import json, sys
H, S, L = {}, {}, []
for line in sys.argv[2].split("\n"):	# not splitlines(): U+0085 is no line end
    if line.startswith("{"):
        o = json.loads(line)
        if "summary" in o: S = o["summary"]
        else: H[o["address"]] = o; L.append(o)
P = lambda a, port: next(p for p in H[a]["ports"] if p["port"] == port)
R = lambda a: " | ".join(r["level"] + ": " + r["text"] for r in H[a]["reasons"])
try:
    print(eval(sys.argv[1]))
except Exception as e:
    print("jget error: %r" % e)' "$1" "$OUT"
}

# lab_config ENV...: (re)configure the lab; Dovecot reloads on SIGHUP. Then
# wait until 143 shows the wanted LOGINDISABLED state (WANT_LD, yes/no).
lab_config()
{
	local want=$1 i
	shift
	env LAB_ID="$LAB_ID" "$@" bash "$LAB_SH" up >"$W/lab.log" 2>&1 || return 1
	for ((i = 0; i < 50; i++)); do
		audit --json --timeout 2 "$SRV4:143"
		[ "$(jget 'P("'$SRV4'", 143)["logindisabled"]')" = "$want" ] && return 0
		sleep 0.2
	done
	return 1
}

# The TLS legacy probes depend on the config too: wait for TLS 1.0's state.
wait_tls10()
{
	local want=$1 i
	for ((i = 0; i < 50; i++)); do
		audit --json --timeout 2 "$SRV4:993"
		[ "$(jget 'P("'$SRV4'", 993)["tls"]["tls1_0"]')" = "$want" ] && return 0
		sleep 0.2
	done
	return 1
}

# ---- tests -----------------------------------------------------------------

test_plaintext()
{
	local before new port

	if ! lab_config False LAB_PLAINTEXT=yes; then
		bad lab_config "Dovecot did not come up plaintext: $(tail -3 "$W/lab.log")"
		return
	fi
	before=$(wc -l <"$LAB_DIR/dovecot.log")
	audit --json --ca "$LAB_DIR/server.crt" $SRV4
	check exit 1 "$RC"
	check verdict fail "$(jget 'H["'$SRV4'"]["verdict"]')"
	check_has login_flagged "fail: 143/imap: plaintext LOGIN accepted before STARTTLS" "$(jget 'R("'$SRV4'")')"
	check_has plain_flagged "fail: 143/imap: AUTHENTICATE PLAIN" "$(jget 'R("'$SRV4'")')"
	check 143_open True "$(jget 'P("'$SRV4'", 143)["open"]')"
	check_has greeting "Dovecot" "$(jget 'P("'$SRV4'", 143)["greeting"]')"
	check starttls True "$(jget 'P("'$SRV4'", 143)["starttls"]')"
	check logindisabled False "$(jget 'P("'$SRV4'", 143)["logindisabled"]')"
	check auth_plain True "$(jget 'P("'$SRV4'", 143)["auth_plain"]')"
	check caps_has_starttls True "$(jget '"STARTTLS" in P("'$SRV4'", 143)["capabilities"]')"
	check caps_after_tls_no_starttls False \
		"$(jget '"STARTTLS" in P("'$SRV4'", 143)["tls"]["capabilities"]')"
	for port in 143 993; do
		check ${port}_tls13 TLSv1.3 "$(jget 'P("'$SRV4'", '$port')["tls"]["version"]')"
		check ${port}_subject CN=imap.lab.test "$(jget 'P("'$SRV4'", '$port')["tls"]["cert"]["subject"]')"
		check ${port}_issuer CN=imap.lab.test "$(jget 'P("'$SRV4'", '$port')["tls"]["cert"]["issuer"]')"
		check_has ${port}_san "IP:$SRV4" "$(jget 'P("'$SRV4'", '$port')["tls"]["cert"]["san"]')"
		check ${port}_chain_ok True "$(jget 'P("'$SRV4'", '$port')["tls"]["cert"]["chain_ok"]')"
		check ${port}_name_ok True "$(jget 'P("'$SRV4'", '$port')["tls"]["cert"]["name_ok"]')"
		check ${port}_days True "$(jget '3600 <= P("'$SRV4'", '$port')["tls"]["cert"]["days_left"] <= 3650')"
	done
	check 993_no_reasons "" "$(jget '" ".join(r["text"] for r in H["'$SRV4'"]["reasons"] if r["text"].startswith("993"))')"
	# Nothing but CAPABILITY/STARTTLS/LOGOUT: Dovecot saw no login attempt.
	new=$(tail -n +"$((before + 1))" "$LAB_DIR/dovecot.log" | grep 'rip=198.18.1.10')
	check_has dovecot_saw_us "no auth attempts" "$new"
	check no_auth_attempts "" "$(grep -v 'no auth attempts' <<<"$new")"

	# Without --ca the self-signed lab certificate does not verify.
	audit --json $SRV4:993
	check selfsigned_chain False "$(jget 'P("'$SRV4'", 993)["tls"]["cert"]["chain_ok"]')"
	check_has selfsigned_reason "self-signed certificate" "$(jget 'R("'$SRV4'")')"
	# By IPv6 too, and the text form names the reasons.
	audit --ca "$LAB_DIR/server.crt" "[$SRV6]:143"
	check v6_exit 1 "$RC"
	check_has v6_text "$SRV6: fail" "$OUT"
	check_has v6_text_reason "fail  143/imap: plaintext LOGIN accepted" "$OUT"
}

test_no_plaintext()
{
	if ! lab_config True LAB_PLAINTEXT=no; then
		bad lab_config "Dovecot did not reload with disable_plaintext_auth = yes"
		return
	fi
	audit --json --ca "$LAB_DIR/server.crt" $SRV4
	check exit 0 "$RC"
	check verdict ok "$(jget 'H["'$SRV4'"]["verdict"]')"
	check reasons "" "$(jget 'R("'$SRV4'")')"
	check logindisabled True "$(jget 'P("'$SRV4'", 143)["logindisabled"]')"
	check auth_plain False "$(jget 'P("'$SRV4'", 143)["auth_plain"]')"
	# After STARTTLS the mechanisms come back: the probe really got there.
	check plain_after_tls True "$(jget '"AUTH=PLAIN" in P("'$SRV4'", 143)["tls"]["capabilities"]')"
	check summary "{'hosts': 1, 'ok': 1, 'warn': 0, 'fail': 0, 'no_service': 0}" "$(jget 'S')"
	# The lab certificate is good for 3650 days: warn a little earlier than that.
	audit --json --ca "$LAB_DIR/server.crt" --warn-days 3700 $SRV4:993
	check expiry_exit 1 "$RC"
	check expiry_verdict warn "$(jget 'H["'$SRV4'"]["verdict"]')"
	check_has expiry_reason "warn: 993/imaps: certificate expires in 36" "$(jget 'R("'$SRV4'")')"
}

test_tls_legacy()
{
	local p v

	# Dovecot 2.3's default: ssl_min_protocol = TLSv1.2.
	if ! lab_config True LAB_PLAINTEXT=no || ! wait_tls10 rejected; then
		bad tls12_config "lab not back to TLS 1.2+: $(jget 'P("'$SRV4'", 993)')"
		return
	fi
	audit --json --ca "$LAB_DIR/server.crt" $SRV4
	for p in 143 993; do
		for v in 0 1; do
			check tls12_${p}_tls1_$v rejected "$(jget 'P("'$SRV4'", '$p')["tls"]["tls1_'$v'"]')"
		done
	done
	check tls12_exit 0 "$RC"

	if ! lab_config True LAB_PLAINTEXT=no LAB_TLS_MIN=TLSv1; then
		bad tls10_config "lab did not come up with LAB_TLS_MIN=TLSv1"
		return
	fi
	wait_tls10 accepted
	audit --json --ca "$LAB_DIR/server.crt" $SRV4
	v=$(jget 'P("'$SRV4'", 993)["tls"]["tls1_0"]')
	if [[ $v == "not tested"* ]]; then
		echo "SKIP audit.tls_legacy.tls10: this OpenSSL cannot offer TLS 1.0 ($v)"
		return
	fi
	for p in 143 993; do
		for v in 0 1; do
			check tls10_${p}_tls1_$v accepted "$(jget 'P("'$SRV4'", '$p')["tls"]["tls1_'$v'"]')"
		done
		check_has tls10_${p}_reason "fail: $p/imap$([ $p = 993 ] && echo s): TLS 1.0 still accepted" \
			"$(jget 'R("'$SRV4'")')"
	done
	# The best version is still negotiated by the main handshake.
	check tls10_main_tls13 TLSv1.3 "$(jget 'P("'$SRV4'", 993)["tls"]["version"]')"
	check tls10_verdict fail "$(jget 'H["'$SRV4'"]["verdict"]')"
	check tls10_exit 1 "$RC"
	lab_config True LAB_PLAINTEXT=no >/dev/null	# back to the default for what follows
}

# By name: SNI and X509_check_host. The names resolve through a private
# /etc/hosts, bind-mounted in a mount namespace of our own.
test_hostname()
{
	printf '%s imap.lab.test wrong.lab.test\n' $SRV4 >"$W/hosts"
	# shellcheck disable=SC2016 # $0 and $@ are the inner sh's
	OUT=$(ip netns exec "$NS_CLI" unshare -m sh -c \
		'mount --bind "$0" /etc/hosts && exec "$@"' "$W/hosts" \
		"$IG_BIN" audit --json --ca "$LAB_DIR/server.crt" imap.lab.test:993 wrong.lab.test:993 \
		2>&1 </dev/null)
	H() { "$PY" -c 'import json, sys
for l in sys.argv[2].splitlines():
    o = json.loads(l)
    if o.get("host") == sys.argv[1]:
        print(o["verdict"], o["ports"][0]["tls"]["cert"]["name_ok"], o["address"],
              "|".join(r["text"] for r in o["reasons"]))' "$1" "$OUT"; }
	check right_name "ok True $SRV4 " "$(H imap.lab.test)"
	check wrong_name "fail False $SRV4 993/imaps: certificate does not match wrong.lab.test" \
		"$(H wrong.lab.test)"
}

# A server that accepts and then says nothing: the per-host deadline ends it.
_PY_SILENT='
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
conns = []
while True:
    conns.append(s.accept()[0])
'

# wait_listen PORT: until something listens on PORT in the server namespace.
wait_listen()
{
	local i
	for ((i = 0; i < 50; i++)); do
		[ -n "$(ip netns exec "$NS_SRV" ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.1
	done
	return 1
}

test_timeout_and_limits()
{
	local t0 ms

	ip netns exec "$NS_SRV" "$PY" -c "$_PY_SILENT" $SRV4 1143 </dev/null >/dev/null 2>&1 &
	PIDS+=($!)
	wait_listen 1143 || { bad silent_server "did not start"; return; }
	t0=$(date +%s%N)
	audit --json --timeout 1 $SRV4:1143
	ms=$((($(date +%s%N) - t0) / 1000000))
	check silent_exit 1 "$RC"
	check silent_verdict warn "$(jget 'H["'$SRV4'"]["verdict"]')"
	check_has silent_reason "timeout (greeting)" "$(jget 'R("'$SRV4'")')"
	if [ "$ms" -ge 900 ] && [ "$ms" -lt 3000 ]; then ok silent_deadline; else
		bad silent_deadline "took ${ms} ms for --timeout 1"; fi
	audit --json --timeout 2 $SRV4:1144
	check_has refused "Connection refused" "$(jget 'R("'$SRV4'")')"

	# 14 addresses, one real server, and the silent rest answered by nobody:
	# all 14 at once take one deadline; 2 at a time take seven.
	t0=$(date +%s%N)
	audit --json --timeout 1 --concurrency 14 --ca "$LAB_DIR/server.crt" 198.18.0.0/28
	ms=$((($(date +%s%N) - t0) / 1000000))
	check cidr_summary "{'hosts': 14, 'ok': 1, 'warn': 0, 'fail': 0, 'no_service': 13}" "$(jget 'S')"
	if [ "$ms" -lt 3000 ]; then ok cidr_parallel; else bad cidr_parallel "took ${ms} ms"; fi
	t0=$(date +%s%N)
	audit --json --timeout 0.5 --concurrency 2 198.18.0.0/28
	ms=$((($(date +%s%N) - t0) / 1000000))
	if [ "$ms" -ge 3000 ]; then ok concurrency_bounded; else
		bad concurrency_bounded "14 hosts, 2 at a time, 0.5 s each took only ${ms} ms"; fi
	audit 10.0.0.0/8
	check cidr_refused 1 "$RC"
	check_has cidr_refused_msg "pass --force" "$OUT"
	audit --force 2001:db8::/64
	check cidr_v6_refused 1 "$RC"
	audit 1.2.3.4:0
	check bad_port 1 "$RC"
}

# POP3 on 110 with no STLS, USER and SASL PLAIN: everything in plaintext.
# Writes each command it receives to the file argv[3].
_PY_POP3='
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
log = open(sys.argv[3], "a", buffering=1)
while True:
    c, _ = s.accept()
    f = c.makefile("rwb", buffering=0)
    f.write(b"+OK fake POP3 ready\r\n")
    for line in f:
        cmd = line.decode(errors="replace").strip()
        log.write(cmd + "\n")
        if cmd.upper() == "CAPA":
            f.write(b"+OK\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n")
        elif cmd.upper() == "QUIT":
            f.write(b"+OK bye\r\n"); break
        else:
            f.write(b"-ERR no\r\n")
    c.close()
'

test_pop3()
{
	ip netns exec "$NS_SRV" "$PY" -c "$_PY_POP3" $SRV4 110 "$W/pop3.log" </dev/null >/dev/null 2>&1 &
	PIDS+=($!)
	wait_listen 110 || { bad pop3_server "did not start"; return; }
	audit --json --pop3 --timeout 3 --ca "$LAB_DIR/server.crt" $SRV4
	check exit 1 "$RC"
	check verdict fail "$(jget 'H["'$SRV4'"]["verdict"]')"
	check_has user "fail: 110/pop3: USER/PASS accepted before STLS" "$(jget 'R("'$SRV4'")')"
	check_has sasl "fail: 110/pop3: SASL PLAIN and LOGIN offered before TLS" "$(jget 'R("'$SRV4'")')"
	check_has no_stls "fail: 110/pop3: no STLS" "$(jget 'R("'$SRV4'")')"
	check 995_closed False "$(jget 'P("'$SRV4'", 995)["open"]')"
	check imap_still_ok "" "$(jget '" ".join(r["text"] for r in H["'$SRV4'"]["reasons"] if not r["text"].startswith(("110", "995")))')"
	# Every command the server received: no USER, PASS or AUTH, ever.
	check commands_sent "CAPA QUIT" "$(tr '\n' ' ' <"$W/pop3.log" | sed 's/ $//')"
}

# A hostile IMAP server, in the attacker's namespace (any address there is
# bindable; the server namespace's Dovecot holds 143 and 993 on every
# address of its own): its greeting, capabilities
# (before and after TLS), certificate subject, issuer and SAN, and its
# refusals carry terminal escapes (OSC title, CSI clear screen), BEL, DEL,
# C1 controls as UTF-8 (U+009B CSI, U+0085) and as lone bytes (invalid
# UTF-8). Port 143: STARTTLS; 993: implicit TLS; 144 refuses CAPABILITY
# with escapes; 145 greets with escapes and BYE.
_PY_HOSTILE='
import socket, ssl, sys, threading
addr, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
E = b"\x1b]0;owned\x07\x1b[2J\x9b31m\xc2\x9b\xc2\x85\x7fx"
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)

def serve(c, port):
    tls = port == 993
    if tls:
        c = ctx.wrap_socket(c, server_side=True)
    f = c.makefile("rwb", buffering=0)
    if port == 145:
        f.write(b"* BYE " + E + b"\r\n")
        return
    f.write(b"* OK " + E + b" ready\r\n")
    while True:
        line = f.readline()
        if not line:
            return
        tag, _, cmd = line.strip().partition(b" ")
        cmd = cmd.upper()
        if cmd == b"CAPABILITY" and port == 144:
            f.write(tag + b" NO " + E + b"\r\n")
        elif cmd == b"CAPABILITY":
            f.write(b"* CAPABILITY IMAP4rev1 " + E + (b" AUTH=PLAIN" if tls else
                    b" STARTTLS LOGINDISABLED") + b"\r\n" + tag + b" OK " + E + b"\r\n")
        elif cmd == b"STARTTLS" and not tls:
            f.write(tag + b" OK " + E + b"\r\n")
            c = ctx.wrap_socket(c, server_side=True)
            f = c.makefile("rwb", buffering=0)
            tls = True
        elif cmd == b"LOGOUT":
            f.write(b"* BYE " + E + b"\r\n" + tag + b" OK\r\n")
            return
        else:
            f.write(tag + b" BAD " + E + b"\r\n")

def conn(c, port):
    try:
        serve(c, port)
    except Exception:
        pass
    finally:
        c.close()

def listen(port):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=conn, args=(c, port), daemon=True).start()

for port in (143, 144, 145):
    threading.Thread(target=listen, args=(port,), daemon=True).start()
listen(993)
'

# no_controls NAME: $OUT is valid UTF-8 with no control character but
# newlines: no C0, DEL or C1 (U+0080..U+009F), so no escape sequence.
no_controls()
{
	local why
	if why=$("$PY" -c '
import sys
b = sys.argv[1].encode("utf-8", "surrogateescape")
try:
    t = b.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("invalid UTF-8: %s" % e)
bad = sorted({"U+%04X" % ord(c) for c in t if c != "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0)})
if bad:
    sys.exit("control characters " + " ".join(bad))' "$OUT" 2>&1); then
		ok "$1"
	else
		bad "$1" "$why"
	fi
}

test_hostile_server()
{
	local a4=198.19.66.77 a6=2001:db8:666::77 cn san json_ok a i

	# Control characters in the subject (UTF8String) and the SAN (IA5String).
	cn=$(printf 'evil\033]0;owned\007\033[2J\302\233x')
	san=$(printf 'evil\033[2J\302\205.lab.test')
	if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$W/evil.key" -out "$W/evil.crt" -days 30 -utf8 \
		-subj "/CN=$cn/O=org$(printf '\302\205')x" -addext "subjectAltName=DNS:$san" \
		>"$W/evil.log" 2>&1; then
		bad cert "openssl req failed: $(tail -2 "$W/evil.log")"
		return
	fi
	for a in $a4 $a6; do
		ip netns exec "$NS_ATK" "$PY" -c "$_PY_HOSTILE" "$a" "$W/evil.crt" "$W/evil.key" \
			</dev/null >/dev/null 2>&1 &
		PIDS+=($!)
	done
	for ((i = 0; i < 50; i++)); do
		[ "$(ip netns exec "$NS_ATK" ss -Hltn "src $a4 or src [$a6]" | wc -l)" -eq 8 ] && break
		sleep 0.1
	done
	[ $i -lt 50 ] || { bad hostile_server "did not start"; return; }

	# Text: every field shown, none with a control character in it.
	audit --timeout 5 --ca "$W/evil.crt" $a4 $a4:144 $a4:145 "[$a6]:143"
	check text_exit 1 "$RC"
	no_controls text_clean
	check_has text_greeting "greeting      * OK ?]0;owned??[2J" "$OUT"
	check_has text_caps "capabilities  IMAP4rev1 ?]0;owned" "$OUT"
	check_has text_subject "certificate   O=org" "$OUT"
	check_has text_subject_cn "CN=evil" "$OUT"
	check_has text_refused "CAPABILITY refused: a1 NO ?]0;owned" "$OUT"
	check_has text_greeting_refused "unexpected greeting: * BYE ?]0;owned" "$OUT"
	check_has text_v6 "$a6: fail" "$OUT"

	# JSON: every line parses as strict UTF-8; control characters are
	# escaped by JSON, invalid bytes are U+FFFD.
	audit --json --timeout 5 --ca "$W/evil.crt" $a4 $a4:144 $a4:145 "[$a6]:143"
	check json_exit 1 "$RC"
	json_ok=$("$PY" -c '
import json, sys
n = 0
for line in sys.argv[1].encode("utf-8", "surrogateescape").split(b"\n"):
    if line:
        json.loads(line.decode("utf-8"))
        n += 1
print(n)' "$OUT" 2>&1)
	check json_valid 5 "$json_ok"
	check json_refused True "$(jget 'any(r["text"].startswith("144/imap: open, but no IMAP conversation: CAPABILITY refused: a1 NO \x1b]0;owned\x07") for h in L for r in h["reasons"])')"
	audit --json --timeout 5 --ca "$W/evil.crt" $a4
	check json_greeting True "$(jget 'P("'$a4'", 143)["greeting"] == "* OK \x1b]0;owned\x07\x1b[2J\ufffd31m\x9b\x85\x7fx ready"')"
	check_has json_caps_tls "AUTH=PLAIN" "$(jget 'P("'$a4'", 993)["tls"]["capabilities"]')"
	check json_subject True "$(jget '"CN=evil\\1B]0\\;owned\\07\\1B[2J\x9bx" in P("'$a4'", 993)["tls"]["cert"]["subject"]')"
}

test_sign_cli()
{
	local out rc

	IG() { "$IG_BIN" "$@" 2>&1 </dev/null; }
	printf '[port 143]\naction = reject\n[port 993]\naction = pass\n' >"$W/p.conf"
	out=$(IG policy keygen --out "$W/k1") || bad keygen "$out"
	check key_mode 600 "$(stat -c %a "$W/k1")"
	check_has fingerprint "fingerprint SHA256:" "$out"
	IG policy keygen --out "$W/k2" >/dev/null
	out=$(IG policy keygen --out "$W/k1"); rc=$?
	check keygen_no_overwrite 1 "$rc"
	out=$(IG policy sign "$W/p.conf" --key "$W/k1"); rc=$?
	check sign 0 "$rc"
	out=$(IG policy verify "$W/p.conf" --pub "$W/k1.pub"); rc=$?
	check verify_good 0 "$rc"
	out=$(IG policy verify "$W/p.conf" --pub "$W/k2.pub"); rc=$?
	check verify_wrong_key 1 "$rc"
	check_has wrong_key_msg "does not match" "$out"
	cat "$W/k2.pub" "$W/k1.pub" >"$W/trusted.pub"
	out=$(IG policy verify "$W/p.conf" --pub "$W/trusted.pub"); rc=$?
	check verify_second_of_two 0 "$rc"
	check_has second_key_msg "key 2 of 2" "$out"
	cp "$W/p.conf" "$W/t.conf"; cp "$W/p.conf.sig" "$W/t.conf.sig"
	echo "; harmless comment" >>"$W/t.conf"
	out=$(IG policy verify "$W/t.conf" --pub "$W/k1.pub"); rc=$?
	check verify_tampered 1 "$rc"
	head -c 40 "$W/p.conf.sig" >"$W/t.conf.sig"
	cp "$W/p.conf" "$W/t.conf"
	out=$(IG policy verify "$W/t.conf" --pub "$W/k1.pub"); rc=$?
	check verify_truncated 1 "$rc"
	rm -f "$W/t.conf.sig"
	out=$(IG policy verify "$W/t.conf" --pub "$W/k1.pub"); rc=$?
	check verify_missing 1 "$rc"
	check_has missing_msg "t.conf.sig': No such file" "$out"
	# apply refuses before it touches (or even needs) any pinned state.
	out=$(IMAPGUARD_TRUSTED=$W/trusted.pub IG --pin-dir "$W/nopin" policy apply "$W/t.conf"); rc=$?
	check apply_unsigned 1 "$rc"
	check_has apply_unsigned_msg "refusing policy '$W/t.conf'" "$out"
	out=$(IG --pin-dir "$W/nopin" policy apply "$W/t.conf" --require-signature "$W/k2.pub"); rc=$?
	check apply_unsigned_opt 1 "$rc"
	check_has apply_opt_msg "signatures are required by $W/k2.pub" "$out"
}

# The daemon: run refuses an unsigned policy; reload refuses an edited one
# and keeps the old policy in force; a re-signed one is taken.
test_signed_reload()
{
	local out rc h1 h2 i ctl=$W/ctl.sock pol=$W/d.conf

	ig() { nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" "$@" </dev/null; }
	[ -f "$W/k1" ] || "$IG_BIN" policy keygen --out "$W/k1" >/dev/null
	cat >"$pol" <<-EOF
	[port 143]
	action = reject
	[port 993]
	action = pass
	[limits]
	max_bans = 64
	max_sources = 64
	max_deny = 64
	max_allow = 64
	[daemon]
	state_file = $W/state
	control_socket = $ctl
	EOF
	out=$(timeout 20 nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" run \
		--policy "$pol" --iface srv0 --mode tc --require-signature "$W/k1.pub" 2>&1 </dev/null)
	rc=$?
	check run_unsigned 1 "$rc"
	check_has run_unsigned_msg "refusing policy" "$out"
	"$IG_BIN" policy sign "$pol" --key "$W/k1" >/dev/null
	setsid nsenter --net="/run/netns/$NS_SRV" "$IG_BIN" --pin-dir "$PIN" run --policy "$pol" \
		--iface srv0 --mode tc --require-signature "$W/k1.pub" </dev/null >"$W/daemon.log" 2>&1 &
	PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		ig reload -c "$ctl" >/dev/null 2>&1 && break
		sleep 0.1
	done
	h1=$(ig status --json -c "$ctl" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["policy_hash"])' 2>&1)
	if [[ $h1 =~ ^[0-9a-f]{16}$ ]]; then ok status_hash; else bad status_hash "got '$h1'"; fi
	out=$(ig reload -c "$ctl" 2>&1); rc=$?
	check reload_signed 0 "$rc"
	echo "[lists]" >>"$pol"
	echo "deny = 198.51.100.0/24" >>"$pol"
	out=$(ig reload -c "$ctl" 2>&1); rc=$?
	check reload_tampered 1 "$rc"
	check_has reload_tampered_msg "refusing policy" "$out"
	h2=$(ig status --json -c "$ctl" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["policy_hash"])' 2>&1)
	check old_policy_stays "$h1" "$h2"
	"$IG_BIN" policy sign "$pol" --key "$W/k1" >/dev/null
	out=$(ig reload -c "$ctl" 2>&1); rc=$?
	check reload_resigned 0 "$rc"
	h2=$(ig status --json -c "$ctl" 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["policy_hash"])' 2>&1)
	if [ -n "$h2" ] && [ "$h2" != "$h1" ]; then ok new_policy; else
		bad new_policy "hash '$h1' -> '$h2'"; fi
}

# ---- main ------------------------------------------------------------------

preflight()
{
	[ "$(id -u)" -eq 0 ] || { echo "needs root"; return 1; }
	[ -x "$IG_BIN" ] || { echo "no binary $IG_BIN (make)"; return 1; }
	"$IG_BIN" audit --help >/dev/null 2>&1 || { echo "$IG_BIN has no 'audit' command"; return 1; }
	command -v dovecot >/dev/null || { echo "dovecot not installed (scripts/deps.sh)"; return 1; }
	[ -n "$PY" ] || { echo "no python3"; return 1; }
}

main()
{
	local why t tests

	if ! why=$(preflight); then
		echo "SKIP audit: $why"
		rm -rf "$W"
		exit $SKIP_RC
	fi
	trap cleanup EXIT
	if ! LAB_ID=$LAB_ID bash "$LAB_SH" up >"$W/lab.log" 2>&1; then
		echo "FAIL audit.lab: scripts/lab.sh up failed: $(tail -3 "$W/lab.log" | tr '\n' ' ')"
		exit 1
	fi
	if [ $# -gt 0 ]; then tests=("$@"); else tests=("${ALL_TESTS[@]}"); fi
	for t in "${tests[@]}"; do
		T=${t#test_}
		if declare -F "$t" >/dev/null; then "$t"; else bad exists "no such test"; fi
	done
	[ "$NFAIL" -eq 0 ]
}

main "$@"
