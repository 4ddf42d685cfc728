#!/usr/bin/env bash
# Load benchmark (not a test): Postfix's smtp-source against smtp-proto's
# example servers (serve, and serve-blocking when built: Maildir delivery,
# each message written to tmp/, fsynced, renamed into new/, directory
# fsynced) and against Postfix's smtp-sink (discards every message), in the
# same run, on 127.0.0.1.
#
# Usage: bash tests/interop/load.sh   (as root, after run.sh or install.sh +
#        cargo build --release -p smtp-proto-tokio --example serve)
# Environment: LOAD_MESSAGES (default 10000), LOAD_SESSIONS (default 20).
#
# Two rounds per server: `-s 20 -m 10000` (a new connection per message)
# and `-s 20 -m 10000 -d` (connections reused). Prints messages per second
# for each, the ratio ours / smtp-sink, and checks that every message sent
# to our server is in its Maildir. Exits non-zero if one is missing.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
P="$HERE/peers"
source "$P/common.sh"

MESSAGES="${LOAD_MESSAGES:-10000}"
SESSIONS="${LOAD_SESSIONS:-20}"
[ -x "${CARGO_TARGET_DIR:-$REPO/target}/release/examples/serve" ] ||
    { echo "load.sh: build the serve example first" >&2; exit 1; }

WORK="$(mktemp -d -t smtp-interop-load.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
ulimit -n 8192 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

printf 'From: <load@client.test>\nTo: <sink@server.test>\nSubject: load\n\n%s\n.leading dot\nlast line\n' \
    "$(head -c 600 /dev/zero | tr '\0' 'x')" >"$WORK/msg-lf.eml"

# Our servers: the tokio example, and the blocking one when it was built.
names=(); ports=(); dirs=()
for name in serve serve-blocking; do
    bin="${CARGO_TARGET_DIR:-$REPO/target}/release/examples/$name"
    [ -x "$bin" ] || continue
    port=$(free_port)
    RUST_LOG=warn timeout 900 "$bin" --listen "127.0.0.1:$port" --maildir "$WORK/$name" \
        --hostname mx.test >"$WORK/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name"); ports+=("$port"); dirs+=("$WORK/$name")
done
SINK=$(free_port)
SINK_SECONDS=900 "$P/start-smtp-sink.sh" "$SINK" >"$WORK/sink.log" 2>&1 &
pids+=($!)
for port in "${ports[@]}" "$SINK"; do
    wait_port "$port" || exit 1
done

# rate PORT FLAGS...: runs smtp-source, prints messages per second.
rate() {
    local port="$1" t0 t1
    shift
    t0=$(date +%s.%N)
    if ! SEND_SECONDS=600 "$P/send-smtp-source.sh" "$port" load@client.test sink@server.test \
        "$WORK/msg-lf.eml" -s "$SESSIONS" -m "$MESSAGES" "$@" >"$WORK/source.log" 2>&1; then
        echo "smtp-source failed against port $port:" >&2
        tail -n 5 "$WORK/source.log" >&2
        return 1
    fi
    t1=$(date +%s.%N)
    awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "smtp-source -s $SESSIONS -m $MESSAGES, ~700-byte message; postfix $(cat "$POSTFIX_DIR/VERSION" 2>/dev/null)"
status=0
expected=0
for mode in "new connection per message" "reused connections (-d)"; do
    flags=()
    [ "$mode" != "new connection per message" ] && flags=(-d)
    expected=$((expected + MESSAGES))
    sink=$(rate "$SINK" "${flags[@]}") || { status=1; continue; }
    echo "$mode:"
    printf '  %-16s %6s msg/s\n' smtp-sink "$sink"
    for i in "${!names[@]}"; do
        ours=$(rate "${ports[$i]}" "${flags[@]}") || { status=1; continue; }
        printf '  %-16s %6s msg/s   ratio %s/smtp-sink: %s\n' "${names[$i]}" "$ours" \
            "${names[$i]}" "$(awk -v a="$ours" -v b="$sink" 'BEGIN { printf "%.2f", a / b }')"
    done
done

for i in "${!names[@]}"; do
    stored=$(find "${dirs[$i]}/new" -type f 2>/dev/null | wc -l)
    if [ "$stored" -eq "$expected" ]; then
        echo "${names[$i]} maildir: $stored of $expected messages stored"
    else
        echo "${names[$i]} maildir: $stored of $expected messages stored: MISSING $((expected - stored))"
        status=1
    fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
