#!/usr/bin/env bash
# Checks that every interop peer works on this machine: each real client
# sends to each real server over 127.0.0.1, with STARTTLS and AUTH where the
# server offers them, and the stored bytes are compared with what was sent.
# No part of smtp-proto is involved; this proves the peers and their helper
# scripts, so failures in the Rust interop tests can be blamed correctly.
#
# Usage: bash tests/interop/smoke.sh    (as root, after install.sh)
# Ports: INTEROP_PORT_BASE (default 25400) to +9 on 127.0.0.1.
# go-smtp's server stores every CRLF as LF (net/textproto's DotReader), so
# what it stores is compared with the LF form of the message.
# Bounded: every peer runs under a time limit and is stopped at the end.
# Ends with "N passed, N failed"; exit status 1 if anything failed.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
P="$HERE/peers"
source "$P/common.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "smoke.sh: run as root (exim and smtp-sink need it)" >&2
    exit 1
fi

BASE="${INTEROP_PORT_BASE:-25400}"
SINK=$BASE; AIO=$((BASE + 1)); NODE=$((BASE + 2)); EXIM=$((BASE + 3))
EXIM_PLAIN=$((BASE + 4)); TAP=$((BASE + 5)); GOSMTP=$((BASE + 6))
GOSMTP_SERVER="$PEERS_DIR/gosmtp/gosmtp-server"
GOSMTP_CLIENT="$PEERS_DIR/gosmtp/gosmtp-client"
WORK="$(mktemp -d -t smtp-interop-smoke.XXXXXX)"
chmod 755 "$WORK"
USER_PASS="alice:s3cret"
pids=()
passed=0
failed=0

cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok      $1"; }
not_ok() {
    failed=$((failed + 1))
    echo "FAILED  $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/        /' "$2" | tail -n 15
}

# run NAME CMD...: a client command that must exit 0.
run() {
    local name="$1" log="$WORK/log.$RANDOM"
    shift
    if "$@" >"$log" 2>&1; then ok "$name"; else not_ok "$name" "$log"; fi
}

# same_bytes NAME EXPECTED ACTUAL: files must be byte-identical.
same_bytes() {
    if [ -f "$3" ] && cmp -s "$2" "$3"; then
        ok "$1"
    else
        not_ok "$1"
        [ -f "$3" ] && diff <(od -c "$2") <(od -c "$3") | head -n 10 | sed 's/^/        /'
    fi
}

# ends_with NAME EXPECTED ACTUAL: ACTUAL ends with EXPECTED's bytes (a
# server or client added trace headers in front).
ends_with() {
    local n
    n=$(stat -c %s "$2")
    if [ -f "$3" ] && cmp -s "$2" <(tail -c "$n" "$3"); then ok "$1"; else not_ok "$1" "$3"; fi
}

# wait_file PATH: waits up to 10 s for a stored message to appear.
wait_file() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# The test message: CRLF only, a line starting with a dot and one with two
# dots (both are dot-stuffed on the wire), and the headers exim and msmtp
# would otherwise add.
MSG="$WORK/msg.eml"
printf '%s\r\n' \
    'From: <sender@client.test>' \
    'To: <rcpt@server.test>' \
    'Subject: interop smoke' \
    'Date: Thu, 01 Jan 2026 00:00:00 +0000' \
    'Message-ID: <smoke.1@client.test>' \
    '' \
    'line one' \
    '.leading dot' \
    '..two dots' \
    'last line' >"$MSG"
# swaks always adds CRLF before the final dot: without the file's last line
# ending, what arrives is $MSG byte for byte.
MSG_SWAKS="$WORK/msg-swaks.eml"
head -c -2 "$MSG" >"$MSG_SWAKS"
MSG_LF="$WORK/msg-lf.eml"
tr -d '\r' <"$MSG" >"$MSG_LF"
FROM=sender@client.test
TO=rcpt@server.test
CERT_DIR="$("$P/make-cert.sh" "$WORK/cert")"
CERT="$CERT_DIR/cert.pem"
KEY="$CERT_DIR/key.pem"
PY="$VENV_PY"

