#!/usr/bin/env bash
# Sends messages with Postfix's smtp-source to 127.0.0.1:PORT.
# Usage: send-smtp-source.sh PORT FROM TO MSGFILE [more smtp-source flags...]
#   e.g. -m 10 -d (10 messages over one connection), -s 4 (4 sessions).
# smtp-source sends MSGFILE line by line, each ending in CRLF, dot-stuffed;
# it never pipelines and uses HELO, not EHLO.
set -euo pipefail
source "$(dirname "$0")/common.sh"
port="$1"; from="$2"; to="$3"; file="$4"; shift 4
export LD_LIBRARY_PATH="$POSTFIX_DIR/usr/lib/postfix"
exec timeout "${SEND_SECONDS:-60}" "$POSTFIX_DIR/usr/sbin/smtp-source" -M client.test \
    -f "$from" -t "$to" -F "$file" "$@" "127.0.0.1:$port"
