#!/usr/bin/env bash
# Sends MSGFILE with swaks to 127.0.0.1:PORT.
# Usage: send-swaks.sh PORT FROM TO MSGFILE [more swaks flags...]
#   STARTTLS:  -tls [--tls-verify --tls-ca-path CERT]
#   AUTH:      --auth PLAIN --auth-user U --auth-password P
#   pipelining: --pipeline     (fails if the server does not offer PIPELINING)
# swaks turns every bare LF of MSGFILE into CRLF and ends the message with
# CRLF . CRLF; it dot-stuffs lines that start with a dot.
set -euo pipefail
port="$1"; from="$2"; to="$3"; file="$4"; shift 4
exec timeout "${SEND_SECONDS:-60}" swaks --server "127.0.0.1:$port" --helo client.test \
    --from "$from" --to "$to" --data "@$file" --timeout 30 --suppress-data "$@"