echo "== versions"
echo "swaks $(swaks --version 2>&1 | awk '/version/ {print $3; exit}')," \
    "$(msmtp --version | head -n 1)," "$(curl --version | head -n 1 | cut -d' ' -f1-2)," \
    "$(exim -bV 2>/dev/null | head -n 1 | cut -d' ' -f1-3)," \
    "postfix (smtp-sink, smtp-source) $(cat "$POSTFIX_DIR/VERSION" 2>/dev/null)," \
    "aiosmtpd $("$PY" -c 'import aiosmtpd; print(aiosmtpd.__version__)')," \
    "python $("$PY" -c 'import sys; print(sys.version.split()[0])')," \
    "node $(node --version)," \
    "nodemailer $(node -p "require('$P/node_modules/nodemailer/package.json').version")," \
    "smtp-server $(node -p "require('$P/node_modules/smtp-server/package.json').version")," \
    "go-smtp $(dpkg-query -W -f='${Version}' golang-github-emersion-go-smtp-dev)" \
    "($(go version | cut -d' ' -f3))"

# ---------------------------------------------------------------- smtp-sink
echo "== every client -> smtp-sink (PIPELINING, no TLS)"
SINK_SECONDS=300 "$P/start-smtp-sink.sh" "$SINK" "$WORK/sink" >"$WORK/sink.log" 2>&1 &
pids+=($!)
wait_port "$SINK"
run "swaks -> smtp-sink" "$P/send-swaks.sh" "$SINK" $FROM $TO "$MSG"
run "swaks --pipeline -> smtp-sink" "$P/send-swaks.sh" "$SINK" $FROM $TO "$MSG" --pipeline
run "msmtp -> smtp-sink" "$P/send-msmtp.sh" "$SINK" $FROM $TO "$MSG"
run "curl -> smtp-sink" "$P/send-curl.sh" "$SINK" $FROM $TO "$MSG"
run "curl --crlf (LF file) -> smtp-sink" "$P/send-curl.sh" "$SINK" $FROM $TO "$MSG_LF" --crlf
run "smtplib -> smtp-sink" "$PY" "$P/send_smtplib.py" --port "$SINK" --from $FROM --to $TO --file "$MSG"
run "nodemailer -> smtp-sink" node "$P/send_nodemailer.mjs" --port "$SINK" --from $FROM --to $TO --file "$MSG"
run "go-smtp client -> smtp-sink" "$GOSMTP_CLIENT" --port "$SINK" --from $FROM --to $TO --file "$MSG"
run "smtp-source x3 on one connection -> smtp-sink" \
    "$P/send-smtp-source.sh" "$SINK" $FROM $TO "$MSG_LF" -m 3 -d
run "exim client (DATA: no CHUNKING offered) -> smtp-sink" \
    env EXIM_WORKDIR="$WORK/exim-client-sink" "$P/send-exim.sh" "$SINK" $FROM $TO <"$MSG"
