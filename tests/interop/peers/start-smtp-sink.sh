#!/usr/bin/env bash
# Runs Postfix's smtp-sink on 127.0.0.1:PORT in the foreground.
# Usage: start-smtp-sink.sh PORT [DUMPDIR] [extra smtp-sink flags...]
# With DUMPDIR, each message is dumped to a file below it. The dump is not
# byte-exact: smtp-sink strips CRs, undoes dot-stuffing and prepends its own
# X-Client-*, X-*-Args and Received lines.
# Bounded: exits after SINK_SECONDS (default 120) or SINK_SESSIONS sessions.
set -euo pipefail
source "$(dirname "$0")/common.sh"
port="$1"; shift
args=(-c)
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    dump="$1"; shift
    mkdir -p "$dump"
    chmod 777 "$dump"   # smtp-sink writes as the -u user
    args+=(-d "$dump/%Y%m%d%H%M%S.")
fi
# smtp-sink refuses to run as root: -u drops to an unprivileged user.
if [ "$(id -u)" -eq 0 ]; then
    args+=(-u nobody)
fi
if [ -n "${SINK_SESSIONS:-}" ]; then
    args+=(-n "$SINK_SESSIONS")
fi
export LD_LIBRARY_PATH="$POSTFIX_DIR/usr/lib/postfix"
exec timeout "${SINK_SECONDS:-120}" "$POSTFIX_DIR/usr/sbin/smtp-sink" \
    "${args[@]}" "$@" "$PEER_HOST:$port" 64
