#!/usr/bin/env bash
# Sends one message from stdin with exim acting as an SMTP client to
# 127.0.0.1:PORT. With CHUNKING offered, exim sends BDAT (pipelined).
# Usage: send-exim.sh PORT SENDER RCPT [RCPT...] < message
# Environment: EXIM_REQUIRE_TLS=1, EXIM_TLS_CA=FILE, EXIM_NO_CHUNKING=1,
#              EXIM_AUTH=user:pass, EXIM_WORKDIR (default: a temp dir).
# exim adds Received:, and Message-Id:/Date:/From: when missing, since the
# message is a local submission. Exits non-zero if the delivery failed.
set -euo pipefail
port="$1"; sender="$2"; shift 2
work="${EXIM_WORKDIR:-$(mktemp -d -t smtp-interop-exim-client.XXXXXX)}"

exim_user="$(exim -bP exim_user | sed 's/.*= *//')"
mkdir -p "$work/spool" "$work/log"
chmod 755 "$work"
chown "$exim_user:" "$work/spool" "$work/log"
# exim opens its log and spool as its own user: every directory above
# WORKDIR must let that user through (a mktemp -d parent, mode 0700, does not).
if ! runuser -u "$exim_user" -- test -w "$work/log" -a -w "$work/spool"; then
    echo "$(basename "$0"): $exim_user cannot reach $work (make its parents o+x)" >&2
    exit 1
fi
install -m 644 "$(dirname "$0")/exim/client.conf" "$work/client.conf"

macros=(-DWORKDIR="$work" -DPORT="$port")
[ -n "${EXIM_REQUIRE_TLS:-}" ] && macros+=(-DREQUIRE_TLS=1)
[ -n "${EXIM_TLS_CA:-}" ] && macros+=(-DTLS_CA="$EXIM_TLS_CA")
[ -n "${EXIM_NO_CHUNKING:-}" ] && macros+=(-DNO_CHUNKING=1)
if [ -n "${EXIM_AUTH:-}" ]; then
    macros+=(-DAUTH_USER="${EXIM_AUTH%%:*}" -DAUTH_PASS="${EXIM_AUTH#*:}")
fi

# -odf: deliver in the foreground before exiting; -oi: a lone dot does not
# end the input (only EOF does).
timeout "${EXIM_SECONDS:-60}" exim -C "$work/client.conf" "${macros[@]}" \
    -odf -oi -f "$sender" "$@"
# exim exits 0 once the message is accepted, even if delivery then failed;
# the log says what happened.
if grep -q ' => ' "$work/log/mainlog" && ! grep -qE ' (==|\*\*) ' "$work/log/mainlog"; then
    exit 0
fi
echo "send-exim.sh: delivery failed, see $work/log/mainlog:" >&2
grep -vE 'purging the environment|keep_environment|lost privilege' "$work/log/mainlog" >&2 || true
exit 1
