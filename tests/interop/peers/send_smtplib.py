#!/usr/bin/env python3
"""Sends one message file with Python's smtplib to 127.0.0.1:PORT.

Usage: send_smtplib.py --port P --from F --to T [--to T2] --file MSG
                       [--starttls [--cafile CERT]] [--auth USER:PASS]
                       [--mail-option SMTPUTF8 ...]
The file's bytes go to SMTP.sendmail unchanged; smtplib turns bare CR and
bare LF into CRLF, dot-stuffs, and adds the final CRLF if missing.
Exit status 0 when every recipient was accepted.
"""
import argparse
import smtplib
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--starttls", action="store_true")
    ap.add_argument("--cafile")
    ap.add_argument("--auth")
    ap.add_argument("--mail-option", action="append", default=[])
    args = ap.parse_args()

    with open(args.file, "rb") as f:
        message = f.read()
    with smtplib.SMTP("127.0.0.1", args.port, local_hostname="client.test", timeout=30) as smtp:
        smtp.ehlo()
        if args.starttls:
            ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else \
                ssl._create_unverified_context()
            smtp.starttls(context=ctx)
            smtp.ehlo()
        if args.auth:
            user, _, password = args.auth.partition(":")
            smtp.login(user, password)
        refused = smtp.sendmail(args.sender, args.to, message, mail_options=args.mail_option)
    if refused:
        print(f"refused: {refused}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
