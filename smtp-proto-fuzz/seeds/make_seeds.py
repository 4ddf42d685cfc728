#!/usr/bin/env python3
"""Writes the hand-made seed files of the codec targets into corpus/<target>/.

Run from anywhere: python3 smtp-proto-fuzz/seeds/make_seeds.py
Existing files with the same names are overwritten; others are left alone.
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")
ROOT = os.path.join(HERE, "..", "..")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# RFC 5321 Appendix D.1, client side and server side.
D1_CLIENT = (
    "EHLO bar.com\r\n"
    "MAIL FROM:<Smith@bar.com>\r\n"
    "RCPT TO:<Jones@foo.com>\r\n"
    "RCPT TO:<Green@foo.com>\r\n"
    "RCPT TO:<Brown@foo.com>\r\n"
    "DATA\r\n"
)
D1_BODY = "Blah blah blah...\r\n...etc. etc. etc.\r\n.\r\n"
D1_SERVER = (
    "220 foo.com Simple Mail Transfer Service Ready\r\n"
    "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n"
    "250 OK\r\n250 OK\r\n550 No such user here\r\n250 OK\r\n"
    "354 Start mail input; end with <CRLF>.<CRLF>\r\n250 OK\r\n221 foo.com Service closing transmission channel\r\n"
)

# ---------------------------------------------------------------- command
cmd = {
    "rfc5321-d1-client": D1_CLIENT + "QUIT\r\n",
    "mail-from-null-path": "MAIL FROM:<>\r\n",
    "mail-from-params": "MAIL FROM:<a@b.example> SIZE=1024 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ+2B314 AUTH=<> REQUIRETLS MT-PRIORITY=-3 HOLDFOR=60 BY=120;RT X-TAG=blue\r\n",
    "mail-holduntil": "MAIL FROM:<a@b> HOLDUNTIL=2026-01-02T03:04:05.5+01:00\r\n",
    "rcpt-postmaster": "RCPT TO:<postmaster>\r\nRCPT TO:<Postmaster@example.com>\r\n",
    "rcpt-ipv6-literal": "RCPT TO:<user@[IPv6:2001:db8::1]>\r\n",
    "rcpt-ipv4-literal": "RCPT TO:<user@[192.0.2.1]> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+40example.com RRVS=2014-04-03T23:01:00Z;C\r\n",
    "rcpt-general-literal": "RCPT TO:<u@[x-tag:abc]>\r\n",
    "rcpt-quoted-local": "RCPT TO:<\"john \\\"q\\\" doe\"@example.org>\r\n",
    "rcpt-source-route": "RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>\r\n",
    "rcpt-utf8": "RCPT TO:<用户@例子.广告> \r\nMAIL FROM:<ü@ä.de> SMTPUTF8\r\n",
    "size-rabbit": "MAIL FROM:<a@b> SIZE=rabbit\r\n",
    "duplicate-param": "MAIL FROM:<a@b> SIZE=1 size=2\r\n",
    "bdat": "BDAT 65536\r\nbdat 0 last\r\nBDAT 18446744073709551615 LAST\r\n",
    "auth": "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAUTH LOGIN\r\nAUTH EXTERNAL =\r\nAUTH XOAUTH2 \r\n",
    "misc-verbs": "HELO client.example\r\nLHLO x.y\r\nNOOP\r\nNOOP hello there\r\nHELP\r\nVRFY postmaster\r\nEXPN list\r\nETRN @example.com\r\nETRN #queue1\r\nRSET\r\nSTARTTLS\r\nQUIT  \r\n",
    "unknown-verb": "XCLIENT ADDR=192.0.2.1 NAME=spike.example\r\nBOGUS<\r\n",
    "bare-lf-and-cr": "NOOP\nQUIT\r\nNO\rOP\r\n",
    "bare-lf-smuggle": "MAIL FROM:<a@a.example>\r\nNOOP\nRCPT TO:<x@y.example>\r\nQUIT\r\n",
    "overlong-bare-lf-rcpt": "MAIL FROM:<a@a.example>\r\n" + "X" * 2000 + "\nRCPT TO:<victim@b.example>\r\nQUIT\r\n",
    "invalid-utf8": "VRFY \xff\xfe\r\n".encode("latin-1"),
    "nul": b"NOOP a\x00b\r\nQUIT\r\n",
    "overlong-line": "NOOP " + "x" * 1100 + "\r\nQUIT\r\n",
    "overlong-auth": "AUTH PLAIN " + "A" * 13000 + "\r\nQUIT\r\n",
    "unbracketed": "MAIL FROM:a@b.example SIZE=10\r\nRCPT TO:c@d\r\n",
    "pipelined-smuggle": "MAIL FROM:<a@b.example>\r\nNOOP \r\nRCPT TO:<victim@example.com>\r\nQUIT\r\n",
}
for k, v in cmd.items():
    put("command", k, v)

# ------------------------------------------------------------------ reply
rep = {
    "rfc5321-d1-server": D1_SERVER,
    "bare-250": "250\r\n250 \r\n",
    "multiline-enhanced": "250-mx.example.org\r\n250-2.0.0 first\r\n250 2.1.5 Ok\r\n",
    "code-mismatch": "250-a\r\n251 b\r\n220 ok\r\n",
    "out-of-range": "199 no\r\n600 no\r\n099 bad\r\n221 bye\r\n",
    "bare-lf": "250-a\n250 b\n220 x\r\n",
    "bare-cr": "250 a\rb\r\n",
    "nul": b"250 a\x00b\r\n250 ok\r\n",
    "overlong-line": "250-" + "x" * 600 + "\r\n250 ok\r\n220 next\r\n",
    "overlong-reply": "".join("250-" + "y" * 400 + "\r\n" for _ in range(100)) + "250 end\r\n220 next\r\n",
    "separator": "250x\r\n250 ok\r\n",
    "auth-challenge": "334 VXNlcm5hbWU6\r\n334 \r\n235 2.7.0 Authentication successful\r\n",
    "3yz-no-enhanced": "354 2.0.0 go ahead\r\n",
    "status-codes": "550 5.1.1 No such user\r\n451 4.3.0 later\r\n250 2.0.0\r\n250 2.000.1 x\r\n250 2.1234.1 x\r\n",
}
for k, v in rep.items():
    put("reply", k, v)

# ------------------------------------------------------------------- ehlo
ehlo = {
    "rfc5321-d1": "250-foo.com greets bar.com\r\n250-8BITMIME\r\n250-SIZE\r\n250-DSN\r\n250 HELP\r\n",
    "many-capabilities": "250-mx.example.org Hello\r\n250-SIZE 35882577\r\n250-AUTH LOGIN PLAIN CRAM-MD5 XOAUTH2\r\n"
    "250-AUTH=LOGIN PLAIN\r\n250-STARTTLS\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n"
    "250-ENHANCEDSTATUSCODES\r\n250-DELIVERBY 240\r\n250-FUTURERELEASE 604800 2026-12-31T23:59:59Z\r\n"
    "250-MT-PRIORITY MIXER\r\n250-REQUIRETLS\r\n250-RRVS\r\n250-NO-SOLICITING net.example:ADV\r\n"
    "250-LIMITS RCPTMAX=100 MAILMAX=5 RCPTDOMAINMAX=3 X=1\r\n250-ETRN\r\n250-VRFY\r\n250-XCLIENT NAME ADDR\r\n"
    "250-X-CUSTOM a  b\r\n250 \r\n",
    "bad-params": "250-mx\r\n250-SIZE big\r\n250-DELIVERBY x y\r\n250-LIMITS RCPTMAX\r\n250 AUTH=\r\n",
    "single-line": "250 mx.example.org\r\n",
    "no-domain": "250 \r\n",
    "refused": "502 5.5.1 EHLO not supported\r\n",
    "enhanced-first": "250-2.0.0 mx.example.org hi\r\n250 2.0.0 SIZE 10\r\n",
    "tabs": "250-mx\t \r\n250-\tSIZE\t10 \r\n250 8bitmime\r\n",
    "not-utf8": b"250-mx\r\n250 X-\xff\r\n",
}
for k, v in ehlo.items():
    put("ehlo", k, v)

# ------------------------------------------------------------------- sasl
# First byte: bits 0-1 mechanism (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER),
# bit 2 initial response; then responses separated by LF.
sasl = {
    "plain-initial": b"\x04\x00alice\x00s3cret",
    "plain-authzid": b"\x04admin\x00alice\x00s3cret",
    "plain-after-challenge": b"\x00\n\x00alice\x00s3cret",
    "plain-too-few-nul": b"\x04alice\x00s3cret",
    "plain-ctrl-a": b"\x04\x00al\x01ice\x00pw",
    # RFC 4616 §2's 255 octets per field are a floor: a 300-octet password.
    "plain-long-password": b"\x04\x00alice\x00" + b"p" * 300,
    "login": b"\x01\nalice\ns3cret",
    "login-initial": b"\x05alice\ns3cret",
    "login-empty-user": b"\x01\n\ns3cret",
    "login-nul-password": b"\x05alice\ns3\x00cret",
    "xoauth2": b"\x06user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01",
    "xoauth2-dup": b"\x06user=a\x01user=b\x01auth=Bearer t\x01\x01",
    "oauthbearer": b"\x07n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
    "oauthbearer-escapes": b"\x07n,a=a=2Cb=3Dc,\x01auth=bearer t\x01\x01",
    "oauthbearer-bad-port": b"\x07y,,\x01port=99999\x01auth=Bearer t\x01\x01",
    "not-utf8": b"\x04\x00\xff\x00\xfe",
}
for k, v in sasl.items():
    put("sasl", k, v)

# ------------------------------------------------------------------- data
data = {
    "rfc5321-d1-body": D1_BODY + "QUIT\r\n",
    "empty-message": ".\r\nQUIT\r\n",
    "first-line-dot": "..x\r\n.y\r\n...\r\n.\r\n",
    "smuggle-lf-dot-lf": "a\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n",
    "smuggle-crlf-dot-lf": "a\r\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n",
    "smuggle-lf-dot-crlf": "a\n.\r\nMAIL FROM:<evil@example.com>\r\n.\r\n",
    "smuggle-cr-dot-crlf": "a\r.\r\nMAIL FROM:<evil@example.com>\r\n.\r\n",
    "smuggle-crlf-dot-cr": "a\r\n.\rMAIL FROM:<evil@example.com>\r\n.\r\n",
    "bare-endings": "a\nb\rc\r\r\n\n.\r\n.\r\n",
    "long-lines": "x" * 1000 + "\r\n" + "y" * 998 + "\r\n.\r\n",
    "unterminated": "Subject: hi\r\n\r\nno end\r\n.",
    "held-cr": "abc\r",
    # 998 and 999 octets after unstuffing: the doubled dot does not count.
    "dot-line-limit": ".." + "x" * 997 + "\r\n.." + "x" * 998 + "\r\n.\r\n",
}
for k, v in data.items():
    put("data", k, v)

# ------------------------------------------------------------------- body
body = {
    "plain": "Subject: hi\r\n\r\nHello\r\n",
    "dots": ".\r\n..\r\n.x\r\n",
    "bare-endings": "a\nb\rc\r\r\n\n.\n.",
    "smuggling": "a\n.\nMAIL FROM:<e@x>\r\n\r\n.\n\n.\r\n\r.\r\n\r\n.\r",
    "empty": "",
    "no-final-crlf": "last line",
    "binary": bytes(range(256)),
    "trailing-cr": "x\r",
}
for k, v in body.items():
    put("body", k, v)

# ------------------------------------------------------------------ proxy
# The first octets of a connection behind a load balancer: a PROXY header
# (v1 text, v2 binary) followed by the client's first bytes.
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, block):
    return V2_SIG + bytes([ver_cmd, fam]) + len(block).to_bytes(2, "big") + block


def tlv(kind, value):
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


INET = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + (56324).to_bytes(2, "big") + (25).to_bytes(2, "big")
INET6 = bytes.fromhex("20010db8000000000000000000000007" "20010db8000000000000000000000001") + b"\x00\x01\x02\x4b"
proxy = {
    "v1-tcp4": b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO client.example\r\n",
    "v1-tcp6": b"PROXY TCP6 2001:db8::7 ::ffff:198.51.100.1 1 65535\r\n\x16\x03\x01",
    "v1-unknown": b"PROXY UNKNOWN\r\nEHLO x\r\n",
    "v1-unknown-addresses": b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
    "v1-longest": b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n",
    "v1-too-long": b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n",
    "v1-bad-port": b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n",
    "v1-bad-address": b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n",
    "v1-cr-without-lf": b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rEHLO\r\n",
    "v2-inet-tlvs": v2(0x21, 0x11, INET + tlv(1, b"smtp") + tlv(4, b"\x00\x00")) + b"EHLO x\r\n",
    "v2-inet6": v2(0x21, 0x21, INET6) + b"QUIT\r\n",
    "v2-unix": v2(0x21, 0x31, b"/" * 216 + tlv(2, b"mx.example")),
    "v2-local": v2(0x20, 0x00, b"") + b"EHLO x\r\n",
    "v2-local-garbage": v2(0x20, 0x11, b"\xff\xfe"),
    "v2-udp": v2(0x21, 0x12, INET),
    "v2-short-length": v2(0x21, 0x21, INET),
    "v2-bad-tlv": v2(0x21, 0x11, INET + b"\x01\x00\x09a"),
    "v2-too-long": V2_SIG + b"\x21\x11\xff\xff" + INET,
    "v2-bad-version": v2(0x11, 0x11, INET),
    "not-proxy": b"EHLO client.example\r\n",
}
for k, v in proxy.items():
    put("proxy", k, v)

# Seeds from the transcript tests: every byte-string literal of
# smtp-proto/tests/*.rs that looks like SMTP goes to `command` (client
# lines) or `reply` (server lines).
lit = re.compile(rb'b"((?:[^"\\]|\\.)*)"')


def unescape(b):
    return (
        b.decode("latin-1")
        .encode("latin-1")
        .decode("unicode_escape")
        .encode("latin-1")
    )


tests = os.path.join(ROOT, "smtp-proto", "tests")
for fn in sorted(os.listdir(tests)) if os.path.isdir(tests) else []:
    if not fn.endswith(".rs"):
        continue
    src = open(os.path.join(tests, fn), "rb").read()
    for i, m in enumerate(lit.finditer(src)):
        try:
            v = unescape(m.group(1))
        except Exception:
            continue
        if len(v) < 4:
            continue
        stem = fn[:-3]
        if re.match(rb"^[2-5][0-9][0-9][ -]", v):
            put("reply", f"t-{stem}-{i}", v)
            put("ehlo", f"t-{stem}-{i}", v)
        elif re.match(rb"^[A-Za-z]{4}", v):
            put("command", f"t-{stem}-{i}", v)

# ----------------------------------------------------------------- server
# Byte 0: configuration bits (see harness/src/server.rs); bytes 1-2: the
# decision script; then the client's bytes.
def server(name, bits, stream, script=b"\x00\x00"):
    if isinstance(stream, str):
        stream = stream.encode("latin-1")
    put("server", name, bytes([bits]) + script + stream)


PLAIN_B64 = "AGFsaWNlAHNlY3JldA=="
server("rfc5321-d1", 0, D1_CLIENT + D1_BODY + "QUIT\r\n")
server("rfc5321-d1-reject-some", 0, D1_CLIENT + D1_BODY + "QUIT\r\n", b"\x17\x42")
server("lmtp", 1, "LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n", b"\x05\x09")
server("no-pipelining", 2, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
server("starttls", 4, "EHLO x\r\nSTARTTLS\r\n")
server("starttls-injection", 4, "EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@x>\r\n")
# The script accepts the EHLO, then declines STARTTLS (454): the NOOP
# pipelined after it is a command.
server("starttls-declined", 4, "EHLO x\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n", b"\x00\x0a")
server("auth-plain", 8, "EHLO x\r\nAUTH PLAIN " + PLAIN_B64 + "\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nQUIT\r\n")
server("auth-cancel", 8, "EHLO x\r\nAUTH PLAIN\r\n*\r\nAUTH XOAUTH2\r\n!!!\r\nQUIT\r\n")
server("auth-custom", 8, "EHLO x\r\nAUTH X-APP\r\nYQ==\r\nYg==\r\nAUTH CRAM-MD5 =\r\n*\r\nAUTH cram-md5\r\n=\r\n%%%\r\nQUIT\r\n", b"\x21\x07")
server("small-limits", 16, "EHLO x\r\nMAIL FROM:<a@b> SIZE=1000\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n" + "x" * 100 + "\r\n.\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\n")
server("bare-endings-normalized", 32, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\na\nb\rc\r\n.\r\n")
server("smuggling", 0, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\na\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nb\r\n.\r\nQUIT\r\n")
server("bdat", 0, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\nQUIT\r\n")
server("extensions", 64, "EHLO x\r\nMAIL FROM:<ü@x> SMTPUTF8 BODY=BINARYMIME RET=HDRS ENVID=a REQUIRETLS\r\nRCPT TO:<ü@y> NOTIFY=NEVER ORCPT=rfc822;a+40b\r\nBDAT 3 LAST\r\nabcQUIT\r\n")
server("refused", 128, "EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n")
# A refused session reads and drops a BDAT chunk (holding a QUIT) before
# its one 503.
server("refused-bdat", 128, "BDAT 12\r\nQUIT\r\nNOOP\r\nQUIT\r\n")
# The script's first draw picks the 421 refusal, which closes at once.
server("refused-421", 128, "EHLO x\r\nQUIT\r\n", b"\x07\x02")
# Refused BDAT chunks: a wrong end marker mid-message, a NUL and a non-UTF-8
# octet in the line (chunks read and dropped), then a bare CR (closes).
server("bdat-bad-lines", 0, "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 4\r\nabcdBDAT 6 NOW\r\nRSET\r\nBDAT 17 LAST\x00\r\nMAIL FROM:<e@x>\r\nBDAT 6 \xff\r\nQUIT\r\nbdat 6\r\r\nNOOP\r\n")
server("sequence-errors", 0, "MAIL FROM:<a@b>\r\nEHLO x\r\nDATA\r\nRCPT TO:<a@b>\r\nHELO x\r\nRSET\r\nVRFY a\r\nEXPN b\r\nHELP\r\nNOOP\r\nETRN x.y\r\nXCLIENT a\r\nQUIT\r\n")
server("overlong-lines", 0, "EHLO " + "x" * 2000 + "\r\nNOOP\r\nAUTH PLAIN " + "A" * 13000 + "\r\nQUIT\r\n")
server("everything", 0xff & ~128, "LHLO x\r\nSTARTTLS\r\n")

# ----------------------------------------------------------------- client
# Byte 0: configuration bits (see harness/src/client.rs); bytes 1-2: the
# script of the application's calls; then the server's bytes.
def client(name, bits, stream, script=b"\x00\x03"):
    if isinstance(stream, str):
        stream = stream.encode("latin-1")
    put("client", name, bytes([bits]) + script + stream)


EHLO_FULL = ("250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 100\r\n"
             "250-CHUNKING\r\n250-BINARYMIME\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250-REQUIRETLS\r\n"
             "250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n")
OKS = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n250 2.1.5 Ok\r\n354 go\r\n250 2.0.0 queued\r\n"
client("rfc5321-d1", 0, D1_SERVER)
client("full-ehlo", 0, "220 mx ESMTP\r\n" + EHLO_FULL + OKS + OKS + "221 bye\r\n")
client("full-ehlo-other-script", 0, "220 mx ESMTP\r\n" + EHLO_FULL + OKS + OKS + "221 bye\r\n", b"\x31\x77")
client("starttls", 2, "220 mx ESMTP\r\n" + EHLO_FULL + "220 2.0.0 go\r\n" + EHLO_FULL + OKS + "221 bye\r\n")
client("starttls-injection", 2, "220 mx ESMTP\r\n" + EHLO_FULL + "220 2.0.0 go\r\n250 injected\r\n")
client("tls-required-unavailable", 4, "220 mx ESMTP\r\n250-mx\r\n250 8BITMIME\r\n221 bye\r\n")
client("auth", 64, "220 mx ESMTP\r\n" + EHLO_FULL + "334 \r\n235 2.7.0 ok\r\n" + OKS + "221 bye\r\n", b"\x00\x00")
client("auth-login", 64, "220 mx ESMTP\r\n250-mx\r\n250 AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n535 5.7.8 no\r\n221 bye\r\n", b"\x00\x00")
AUTH_CUSTOM = ("220 mx ESMTP\r\n250-mx\r\n250 AUTH CRAM-MD5 EXTERNAL SCRAM-SHA-256 X-FUZZ\r\n"
               "334 \r\n334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"
               "334 %%%\r\n501 5.7.0 cancelled\r\n221 bye\r\n")
client("auth-custom-cram", 64 | 128, AUTH_CUSTOM, b"\x00\x03")
client("auth-custom-long-initial", 64 | 128, AUTH_CUSTOM, b"\x00\x01")
client("lmtp", 1, "220 mx LMTP\r\n250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 a\r\n452 b\r\n221 bye\r\n")
client("bdat", 8, "220 mx ESMTP\r\n" + EHLO_FULL + "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n")
client("greeting-refused", 0, "554 no service\r\n221 bye\r\n")
client("helo-fallback", 0, "220 mx\r\n502 no ehlo\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n")
client("service-closing", 0, "220 mx ESMTP\r\n" + EHLO_FULL + "421 4.3.2 shutting down\r\n")
client("bad-replies", 0, "220 mx ESMTP\r\n250-mx\r\n251 mismatch\r\n199 bad\r\n")
# LIMITS (RFC 9422) small enough for the script's one to three recipients
# and two messages: the client refuses what goes past them, sends nothing.
client("limits", 0, "220 mx ESMTP\r\n250-mx.example.org\r\n250-PIPELINING\r\n"
       "250 LIMITS RCPTMAX=1 MAILMAX=1 RCPTDOMAINMAX=1\r\n" + OKS + OKS + "221 bye\r\n")
client("multiline-greeting", 0, "220-mx ESMTP\r\n220-more\r\n220 end\r\n" + EHLO_FULL + OKS + "221 bye\r\n")

# --------------------------------------------------------------- delivery
# Byte 0: configuration bits (as for `client`); byte 1: the delivery
# (recipients, body, SIZE, AUTH; see harness/src/delivery.rs); byte 2: the
# body piece size; then the server's bytes.
def delivery(name, bits, params, stream, size=255):
    if isinstance(stream, str):
        stream = stream.encode("latin-1")
    put("delivery", name, bytes([bits, params, size]) + stream)


NOPIPE = "220 mx ESMTP\r\n250-mx.example.org\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"
ONE = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n250 2.0.0 queued\r\n"
delivery("one", 32, 0, NOPIPE + ONE + "221 bye\r\n")
delivery("three-pipelined", 0, 2, "220 mx ESMTP\r\n" + EHLO_FULL +
         "250 Ok\r\n250 Ok\r\n550 5.1.1 no\r\n450 4.2.1 busy\r\n354 go\r\n250 queued\r\n221 bye\r\n")
delivery("rcptmax", 32, 2, "220 mx ESMTP\r\n250-mx\r\n250 LIMITS RCPTMAX=2\r\n"
         "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 a\r\n250 Ok\r\n250 Ok\r\n354 go\r\n250 b\r\n221 bye\r\n")
delivery("mailmax", 32, 5, "220 mx ESMTP\r\n250-mx\r\n250 LIMITS RCPTMAX=1 MAILMAX=1 RCPTDOMAINMAX=1\r\n"
         + ONE + "221 bye\r\n")
delivery("sender-refused", 32, 5, "220 mx ESMTP\r\n250-mx\r\n250 LIMITS RCPTMAX=2\r\n550 5.7.1 no\r\n221 bye\r\n")
delivery("sender-later", 32, 3, "220 mx ESMTP\r\n250-mx\r\n250 LIMITS RCPTMAX=2\r\n451 4.3.0 later\r\n"
         + ONE.replace("250 2.1.5 Ok\r\n", "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n") + "221 bye\r\n")
delivery("service-closing", 32, 3, "220 mx ESMTP\r\n250-mx\r\n250 LIMITS RCPTMAX=1\r\n" + ONE
         + "250 Ok\r\n250 Ok\r\n421 4.3.2 bye\r\n")
delivery("lost-after-body", 32, 1, NOPIPE + "250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n")
delivery("auth-failed", 64 | 32, 64 | 1, "220 mx ESMTP\r\n250-mx\r\n250 AUTH PLAIN\r\n535 5.7.8 no\r\n221 bye\r\n")
delivery("auth-ok", 64 | 32, 64, "220 mx ESMTP\r\n250-mx\r\n250 AUTH PLAIN\r\n235 ok\r\n" + ONE + "221 bye\r\n")
delivery("auth-custom", 64 | 32, 192, "220 mx ESMTP\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n334 PDE4OT4=\r\n501 cancelled\r\n221 bye\r\n")
# The target's responder answers by the challenge's first octet (% 4):
# `A` an empty line, `C` a response too long to send (cancelled), `B` a
# cancel, an empty challenge the round's number, NUL an echo.
delivery("responder-answered", 64 | 32, 192, "220 mx ESMTP\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n334 QQ==\r\n235 ok\r\n" + ONE + "221 bye\r\n")
delivery("responder-too-long", 64 | 32, 192, "220 mx ESMTP\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n334 Qw==\r\n501 cancelled\r\n221 bye\r\n")
delivery("responder-rounds", 64 | 32, 192, "220 mx ESMTP\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n334 \r\n334 AA==\r\n334 Qg==\r\n501 cancelled\r\n221 bye\r\n")
delivery("lmtp", 1 | 32, 2, "220 mx LMTP\r\n250-mx\r\n250 8BITMIME\r\n250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n354 go\r\n250 a\r\n452 b\r\n221 bye\r\n")
delivery("bdat", 8 | 32, 0, "220 mx ESMTP\r\n250-mx\r\n250 CHUNKING\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n", 7)
delivery("eight-bit-refused", 32, 3 << 3, "220 mx ESMTP\r\n250 mx\r\n221 bye\r\n")
delivery("too-large", 32, 32, "220 mx ESMTP\r\n250-mx\r\n250 SIZE 5\r\n221 bye\r\n")
delivery("greeting-refused", 32, 0, "554 no service\r\n221 bye\r\n")
delivery("tls-required", 4, 0, "220 mx ESMTP\r\n250 mx\r\n221 bye\r\n")
delivery("starttls", 2, 0, "220 mx ESMTP\r\n" + EHLO_FULL + "220 2.0.0 go\r\n" + EHLO_FULL
         + "250 Ok\r\n250 Ok\r\n354 go\r\n250 queued\r\n221 bye\r\n")

# --------------------------------------------------------- delivery_reuse
# Byte 0: configuration bits (as for `client`); byte 1: the plan (bits 0-1
# the number of deliveries, 1 to 3; bit 2 + i delivery i quits; bit 5 NOOP
# before the next delivery; bit 6 read the idle session first; bit 7 small
# body pieces; see harness/src/delivery_reuse.rs); bytes 2-4: each
# delivery as byte 1 of `delivery`; then the server's bytes.
def delivery_reuse(name, bits, plan, params, stream):
    if isinstance(stream, str):
        stream = stream.encode("latin-1")
    put("delivery_reuse", name, bytes([bits, plan] + list(params)) + stream)


REUSE_EHLO = "220 mx ESMTP\r\n250-mx.example.org\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n"
delivery_reuse("two-kept-open", 32, 1, [0, 1, 0], REUSE_EHLO + ONE + ONE + ONE)
delivery_reuse("three-last-quits", 32, 2 | 16, [0, 0, 0], REUSE_EHLO + ONE + ONE + ONE + "221 bye\r\n")
delivery_reuse("auth-once", 64 | 32, 2, [64, 64, 128], REUSE_EHLO + "235 ok\r\n" + ONE + ONE + ONE)
delivery_reuse("auth-failed-then-retried", 64 | 32, 1, [64, 64, 0], REUSE_EHLO + "535 5.7.8 no\r\n"
               + "235 ok\r\n" + ONE)
delivery_reuse("quit-then-closed", 32, 2 | 4, [0, 1, 2], REUSE_EHLO + ONE + "221 bye\r\n")
delivery_reuse("noop-between", 32, 2 | 32 | 16, [0, 0, 0], REUSE_EHLO + ONE + "250 ok\r\n" + ONE
               + "250 ok\r\n" + ONE + "221 bye\r\n")
delivery_reuse("421-in-second", 32, 2, [0, 0, 0], REUSE_EHLO + ONE + "421 4.3.2 bye\r\n")
delivery_reuse("421-while-idle", 32, 2 | 64, [0, 0, 0], REUSE_EHLO + ONE + "421 4.3.2 bye\r\n")
delivery_reuse("sender-refused-then-next", 32, 1 | 8, [1, 0, 0], REUSE_EHLO + "550 5.7.1 no\r\n"
               + ONE + "221 bye\r\n")
delivery_reuse("mailmax-across", 32, 2, [1, 0, 0], "220 mx ESMTP\r\n250-mx\r\n250 LIMITS MAILMAX=2 RCPTMAX=1\r\n"
               + ONE + ONE)
delivery_reuse("pipelined-bdat", 8, 2 | 128, [2, 3 << 3, 1], "220 mx ESMTP\r\n" + EHLO_FULL
               + "250 ok\r\n" * 12)
delivery_reuse("lost-in-second", 32, 2, [0, 0, 0], REUSE_EHLO + ONE + "250 ok\r\n250 ok\r\n354 go\r\n")
delivery_reuse("greeting-refused", 32, 2, [0, 0, 0], "554 no service\r\n221 bye\r\n")

# Seeds from the session transcripts of smtp-proto/tests/*.rs: in each test
# function, `C: line` / `C~ raw` lines are what the client sends and `S:`
# lines what the server sends (`S: EHLO-REPLY` stands for the default EHLO
# reply). The client's bytes seed `server` (default and STARTTLS+AUTH
# configurations) and `command`; the server's seed `client` and `reply`.
EHLO_REPLY = ["250-mx.example.com", "250-PIPELINING", "250-8BITMIME",
              "250-CHUNKING", "250 ENHANCEDSTATUSCODES"]


def rust_unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            c = s[i + 1]
            out.append({"r": "\r", "n": "\n", "t": "\t", "0": "\0", "\\": "\\", '"': '"'}.get(c, "\\" + c))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def transcript_unescape(s):
    b = s.encode("utf-8")
    out, i = bytearray(), 0
    while i < len(b):
        if b[i] == 0x5C and i + 1 < len(b):
            c = chr(b[i + 1])
            if c == "x" and i + 3 < len(b):
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
            out.extend({"r": b"\r", "n": b"\n", "0": b"\0", "\\": b"\\"}.get(c, b[i:i + 2]))
            i += 2
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


line_re = re.compile(r"^\s*(C:|C~|S:)\s?(.*)$")
for fn in sorted(os.listdir(tests)) if os.path.isdir(tests) else []:
    if not fn.endswith(".rs"):
        continue
    src = open(os.path.join(tests, fn), encoding="utf-8", errors="replace").read()
    for n, chunk in enumerate(src.split("#[test]")):
        cbytes, sbytes = bytearray(), bytearray()
        for raw in chunk.splitlines():
            m = line_re.match(raw)
            if not m:
                continue
            kind, text = m.group(1), rust_unescape(m.group(2))
            if kind == "S:":
                lines = EHLO_REPLY if text.strip() == "EHLO-REPLY" else [text]
                for l in lines:
                    sbytes.extend(l.encode("utf-8") + b"\r\n")
            elif kind == "C:":
                cbytes.extend(text.encode("utf-8") + b"\r\n")
            else:
                cbytes.extend(transcript_unescape(text))
        stem = fn[:-3]
        if cbytes:
            server(f"tr-{stem}-{n}", 0, bytes(cbytes))
            server(f"tr-{stem}-{n}-tls-auth", 12, bytes(cbytes))
            put("command", f"tr-{stem}-{n}", bytes(cbytes))
        if sbytes:
            client(f"tr-{stem}-{n}", 0, bytes(sbytes))
            put("reply", f"tr-{stem}-{n}", bytes(sbytes))

# --------------------------------------------------------------- dsn_read
# The bounce samples of smtp-proto/tests/dsn_read.rs (`const NAME: &str`),
# as they are and with LF line ends, and their status parts alone.
with open(os.path.join(tests, "dsn_read.rs"), encoding="utf-8") as f:
    dsn_source = f.read()
for name, lit in re.findall(r'^const (\w+): &str = "(.*?)";$', dsn_source, re.S | re.M):
    sample = rust_unescape(lit).encode("utf-8")
    stem = name.lower()
    put("dsn_read", f"sample-{stem}", sample)
    put("dsn_read", f"sample-{stem}-lf", sample.replace(b"\r\n", b"\n"))
    at = sample.find(b"Reporting-MTA:")
    end = sample.find(b"\n--", at)
    if at >= 0 and end > at:
        put("dsn_read", f"status-{stem}", sample[at:end + 1])
put("dsn_read", "status-sloppy",
    "reporting-mta:dns;mx.example.org\nFINAL-RECIPIENT: rfc822; <a@example.net> (x)\n"
    "action: FAILED (permanently)\nstatus:\t5.1.1 (unknown)\n\n\n   \n"
    "Final-Recipient: b@example.net\nAction: delayed\nStatus: 4.04.07\n"
    "Final-Recipient: utf-8; \\x{7528}\\x{6237}@example.com\nAction: bounced\nStatus: five\n")
put("dsn_read", "report-base64-status",
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "UmVwb3J0aW5nLU1UQTogZG5zOyBteAoKRmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGFAYgpBY3Rp\r\n"
    "b246IGZhaWxlZApTdGF0dXM6IDUuMS4xCg==\r\n--b--\r\n")
