#!/usr/bin/env bash
# Makes a self-signed certificate (no CA) for localhost and 127.0.0.1.
# Usage: make-cert.sh [DIR]   (default: a new temporary directory)
# Writes DIR/cert.pem and DIR/key.pem and prints DIR. The key is left
# world-readable on purpose: exim reads it as its own unprivileged user.
set -euo pipefail
dir="${1:-$(mktemp -d -t smtp-interop-cert.XXXXXX)}"
mkdir -p "$dir"
chmod 755 "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
chmod 644 "$dir/key.pem" "$dir/cert.pem"
echo "$dir"
