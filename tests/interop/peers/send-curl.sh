#!/usr/bin/env bash
# Sends MSGFILE with curl (smtp://) to 127.0.0.1:PORT.
# Usage: send-curl.sh PORT FROM TO MSGFILE [more curl flags...]
#   STARTTLS:  --ssl-reqd --cacert CERT
#   AUTH:      --user U:P
#   --crlf     turn bare LF into CRLF; WITHOUT it curl sends the file's bare
#              LF lines unchanged (it still dot-stuffs and ends with CRLF.CRLF)
set -euo pipefail
port="$1"; from="$2"; to="$3"; file="$4"; shift 4
exec timeout "${SEND_SECONDS:-60}" curl --silent --show-error --max-time 30 \
    --url "smtp://127.0.0.1:$port/client.test" \
    --mail-from "$from" --mail-rcpt "$to" --upload-file "$file" "$@"
