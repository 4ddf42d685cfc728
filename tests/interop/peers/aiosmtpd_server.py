#!/usr/bin/env python3
"""aiosmtpd as an SMTP server peer that stores every message it accepts.

For message N (from 0) it writes, each atomically (temp file, then rename):
  OUTDIR/msg-N.eml   the message bytes as aiosmtpd hands them over: after
                     dot-unstuffing, CRLF line endings kept, no header added
  OUTDIR/msg-N.json  the envelope: mail_from, rcpt_tos, mail_options,
                     rcpt_options, tls (bool), auth (login name or null),
                     and the connection it came over: connection (its
                     number, from 0, in the order they were accepted) and
                     peer (the client's [address, port])
so a test can compare bytes with what the client sent.

Run it with the venv's python (install.sh makes it):
  .peers/venv/bin/python peers/aiosmtpd_server.py --port 2526 --outdir DIR \
      [--tls-cert cert.pem --tls-key key.pem [--require-tls]] [--auth user:pass]
      [--reject-rcpt ADDR ...] [--close-after N]

--close-after N closes each connection right after the reply to its Nth
message (the 250 goes out, then the close; no 421): a server that drops
a session the client keeps open for more messages.

Listens on 127.0.0.1 only. Prints "READY <port>" once listening.
Bounded: exits after --seconds (default 120) or --max-messages messages.
"""
import argparse
import asyncio
import itertools
import json
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd 1.4 warns about its own use of Session.login_data on AUTH.
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")


class StoreHandler:
    def __init__(self, outdir, max_messages, done, reject_rcpts=(), close_after=0):
        self.outdir = outdir
        self.close_after = close_after
        self.reject_rcpts = set(reject_rcpts)
        self.count = 0
        self.max_messages = max_messages
        self.done = done

    def _write(self, name, data):
        tmp = os.path.join(self.outdir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.outdir, name))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject_rcpts:
            return f"550 5.1.1 <{address}>: recipient rejected"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = self.count
        self.count += 1
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "tls": session.ssl is not None,
            "auth": session.auth_data.decode() if isinstance(session.auth_data, bytes)
            else session.auth_data,
            "connection": getattr(server, "connection_number", None),
            "peer": list(session.peer[:2]) if session.peer else None,
        }
        self._write(f"msg-{n}.eml", envelope.original_content)
        self._write(f"msg-{n}.json", json.dumps(meta, indent=1).encode())
        server.messages_here = getattr(server, "messages_here", 0) + 1
        if self.close_after and server.messages_here >= self.close_after:
            # After the reply below is written (the push that follows is
            # synchronous), before anything else is read.
            asyncio.get_running_loop().call_soon(server.transport.close)
        if self.max_messages and self.count >= self.max_messages:
            self.done.set()
        return "250 OK stored"


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

    return authenticator


async def main():
    ap = argparse.ArgumentParser(description="aiosmtpd peer that stores messages")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--require-tls", action="store_true")
    ap.add_argument("--auth", help="USER:PASS accepted by AUTH PLAIN/LOGIN (after STARTTLS)")
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--reject-rcpt", action="append", default=[],
                    help="answer RCPT TO this address with 550 (repeatable)")
    ap.add_argument("--close-after", type=int, default=0,
                    help="close each connection after the reply to its Nth message")
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--max-messages", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    done = asyncio.Event()
    handler = StoreHandler(args.outdir, args.max_messages, done, args.reject_rcpt,
                           args.close_after)
    kwargs = dict(
        hostname="aiosmtpd.test",
        tls_context=tls_context,
        require_starttls=args.require_tls,
        enable_SMTPUTF8=args.smtputf8,
        timeout=30,
    )
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs["authenticator"] = make_authenticator(user, password)
        kwargs["auth_require_tls"] = tls_context is not None

    loop = asyncio.get_running_loop()
    accepted = itertools.count()

    def connection():
        smtp = SMTP(handler, **kwargs)
        smtp.connection_number = next(accepted)
        return smtp

    server = await loop.create_server(connection, "127.0.0.1", args.port)
    print(f"READY {args.port}", flush=True)
    try:
        await asyncio.wait_for(done.wait(), args.seconds)
    except asyncio.TimeoutError:
        pass
    # Let the last client read its reply to QUIT.
    await asyncio.sleep(0.2)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
