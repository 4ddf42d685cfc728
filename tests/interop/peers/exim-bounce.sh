#!/usr/bin/env bash
# Has exim bounce a message: the message from stdin, sent by SENDER (a
# local address, @exim.test) to RCPTs in fail.test, which exim refuses;
# writes the bounce exim delivers to SENDER on stdout.
# Usage: exim-bounce.sh WORKDIR SENDER RCPT [RCPT...] < message
# Run as root (see start-exim-server.sh). Exits non-zero when no bounce
# arrived within 10 seconds.
set -euo pipefail
work="$1"; sender="$2"; shift 2

exim_user="$(exim -bP exim_user | sed 's/.*= *//')"
mkdir -p "$work/spool" "$work/log" "$work/mail"
chmod 755 "$work"
chown "$exim_user:" "$work/spool" "$work/log" "$work/mail"
if ! runuser -u "$exim_user" -- test -w "$work/log" -a -w "$work/spool"; then
    echo "$(basename "$0"): $exim_user cannot reach $work (make its parents o+x)" >&2
    exit 1
fi
install -m 644 "$(dirname "$0")/exim/bounce.conf" "$work/bounce.conf"

# -odf: deliver (and bounce) in the foreground before exiting; -oi: only
# EOF ends the input.
timeout "${EXIM_SECONDS:-60}" exim -C "$work/bounce.conf" \
    -DWORKDIR="$work" -DEXIM_USER="$exim_user" -odf -oi -f "$sender" "$@"
for _ in $(seq 100); do
    for f in "$work"/mail/new/*; do
        if [ -f "$f" ]; then
            cat "$f"
            exit 0
        fi
    done
    sleep 0.1
done
echo "$(basename "$0"): no bounce arrived; exim's log:" >&2
cat "$work/log/mainlog" >&2 || true
exit 1
