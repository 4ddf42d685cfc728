#!/usr/bin/env bash
# Installs every real SMTP peer used by the interop tests, on a fresh Debian
# (bookworm) machine, as root. Idempotent: run it as often as you like.
# Starts no daemon: a policy-rc.d that refuses every service start is put in
# place before any package is installed.
#
# Results:
#   Debian packages: swaks, msmtp, curl, exim4-daemon-light, openssl, haproxy (+ Perl TLS/SASL)
#   $PEERS_DIR/postfix/       postfix .deb unpacked (smtp-sink, smtp-source); never installed
#   $PEERS_DIR/venv/          Python venv with aiosmtpd
#   tests/interop/peers/node_modules   nodemailer + smtp-server (from package-lock.json)
#   $PEERS_DIR/gosmtp/        gosmtp-server, gosmtp-client: peers/gosmtp/*/main.go built
#                             offline against Debian's go-smtp and go-sasl sources
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PEERS_DIR="${SMTP_INTEROP_PEERS:-$HERE/.peers}"

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root" >&2
    exit 1
fi

# 1. Keep package scripts from starting daemons (exim4 would otherwise bind :25).
if [ ! -x /usr/sbin/policy-rc.d ] || ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
    printf '#!/bin/sh\n# Installed by tests/interop/install.sh: start no service.\nexit 101\n' \
        > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
fi

export DEBIAN_FRONTEND=noninteractive

debs=(swaks libnet-ssleay-perl libio-socket-inet6-perl libauthen-sasl-perl
      msmtp curl exim4-daemon-light openssl python3-venv iproute2 haproxy
      golang-go golang-github-emersion-go-smtp-dev golang-github-emersion-go-sasl-dev)
# Node: this machine kind ships Node 20 (nodesource); elsewhere take Debian's.
# nodemailer 10 and smtp-server 3.21 declare node >= 20.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    debs+=(nodejs npm)
fi
missing=()
for p in "${debs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

need_postfix=0
if [ ! -x "$PEERS_DIR/postfix/usr/sbin/smtp-sink" ]; then
    need_postfix=1
fi

if [ ${#missing[@]} -gt 0 ] || [ $need_postfix -eq 1 ]; then
    apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
    # msmtp asks about AppArmor through debconf; the default answer is fine.
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# 2. postfix conflicts with exim4 (both provide mail-transport-agent): unpack
#    the .deb without installing it, for smtp-sink and smtp-source.
if [ $need_postfix -eq 1 ]; then
    mkdir -p "$PEERS_DIR"
    tmp="$(mktemp -d)"
    # apt-get download writes the file as the _apt user.
    if id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
    (cd "$tmp" && apt-get download -q postfix)
    rm -rf "$PEERS_DIR/postfix"
    dpkg -x "$tmp"/postfix_*.deb "$PEERS_DIR/postfix"
    dpkg-deb -f "$tmp"/postfix_*.deb Version > "$PEERS_DIR/postfix/VERSION"
    rm -rf "$tmp"
fi

# 3. Python: aiosmtpd in a venv (smtplib is in the standard library).
PY="${PYTHON:-python3}"
if [ ! -x "$PEERS_DIR/venv/bin/python" ]; then
    "$PY" -m venv "$PEERS_DIR/venv"
fi
if ! "$PEERS_DIR/venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    "$PEERS_DIR/venv/bin/pip" install -q -r "$HERE/peers/requirements.txt"
fi

# 4. Node: nodemailer and smtp-server, pinned by the lockfile.
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "install.sh: warning: node $node_major found; nodemailer and smtp-server want >= 20" >&2
fi
if [ ! -d "$HERE/peers/node_modules/smtp-server" ] || [ ! -d "$HERE/peers/node_modules/nodemailer" ]; then
    (cd "$HERE/peers" && npm ci --no-audit --no-fund --loglevel=error)
fi

# 5. Go: go-smtp's server and client as peers. Debian ships the library as
#    source under /usr/share/gocode/src; GOPATH mode builds from there with
#    no network. Rebuilt when a program or the packages change.
GOSMTP_DIR="$PEERS_DIR/gosmtp"
gosmtp_stamp="$(dpkg-query -W -f='${Version} ' golang-go golang-github-emersion-go-smtp-dev \
    golang-github-emersion-go-sasl-dev)"
gosmtp_build=0
if [ "$(cat "$GOSMTP_DIR/VERSION" 2>/dev/null)" != "$gosmtp_stamp" ]; then
    gosmtp_build=1
fi
for prog in server client; do
    if [ ! -x "$GOSMTP_DIR/gosmtp-$prog" ] || [ "$HERE/peers/gosmtp/$prog/main.go" -nt "$GOSMTP_DIR/gosmtp-$prog" ]; then
        gosmtp_build=1
    fi
done
if [ $gosmtp_build -eq 1 ]; then
    mkdir -p "$GOSMTP_DIR"
    for prog in server client; do
        if ! (cd "$HERE/peers/gosmtp/$prog" &&
              env GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="$GOSMTP_DIR/cache" \
                  go build -o "$GOSMTP_DIR/gosmtp-$prog.new" main.go) >"$GOSMTP_DIR/build.log" 2>&1; then
            cat "$GOSMTP_DIR/build.log" >&2
            echo "install.sh: building gosmtp-$prog failed" >&2
            exit 1
        fi
        mv "$GOSMTP_DIR/gosmtp-$prog.new" "$GOSMTP_DIR/gosmtp-$prog"
    done
    printf '%s' "$gosmtp_stamp" > "$GOSMTP_DIR/VERSION"
fi

echo "install.sh: peers ready in $PEERS_DIR and $HERE/peers/node_modules"
