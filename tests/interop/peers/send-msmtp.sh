#!/usr/bin/env bash
# Sends MSGFILE with msmtp to 127.0.0.1:PORT, ignoring every msmtprc.
# Usage: send-msmtp.sh PORT FROM TO MSGFILE [more msmtp flags...]
#   STARTTLS:  --tls=on --tls-starttls=on --tls-trust-file=CERT
#   AUTH:      --auth=plain --user=U --passwordeval='echo P'
# msmtp turns bare LF into CRLF and dot-stuffs; it pipelines RCPT and DATA
# when offered PIPELINING. By default msmtp adds From:, Date: and Message-ID:
# when missing and removes Bcc:; this script turns all four off so the
# message goes out unchanged.
set -euo pipefail
port="$1"; from="$2"; to="$3"; file="$4"; shift 4
exec timeout "${SEND_SECONDS:-60}" msmtp --file=/dev/null --host=127.0.0.1 --port="$port" \
    --domain=client.test --from="$from" --auth=off --tls=off --timeout=30 \
    --set-from-header=off --set-date-header=off --set-msgid-header=off \
    --remove-bcc-headers=off "$@" -- "$to" < "$file"
