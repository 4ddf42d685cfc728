# Shared settings for the peer scripts; sourced, not run.
# PEERS_DIR holds what install.sh put outside Debian's package paths.
INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_SCRIPTS="$INTEROP_DIR/peers"
PEERS_DIR="${SMTP_INTEROP_PEERS:-$INTEROP_DIR/.peers}"
POSTFIX_DIR="$PEERS_DIR/postfix"
VENV_PY="$PEERS_DIR/venv/bin/python"

# Every peer talks to 127.0.0.1 only.
PEER_HOST=127.0.0.1

# wait_port PORT [TRIES]: waits until something listens on 127.0.0.1:PORT,
# polling every 0.1 s, at most TRIES times (default 100, i.e. 10 s). It asks
# the kernel (ss) instead of connecting, so it uses up no session of a peer
# that serves a bounded number of connections.
wait_port() {
    local port="$1" tries="${2:-100}" i
    for ((i = 0; i < tries; i++)); do
        if ss -Hltn "sport = :$port" 2>/dev/null | grep -q "$PEER_HOST:$port"; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on $PEER_HOST:$port" >&2
    return 1
}