sleep 0.5
dumps=$(find "$WORK/sink" -type f | wc -l)
if [ "$dumps" -eq 12 ]; then ok "smtp-sink dumped 12 messages"; else not_ok "smtp-sink dumped $dumps messages, want 12"; fi
if grep -lx '\.leading dot' "$WORK"/sink/* >/dev/null 2>&1 &&
    [ "$(grep -lx '\.leading dot' "$WORK"/sink/* | wc -l)" -eq 12 ]; then
    ok "smtp-sink saw '.leading dot' un-stuffed in every message"
else
    not_ok "smtp-sink did not see '.leading dot' in every message"
fi

# ------------------------------------------------- STARTTLS + AUTH servers
# client_matrix NAME PORT OUTDIR_FN: sends the message with every client,
# each with STARTTLS (certificate verified against $CERT) and AUTH PLAIN.
client_matrix() {
    local server="$1" port="$2"
    run "swaks STARTTLS+AUTH -> $server" "$P/send-swaks.sh" "$port" $FROM $TO "$MSG_SWAKS" \
        -tls --tls-verify --tls-ca-path "$CERT" --auth PLAIN \
        --auth-user "${USER_PASS%%:*}" --auth-password "${USER_PASS#*:}"
    run "msmtp STARTTLS+AUTH -> $server" "$P/send-msmtp.sh" "$port" $FROM $TO "$MSG" \
        --tls=on --tls-starttls=on --tls-trust-file="$CERT" --auth=plain \
        --user="${USER_PASS%%:*}" --passwordeval="echo ${USER_PASS#*:}"
    run "curl STARTTLS+AUTH -> $server" "$P/send-curl.sh" "$port" $FROM $TO "$MSG" \
        --ssl-reqd --cacert "$CERT" --user "$USER_PASS"
    run "smtplib STARTTLS+AUTH -> $server" "$PY" "$P/send_smtplib.py" --port "$port" \
        --from $FROM --to $TO --file "$MSG" --starttls --cafile "$CERT" --auth "$USER_PASS"
    run "nodemailer STARTTLS+AUTH -> $server" node "$P/send_nodemailer.mjs" --port "$port" \
        --from $FROM --to $TO --file "$MSG" --starttls --cafile "$CERT" --auth "$USER_PASS"
    run "exim client STARTTLS+AUTH -> $server" env EXIM_WORKDIR="$WORK/exim-client-$server" \
        EXIM_REQUIRE_TLS=1 EXIM_TLS_CA="$CERT" EXIM_AUTH="$USER_PASS" \
        "$P/send-exim.sh" "$port" $FROM $TO <"$MSG"
    run "go-smtp client STARTTLS+AUTH -> $server" "$GOSMTP_CLIENT" --port "$port" \
        --from $FROM --to $TO --file "$MSG" --starttls --cafile "$CERT" --auth "$USER_PASS"
}
CLIENTS=(swaks msmtp curl smtplib nodemailer exim gosmtp)

echo "== every client -> aiosmtpd (STARTTLS required, AUTH)"
"$PY" "$P/aiosmtpd_server.py" --port "$AIO" --outdir "$WORK/aio" --tls-cert "$CERT" \
    --tls-key "$KEY" --require-tls --auth "$USER_PASS" --seconds 300 \
    --max-messages ${#CLIENTS[@]} >"$WORK/aio.log" 2>&1 &
pids+=($!)
wait_port "$AIO"
client_matrix aiosmtpd "$AIO"
for i in "${!CLIENTS[@]}"; do
    wait_file "$WORK/aio/msg-$i.json"
    if [ "${CLIENTS[$i]}" = exim ]; then
        ends_with "aiosmtpd stored ${CLIENTS[$i]}'s message (after exim's Received:)" \
            "$MSG" "$WORK/aio/msg-$i.eml"
    else
        same_bytes "aiosmtpd stored ${CLIENTS[$i]}'s message byte for byte" \
            "$MSG" "$WORK/aio/msg-$i.eml"
    fi
    if grep -q '"tls": true' "$WORK/aio/msg-$i.json" && grep -q '"auth": "alice"' "$WORK/aio/msg-$i.json"; then
        ok "aiosmtpd: ${CLIENTS[$i]} used TLS and AUTH"
    else
        not_ok "aiosmtpd: ${CLIENTS[$i]} used TLS and AUTH" "$WORK/aio/msg-$i.json"
    fi
done

echo "== every client -> node smtp-server (STARTTLS, AUTH required)"
(cd "$P" && exec node smtp_server.mjs --port "$NODE" --outdir "$WORK/node" \
    --tls-cert "$CERT" --tls-key "$KEY" --auth "$USER_PASS" --seconds 300 \
    --max-messages ${#CLIENTS[@]}) >"$WORK/node.log" 2>&1 &
pids+=($!)
wait_port "$NODE"
client_matrix smtp-server "$NODE"
for i in "${!CLIENTS[@]}"; do
    wait_file "$WORK/node/msg-$i.json"
    if [ "${CLIENTS[$i]}" = exim ]; then
        ends_with "smtp-server stored ${CLIENTS[$i]}'s message (after exim's Received:)" \
            "$MSG" "$WORK/node/msg-$i.eml"
    else
        same_bytes "smtp-server stored ${CLIENTS[$i]}'s message byte for byte" \
            "$MSG" "$WORK/node/msg-$i.eml"
    fi
    if grep -q '"tls": true' "$WORK/node/msg-$i.json" && grep -q '"auth": "alice"' "$WORK/node/msg-$i.json"; then
        ok "smtp-server: ${CLIENTS[$i]} used TLS and AUTH"
    else
        not_ok "smtp-server: ${CLIENTS[$i]} used TLS and AUTH" "$WORK/node/msg-$i.json"
    fi
done

echo "== every client -> go-smtp server (STARTTLS, AUTH PLAIN required; stores LF)"
timeout 310 "$GOSMTP_SERVER" --port "$GOSMTP" --outdir "$WORK/gosmtp" --tls-cert "$CERT" \
    --tls-key "$KEY" --auth "$USER_PASS" --seconds 300 \
    --max-messages ${#CLIENTS[@]} >"$WORK/gosmtp.log" 2>&1 &
pids+=($!)
wait_port "$GOSMTP"
client_matrix go-smtp "$GOSMTP"
for i in "${!CLIENTS[@]}"; do
    wait_file "$WORK/gosmtp/msg-$i.json"
    if [ "${CLIENTS[$i]}" = exim ]; then
        ends_with "go-smtp stored ${CLIENTS[$i]}'s message, LF (after exim's Received:)" \
            "$MSG_LF" "$WORK/gosmtp/msg-$i.eml"
    else
        same_bytes "go-smtp stored ${CLIENTS[$i]}'s message byte for byte, LF" \
            "$MSG_LF" "$WORK/gosmtp/msg-$i.eml"
    fi
    if grep -q '"tls": true' "$WORK/gosmtp/msg-$i.json" && grep -q '"auth": "alice"' "$WORK/gosmtp/msg-$i.json"; then
        ok "go-smtp: ${CLIENTS[$i]} used TLS and AUTH"
    else
        not_ok "go-smtp: ${CLIENTS[$i]} used TLS and AUTH" "$WORK/gosmtp/msg-$i.json"
    fi
done

echo "== every client -> exim (CHUNKING, STARTTLS, AUTH required)"
EXIM_SECONDS=300 "$P/start-exim-server.sh" "$EXIM" "$WORK/exim" "$CERT" "$KEY" \
    "${USER_PASS%%:*}" "${USER_PASS#*:}" >"$WORK/exim.log" 2>&1 &
pids+=($!)
wait_port "$EXIM"
client_matrix exim "$EXIM"
sleep 0.5
mapfile -t stored < <(ls -tr "$WORK/exim/mail/new/" 2>/dev/null)
if [ "${#stored[@]}" -eq ${#CLIENTS[@]} ]; then
    ok "exim stored ${#CLIENTS[@]} messages"
else
    not_ok "exim stored ${#stored[@]} messages, want ${#CLIENTS[@]}" "$WORK/exim/log/mainlog"
fi
for i in "${!stored[@]}"; do
    ends_with "exim stored message $i intact after its Received:" "$MSG" "$WORK/exim/mail/new/${stored[$i]}"
done
if [ "$(grep -c ' <= .*A=plain:alice' "$WORK/exim/log/mainlog")" -eq ${#CLIENTS[@]} ] &&
    [ "$(grep -c ' <= .* X=TLS' "$WORK/exim/log/mainlog")" -eq ${#CLIENTS[@]} ]; then
    ok "exim: every client used TLS and AUTH"
else
    not_ok "exim: every client used TLS and AUTH" "$WORK/exim/log/mainlog"
fi
if grep -q 'K C="250- [0-9]* byte chunk' "$WORK/exim-client-exim/log/mainlog"; then
    ok "exim client used BDAT (K) against exim over TLS"
else
    not_ok "exim client used BDAT (K) against exim over TLS" "$WORK/exim-client-exim/log/mainlog"
fi

# ------------------------------------------------------ what goes on the wire
echo "== wire checks through the tap (plain text)"
EXIM_SECONDS=120 "$P/start-exim-server.sh" "$EXIM_PLAIN" "$WORK/exim-plain" \
    >"$WORK/exim-plain.log" 2>&1 &
pids+=($!)
wait_port "$EXIM_PLAIN"

# tap_run DIR TARGET CMD...: one connection through the tap.
tap_run() {
    local dir="$1" target="$2" tap_pid
    shift 2
    "$PY" "$P/tap.py" --listen "$TAP" --target "$target" --outdir "$dir" \
        --max-conns 1 --seconds 60 &
    tap_pid=$!
    wait_port "$TAP"
    "$@" >"$dir.out" 2>&1
    wait "$tap_pid"
}

tap_run "$WORK/tap-exim-bdat" "$EXIM_PLAIN" \
    env EXIM_WORKDIR="$WORK/exim-client-plain" "$P/send-exim.sh" "$TAP" $FROM $TO <"$MSG"
if grep -q '250-CHUNKING' "$WORK/tap-exim-bdat/conn-0.s2c" &&
    grep -qa '^BDAT [0-9]* LAST' "$WORK/tap-exim-bdat/conn-0.c2s" &&
    grep -qa '^RCPT TO:<rcpt@server.test>' "$WORK/tap-exim-bdat/conn-0.c2s" &&
    ! grep -qa '^DATA' "$WORK/tap-exim-bdat/conn-0.c2s"; then
    ok "wire: exim client sends BDAT n LAST (no DATA) to exim"
else
    not_ok "wire: exim client sends BDAT n LAST (no DATA) to exim" "$WORK/tap-exim-bdat/conn-0.log"
fi

# A file with a bare LF before a dot: curl without --crlf sends it as is.
BARE="$WORK/bare-lf.eml"
printf 'Subject: bare\r\n\r\nline\n.dot after bare LF\r\nend\r\n' >"$BARE"
tap_run "$WORK/tap-curl" "$SINK" "$P/send-curl.sh" "$TAP" $FROM $TO "$BARE"
if grep -qaF "$(printf 'line\n.dot after bare LF\r\n')" "$WORK/tap-curl/conn-0.c2s"; then
    ok "wire: curl without --crlf sends bare LF and does not stuff the dot after it"
else
    not_ok "wire: curl without --crlf sends bare LF" "$WORK/tap-curl/conn-0.log"
fi
tap_run "$WORK/tap-swaks" "$SINK" "$P/send-swaks.sh" "$TAP" $FROM $TO "$BARE"
if grep -qaF "$(printf 'line\r\n..dot after bare LF\r\n')" "$WORK/tap-swaks/conn-0.c2s"; then
    ok "wire: swaks turns bare LF into CRLF and stuffs the dot"
else
    not_ok "wire: swaks turns bare LF into CRLF" "$WORK/tap-swaks/conn-0.log"
fi
tap_run "$WORK/tap-nodemailer" "$SINK" node "$P/send_nodemailer.mjs" --port "$TAP" \
    --from $FROM --to $TO --file "$MSG"
if grep -qaF "$(printf 'MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n' $FROM $TO)" \
    "$WORK/tap-nodemailer/conn-0.log" 2>/dev/null ||
    grep -qF "C: b'MAIL FROM:<$FROM>\\r\\nRCPT TO:<$TO>\\r\\nDATA\\r\\n'" "$WORK/tap-nodemailer/conn-0.log"; then
    ok "wire: nodemailer pipelines MAIL, RCPT and DATA in one write"
else
    not_ok "wire: nodemailer pipelines MAIL, RCPT and DATA" "$WORK/tap-nodemailer/conn-0.log"
fi

echo "work directory: $WORK"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
