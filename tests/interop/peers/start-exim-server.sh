#!/usr/bin/env bash
# Runs exim as a self-contained SMTP server on 127.0.0.1:PORT, in the
# foreground, with CHUNKING and (given a certificate) STARTTLS.
# Usage: start-exim-server.sh PORT WORKDIR [CERT KEY] [AUTH_USER AUTH_PASS]
# Messages land in WORKDIR/mail/new/ (Maildir, CRLF kept, exim's Received:
# line first); exim's log is WORKDIR/log/mainlog.
# Run as root: exim is setuid root, drops to its own user for the -C config
# and needs spool and log directories owned by that user.
# Bounded: exits after EXIM_SECONDS (default 120).
set -euo pipefail
source "$(dirname "$0")/common.sh"
port="$1"; work="$2"; cert="${3:-}"; key="${4:-}"; user="${5:-}"; pass="${6:-}"

exim_user="$(exim -bP exim_user | sed 's/.*= *//')"
mkdir -p "$work/spool" "$work/log" "$work/mail"
chmod 755 "$work"
chown "$exim_user:" "$work/spool" "$work/log" "$work/mail"
# exim refuses a -C file that others can write; a private root-owned copy
# also keeps the checkout's ownership out of the picture.
# exim opens its log and spool as its own user: every directory above
# WORKDIR must let that user through (a mktemp -d parent, mode 0700, does not).
if ! runuser -u "$exim_user" -- test -w "$work/log" -a -w "$work/spool"; then
    echo "$(basename "$0"): $exim_user cannot reach $work (make its parents o+x)" >&2
    exit 1
fi
install -m 644 "$PEERS_SCRIPTS/exim/server.conf" "$work/server.conf"

macros=(-DWORKDIR="$work" -DEXIM_USER="$exim_user")
if [ -n "$cert" ]; then
    macros+=(-DTLS_CERT="$cert" -DTLS_KEY="$key")
fi
if [ -n "$user" ]; then
    macros+=(-DAUTH_USER="$user" -DAUTH_PASS="$pass")
fi
# -bd: daemon; -oX: port; -odf: deliver each message in the foreground of
# its receiving process. exim forks into the background unless -bdf.
exec timeout "${EXIM_SECONDS:-120}" exim -C "$work/server.conf" "${macros[@]}" \
    -bdf -oX "$port" -odf
