#!/usr/bin/env python3
"""The interop suite: real SMTP peers against smtp-proto's example server
and client, and adversarial clients over raw sockets.

Run through run.sh (which installs the peers and builds the examples):
    bash tests/interop/run.sh
or directly, once both are done:
    python3 tests/interop/suite.py [--only SUBSTRING ...]

Prints one line per case, `PASS name` or `FAIL name: reason`, and ends with
`N passed, M failed` alone on a line; the exit status is 1 if anything
failed. Everything runs on 127.0.0.1; every peer is started in its own
process group under a time limit and stopped at the end, whatever happens.
Standard library only.
"""
import argparse
import asyncio
import base64
import email
import email.policy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
P = os.path.join(HERE, "peers")
PEERS_DIR = os.environ.get("SMTP_INTEROP_PEERS", os.path.join(HERE, ".peers"))
POSTFIX_LIB = os.path.join(PEERS_DIR, "postfix/usr/lib/postfix")
SMTP_SINK = os.path.join(PEERS_DIR, "postfix/usr/sbin/smtp-sink")
VENV_PY = os.path.join(PEERS_DIR, "venv/bin/python")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
EXAMPLES = os.environ.get("INTEROP_EXAMPLES", os.path.join(TARGET, "release/examples"))

HOST = "127.0.0.1"
CRLF = b"\r\n"
# Every read from the network is bounded: at most READ_MAX bytes waiting
# unparsed, at most REPLY_MAX_LINES lines (and READ_MAX bytes) in one reply,
# and an overall deadline on each reply or conversation, not only a timeout
# on each recv.
READ_MAX = 1 << 20
REPLY_MAX_LINES = 1000
FROM = "sender@client.test"
TO = "rcpt@server.test"
USER, PASSWORD = "alice", "s3cret"

# Every implementation of the server and client examples found in the build.
SERVERS = [(name, os.path.join(EXAMPLES, f"{name}")) for name in ("serve", "serve-blocking")]
CLIENTS = [(name, os.path.join(EXAMPLES, f"{name}")) for name in ("send", "send-blocking")]

# ------------------------------------------------------------------ plumbing

WORK = tempfile.mkdtemp(prefix="smtp-interop.")
os.chmod(WORK, 0o755)  # exim runs as its own user below WORK
PROCS = []
RESULTS = {"passed": 0, "failed": 0}


class CaseFailure(Exception):
    pass


def check(cond, reason):
    if not cond:
        raise CaseFailure(reason)


def start(cmd, name, cwd=None, env=None):
    """Starts a peer in its own process group; its output goes to WORK/name.log."""
    log = open(os.path.join(WORK, f"{name}.log"), "ab")
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=cwd, env=full_env, start_new_session=True)
    proc.log_path = log.name
    PROCS.append(proc)
    return proc


def stop(proc, grace=5.0):
    """SIGTERM to the process group we started, then SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # The group may outlive its leader (exim's per-connection children).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        pass


def stop_all():
    for proc in PROCS:
        stop(proc, grace=2.0)


def free_port(host=HOST):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening(port, host=HOST):
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") in out


def wait_port(port, proc, seconds=15.0, host=HOST):
    """Waits until something listens on the port (asks ss; never connects)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if listening(port, host):
            return
        if proc.poll() is not None:
            raise CaseFailure(f"peer exited ({proc.returncode}) before listening: {tail(proc.log_path)}")
        time.sleep(0.05)
    raise CaseFailure(f"nothing listens on {port} after {seconds}s")


def tail(path, n=6):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return " | ".join(lines[-n:])
    except OSError:
        return "(no log)"


def run(cmd, timeout=60, stdin=None, env=None, cwd=None):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(cmd, capture_output=True, timeout=timeout, env=full_env, cwd=cwd,
                          stdin=stdin if stdin is not None else subprocess.DEVNULL)


def short(b, n=300):
    if isinstance(b, bytes):
        b = b.decode("utf-8", "replace")
    b = b.strip().replace("\n", " | ")
    return b if len(b) <= n else b[:n] + "..."


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def same(expected, actual, what="stored message"):
    if expected != actual:
        i = first_diff(expected, actual)
        raise CaseFailure(f"{what} differs at byte {i} (len {len(actual)} vs {len(expected)} sent): "
                          f"got {actual[max(0, i - 20):i + 30]!r}, want {expected[max(0, i - 20):i + 30]!r}")


CASES = []


def case(name):
    def wrap(fn):
        CASES.append((name, fn))
        return fn
    return wrap


def report(name, error=None):
    if error is None:
        RESULTS["passed"] += 1
        print(f"PASS {name}", flush=True)
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name}: {error}", flush=True)


# ---------------------------------------------------------------- the messages


def write(name, data):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# CRLF only; dots at line starts (stuffed on the wire), 8-bit text, and the
# headers that exim and msmtp would otherwise add.
MSG = CRLF.join([
    b"From: <sender@client.test>",
    b"To: <rcpt@server.test>",
    b"Subject: interop",
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000",
    b"Message-ID: <interop.1@client.test>",
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Transfer-Encoding: 8bit",
    b"",
    b".",
    b"line one",
    b".leading dot",
    b"..two dots",
    "Grüße, 8-bit body".encode(),
    b"last line",
]) + CRLF
MSG_FILE = write("msg.eml", MSG)
MSG_NO_FINAL_CRLF = write("msg-no-final-crlf.eml", MSG[:-2])   # swaks adds the CRLF
MSG_LF_FILE = write("msg-lf.eml", MSG.replace(CRLF, b"\n"))      # curl --crlf, smtp-source
# A larger message: exim sends it in more than one BDAT chunk.
BIG = MSG + b"".join(b"%06d " % i + b"x" * 70 + CRLF for i in range(4000))
BIG_FILE = write("big.eml", BIG)
# Three different messages, for one session carrying several.
SEVERAL = [MSG.replace(b"Subject: interop", b"Subject: interop %d" % i)
              .replace(b"<interop.1@", b"<interop.several.%d@" % i)
              .replace(b"last line", b"last line of message %d" % i) for i in (1, 2, 3)]
SEVERAL_FILES = [write(f"several-{i}.eml", m) for i, m in enumerate(SEVERAL, 1)]
# A bare LF inside: curl without --crlf sends it as is.
BARE_LF = b"Subject: bare LF\r\n\r\nline\nnext line\r\nend\r\n"
BARE_LF_FILE = write("bare-lf.eml", BARE_LF)


def cert():
    d = os.path.join(WORK, "cert")
    if not os.path.exists(os.path.join(d, "cert.pem")):
        r = run([os.path.join(P, "make-cert.sh"), d])
        check(r.returncode == 0, f"make-cert.sh failed: {short(r.stderr)}")
    return os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")


# ------------------------------------------------------------ our server


class OurServer:
    """One run of the example server with its own Maildir."""

    def __init__(self, name, binary, *args):
        self.port = free_port()
        self.maildir = os.path.join(WORK, name, "maildir")
        os.makedirs(os.path.dirname(self.maildir), exist_ok=True)
        # Under `timeout`, like every peer: bounded even if the suite is killed.
        self.proc = start(["timeout", "600", binary, "--listen", f"{HOST}:{self.port}", "--maildir",
                           self.maildir, "--hostname", "mx.test", *args], name,
                          env={"RUST_LOG": "info"})
        wait_port(self.port, self.proc)

    def new(self):
        d = os.path.join(self.maildir, "new")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def tmp(self):
        d = os.path.join(self.maildir, "tmp")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def wait_count(self, n, seconds=15.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.new()) >= n:
                break
            time.sleep(0.05)
        return len(self.new())

    def messages(self):
        """Every stored message as (return_path, received, body), oldest first."""
        out = []
        for name in self.new():
            with open(os.path.join(self.maildir, "new", name), "rb") as f:
                out.append(split_trace(f.read(), name))
        return out

    def only_message(self, seconds=15.0):
        n = self.wait_count(1, seconds)
        check(n == 1, f"{n} messages stored, want 1")
        time.sleep(0.1)
        msgs = self.messages()
        check(len(msgs) == 1, f"{len(msgs)} messages stored, want 1")
        return msgs[0]

    def check_messages(self, n, body, sender=FROM):
        """Exactly n messages stored (none more arriving within 0.1 s), each
        from sender with the bytes of body."""
        got_n = self.wait_count(n)
        check(got_n == n, f"{got_n} messages stored, want {n}")
        time.sleep(0.1)
        msgs = self.messages()
        check(len(msgs) == n, f"{len(msgs)} messages stored, want {n}")
        for rp, _, got in msgs:
            check(rp == sender, f"Return-Path <{rp}>, want <{sender}>")
            same(body, got)

    def stop(self):
        stop(self.proc)
        check(self.proc.returncode is not None, "server did not stop")


def split_trace(data, name="message"):
    """Strips our two trace fields; checks their form. The Received: field
    is folded (continuation lines start with a tab); it is returned
    unfolded, without its name."""
    m = re.match(rb"Return-Path: <([^\r\n>]*)>\r\nReceived: ([^\r\n]*(?:\r\n\t[^\r\n]*)*)\r\n", data)
    check(m is not None, f"{name} does not start with Return-Path: and Received: fields: {data[:160]!r}")
    received = m.group(2).decode("utf-8").replace("\r\n\t", " ")
    return m.group(1).decode("utf-8"), received, data[m.end():]


def check_stored(srv, body, sender=FROM, rcpt=TO, what="stored message"):
    rp, received, got = srv.only_message()
    check(rp == sender, f"Return-Path <{rp}>, want <{sender}>")
    check(received.startswith("from ") and " by mx.test " in received,
          f"Received line malformed: {received!r}")
    if rcpt is not None:
        check(f"for <{rcpt}>" in received, f"Received line lacks 'for <{rcpt}>': {received!r}")
    same(body, got, what)
    return received


def serve_binaries():
    found = [(n, b) for n, b in SERVERS if os.access(b, os.X_OK)]
    return found


# ------------------------------------------------------- raw socket client


class Raw:
    """A deliberately simple SMTP client over a raw socket. Each reply must
    be complete within `timeout` seconds of asking for it (not per recv),
    in at most REPLY_MAX_LINES lines and READ_MAX bytes."""

    def __init__(self, port, timeout=10.0):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """One recv that returns by the deadline (socket.timeout if not)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        finally:
            self.sock.settimeout(self.timeout)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk
        check(len(self.buf) <= READ_MAX, f"more than {READ_MAX} bytes from the server without a CRLF")

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, text lines)."""
        deadline = time.monotonic() + self.timeout
        lines = []
        size = 0
        for _ in range(REPLY_MAX_LINES):
            while CRLF not in self.buf:
                try:
                    self._fill(deadline)
                except socket.timeout:
                    raise CaseFailure(f"no complete reply within {self.timeout:g}s; got {lines} "
                                      f"and {self.buf[:80]!r}") from None
            line, self.buf = self.buf.split(CRLF, 1)
            size += len(line) + 2
            check(size <= READ_MAX, f"reply longer than {READ_MAX} bytes")
            check(re.match(rb"^[2-5][0-9][0-9]([ -]|$)", line) is not None, f"not a reply line: {line!r}")
            lines.append(line.decode("utf-8", "replace"))
            if len(line) == 3 or line[3:4] == b" ":
                return int(line[:3]), lines
        raise CaseFailure(f"reply with more than {REPLY_MAX_LINES} lines")

    def cmd(self, line, want=None):
        self.send(line.encode() + CRLF if isinstance(line, str) else line + CRLF)
        code, lines = self.reply()
        if want is not None:
            check(code == want, f"{line!r} got {lines}, want {want}")
        return code, lines

    def rest(self, seconds=10.0):
        """Reads until the server closes, for at most `seconds` and READ_MAX
        bytes; returns (bytes, closed)."""
        data, self.buf = self.buf, b""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    return data, True
                if not chunk:
                    return data, True
                data += chunk
                check(len(data) <= READ_MAX,
                      f"more than {READ_MAX} bytes from the server before it closed: {data[:80]!r}...")
            return data, False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        self.sock.close()

    def data(self, wire, what):
        """DATA, then `wire` (the dot-stuffed body and its end marker); the
        message must be accepted with 250 (`what` names it on failure)."""
        self.cmd("DATA", 354)
        self.send(wire)
        code, lines = self.reply()
        check(code == 250, f"{what} got {lines}")

    def hello(self):
        code, _ = self.reply()
        check(code == 220, f"greeting {code}")
        code, lines = self.cmd("EHLO client.test", 250)
        return [l[4:] for l in lines]

    def envelope(self, sender=FROM, rcpt=TO):
        self.cmd(f"MAIL FROM:<{sender}>", 250)
        self.cmd(f"RCPT TO:<{rcpt}>", 250)


def connect_when_free(port, tries=20, pause=0.25):
    """A Raw client whose greeting is not `421 4.3.2` (all places taken):
    up to `tries` connections, `pause` seconds apart. The greeting is left
    unread for the caller."""
    for _ in range(tries):
        c = Raw(port)
        try:
            code, lines = c.reply()
        except EOFError:
            code, lines = None, []
        if code is None or (code == 421 and lines[-1].startswith("421 4.3.2")):
            c.close()
            time.sleep(pause)
            continue
        # Put the greeting back for the caller's hello().
        c.buf = CRLF.join(l.encode() for l in lines) + CRLF + c.buf
        return c
    raise CaseFailure(f"no free place after {tries} tries, {pause:g}s apart")


def reply_codes(data):
    """The codes of the complete replies in data (last line of each)."""
    codes = []
    for line in data.split(CRLF):
        m = re.match(rb"^([2-5][0-9][0-9])( |$)", line)
        if m:
            codes.append(int(m.group(1)))
    return codes


# ------------------------------------------------- real clients -> our server

SMTPLIB_SECONDS = 60.0


def smtplib_session(port, seconds=SMTPLIB_SECONDS, implicit_tls=False, host=HOST):
    """smtplib's client to host (127.0.0.1, or ::1):port, for a `with` block. smtplib's
    reads have only a timeout per recv and its reply loop no line limit, so
    a timer shuts the socket down `seconds` after the connection starts,
    which ends any read in progress; the case then fails saying so. With
    implicit_tls it is smtplib.SMTP_SSL, checking the test certificate."""
    import smtplib
    import ssl

    base = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
    extra = {"context": ssl.create_default_context(cafile=cert()[0])} if implicit_tls else {}

    class Bounded(base):
        def __init__(self):
            self.expired = False
            self.watchdog = threading.Timer(seconds, self._expire)
            self.watchdog.daemon = True
            self.watchdog.start()
            try:
                super().__init__(host, port, local_hostname="client.test", timeout=30, **extra)
            except BaseException as e:
                self.watchdog.cancel()
                self._check_expired(e)
                raise

        def _expire(self):
            self.expired = True
            sock = self.sock  # the TLS socket after STARTTLS
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def _check_expired(self, cause=None):
            if self.expired:
                raise CaseFailure(f"smtplib session not finished within {seconds:g}s") from cause

        def __exit__(self, exc_type, exc, tb):
            try:
                super().__exit__(exc_type, exc, tb)  # QUIT, also a read
            finally:
                self.watchdog.cancel()
            self._check_expired(exc)
            return False

    return Bounded()


def smtplib_send(port, body, sender=FROM, rcpts=(TO,), starttls=False, auth=None,
                 mail_options=(), implicit_tls=False, host=HOST):
    import ssl
    with smtplib_session(port, implicit_tls=implicit_tls, host=host) as smtp:
        smtp.ehlo()
        if implicit_tls:
            check(not smtp.has_extn("starttls"), "STARTTLS offered on implicit TLS")
        if starttls:
            check(smtp.has_extn("starttls"), "STARTTLS not advertised")
            check(not smtp.has_extn("auth") or not auth, "AUTH advertised before TLS")
            ctx = ssl.create_default_context(cafile=cert()[0])
            smtp.starttls(context=ctx)
            smtp.ehlo()
            check(not smtp.has_extn("starttls"), "STARTTLS still advertised after TLS")
        if auth:
            mech = auth
            check(mech.lower() in smtp.esmtp_features.get("auth", "").lower(),
                  f"AUTH {mech} not advertised: {smtp.esmtp_features.get('auth')}")
            smtp.user, smtp.password = USER, PASSWORD
            code, resp = smtp.auth(mech, getattr(smtp, f"auth_{mech.lower()}"))
            check(code == 235, f"AUTH {mech}: {code} {resp}")
        refused = smtp.sendmail(sender, list(rcpts), body, mail_options=list(mail_options))
        check(not refused, f"refused: {refused}")


def each_server(fn_name, fn):
    """Registers fn(binary, label) once per server example that was built."""
    for name, binary in SERVERS:
        label = "" if name == "serve" else f" [{name}]"
        case(fn_name + label)(lambda b=binary, n=name: fn(b, n))


def t_smtplib_plain(binary, name):
    srv = OurServer(f"{name}-smtplib-plain", binary)
    smtplib_send(srv.port, MSG)
    check_stored(srv, MSG)
    srv.stop()


def t_smtplib_starttls(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-smtplib-tls", binary, "--tls-cert", c, "--tls-key", k)
    smtplib_send(srv.port, MSG, starttls=True)
    check_stored(srv, MSG)
    srv.stop()


def t_smtplib_auth(mech):
    def t(binary, name):
        c, k = cert()
        srv = OurServer(f"{name}-smtplib-auth-{mech}", binary, "--tls-cert", c, "--tls-key", k,
                        "--auth", f"{USER}:{PASSWORD}")
        smtplib_send(srv.port, MSG, starttls=True, auth=mech)
        check_stored(srv, MSG)
        srv.stop()
    return t


def t_smtplib_implicit_tls(binary, name):
    """SMTP_SSL: TLS from the first byte, AUTH on the first EHLO."""
    c, k = cert()
    srv = OurServer(f"{name}-smtplib-implicit", binary, "--tls-cert", c, "--tls-key", k,
                    "--implicit-tls", "--auth", f"{USER}:{PASSWORD}")
    smtplib_send(srv.port, MSG, auth="PLAIN", implicit_tls=True)
    check_stored(srv, MSG)
    received = srv.messages()[0][1]
    check("ESMTPSA" in received, f"Received does not say ESMTPSA: {received}")
    srv.stop()


def t_curl_implicit_tls(binary, name):
    """curl smtps:// with the certificate checked and AUTH."""
    c, k = cert()
    srv = OurServer(f"{name}-curl-implicit", binary, "--tls-cert", c, "--tls-key", k,
                    "--implicit-tls", "--auth", f"{USER}:{PASSWORD}")
    r = run(["timeout", "60", "curl", "--silent", "--show-error", "--max-time", "30", "-v",
             "--url", f"smtps://{HOST}:{srv.port}/client.test", "--cacert", c,
             "--user", f"{USER}:{PASSWORD}", "--mail-from", FROM, "--mail-rcpt", TO,
             "--upload-file", MSG_FILE])
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode == 0, f"curl exit {r.returncode}: {short(err)}")
    check("STARTTLS" not in [l[2:].strip() for l in err.splitlines() if l.startswith("> ")],
          "curl sent STARTTLS")
    check(re.search(r"^> AUTH ", err, re.M) is not None, f"curl did not AUTH: {short(err)}")
    check_stored(srv, MSG)
    srv.stop()


def read_until_closed(sock, seconds=10.0, limit=4096):
    """What the peer sends on sock until it closes, resets, stays silent
    for the socket's timeout, `seconds` pass or `limit` bytes came."""
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < limit:
        try:
            chunk = sock.recv(limit)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        got += chunk
    return got


def t_implicit_tls_plaintext_client(binary, name):
    """A plaintext client on the implicit-TLS port gets no SMTP greeting and
    no answer to its command; the server goes on serving TLS clients."""
    c, k = cert()
    srv = OurServer(f"{name}-implicit-plain", binary, "--tls-cert", c, "--tls-key", k,
                    "--implicit-tls")
    sock = socket.create_connection((HOST, srv.port), timeout=10)
    try:
        sock.sendall(b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n")
        got = read_until_closed(sock)
    finally:
        sock.close()
    check(b"220" not in got and b"250" not in got, f"plaintext SMTP answered: {short(got)}")
    smtplib_send(srv.port, MSG, implicit_tls=True)
    check_stored(srv, MSG)
    srv.stop()


def t_implicit_tls_over_limit(binary, name):
    """--max-connections 1 on implicit TLS: a second client gets no
    plaintext 421 (garbage to a TLS client), only a closed connection; the
    first one's session goes on."""
    import ssl
    c, k = cert()
    srv = OurServer(f"{name}-implicit-limit", binary, "--tls-cert", c, "--tls-key", k,
                    "--implicit-tls", "--max-connections", "1")
    with smtplib_session(srv.port, implicit_tls=True) as first:
        first.ehlo()
        sock = socket.create_connection((HOST, srv.port), timeout=10)
        try:
            got = read_until_closed(sock)
        finally:
            sock.close()
        check(got == b"", f"the refused connection got bytes: {short(got)}")
        refused = first.sendmail(FROM, [TO], MSG)
        check(not refused, f"refused: {refused}")
    check_stored(srv, MSG)
    srv.stop()


# ------------------------------------------- behind a load balancer (PROXY)

# The real client's address: HAProxy listens on the IPv6 loopback and
# connects to our server over IPv4, so the address the PROXY header carries
# (::1) differs from the one the server sees the connection come from.
PROXY_CLIENT = "::1"
# A message without leading dots, for the raw client (which does not stuff).
PROXIED = b"Subject: proxied\r\n\r\nhello\r\n"


def start_haproxy(name, backend_port, send_proxy):
    """HAProxy in TCP mode on a free port, forwarding every connection to
    backend_port with a PROXY header (send_proxy: "send-proxy" for v1,
    "send-proxy-v2"); in the foreground, under `timeout` like every peer."""
    port = free_port(PROXY_CLIENT)
    cfg = write(f"{name}.cfg", f"""global
    maxconn 64
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend smtp
    bind {PROXY_CLIENT}:{port}
    default_backend ours
backend ours
    server ours {HOST}:{backend_port} {send_proxy}
""".encode())
    proc = start(["timeout", "600", "haproxy", "-db", "-f", cfg], name)
    wait_port(port, proc, host=PROXY_CLIENT)
    return proc, port


def t_haproxy(send_proxy):
    def t(binary, name):
        check(shutil.which("haproxy") is not None, "haproxy is not installed")
        srv = OurServer(f"{name}-haproxy-{send_proxy}", binary, "--proxy-protocol")
        lb, port = start_haproxy(f"{name}-haproxy-{send_proxy}-lb", srv.port, send_proxy)
        smtplib_send(port, MSG, host=PROXY_CLIENT)
        received = check_stored(srv, MSG)
        check(f"([IPv6:{PROXY_CLIENT}])" in received,
              f"Received line does not name the client {PROXY_CLIENT}: {received!r}")
        stop(lb)
        srv.stop()
    return t


def t_proxy_protocol_required(binary, name):
    """A client that connects straight to a --proxy-protocol server gets no
    greeting, and once it speaks SMTP the connection is closed unanswered
    (and logged); a connection with a PROXY header is then served, and the
    header's client address is the one in Received:."""
    srv = OurServer(f"{name}-proxy-required", binary, "--proxy-protocol")
    raw = Raw(srv.port)
    try:
        raw.sock.settimeout(1.0)
        try:
            early = raw.sock.recv(4096)
        except socket.timeout:
            early = b""
        raw.sock.settimeout(raw.timeout)
        check(early == b"", f"sent before any PROXY header: {short(early)}")
        raw.send(b"EHLO client.test\r\n")
        got, closed = raw.rest(10.0)
    finally:
        raw.close()
    check(closed, "connection without a PROXY header still open after 10s")
    check(got == b"", f"answered without a PROXY header: {short(got)}")
    raw = Raw(srv.port)
    try:
        raw.send(b"PROXY TCP4 192.0.2.9 127.0.0.1 40000 25\r\n")
        raw.hello()
        raw.envelope()
        raw.data(PROXIED + b".\r\n", "end of DATA")
        raw.cmd("QUIT", 221)
    finally:
        raw.close()
    received = check_stored(srv, PROXIED)
    check("([192.0.2.9])" in received, f"Received line does not name 192.0.2.9: {received!r}")
    srv.stop()
    check("PROXY header" in tail(srv.proc.log_path, 50),
          f"the refused connection was not logged: {tail(srv.proc.log_path)}")
def t_max_messages(binary, name):
    """--max-messages 2: EHLO advertises LIMITS MAILMAX=2 (RFC 9422), two
    messages go through on one connection, the third MAIL gets 421 4.7.0
    naming the host and the server closes; both messages are stored."""
    import smtplib
    srv = OurServer(f"{name}-max-messages", binary, "--max-messages", "2")
    with smtplib_session(srv.port) as smtp:
        smtp.ehlo()
        limits = smtp.esmtp_features.get("limits", "")
        check("MAILMAX=2" in limits.split(), f"EHLO LIMITS is {limits!r}")
        for i in range(2):
            refused = smtp.sendmail(FROM, [TO], MSG)
            check(not refused, f"message {i + 1} refused: {refused}")
        code, text = smtp.mail(FROM)
        check(code == 421, f"third MAIL got {code} {text!r}")
        check(text.startswith(b"4.7.0 mx.test "), f"421 text {text!r}")
        smtp.close()  # the server closed: no QUIT
    srv.check_messages(2, MSG)
    srv.stop()


def t_smtplib_auth_wrong_password(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-smtplib-badauth", binary, "--auth", f"{USER}:{PASSWORD}",
                    "--auth-plaintext")
    with smtplib_session(srv.port) as smtp:
        smtp.ehlo()
        check(smtp.has_extn("auth"), "AUTH not advertised with --auth-plaintext")
        wrong = base64.b64encode(f"\0{USER}\0wrong".encode()).decode()
        code, resp = smtp.docmd("AUTH", "PLAIN " + wrong)
        check(code == 535, f"wrong password got {code} {resp}")
        smtp.user, smtp.password = USER, PASSWORD
        code, resp = smtp.auth("LOGIN", smtp.auth_login)
        check(code == 235, f"right password after a wrong one got {code} {resp}")
        refused = smtp.sendmail(FROM, [TO], MSG)
        check(not refused, f"refused {refused}")
    check_stored(srv, MSG)
    srv.stop()


def t_smtplib_auth_guessing(binary, name):
    """Three wrong passwords on one connection: the third 535 is followed by
    421 4.7.0 and the server closes; a new connection may log in."""
    import smtplib

    srv = OurServer(f"{name}-smtplib-guessing", binary, "--auth", f"{USER}:{PASSWORD}",
                    "--auth-plaintext")
    with smtplib_session(srv.port) as smtp:
        smtp.ehlo()
        for i in range(3):
            wrong = base64.b64encode(f"\0{USER}\0wrong{i}".encode()).decode()
            code, resp = smtp.docmd("AUTH", "PLAIN " + wrong)
            check(code == 535, f"wrong password {i + 1} got {code} {resp}")
        code, resp = smtp.getreply()
        check(code == 421 and b"4.7.0 mx.test Too many failed authentication" in resp,
              f"after three failures: {code} {resp}")
        try:
            code, resp = smtp.docmd("NOOP")
            check(False, f"the connection stayed open: NOOP got {code} {resp}")
        except (smtplib.SMTPServerDisconnected, OSError):
            pass
    with smtplib_session(srv.port) as smtp:
        smtp.ehlo()
        smtp.user, smtp.password = USER, PASSWORD
        code, resp = smtp.auth("PLAIN", smtp.auth_plain)
        check(code == 235, f"a new connection could not log in: {code} {resp}")
    srv.stop()


def t_smtplib_smtputf8(binary, name):
    srv = OurServer(f"{name}-smtplib-utf8", binary)
    sender, rcpt = "ñoño@client.test", "пользователь@сервер.test"
    body = "From: <ñoño@client.test>\r\nSubject: ünïcödé\r\n\r\nUTF-8 body ✓\r\n".encode()
    smtplib_send(srv.port, body, sender=sender, rcpts=(rcpt,), mail_options=("SMTPUTF8",))
    check_stored(srv, body, sender=sender, rcpt=rcpt)
    srv.stop()


def t_smtplib_dsn(binary, name):
    """DSN parameters on MAIL and RCPT (RFC 3461) are accepted."""
    srv = OurServer(f"{name}-smtplib-dsn", binary)
    with smtplib_session(srv.port) as smtp:
        smtp.ehlo()
        check(smtp.has_extn("dsn"), "DSN not advertised")
        refused = smtp.sendmail(FROM, [TO], MSG, mail_options=["RET=HDRS", "ENVID=QQ314159+2B"],
                                rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{TO}"])
        check(not refused, f"refused {refused}")
    check_stored(srv, MSG)
    srv.stop()


def t_binarymime(binary, name):
    """BODY=BINARYMIME over BDAT: bare CR, bare LF and NUL stored as sent."""
    srv = OurServer(f"{name}-binarymime", binary)
    c = Raw(srv.port)
    ext = c.hello()
    check("BINARYMIME" in ext and "CHUNKING" in ext, f"BINARYMIME/CHUNKING not advertised: {ext}")
    c.cmd(f"MAIL FROM:<{FROM}> BODY=BINARYMIME", 250)
    c.cmd(f"RCPT TO:<{TO}>", 250)
    body = (b"Content-Type: application/octet-stream\r\n\r\n" + bytes(range(256)) +
            b"\n.\n\r.\r\n.\r\n")
    half = len(body) // 2
    c.send(b"BDAT %d\r\n" % half + body[:half])
    code, lines = c.reply()
    check(code == 250, f"first chunk got {lines}")
    c.send(b"BDAT %d LAST\r\n" % (len(body) - half) + body[half:])
    code, lines = c.reply()
    check(code == 250, f"last chunk got {lines}")
    c.cmd("QUIT", 221)
    c.close()
    check_stored(srv, body)
    srv.stop()


def swaks(port, file, *flags):
    return run([os.path.join(P, "send-swaks.sh"), str(port), FROM, TO, file, *flags])


def t_swaks_pipeline(binary, name):
    """swaks --pipeline through the tap: MAIL, RCPT and DATA in one write."""
    srv = OurServer(f"{name}-swaks-pipe", binary)
    tap_port, tapdir, tap = start_tap(srv.port, f"{name}-swaks-tap")
    r = swaks(tap_port, MSG_NO_FINAL_CRLF, "--pipeline")
    check(r.returncode == 0, f"swaks exit {r.returncode}: {short(r.stdout[-400:] + r.stderr)}")
    tap.wait(10)
    with open(os.path.join(tapdir, "conn-0.log")) as f:
        log = f.read()
    check(f"C: b'MAIL FROM:<{FROM}>\\r\\nRCPT TO:<{TO}>\\r\\nDATA\\r\\n'" in log,
          "swaks did not pipeline MAIL, RCPT and DATA in one write")
    check_stored(srv, MSG)
    srv.stop()


def t_swaks_tls_auth(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-swaks-tls", binary, "--tls-cert", c, "--tls-key", k, "--auth",
                    f"{USER}:{PASSWORD}")
    r = swaks(srv.port, MSG_NO_FINAL_CRLF, "-tls", "--tls-verify", "--tls-ca-path", c, "--auth",
              "LOGIN", "--auth-user", USER, "--auth-password", PASSWORD, "--pipeline")
    check(r.returncode == 0, f"swaks exit {r.returncode}: {short(r.stdout[-400:] + r.stderr)}")
    out = r.stdout.decode("utf-8", "replace")
    check("<~  220" in out or "<-  220" in out, "no 220 to STARTTLS in swaks' transcript")
    check(re.search(r"~>\s+AUTH LOGIN", out) is not None, "swaks did not AUTH LOGIN inside TLS")
    check(re.search(r"<~\s+235", out) is not None, "AUTH not answered 235 inside TLS")
    check_stored(srv, MSG)
    srv.stop()


def msmtp(port, *flags):
    return run([os.path.join(P, "send-msmtp.sh"), str(port), FROM, TO, MSG_FILE, *flags])


def t_msmtp(binary, name):
    srv = OurServer(f"{name}-msmtp", binary)
    r = msmtp(srv.port)
    check(r.returncode == 0, f"msmtp exit {r.returncode}: {short(r.stderr)}")
    check_stored(srv, MSG)
    srv.stop()


def t_msmtp_tls_auth(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-msmtp-tls", binary, "--tls-cert", c, "--tls-key", k, "--auth",
                    f"{USER}:{PASSWORD}")
    r = msmtp(srv.port, "--tls=on", "--tls-starttls=on", f"--tls-trust-file={c}", "--auth=plain",
              f"--user={USER}", f"--passwordeval=echo {PASSWORD}")
    check(r.returncode == 0, f"msmtp exit {r.returncode}: {short(r.stderr)}")
    check_stored(srv, MSG)
    srv.stop()


def curl(port, file, *flags):
    return run([os.path.join(P, "send-curl.sh"), str(port), FROM, TO, file, *flags])


def t_curl_crlf(binary, name):
    srv = OurServer(f"{name}-curl-crlf", binary)
    r = curl(srv.port, MSG_LF_FILE, "--crlf")
    check(r.returncode == 0, f"curl exit {r.returncode}: {short(r.stderr)}")
    check_stored(srv, MSG)
    srv.stop()


def t_curl_plain(binary, name):
    srv = OurServer(f"{name}-curl", binary)
    r = curl(srv.port, MSG_FILE)
    check(r.returncode == 0, f"curl exit {r.returncode}: {short(r.stderr)}")
    check_stored(srv, MSG)
    srv.stop()


def t_curl_bare_lf(binary, name):
    """curl without --crlf sends the bare LF; the default policy refuses the message."""
    srv = OurServer(f"{name}-curl-bare", binary)
    r = curl(srv.port, BARE_LF_FILE, "-v")
    err = r.stderr.decode("utf-8", "replace")
    check(r.returncode != 0, "curl reported success for a message with a bare LF")
    replies = [l for l in err.splitlines() if re.match(r"^< [2-5]\d\d ", l)]
    check(replies and re.match(r"^< 554 5\.6\.0 ", replies[-1]) is not None,
          f"last reply curl saw was not 554 5.6.0: {replies[-1:] if replies else err[-300:]}")
    check(any(l.startswith("< 354") for l in replies), "the rejection came before DATA's 354")
    time.sleep(0.3)
    check(srv.new() == [] and srv.tmp() == [], f"stored {srv.new()} / tmp {srv.tmp()}")
    srv.stop()


def nodemailer(port, file, *flags):
    return run(["node", os.path.join(P, "send_nodemailer.mjs"), "--port", str(port), "--from", FROM,
                "--to", TO, "--file", file, *flags], cwd=P)


def t_nodemailer(binary, name):
    srv = OurServer(f"{name}-nodemailer", binary)
    r = nodemailer(srv.port, MSG_FILE, "--no-tls")
    check(r.returncode == 0, f"nodemailer exit {r.returncode}: {short(r.stderr)}")
    check(b"250" in r.stdout, f"nodemailer response {short(r.stdout)}")
    check_stored(srv, MSG)
    srv.stop()


def t_nodemailer_tls_auth(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-nodemailer-tls", binary, "--tls-cert", c, "--tls-key", k, "--auth",
                    f"{USER}:{PASSWORD}")
    r = nodemailer(srv.port, MSG_FILE, "--starttls", "--cafile", c, "--auth", f"{USER}:{PASSWORD}")
    check(r.returncode == 0, f"nodemailer exit {r.returncode}: {short(r.stderr)}")
    check_stored(srv, MSG)
    srv.stop()


def exim_send(port, body, workdir, env=None):
    os.makedirs(os.path.dirname(workdir), exist_ok=True)
    e = {"EXIM_WORKDIR": workdir}
    e.update(env or {})
    r = run([os.path.join(P, "send-exim.sh"), str(port), FROM, TO], stdin=open_bytes(body), env=e)
    with open(os.path.join(workdir, "log/mainlog"), errors="replace") as f:
        log = f.read()
    return r, log


def open_bytes(data):
    path = write(f"stdin.{time.monotonic_ns()}", data)
    return open(path, "rb")


def check_exim_stored(srv, body):
    """exim adds its own Received: first; the rest is the message exactly."""
    rp, received, got = srv.only_message()
    check(rp == FROM, f"Return-Path <{rp}>, want <{FROM}>")
    check(got.startswith(b"Received: from "), f"exim's Received: not first: {got[:80]!r}")
    head_end = got.find(b"\r\nFrom: ")
    check(head_end > 0, "message From: header not found after exim's Received:")
    same(body, got[head_end + 2:], "message after exim's Received:")
    check(b"\n" not in got[:head_end].replace(CRLF, b""), "bare LF in exim's Received: header")


def start_tap(target_port, name):
    """tap.py between a client and target_port; one connection recorded."""
    port = free_port()
    tapdir = os.path.join(WORK, name)
    proc = start([sys.executable, os.path.join(P, "tap.py"), "--listen", str(port), "--target",
                  str(target_port), "--outdir", tapdir, "--max-conns", "1", "--seconds", "60"], name)
    wait_port(port, proc)
    return port, tapdir, proc


def tap_bytes(tapdir, proc, direction):
    proc.wait(10)
    with open(os.path.join(tapdir, f"conn-0.{direction}"), "rb") as f:
        return f.read()


def t_exim_bdat(body, label, min_chunks):
    def t(binary, name):
        srv = OurServer(f"{name}-exim-{label}", binary)
        tap_port, tapdir, tap = start_tap(srv.port, f"{name}-exim-{label}-tap")
        r, log = exim_send(tap_port, body, os.path.join(WORK, f"{name}-exim-client-{label}"))
        check(r.returncode == 0, f"exim exit {r.returncode}: {short(r.stderr)}")
        m = re.search(r" => \S+ .*", log)
        check(m is not None, f"no delivery line in exim's log: {short(log)}")
        check(" K " in m.group(0), f"exim's log shows no CHUNKING (K flag): {m.group(0)}")
        c2s = tap_bytes(tapdir, tap, "c2s")
        chunks = re.findall(rb"(?:^|\r\n)BDAT (\d+)( LAST)?\r\n", c2s)
        check(len(chunks) >= min_chunks and chunks[-1][1] == b" LAST",
              f"exim sent {len(chunks)} BDAT commands, want at least {min_chunks} ending in LAST")
        check(re.search(rb"(?:^|\r\n)DATA\r\n", c2s) is None, "exim sent DATA")
        check_exim_stored(srv, body)
        srv.stop()
    return t


def t_exim_tls_auth(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-exim-tls", binary, "--tls-cert", c, "--tls-key", k, "--auth",
                    f"{USER}:{PASSWORD}")
    r, log = exim_send(srv.port, MSG, os.path.join(WORK, f"{name}-exim-client-tls"),
                       {"EXIM_REQUIRE_TLS": "1", "EXIM_TLS_CA": c, "EXIM_AUTH": f"{USER}:{PASSWORD}"})
    check(r.returncode == 0, f"exim exit {r.returncode}: {short(r.stderr)}")
    m = re.search(r" => \S+ .*", log)
    check(m is not None and " X=TLS" in m.group(0), f"exim did not deliver over TLS: {short(log)}")
    check(" A=plain" in m.group(0), f"exim did not authenticate: {m.group(0)}")
    check(" K " in m.group(0), f"exim did not use CHUNKING inside TLS: {m.group(0)}")
    check_exim_stored(srv, MSG)
    srv.stop()


def smtp_source(port, *flags, timeout=120):
    return run([os.path.join(P, "send-smtp-source.sh"), str(port), FROM, TO, MSG_LF_FILE, *flags],
               timeout=timeout)


def t_smtp_source(flags, count, label):
    def t(binary, name):
        srv = OurServer(f"{name}-smtp-source-{label}", binary)
        r = smtp_source(srv.port, *flags)
        check(r.returncode == 0, f"smtp-source exit {r.returncode}: {short(r.stderr)}")
        n = srv.wait_count(count, 30)
        check(n == count, f"{n} messages stored, want {count}")
        # smtp-source sends each LF line with CRLF and one empty line at the end.
        want = MSG + CRLF
        for rp, _, got in srv.messages():
            check(rp == FROM, f"Return-Path <{rp}>")
            same(want, got)
        srv.stop()
    return t


# ------------------------------------------------------- adversarial clients

SMUGGLE = [("LF.LF", b"\n.\n"), ("CRLF.LF", b"\r\n.\n"), ("LF.CRLF", b"\n.\r\n"),
           ("CR.CRLF", b"\r.\r\n"), ("CRLF.CR", b"\r\n.\r")]


def t_smuggling(seq):
    def t(binary, name):
        srv = OurServer(f"{name}-smuggle-{seq.hex()}", binary)
        c = Raw(srv.port)
        c.hello()
        c.envelope(sender="first@client.test")
        c.cmd("DATA", 354)
        c.send(b"Subject: first\r\n\r\nbefore" + seq +
               b"MAIL FROM:<smuggled@evil.test>\r\nRCPT TO:<victim@server.test>\r\nDATA\r\n"
               b"Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n")
        code, lines = c.reply()
        check(500 <= code < 600, f"message with a bare line ending got {lines} (default policy rejects)")
        # In step: the next transaction goes through, and nothing answers the
        # smuggled commands.
        c.envelope(sender="second@client.test")
        c.data(b"Subject: second\r\n\r\nhonest\r\n.\r\n", "second message")
        c.send(b"QUIT\r\n")
        rest, closed = c.rest()
        check(closed and reply_codes(rest) == [221], f"after QUIT: {rest!r}")
        c.close()
        rp, _, body = srv.only_message()
        check(rp == "second@client.test", f"stored message from <{rp}>")
        same(b"Subject: second\r\n\r\nhonest\r\n", body)
        srv.stop()
    return t


def t_smuggling_bdat(binary, name):
    """BDAT carries bytes verbatim: a dot line inside a chunk is data."""
    srv = OurServer(f"{name}-smuggle-bdat", binary)
    c = Raw(srv.port)
    ext = c.hello()
    check("CHUNKING" in ext, f"CHUNKING not advertised: {ext}")
    c.envelope()
    body = (b"Subject: chunk\r\n\r\nbefore\r\n.\r\nMAIL FROM:<smuggled@evil.test>\r\n"
            b"RCPT TO:<victim@server.test>\r\nDATA\r\n")
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    code, lines = c.reply()
    check(code == 250, f"BDAT LAST got {lines}")
    c.send(b"QUIT\r\n")
    rest, closed = c.rest()
    check(closed and reply_codes(rest) == [221], f"after QUIT: {rest!r}")
    check_stored(srv, body)
    srv.stop()


def t_starttls_injection(binary, name):
    """STARTTLS with a command pipelined behind it in plain text."""
    c_, k = cert()
    srv = OurServer(f"{name}-starttls-inject", binary, "--tls-cert", c_, "--tls-key", k)
    c = Raw(srv.port)
    ext = c.hello()
    check("STARTTLS" in ext, f"STARTTLS not advertised: {ext}")
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@evil.test>\r\n")
    rest, closed = c.rest()
    check(closed, f"server kept the connection open; got {rest!r}")
    codes = reply_codes(rest)
    check(250 not in codes and all(x in (220, 421, 454, 501, 503, 554) for x in codes),
          f"server answered the injected command or sent something odd: {rest!r}")
    check(rest.replace(CRLF, b"").isascii(), f"server sent non-SMTP bytes: {rest[:40]!r}")
    c.close()
    # And after the 220, plain text where the ClientHello should be.
    c = Raw(srv.port)
    c.hello()
    c.cmd("STARTTLS", 220)
    c.send(b"MAIL FROM:<evil@evil.test>\r\n")
    rest, closed = c.rest()
    check(closed, "server kept the connection open after plain text in place of a handshake")
    check(b"250" not in rest, f"server answered the plain-text command: {rest!r}")
    c.close()
    srv.stop()


def t_long_line(binary, name):
    """An over-long command line, a command at its end: 500, and the tail is not run."""
    srv = OurServer(f"{name}-long-line", binary)
    for size in (1022, 1024, 1025, 2048, 4096, 70000):
        c = Raw(srv.port)
        c.hello()
        c.send(b"NOOP " + b"x" * size + b"MAIL FROM:<tail@evil.test>\r\n")
        code, lines = c.reply()
        check(code == 500, f"{size}: over-long line got {lines}")
        # Had the tail been parsed, MAIL would be open and RCPT would pass.
        code, lines = c.cmd("RCPT TO:<victim@server.test>")
        check(code == 503, f"{size}: RCPT after the long line got {lines} (tail command ran?)")
        c.send(b"QUIT\r\n")
        rest, closed = c.rest()
        check(closed and reply_codes(rest) == [221], f"{size}: after QUIT: {rest!r}")
        c.close()
    srv.stop()


def rss_kib(pid, field="VmRSS"):
    """The process's resident memory now (or its peak, with VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def server_pid(proc):
    """The example server itself, below its `timeout` wrapper."""
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        children = f.read().split()
    check(len(children) == 1, f"timeout has children {children}")
    return int(children[0])


def t_huge_line(binary, name):
    """64 MiB without a line end costs bounded memory; the session recovers."""
    srv = OurServer(f"{name}-huge-line", binary)
    before = rss_kib(server_pid(srv.proc))
    c = Raw(srv.port, timeout=30)
    c.hello()
    chunk = b"y" * (1 << 20)
    for _ in range(64):
        c.send(chunk)
    c.send(b"MAIL FROM:<tail@evil.test>\r\n")
    code, lines = c.reply()
    check(code == 500, f"64 MiB line got {lines}")
    code, lines = c.cmd("RCPT TO:<victim@server.test>")
    check(code == 503, f"RCPT after the huge line got {lines}")
    grown = rss_kib(server_pid(srv.proc)) - before
    check(grown < 32 * 1024, f"server grew by {grown} KiB reading one long line")
    c.envelope()
    c.data(b"Subject: after\r\n\r\nok\r\n.\r\n", "message after the huge line")
    c.close()
    check_stored(srv, b"Subject: after\r\n\r\nok\r\n")
    srv.stop()


def t_vrfy_expn(binary, name):
    """VRFY and EXPN get their standard answers and the session goes on."""
    srv = OurServer(f"{name}-vrfy", binary)
    c = Raw(srv.port)
    c.hello()
    c.cmd("VRFY root", 252)
    c.cmd("EXPN staff", 502)
    c.cmd("NOOP", 250)
    c.cmd("QUIT", 221)
    c.close()
    srv.stop()


def t_greeting_delay(binary, name):
    """--greeting-delay 400: a client that sends EHLO at once, before the
    greeting, gets `554 5.5.1 mx.test ...` instead of 220, then 503 for its
    commands, and 221 for QUIT; a client that waits for the greeting (smtplib)
    is served as always, its message stored."""
    srv = OurServer(f"{name}-greeting-delay", binary, "--greeting-delay", "400")
    c = Raw(srv.port)
    c.send(b"EHLO early.test\r\n")
    code, lines = c.reply()
    check(code == 554 and lines[0].startswith("554 5.5.1 mx.test "),
          f"talking first got {lines}, want 554 5.5.1")
    code, lines = c.reply()
    check(code == 503, f"EHLO after the refusal got {lines}, want 503")
    c.cmd("MAIL FROM:<a@early.test>", 503)
    c.cmd("QUIT", 221)
    c.close()
    started = time.monotonic()
    smtplib_send(srv.port, MSG)
    check(time.monotonic() - started >= 0.35, "the greeting came before the delay")
    check_stored(srv, MSG)
    srv.stop()


def t_big_message(binary, name):
    """A 32 MiB message is stored whole while the server holds only a small
    part of it in memory; one cut short after several MiB leaves nothing."""
    srv = OurServer(f"{name}-big-message", binary)
    pid = server_pid(srv.proc)
    before = rss_kib(pid, "VmHWM")
    line = b"0123456789" * 7 + b"abcdef" + CRLF
    mib = line * ((1 << 20) // len(line))
    body = b"Subject: big\r\n\r\n" + mib * 32
    c = Raw(srv.port, timeout=60)
    c.hello()
    c.envelope(sender="big@client.test")
    c.cmd("DATA", 354)
    for i in range(0, len(body), 1 << 20):
        c.send(body[i:i + (1 << 20)])
    c.send(b".\r\n")
    code, lines = c.reply()
    check(code == 250, f"32 MiB message got {lines}")
    grown = rss_kib(pid, "VmHWM") - before
    check(grown < 16 * 1024, f"server's peak memory grew by {grown} KiB for a 32 MiB message")
    c.cmd("QUIT", 221)
    c.close()
    check_stored(srv, body, sender="big@client.test")
    # Cut short after 4 MiB (part of it already in tmp/): nothing is left.
    c = Raw(srv.port, timeout=60)
    c.hello()
    c.envelope(sender="cut@client.test")
    c.cmd("DATA", 354)
    for _ in range(4):
        c.send(mib)
    c.close()
    deadline = time.monotonic() + 15
    while srv.tmp() and time.monotonic() < deadline:
        time.sleep(0.1)
    check(srv.tmp() == [], f"left files in tmp/: {srv.tmp()}")
    check(len(srv.new()) == 1, f"new/ holds {srv.new()}")
    srv.stop()


def t_disconnect_mid_data(binary, name):
    srv = OurServer(f"{name}-cut", binary)
    # DATA cut short, by FIN and by RST.
    for rst in (False, True):
        c = Raw(srv.port)
        c.hello()
        c.envelope(sender="cut@client.test")
        c.cmd("DATA", 354)
        c.send(b"Subject: cut\r\n\r\nhalf a message\r\nand no end")
        if rst:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    # BDAT cut short: 100 octets announced, 20 sent.
    c = Raw(srv.port)
    c.hello()
    c.envelope(sender="cut@client.test")
    c.send(b"BDAT 100 LAST\r\n" + b"z" * 20)
    c.close()
    # A complete first chunk, then the connection drops before LAST.
    c = Raw(srv.port)
    c.hello()
    c.envelope(sender="cut@client.test")
    c.send(b"BDAT 10\r\n0123456789")
    code, lines = c.reply()
    check(code == 250, f"BDAT 10 got {lines}")
    c.close()
    # A complete message on a new connection marks the point the server has
    # certainly seen all of the above.
    time.sleep(0.5)
    c = Raw(srv.port)
    c.hello()
    c.envelope(sender="marker@client.test")
    c.cmd("DATA", 354)
    c.send(b"Subject: marker\r\n\r\n.\r\n")
    c.reply()
    c.cmd("QUIT", 221)
    c.close()
    time.sleep(0.5)
    rp, _, _ = srv.only_message()
    check(rp == "marker@client.test", f"stored a message from <{rp}>")
    check(srv.tmp() == [], f"left files in tmp/: {srv.tmp()}")
    srv.stop()


def t_session_timeout(binary, name):
    """--session-timeout bounds a whole connection, however busy: a client
    trickling a DATA body (a byte every 0.2 s, each well within the
    command timeout) gets `421 4.4.2` and a close once the limit has run
    out, nothing of its message is stored, and its place (the only one,
    --max-connections 1) is free again for a client that delivers."""
    limit = 2.0
    srv = OurServer(f"{name}-session-timeout", binary, "--session-timeout", f"{limit:g}",
                    "--max-connections", "1")
    started = time.monotonic()
    c = Raw(srv.port)
    c.hello()
    c.envelope(sender="slow@client.test")
    c.cmd("DATA", 354)
    c.send(b"Subject: slow\r\n\r\n")
    got, closed = b"", False
    c.sock.settimeout(0.2)
    try:
        # Bounded: 15 s, far past the limit, and READ_MAX bytes.
        while time.monotonic() - started < 15.0 and not closed and not got:
            try:
                c.sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = c.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            closed = not chunk
            got += chunk
        elapsed = time.monotonic() - started
        more, closed = c.rest()
        got += more
    finally:
        c.close()
    check(got.startswith(b"421 4.4.2 mx.test ") and got.endswith(CRLF) and got.count(CRLF) == 1,
          f"the trickling client got {got!r}, want one 421 4.4.2 mx.test line")
    check(closed, "the server did not close the connection after its 421")
    check(limit - 0.5 <= elapsed <= limit + 8.0,
          f"421 after {elapsed:.1f}s with --session-timeout {limit:g}")
    # The place is free again: a new client is served (with its own limit).
    # The server may still be closing the cut connection when the next one
    # comes (it reads what the client still sends before it lets go), so
    # a `421 4.3.2` (no place) is tried again, a bounded number of times.
    c = connect_when_free(srv.port)
    c.hello()
    c.envelope()
    c.data(PROXIED + b".\r\n", "the message after the cut one")
    c.cmd("QUIT", 221)
    c.close()
    check_stored(srv, PROXIED)
    check(srv.tmp() == [], f"left files in tmp/: {srv.tmp()}")
    srv.stop()


def t_max_connections_zero(binary, name):
    """--max-connections 0 is taken as 1: one connection is served, a
    second one at the same time gets `421 4.3.2` and is closed."""
    srv = OurServer(f"{name}-max-zero", binary, "--max-connections", "0")
    first = Raw(srv.port)
    try:
        first.hello()
        second = Raw(srv.port)
        try:
            got, closed = second.rest()
        finally:
            second.close()
        check(got.startswith(b"421 4.3.2 mx.test ") and got.count(CRLF) == 1
              and got.endswith(CRLF),
              f"the second connection got {got!r}, want one 421 4.3.2 mx.test line")
        check(closed, "the second connection was not closed")
        first.envelope()
        first.data(PROXIED + b".\r\n", "the first connection's message")
        first.cmd("QUIT", 221)
    finally:
        first.close()
    check_stored(srv, PROXIED)
    srv.stop()


# ----------------------- graceful shutdown of both example servers (SIGTERM)

SHUTTING_DOWN = b"421 4.3.2 mx.test Service shutting down, closing connection\r\n"


def sigterm(srv):
    """SIGTERM to the server. It runs under `timeout`, which passes the
    signal on to it and exits with its status."""
    os.kill(srv.proc.pid, signal.SIGTERM)


def exits_cleanly(srv, seconds=10.0):
    try:
        rc = srv.proc.wait(seconds)
    except subprocess.TimeoutExpired:
        raise CaseFailure(f"the server still runs {seconds:g}s after SIGTERM") from None
    check(rc == 0, f"the server exited with status {rc} after SIGTERM: {tail(srv.proc.log_path)}")


def t_shutdown_idle(binary, name):
    """SIGTERM with an idle client (after EHLO): it gets exactly the
    `421 4.3.2` line at once, then the connection closes; the server exits
    with status 0."""
    srv = OurServer(f"{name}-shutdown-idle", binary)
    c = Raw(srv.port)
    try:
        c.hello()
        sigterm(srv)
        got, closed = c.rest(seconds=5.0)
    finally:
        c.close()
    check(got == SHUTTING_DOWN, f"the idle client got {got!r}, want {SHUTTING_DOWN!r}")
    check(closed, "the connection was not closed after the 421")
    exits_cleanly(srv)
    check(srv.new() == [] and srv.tmp() == [], f"files stored: {srv.new()} {srv.tmp()}")
    srv.stop()


def t_shutdown_mid_data(binary, name):
    """SIGTERM while a client is in the middle of a DATA body: the server
    stops listening at once (a new connection is refused), but the message
    under way is received, stored and acknowledged with 250; then the
    client gets the 421 and the close, and the server exits with status 0."""
    srv = OurServer(f"{name}-shutdown-data", binary)
    wire = MSG.replace(CRLF + b".", CRLF + b"..")  # dot-stuffed (MSG starts with no dot)
    half = len(wire) // 2
    c = Raw(srv.port)
    try:
        c.hello()
        c.envelope()
        c.cmd("DATA", 354)
        c.send(wire[:half])
        time.sleep(0.2)
        sigterm(srv)
        deadline = time.monotonic() + 5.0
        while listening(srv.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        check(not listening(srv.port), "the server still listens 5 s after SIGTERM")
        try:
            socket.create_connection((HOST, srv.port), timeout=5).close()
            raise CaseFailure("a new connection was accepted after SIGTERM")
        except ConnectionRefusedError:
            pass
        check(srv.proc.poll() is None,
              f"the server exited ({srv.proc.returncode}) with a message under way")
        c.send(wire[half:] + b".\r\n")
        code, lines = c.reply()
        check(code == 250, f"the message under way got {lines}, want 250")
        got, closed = c.rest(seconds=5.0)
    finally:
        c.close()
    check(got == SHUTTING_DOWN, f"after the 250 the client got {got!r}, want {SHUTTING_DOWN!r}")
    check(closed, "the connection was not closed after the 421")
    exits_cleanly(srv)
    check_stored(srv, MSG)
    check(srv.tmp() == [], f"left files in tmp/: {srv.tmp()}")
    srv.stop()


def t_concurrent(n):
    def t(binary, name):
        srv = OurServer(f"{name}-concurrent", binary)
        try:
            # Each session has its own deadline (CONCURRENT_SECONDS); this one
            # is the backstop for the whole run.
            results = asyncio.run(asyncio.wait_for(concurrent_clients(srv.port, n),
                                                   CONCURRENT_SECONDS + 10))
        except asyncio.TimeoutError:
            raise CaseFailure(f"{n} sessions not finished within {CONCURRENT_SECONDS + 10}s") from None
        bad = [r for r in results if r is not True]
        check(not bad, f"{len(bad)} of {n} sessions failed, e.g. {bad[:3]}")
        got = srv.wait_count(n, 30)
        check(got == n, f"{got} messages stored, want {n}")
        seen = set()
        for rp, _, body in srv.messages():
            m = re.match(r"c(\d+)@client\.test$", rp)
            check(m is not None, f"unexpected sender {rp}")
            i = int(m.group(1))
            same(b"Subject: conn %d\r\n\r\nbody %d\r\n" % (i, i), body)
            seen.add(i)
        check(len(seen) == n, f"{n - len(seen)} senders missing or duplicated")
        srv.stop()
    return t


CONCURRENT_SECONDS = 140


async def concurrent_clients(port, n, seconds=CONCURRENT_SECONDS):
    """n sessions at once; each must end within `seconds` of the start, and
    each reply within REPLY_MAX_LINES lines and READ_MAX bytes (a line
    within the StreamReader's 64 KiB limit)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    arrived = {"n": 0}
    all_in = asyncio.Event()

    def arrive():
        arrived["n"] += 1
        if arrived["n"] == n:
            all_in.set()

    async def one(i):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 30)
        except (OSError, asyncio.TimeoutError) as e:
            arrive()  # a failed session must not hold the others at the barrier
            return f"{i}: connect: {e!r}"
        greeted = False
        try:
            async def reply():
                size = 0
                for _ in range(REPLY_MAX_LINES):
                    line = await reader.readline()
                    if not line:
                        raise EOFError("closed")
                    size += len(line)
                    if size > READ_MAX:
                        raise ValueError(f"reply longer than {READ_MAX} bytes")
                    if line[3:4] != b"-":
                        return int(line[:3])
                raise ValueError(f"reply with more than {REPLY_MAX_LINES} lines")

            async def step(data):
                writer.write(data)
                await writer.drain()
                return await reply()

            def left():
                return max(0.0, deadline - loop.time())

            code = await asyncio.wait_for(reply(), min(30, left()))
            greeted = True
            arrive()
            if code != 220:
                return f"{i}: greeting {code}"
            # Every session is open at once from here.
            await asyncio.wait_for(all_in.wait(), 60)
            steps = [(b"EHLO c%d.client.test\r\n" % i, 250),
                     (b"MAIL FROM:<c%d@client.test>\r\n" % i, 250),
                     (b"RCPT TO:<rcpt@server.test>\r\n", 250),
                     (b"DATA\r\n", 354),
                     (b"Subject: conn %d\r\n\r\nbody %d\r\n.\r\n" % (i, i), 250),
                     (b"QUIT\r\n", 221)]
            for data, want in steps:
                try:
                    code = await asyncio.wait_for(step(data), left())
                except asyncio.TimeoutError:
                    return f"{i}: no reply to {data[:10]!r} within {seconds}s of the start"
                if code != want:
                    return f"{i}: {data[:10]!r} got {code}"
            return True
        except (OSError, EOFError, ValueError, asyncio.TimeoutError) as e:
            return f"{i}: {'' if greeted else 'before greeting: '}{e!r}"
        finally:
            if not greeted:
                arrive()
            writer.close()

    return await asyncio.gather(*(one(i) for i in range(n)))


# ------------------------------------------- bounces: the core's dsn writer

BOUNCE = os.path.join(EXAMPLES, "bounce")
# A date, a token and hosts, so every run writes the same bytes.
BOUNCE_BASE = ["--reporting-mta", "mx.test", "--sender", FROM, "--date", "1795723722",
               "--token", "Q1", "--arrival", "1795723000", "--received-from", "client.test"]
# Two recipients: one refused for good with a two-line reply, one delayed.
BOUNCE_RCPTS = [
    "--rcpt", TO, "--action", "failed", "--remote-mta", "mx.server.test",
    "--reply", "550-5.1.1 <rcpt@server.test>: no such user here\n550 5.1.1 see the postmaster",
    "--orcpt", "rfc822;Rcpt+2Balias@server.test", "--last-attempt", "1795723700",
    "--rcpt", "slow@server.test", "--action", "delayed", "--reply", "451 4.4.1 no answer from host",
    "--retry-until", "1796155722",
]


def bounce(body, *args):
    """Runs the bounce example on body; returns (bounce bytes, stderr text)."""
    need(BOUNCE)
    r = run([BOUNCE, *args], stdin=open_bytes(body), timeout=30)
    check(r.returncode == 0, f"bounce exit {r.returncode}: {short(r.stderr)}")
    return r.stdout, r.stderr.decode("utf-8", "replace")


def parse_bounce(data, host="mx.test", token="Q1"):
    """Parses a bounce with the standard email package and checks its frame:
    multipart/report; report-type=delivery-status, no defects, three parts,
    the first text/plain, the second message/delivery-status. The reporting
    host is `host`; with a `token`, the Message-ID and the date are the
    bounce example's fixed ones."""
    for line in data.split(b"\r\n"):
        check(len(line) <= 998, f"a line of {len(line)} octets")
    check(b"\n" not in data.replace(b"\r\n", b""), "a bare LF or CR in the bounce")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    check(msg.get_content_type() == "multipart/report", f"Content-Type {msg.get_content_type()}")
    check(msg.get_param("report-type") == "delivery-status", f"report-type {msg.get_param('report-type')}")
    check([a.addr_spec for a in msg["To"].addresses] == [FROM], f"To: {msg['To']}")
    check(msg["From"].addresses[0].addr_spec == f"MAILER-DAEMON@{host}", f"From: {msg['From']}")
    check(msg["Auto-Submitted"] == "auto-replied", f"Auto-Submitted: {msg['Auto-Submitted']}")
    if token is not None:
        check(msg["Message-ID"] == f"<{token}@{host}>", f"Message-ID: {msg['Message-ID']}")
        check(msg["Date"].datetime.timestamp() == 1795723722, f"Date: {msg['Date']}")
    else:
        check(str(msg["Message-ID"]).endswith(f"@{host}>"), f"Message-ID: {msg['Message-ID']}")
        check(msg["Date"].datetime is not None, f"Date: {msg['Date']}")
    parts = list(msg.iter_parts())
    check(len(parts) == 3, f"{len(parts)} parts")
    check(parts[0].get_content_type() == "text/plain", f"part 1 {parts[0].get_content_type()}")
    check(parts[1].get_content_type() == "message/delivery-status", f"part 2 {parts[1].get_content_type()}")
    defects = [d for p in [msg, *parts] for d in p.defects]
    check(not defects, f"parser defects: {defects}")
    blocks = parts[1].get_payload()
    check(isinstance(blocks, list), f"delivery-status not parsed into blocks: {type(blocks)}")
    return msg, parts, blocks


def ds_field(block, name):
    value = block[name]
    return None if value is None else str(value)


def t_bounce_full():
    data, err = bounce(MSG, *BOUNCE_BASE, "--envid", "QQ+2B314159", "--ret", "full", *BOUNCE_RCPTS)
    check("body=8BITMIME returned=Full" in err, f"the example said {err.strip()}")
    msg, parts, blocks = parse_bounce(data)
    check(msg["Subject"] == "Delivery failed: your message is returned", f"Subject: {msg['Subject']}")
    check(len(blocks) == 3, f"{len(blocks)} delivery-status blocks, want 3")
    per_msg, failed, delayed = blocks
    want = {"Original-Envelope-Id": "QQ+314159", "Reporting-MTA": "dns; mx.test",
            "Received-From-MTA": "dns; client.test", "Arrival-Date": "Thu, 26 Nov 2026 19:56:40 +0000"}
    for name, value in want.items():
        check(ds_field(per_msg, name) == value, f"{name}: {ds_field(per_msg, name)!r}, want {value!r}")
    want = {"Original-Recipient": "rfc822; Rcpt+alias@server.test",
            "Final-Recipient": f"rfc822; {TO}", "Action": "failed", "Status": "5.1.1",
            "Remote-MTA": "dns; mx.server.test",
            "Diagnostic-Code": "smtp; 550 5.1.1 <rcpt@server.test>: no such user here see the postmaster",
            "Last-Attempt-Date": "Thu, 26 Nov 2026 20:08:20 +0000", "Will-Retry-Until": None}
    for name, value in want.items():
        check(ds_field(failed, name) == value, f"failed: {name}: {ds_field(failed, name)!r}, want {value!r}")
    want = {"Original-Recipient": None, "Final-Recipient": "rfc822; slow@server.test",
            "Action": "delayed", "Status": "4.4.1", "Remote-MTA": None,
            "Diagnostic-Code": "smtp; 451 4.4.1 no answer from host",
            "Will-Retry-Until": "Tue, 1 Dec 2026 20:08:42 +0000"}
    for name, value in want.items():
        check(ds_field(delayed, name) == value, f"delayed: {name}: {ds_field(delayed, name)!r}, want {value!r}")
    human = parts[0].get_content()
    for want in (f"<{TO}>: delivery failed", "mx.server.test replied: 550 5.1.1", "<slow@server.test>: delivery delayed"):
        check(want in human, f"text part lacks {want!r}: {short(human)}")
    check(parts[2].get_content_type() == "message/rfc822", f"part 3 {parts[2].get_content_type()}")
    check(parts[2]["Content-Transfer-Encoding"] == "8bit", "8-bit original without CTE 8bit")
    inner = parts[2].get_payload(0)
    check(inner["Message-ID"] == "<interop.1@client.test>", f"returned Message-ID {inner['Message-ID']}")
    # The returned message is the original, byte for byte, its last CRLF
    # included: the delimiter's own CRLF follows it (RFC 2046 §5.1.1).
    start = data.index(b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    start = data.index(b"\r\n\r\n", start) + 4
    end = data.index(b"\r\n--=_smtp-proto-dsn-", start)
    same(MSG, data[start:end], "returned message")


def t_bounce_hdrs():
    data, err = bounce(MSG, *BOUNCE_BASE, "--ret", "hdrs", *BOUNCE_RCPTS)
    check("body=7BIT returned=Headers" in err, f"the example said {err.strip()}")
    check(data.isascii(), "a 7-bit bounce holds 8-bit octets")
    msg, parts, blocks = parse_bounce(data)
    check(ds_field(blocks[0], "Original-Envelope-Id") is None, "Original-Envelope-Id without ENVID")
    check(parts[2].get_content_type() == "text/rfc822-headers", f"part 3 {parts[2].get_content_type()}")
    headers = parts[2].get_content()
    header_section = MSG.split(b"\r\n\r\n")[0].decode()
    check(headers.replace("\r\n", "\n").strip() == header_section.replace("\r\n", "\n"),
          f"returned headers differ: {short(headers)}")
    check("line one" not in headers, "the body came back with RET=HDRS")
    # Python reads the returned header section as a header block too.
    returned = email.message_from_string(headers, policy=email.policy.default)
    check(returned["Subject"] == "interop", f"returned Subject {returned['Subject']}")


def t_bounce_boundary_and_folding():
    # The original holds the first boundaries the writer would pick, and the
    # reply is long enough to fold.
    body = (b"Subject: boundaries\r\n\r\n--=_smtp-proto-dsn-0\r\nContent-Type: text/plain\r\n\r\n"
            b"fake part\r\n--=_smtp-proto-dsn-1--\r\n")
    lines = [f"line {i} of a long policy statement from the remote server" for i in range(20)]
    reply = "\n".join(f"550{'-' if i < 19 else ' '}5.7.1 {l}" for i, l in enumerate(lines))
    data, err = bounce(body, *BOUNCE_BASE, "--rcpt", TO, "--action", "failed", "--reply", reply)
    check("boundary==_smtp-proto-dsn-2" in err, f"the example said {err.strip()}")
    msg, parts, blocks = parse_bounce(data)
    check(msg.get_param("boundary") == "=_smtp-proto-dsn-2", f"boundary {msg.get_param('boundary')}")
    start = data.index(b"Diagnostic-Code: ")
    folded = data[start:].split(b"\r\n")
    n = 1
    while folded[n].startswith(b" "):
        n += 1
    check(n > 5, f"Diagnostic-Code on {n} lines, want it folded")
    check(all(len(l) <= 78 for l in folded[:n]), "a folded Diagnostic-Code line over 78 octets")
    want = "smtp; 550 5.7.1 " + " ".join(lines)
    got = ds_field(blocks[1], "Diagnostic-Code")
    check(got == want, f"Diagnostic-Code unfolds to {short(got)}")
    inner = parts[2].get_payload(0)
    check(inner["Subject"] == "boundaries", f"returned Subject {inner['Subject']}")
    check("--=_smtp-proto-dsn-1--" in inner.get_content(), "the returned body lost its fake delimiters")


def t_bounce_refused():
    r = run([BOUNCE, *[a if a != FROM else "<>" for a in BOUNCE_BASE], *BOUNCE_RCPTS],
            stdin=open_bytes(MSG), timeout=30)
    check(r.returncode == 1 and b"null reverse path" in r.stderr,
          f"to <>: exit {r.returncode}, {short(r.stderr)}")
    check(r.stdout == b"", "a bounce to <> was written")
    r = run([BOUNCE, *BOUNCE_BASE, "--subject", "x\r\nBcc: victim@server.test", *BOUNCE_RCPTS],
            stdin=open_bytes(MSG), timeout=30)
    check(r.returncode == 1 and b"Subject" in r.stderr, f"CRLF subject: exit {r.returncode}, {short(r.stderr)}")
    check(r.stdout == b"", "a bounce with an injected header was written")



# An original sent with SMTPUTF8: UTF-8 addresses and subject (RFC 6532).
UTF8_SENDER, UTF8_RCPT = "ñoño@client.test", "用户@server.test"
UTF8_MSG = CRLF.join([
    f"From: <{UTF8_SENDER}>".encode(),
    f"To: <{UTF8_RCPT}>".encode(),
    "Subject: Grüße".encode(),
    b"Message-ID: <interop.utf8@client.test>",
    b"",
    "Hallo, 世界".encode(),
    b"",
])


def t_bounce_utf8():
    """A bounce to a UTF-8 sender for a UTF-8 recipient with a UTF-8 ORCPT
    (RFC 6533): Python's email package finds message/global-delivery-status
    and message/global, the UTF-8 To:, and the addresses in UTF-8."""
    args = ["--reporting-mta", "mx.test", "--sender", UTF8_SENDER, "--date", "1795723722",
            "--token", "Q1", "--rcpt", UTF8_RCPT, "--action", "failed",
            "--reply", "550 5.1.1 no such user", "--orcpt", f"utf-8;{UTF8_RCPT}"]
    data, err = bounce(UTF8_MSG, *args)
    check("body=8BITMIME returned=Full" in err and "global=yes smtputf8=yes" in err,
          f"the example said {err.strip()}")
    for line in data.split(b"\r\n"):
        check(len(line) <= 998, f"a line of {len(line)} octets")
    check(b"\n" not in data.replace(b"\r\n", b""), "a bare LF or CR in the bounce")
    text = data.decode("utf-8")  # all of it is UTF-8
    head = text.split("\r\n\r\n", 1)[0]
    check(f"\r\nTo: <{UTF8_SENDER}>\r\n" in head, f"To: not in UTF-8: {short(head)}")
    check(all(l.isascii() for l in head.split("\r\n") if not l.startswith("To:")),
          "UTF-8 in a header field other than To:")

    # From bytes, as a mail store reads it: structure, types, content.
    msg = email.message_from_bytes(data, policy=email.policy.SMTPUTF8)
    check(msg.get_content_type() == "multipart/report", f"Content-Type {msg.get_content_type()}")
    check(msg.get_param("report-type") == "global-delivery-status", f"report-type {msg.get_param('report-type')}")
    check(msg["Content-Transfer-Encoding"] == "8bit", f"CTE {msg['Content-Transfer-Encoding']}")
    parts = list(msg.iter_parts())
    types = [p.get_content_type() for p in parts]
    check(types == ["text/plain", "message/global-delivery-status", "message/global"], f"parts {types}")
    defects = [d for p in [msg, *parts] for d in p.defects]
    check(not defects, f"parser defects: {defects}")
    check(parts[0].get_content_charset() == "utf-8", f"text charset {parts[0].get_content_charset()}")
    human = parts[0].get_content()
    check(f"<{UTF8_RCPT}>: delivery failed" in human, f"text part lacks the UTF-8 address: {short(human)}")
    inner = parts[2].get_payload(0)
    check(inner["Subject"] == "Grüße", f"returned Subject {inner['Subject']}")
    check(inner["Message-ID"] == "<interop.utf8@client.test>", f"returned Message-ID {inner['Message-ID']}")

    # From text, with the SMTPUTF8 policy: the UTF-8 addresses.
    msg = email.message_from_string(text, policy=email.policy.SMTPUTF8)
    check([a.addr_spec for a in msg["To"].addresses] == [UTF8_SENDER], f"To: {msg['To']}")
    status = list(msg.iter_parts())[1]
    # message/global-delivery-status is read as a message: the per-message
    # block is its header, the per-recipient blocks its body.
    (per_msg,) = status.get_payload()
    check(per_msg["Reporting-MTA"] == "dns; mx.test", f"Reporting-MTA {per_msg['Reporting-MTA']}")
    rcpt = email.message_from_string(per_msg.get_payload().lstrip("\r\n"), policy=email.policy.SMTPUTF8)
    want = {"Original-Recipient": f"utf-8; {UTF8_RCPT}", "Final-Recipient": f"utf-8; {UTF8_RCPT}",
            "Action": "failed", "Status": "5.1.1", "Diagnostic-Code": "smtp; 550 5.1.1 no such user"}
    for name, value in want.items():
        check(ds_field(rcpt, name) == value, f"{name}: {ds_field(rcpt, name)!r}, want {value!r}")

    # With RET=HDRS: message/global-headers, still a UTF-8 header section.
    data, err = bounce(UTF8_MSG, *args, "--ret", "hdrs")
    check("returned=Headers" in err, f"the example said {err.strip()}")
    msg = email.message_from_bytes(data, policy=email.policy.SMTPUTF8)
    parts = list(msg.iter_parts())
    check(parts[2].get_content_type() == "message/global-headers", f"part 3 {parts[2].get_content_type()}")
    check("Grüße".encode() in data and "Hallo".encode() not in data, "the header section was not returned alone")

    # An ASCII bounce stays message/delivery-status.
    _, err = bounce(MSG, *BOUNCE_BASE, *BOUNCE_RCPTS)
    check("global=no smtputf8=no" in err, f"the example said {err.strip()}")

# ---------------------------------------------------- our client -> real servers

def send_binaries():
    return [(n, b) for n, b in CLIENTS if os.access(b, os.X_OK)]


def our_send(binary, port, rcpts, body, *flags, sender=FROM):
    args = [binary, "--server", f"{HOST}:{port}", "--from", sender]
    for r in rcpts:
        args += ["--to", r]
    return run(args + list(flags), stdin=open_bytes(body), timeout=60)


def send_out(r):
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def check_rcpt_reported(r, addr, accepted):
    """send prints `recipient <ADDR>: ACCEPTED|REJECTED CODE text` per recipient."""
    out = send_out(r)
    m = re.findall(rf"^recipient <{re.escape(addr)}>: (ACCEPTED|REJECTED) ([2-5]\d\d)\b.*$", out, re.M)
    check(len(m) == 1, f"want one result line for <{addr}>, got {len(m)}: {short(out)}")
    word, code = m[0]
    if accepted:
        check(word == "ACCEPTED" and code.startswith("2"), f"<{addr}> shown as {word} {code}")
    else:
        check(word == "REJECTED" and code[0] in "45", f"<{addr}> shown as {word} {code}")


def check_message_reported(r, accepted=True):
    out = send_out(r)
    m = re.findall(r"^message: (ACCEPTED|REJECTED) ([2-5]\d\d)\b", out, re.M)
    check(len(m) == 1, f"want one `message:` line, got {len(m)}: {short(out)}")
    if accepted:
        check(m[0][0] == "ACCEPTED" and m[0][1] == "250", f"final reply {m[0]}")
    else:
        check(m[0][0] == "REJECTED", f"final reply {m[0]}")


def start_sink(name, *flags):
    port = free_port()
    dump = os.path.join(WORK, name)
    proc = start([os.path.join(P, "start-smtp-sink.sh"), str(port), dump, *flags], name,
                 env={"SINK_SECONDS": "120"})
    wait_port(port, proc)
    return port, dump, proc


def sink_dumps(dump, n, seconds=10):
    deadline = time.monotonic() + seconds
    files = []
    while time.monotonic() < deadline:
        files = sorted(os.listdir(dump))
        if len(files) >= n:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    files = sorted(os.listdir(dump))
    out = []
    for fn in files:
        with open(os.path.join(dump, fn), "rb") as f:
            out.append(f.read())
    return out


def each_client(fn_name, fn):
    for name, binary in CLIENTS:
        label = "" if name == "send" else f" [{name}]"
        case(fn_name + label)(lambda b=binary, n=name: fn(b, n))


def need(binary):
    check(os.access(binary, os.X_OK), f"{os.path.basename(binary)} example not built")


def t_send_sink(binary, name):
    need(binary)
    port, dump, proc = start_sink(f"{name}-sink")
    r = our_send(binary, port, [TO, "second@server.test"], MSG)
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    check_rcpt_reported(r, "second@server.test", True)
    check_message_reported(r)
    dumps = sink_dumps(dump, 1)
    check(len(dumps) == 1, f"smtp-sink dumped {len(dumps)} messages")
    d = dumps[0]
    # smtp-sink's dump: its own headers, then the message with CRs removed
    # and dots un-stuffed, then one empty line of its own.
    want = MSG.replace(CRLF, b"\n") + b"\n"
    check(d.endswith(want), f"smtp-sink dump does not end with the message: {d[-200:]!r}")
    head = d[:len(d) - len(want)].decode("utf-8", "replace")
    check(re.search(rf"^X-Mail-Args: <{re.escape(FROM)}>( .*)?$", head, re.M),
          f"sender not in smtp-sink's X-Mail-Args: {short(head)}")
    rcpts = re.findall(r"^X-Rcpt-Args: <([^>]*)>", head, re.M)
    check(rcpts == [TO, "second@server.test"], f"smtp-sink's X-Rcpt-Args: {rcpts}")
    stop(proc)


def t_send_sink_all_rejected(binary, name):
    need(binary)
    port, dump, proc = start_sink(f"{name}-sink-reject", "-f", "RCPT")
    r = our_send(binary, port, [TO], MSG)
    check(r.returncode != 0, f"send exit 0 though every RCPT was refused: {short(send_out(r))}")
    check_rcpt_reported(r, TO, False)
    check(sink_dumps(dump, 0, 0.5) == [], "smtp-sink stored a message")
    stop(proc)


def start_aio(name, *flags):
    port = free_port()
    outdir = os.path.join(WORK, name)
    proc = start([VENV_PY, os.path.join(P, "aiosmtpd_server.py"), "--port", str(port), "--outdir",
                  outdir, "--seconds", "120", *flags], name)
    wait_port(port, proc)
    return port, outdir, proc


def stored_peer_messages(outdir, n, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.isdir(outdir) and len([f for f in os.listdir(outdir) if f.endswith(".json")]) >= n:
            break
        time.sleep(0.05)
    out = []
    i = 0
    while os.path.exists(os.path.join(outdir, f"msg-{i}.json")):
        with open(os.path.join(outdir, f"msg-{i}.eml"), "rb") as f:
            body = f.read()
        with open(os.path.join(outdir, f"msg-{i}.json")) as f:
            meta = json.load(f)
        out.append((body, meta))
        i += 1
    return out


def one_stored_message(outdir, peer, why="", want=MSG):
    """Checks that `peer` stored one message in `outdir`, and that it is
    `want` (MSG unless told); returns its metadata (envelope, TLS, AUTH)."""
    msgs = stored_peer_messages(outdir, 1)
    check(len(msgs) == 1, f"{peer} stored {len(msgs)} messages, want 1{why}")
    body, meta = msgs[0]
    same(want, body, f"{peer}'s stored message")
    return meta


def t_send_aiosmtpd(binary, name):
    need(binary)
    c, k = cert()
    port, outdir, proc = start_aio(f"{name}-aio", "--tls-cert", c, "--tls-key", k, "--require-tls",
                                   "--auth", f"{USER}:{PASSWORD}")
    r = our_send(binary, port, [TO], MSG, "--starttls", "required", "--tls-ca", c, "--auth",
                 f"{USER}:{PASSWORD}")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    meta = one_stored_message(outdir, "aiosmtpd")
    check(meta["mail_from"] == FROM and meta["rcpt_tos"] == [TO], f"envelope {meta}")
    check(meta["tls"] is True and meta["auth"] == USER, f"TLS/AUTH not used: {meta}")
    stop(proc)


def t_send_aiosmtpd_rejected_rcpt(binary, name):
    need(binary)
    c, k = cert()
    bad = "nobody@server.test"
    port, outdir, proc = start_aio(f"{name}-aio-reject", "--tls-cert", c, "--tls-key", k,
                                   "--reject-rcpt", bad)
    r = our_send(binary, port, [TO, bad], MSG, "--starttls", "required", "--tls-ca", c)
    check(r.returncode != 0, f"send exit 0 though <{bad}> was refused: {short(send_out(r))}")
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    check_rcpt_reported(r, bad, False)
    meta = one_stored_message(outdir, "aiosmtpd", " (for the good recipient)")
    check(meta["rcpt_tos"] == [TO], f"recipients {meta['rcpt_tos']}")
    stop(proc)


DELIVER = os.path.join(EXAMPLES, "deliver")


def t_deliver_bounce(peer="aiosmtpd"):
    """deliver --bounce against aiosmtpd (or go-smtp) refusing one
    recipient: the other gets the message, and the bounce written from the
    DeliveryReport (dsn::Recipient::from_report) names the refused one with
    the peer's reply, as Python's email package reads it. Both peer
    scripts refuse with `550 5.1.1 <ADDR>: recipient rejected`."""
    return lambda: deliver_bounce(peer)


def deliver_bounce(peer):
    need(DELIVER)
    bad = "nobody@server.test"
    if peer == "go-smtp":
        port, outdir, proc = start_gosmtp("deliver-gosmtp-reject", "--reject-rcpt", bad)
        want = lf(MSG)
    else:
        port, outdir, proc = start_aio("deliver-aio-reject", "--reject-rcpt", bad)
        want = MSG
    path = os.path.join(WORK, f"deliver-bounce-{peer}.eml")
    r = run([DELIVER, "--bounce", path, f"{HOST}:{port}", FROM, TO, bad], stdin=open_bytes(MSG))
    out = r.stdout.decode("utf-8", "replace")
    check(r.returncode == 1, f"deliver exit {r.returncode}, want 1 (a bounce): {short(out + r.stderr.decode())}")
    check(f"<{TO}>: delivered" in out, f"no delivered line: {short(out)}")
    check(f"<{bad}>: bounce: 550" in out, f"no bounce line: {short(out)}")
    check(f"bounce written to {path}" in out, f"no bounce written: {short(out)}")
    meta = one_stored_message(outdir, peer, want=want)
    check(meta["rcpt_tos"] == [TO], f"recipients {meta['rcpt_tos']}")
    stop(proc)
    with open(path, "rb") as f:
        data = f.read()
    msg, parts, blocks = parse_bounce(data, host="client.example", token=None)
    check(len(blocks) == 2, f"{len(blocks)} delivery-status blocks, want 2 (one recipient)")
    per_msg, failed = blocks
    check(ds_field(per_msg, "Reporting-MTA") == "dns; client.example", f"Reporting-MTA {ds_field(per_msg, 'Reporting-MTA')}")
    want = {"Final-Recipient": f"rfc822; {bad}", "Action": "failed", "Status": "5.1.1",
            "Diagnostic-Code": f"smtp; 550 5.1.1 <{bad}>: recipient rejected",
            "Remote-MTA": None, "Original-Recipient": None}
    for name, value in want.items():
        check(ds_field(failed, name) == value, f"{name}: {ds_field(failed, name)!r}, want {value!r}")
    check(f"<{bad}>: delivery failed" in parts[0].get_content(), f"text part: {short(parts[0].get_content())}")
    check(parts[2].get_content_type() == "message/rfc822", f"part 3 {parts[2].get_content_type()}")
    start = data.index(b"Content-Type: message/rfc822\r\n")
    start = data.index(b"\r\n\r\n", start) + 4
    end = data.index(b"\r\n--=_smtp-proto-dsn-", start)
    same(MSG, data[start:end], "returned message")



# ------------------------------------------- bounces read: the core's dsn reader

READ_BOUNCE = os.path.join(EXAMPLES, "read_bounce")


def read_bounce(data, *args):
    """Runs the read_bounce example on data; returns its lines."""
    need(READ_BOUNCE)
    r = run([READ_BOUNCE, *args], stdin=open_bytes(data), timeout=30)
    check(r.returncode == 0, f"read_bounce exit {r.returncode}: {short(r.stderr)}")
    return r.stdout.decode("utf-8").splitlines()


def t_read_bounce_exim():
    """exim refuses two recipients (a :fail: router) and bounces the message
    to its local sender; read_bounce reads exim's multipart/report: both
    recipients failed, and the Message-ID of the message returned."""
    msg = (b"From: alice@exim.test\r\nTo: nobody@fail.test\r\n"
           b"Message-ID: <read-bounce-1@exim.test>\r\nSubject: news\r\n\r\nHello\r\n")
    work = os.path.join(WORK, "exim-bounce")
    r = run([os.path.join(P, "exim-bounce.sh"), work, "alice@exim.test",
             "nobody@fail.test", "other@fail.test"], stdin=open_bytes(msg), timeout=90)
    check(r.returncode == 0, f"exim-bounce exit {r.returncode}: {short(r.stderr)}")
    data = r.stdout
    check(b"message/delivery-status" in data, f"exim wrote no delivery-status part: {short(data)}")
    lines = read_bounce(data)
    check(lines[0].startswith("report type=delivery-status global=no complete=yes reporting-mta=exim.test "),
          f"first line {lines[0]!r}")
    rcpts = sorted(l for l in lines if l.startswith("recipient "))
    check(len(rcpts) == 2, f"recipients read: {lines}")
    for line, addr in zip(rcpts, ["nobody@fail.test", "other@fail.test"]):
        check(re.fullmatch(rf"recipient <{re.escape(addr)}> action=failed status=5\.\d+\.\d+.*", line),
              f"{line!r} for {addr}")
    check("returned type=message/rfc822 message-id=<read-bounce-1@exim.test>" in lines,
          f"returned line: {lines}")
    check(not any(l.startswith("problem ") for l in lines), f"problems: {lines}")


def python_report(policy):
    """A multipart/report built with Python's email package: two recipient
    blocks (a long Diagnostic-Code, which the generator folds), and the
    original as message/rfc822."""
    from email.message import Message
    from email.mime.message import MIMEMessage
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    def block(*fields):
        m = Message()
        for name, value in fields:
            m[name] = value
        return m

    original = email.message_from_bytes(
        b"From: alice@py.test\r\nTo: a@x.test\r\nMessage-ID: <py-1@py.test>\r\n"
        b"Subject: hi\r\n\r\nHello\r\n")
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@py.test"
    report["To"] = "alice@py.test"
    report.attach(MIMEText("Delivery failed.\n"))
    status = Message()
    status["Content-Type"] = "message/delivery-status"
    status.set_payload([
        block(("Original-Envelope-Id", "ENV-7"), ("Reporting-MTA", "dns; py.test")),
        block(("Final-Recipient", "rfc822; a@x.test"), ("Action", "failed"), ("Status", "5.1.1"),
              ("Remote-MTA", "dns; mx.x.test"), ("Diagnostic-Code", PY_DIAGNOSTIC)),
        block(("Original-Recipient", "rfc822; b@x.test"), ("Final-Recipient", "rfc822; b@x.test"),
              ("Action", "delayed"), ("Status", "4.4.1")),
    ])
    report.attach(status)
    report.attach(MIMEMessage(original))
    return report.as_bytes(policy=policy)


PY_DIAGNOSTIC = "smtp; 550 5.1.1 " + " ".join(["the mailbox does not exist"] * 6)


def t_read_bounce_python():
    """A multipart/report built with Python's email.mime, with CRLF and with
    LF line ends: read_bounce reads both recipients, the folded diagnostic
    unfolded, the ENVID and the returned Message-ID."""
    for policy in (email.policy.SMTP, email.policy.default):
        data = python_report(policy)
        check((b"\r\n" in data) == (policy is email.policy.SMTP), "line ends not as the policy says")
        check(b"\n not exist" in data or b"\n does" in data or b"\n the" in data,
              "the generator did not fold the Diagnostic-Code")
        want = [
            "report type=delivery-status global=no complete=yes reporting-mta=py.test envid=ENV-7",
            f'recipient <a@x.test> action=failed status=5.1.1 diagnostic="{PY_DIAGNOSTIC}"',
            "recipient <b@x.test> action=delayed status=4.4.1 original=<b@x.test>",
            "returned type=message/rfc822 message-id=<py-1@py.test>",
        ]
        got = read_bounce(data)
        check(got == want, f"read {got}, want {want}")


def t_read_bounce_own():
    """The bounce example's output read back by read_bounce (the writer and
    the reader of the core agree, through the example binaries)."""
    data, _ = bounce(MSG, *BOUNCE_BASE, "--envid", "QQ+2B314159", *BOUNCE_RCPTS)
    got = read_bounce(data)
    check(got[0] == "report type=delivery-status global=no complete=yes reporting-mta=mx.test envid=QQ+314159",
          f"first line {got[0]!r}")
    check(got[1].startswith(f"recipient <{TO}> action=failed status=5.1.1 original=<Rcpt+alias@server.test> "
                            'diagnostic="smtp; 550 5.1.1 <rcpt@server.test>: no such user here see the postmaster"'),
          f"second line {got[1]!r}")
    check(got[2] == 'recipient <slow@server.test> action=delayed status=4.4.1 '
                    'diagnostic="smtp; 451 4.4.1 no answer from host"', f"third line {got[2]!r}")
    check(got[3].startswith("returned type=message/rfc822 message-id="), f"fourth line {got[3]!r}")

def t_send_starttls_required_refused(binary, name):
    """--starttls required against a server without STARTTLS: nothing is sent."""
    need(binary)
    port, outdir, proc = start_aio(f"{name}-aio-notls")
    r = our_send(binary, port, [TO], MSG, "--starttls", "required")
    check(r.returncode != 0, f"send exit 0 without TLS: {short(send_out(r))}")
    time.sleep(0.3)
    check(stored_peer_messages(outdir, 0, 0) == [], "a message was delivered in plain text")
    stop(proc)


def start_exim_server(name, *args):
    port = free_port()
    work = os.path.join(WORK, name)
    proc = start([os.path.join(P, "start-exim-server.sh"), str(port), work, *args], name,
                 env={"EXIM_SECONDS": "120"})
    wait_port(port, proc)
    return port, work, proc


def exim_stored(work, n, seconds=10):
    d = os.path.join(work, "mail/new")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.isdir(d) and len(os.listdir(d)) >= n:
            break
        time.sleep(0.05)
    out = []
    if os.path.isdir(d):
        for fn in sorted(os.listdir(d)):
            with open(os.path.join(d, fn), "rb") as f:
                out.append(f.read())
    return out


def exim_log(work):
    with open(os.path.join(work, "log/mainlog"), errors="replace") as f:
        return f.read()


def t_send_exim(body, label, tls):
    def t(binary, name):
        need(binary)
        c, k = cert()
        args = [c, k, USER, PASSWORD] if tls else []
        port, work, proc = start_exim_server(f"{name}-exim-{label}", *args)
        flags = ["--chunking", "auto"]
        if tls:
            flags += ["--starttls", "required", "--tls-ca", c, "--auth", f"{USER}:{PASSWORD}"]
        else:
            flags += ["--starttls", "off"]
        r = our_send(binary, port, [TO], body, *flags)
        check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
        check_rcpt_reported(r, TO, True)
        check_message_reported(r)
        stored = exim_stored(work, 1)
        check(len(stored) == 1, f"exim stored {len(stored)} messages: {short(exim_log(work))}")
        got = stored[0]
        check(got.startswith(b"Received: "), "exim's Received: not first")
        same(body, got[got.find(b"\r\nFrom: ") + 2:], "message after exim's Received:")
        log = exim_log(work)
        m = re.search(r" <= (\S+) .*", log)
        check(m is not None and m.group(1) == FROM, f"exim's <= line: {short(log)}")
        line = m.group(0)
        via = re.findall(r"message data via: (.*)", log)
        check(len(via) == 1 and re.fullmatch(r"BDAT \d+ LAST", via[0]),
              f"exim did not receive the message over BDAT: {via}")
        if tls:
            check(" X=TLS" in line and " A=plain:" + USER in line, f"not TLS+AUTH: {line}")
        stop(proc)
    return t


def t_send_exim_data(binary, name):
    """--chunking off: DATA (dot-stuffed) even though exim offers CHUNKING."""
    need(binary)
    port, work, proc = start_exim_server(f"{name}-exim-data")
    r = our_send(binary, port, [TO], MSG, "--chunking", "off", "--starttls", "off")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_message_reported(r)
    stored = exim_stored(work, 1)
    check(len(stored) == 1, f"exim stored {len(stored)} messages")
    same(MSG, stored[0][stored[0].find(b"\r\nFrom: ") + 2:], "message after exim's Received:")
    via = re.findall(r"message data via: (.*)", exim_log(work))
    check(via == ["DATA"], f"exim received the message via {via}, want DATA")
    stop(proc)


def t_send_bare_lf(binary, name):
    """A bare LF in the input goes out as CRLF, over DATA and over BDAT."""
    need(binary)
    want = BARE_LF.replace(b"line\nnext", b"line\r\nnext")
    port, outdir, proc = start_aio(f"{name}-aio-bare")
    r = our_send(binary, port, [TO], BARE_LF)
    check(r.returncode == 0, f"send (DATA) exit {r.returncode}: {short(send_out(r))}")
    msgs = stored_peer_messages(outdir, 1)
    check(len(msgs) == 1, f"aiosmtpd stored {len(msgs)} messages")
    same(want, msgs[0][0], "aiosmtpd's stored message")
    stop(proc)
    srv = OurServer(f"{name}-serve-bare", SERVERS[0][1])
    r = our_send(binary, srv.port, [TO], BARE_LF)
    check(r.returncode == 0, f"send (BDAT) to serve exit {r.returncode}: {short(send_out(r))}")
    check_stored(srv, want)
    srv.stop()


def t_send_exim_rejected(binary, name):
    """exim refuses RCPT before AUTH: send without --auth must fail, nothing stored."""
    need(binary)
    c, k = cert()
    port, work, proc = start_exim_server(f"{name}-exim-reject", c, k, USER, PASSWORD)
    r = our_send(binary, port, [TO], MSG, "--starttls", "required", "--tls-ca", c)
    check(r.returncode != 0, f"send exit 0 though exim refused the recipient: {short(send_out(r))}")
    check_rcpt_reported(r, TO, False)
    check(exim_stored(work, 0, 0.3) == [], "exim stored a message")
    stop(proc)


def t_send_node(binary, name):
    need(binary)
    c, k = cert()
    port = free_port()
    outdir = os.path.join(WORK, f"{name}-node")
    bad = "nobody@server.test"
    proc = start(["node", os.path.join(P, "smtp_server.mjs"), "--port", str(port), "--outdir", outdir,
                  "--tls-cert", c, "--tls-key", k, "--auth", f"{USER}:{PASSWORD}", "--seconds", "120",
                  "--reject-rcpt", bad], f"{name}-node", cwd=P)
    wait_port(port, proc)
    r = our_send(binary, port, [TO, "second@server.test"], MSG, "--starttls", "required", "--tls-ca",
                 c, "--auth", f"{USER}:{PASSWORD}")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    meta = one_stored_message(outdir, "smtp-server")
    check(meta["mail_from"] == FROM and meta["rcpt_tos"] == [TO, "second@server.test"],
          f"envelope {meta}")
    check(meta["tls"] is True and meta["auth"] == USER, f"TLS/AUTH not used: {meta}")
    # A refused recipient next to an accepted one.
    r = our_send(binary, port, [bad, TO], MSG, "--starttls", "required", "--tls-ca", c, "--auth",
                 f"{USER}:{PASSWORD}")
    check(r.returncode != 0, f"send exit 0 though <{bad}> was refused: {short(send_out(r))}")
    check_rcpt_reported(r, bad, False)
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    msgs = stored_peer_messages(outdir, 2)
    check(len(msgs) == 2 and msgs[1][1]["rcpt_tos"] == [TO], f"second delivery: {[m[1] for m in msgs]}")
    same(MSG, msgs[1][0], "smtp-server's second stored message")
    stop(proc)


def t_send_node_implicit_tls(binary, name):
    """send --implicit-tls to node smtp-server with `secure: true`."""
    need(binary)
    c, k = cert()
    port = free_port()
    outdir = os.path.join(WORK, f"{name}-node-implicit")
    proc = start(["node", os.path.join(P, "smtp_server.mjs"), "--port", str(port), "--outdir", outdir,
                  "--tls-cert", c, "--tls-key", k, "--implicit-tls", "--auth", f"{USER}:{PASSWORD}",
                  "--seconds", "120"], f"{name}-node-implicit", cwd=P)
    wait_port(port, proc)
    r = our_send(binary, port, [TO], MSG, "--implicit-tls", "--tls-ca", c, "--auth",
                 f"{USER}:{PASSWORD}")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    meta = one_stored_message(outdir, "smtp-server")
    check(meta["tls"] is True and meta["auth"] == USER, f"TLS/AUTH not used: {meta}")
    # Without a trusted certificate nothing is sent.
    r = our_send(binary, port, [TO], MSG, "--implicit-tls", "--auth", f"{USER}:{PASSWORD}")
    check(r.returncode != 0, f"send exit 0 with an untrusted certificate: {short(send_out(r))}")
    time.sleep(0.3)
    check(len(stored_peer_messages(outdir, 1, seconds=0)) == 1, "a message was stored over an untrusted TLS")
    stop(proc)


def t_send_to_serve_implicit_tls(client, server):
    """Our client to our server on implicit TLS, both ends of the project."""
    def t():
        need(client)
        need(server)
        c, k = cert()
        srv = OurServer(f"{os.path.basename(client)}-to-{os.path.basename(server)}-implicit", server,
                        "--tls-cert", c, "--tls-key", k, "--implicit-tls",
                        "--auth", f"{USER}:{PASSWORD}")
        r = our_send(client, srv.port, [TO], BIG, "--implicit-tls", "--tls-ca", c,
                     "--auth", f"{USER}:{PASSWORD}")
        check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
        check_stored(srv, BIG)
        received = srv.messages()[0][1]
        check("ESMTPSA" in received, f"Received does not say ESMTPSA: {received}")
        srv.stop()
    return t


def t_send_to_serve(client, server):
    """Our client to our server: both ends of the project over a socket."""
    def t():
        need(client)
        need(server)
        c, k = cert()
        srv = OurServer(f"{os.path.basename(client)}-to-{os.path.basename(server)}", server,
                        "--tls-cert", c, "--tls-key", k, "--auth", f"{USER}:{PASSWORD}")
        r = our_send(client, srv.port, [TO], BIG, "--starttls", "required", "--tls-ca", c,
                     "--auth", f"{USER}:{PASSWORD}")
        check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
        check_stored(srv, BIG)
        srv.stop()
    return t


def t_send_rcptmax(client, server):
    """Our server advertises LIMITS RCPTMAX=2 (RFC 9422): our client sends
    five recipients as three transactions, each with the whole message,
    rather than have the server refuse three RCPTs with 452."""
    def t():
        need(client)
        need(server)
        srv = OurServer(f"{os.path.basename(client)}-rcptmax-{os.path.basename(server)}", server,
                        "--max-recipients", "2")
        rcpts = [f"rcpt{i}@server.test" for i in range(5)]
        r = our_send(client, srv.port, rcpts, MSG, "--starttls", "off")
        check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
        for rc in rcpts:
            check_rcpt_reported(r, rc, accepted=True)
        finals = re.findall(r"^message: ACCEPTED 250\b", send_out(r), re.M)
        check(len(finals) == 3, f"{len(finals)} accepted messages reported, want 3: {short(send_out(r))}")
        srv.check_messages(3, MSG)
        srv.stop()
    return t


def t_send_mailmax(client, server):
    """Our server advertises LIMITS RCPTMAX=1 MAILMAX=1 (RFC 9422): of two
    recipients our client sends the first in the one transaction the
    connection allows, prints the second as NOT SENT, quits rather than
    let the server answer a second MAIL with 421, and exits 1."""
    def t():
        need(client)
        need(server)
        srv = OurServer(f"{os.path.basename(client)}-mailmax-{os.path.basename(server)}", server,
                        "--max-recipients", "1", "--max-messages", "1")
        rcpts = ["rcpt0@server.test", "rcpt1@server.test"]
        r = our_send(client, srv.port, rcpts, MSG, "--starttls", "off")
        out = send_out(r)
        check(r.returncode == 1, f"send exit {r.returncode}: {short(out)}")
        check_rcpt_reported(r, rcpts[0], accepted=True)
        check_message_reported(r, accepted=True)
        m = re.findall(rf"^recipient <{re.escape(rcpts[1])}>: NOT SENT \(the server allows 1 transactions"
                       r" per connection\)$", out, re.M)
        check(len(m) == 1, f"<{rcpts[1]}> not reported as NOT SENT: {short(out)}")
        check(not re.search(r"^session: CLOSING|warning", out, re.M),
              f"the server closed the session, or the run ended with an error: {short(out)}")
        srv.check_messages(1, MSG)
        srv.stop()
    return t


# ------------------------------------------------ our client -> scripted servers

class FakeServer:
    """A scripted SMTP server for one connection, in a thread; records every
    byte the client sends. `script(conn)` drives the conversation.

    Every read is bounded: line() and until() must complete within
    STEP_SECONDS, the whole conversation ends `seconds` after the connection
    is accepted, and at most READ_MAX bytes wait unparsed. A script that
    runs past a bound fails with a CaseFailure, reported through .error."""

    STEP_SECONDS = 10.0

    def __init__(self, script, seconds=30.0):
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(1)
        self.listener.settimeout(30)
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.error = None
        self.script = script
        self.seconds = seconds
        self.deadline = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                raise CaseFailure("the client did not connect within 30s") from None
            self.deadline = time.monotonic() + self.seconds
            conn.settimeout(self.STEP_SECONDS)
            self.conn = conn
            self.buf = b""
            self.script(self)
        except CaseFailure as e:
            self.error = str(e)
        except Exception as e:  # reported by the case through .error
            self.error = repr(e)
        finally:
            try:
                self.conn.close()
            except Exception:
                pass
            self.listener.close()

    def send(self, data):
        self.conn.sendall(data)

    def _fill(self, deadline):
        """One recv that returns by the deadline and by the end of the
        conversation (socket.timeout if not)."""
        left = min(deadline, self.deadline) - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self.conn.settimeout(left)
        chunk = self.conn.recv(65536)
        if not chunk:
            raise EOFError("client closed")
        self.received += chunk
        self.buf += chunk
        check(len(self.buf) <= READ_MAX, f"more than {READ_MAX} bytes from the client unread: "
                                         f"{self.buf[:80]!r}...")

    def _read_to(self, marker):
        deadline = time.monotonic() + self.STEP_SECONDS
        try:
            while marker not in self.buf:
                self._fill(deadline)
        except socket.timeout:
            limit = (f"the conversation's {self.seconds:g}s" if self.deadline < deadline
                     else f"{self.STEP_SECONDS:g}s")
            raise CaseFailure(f"no {marker!r} from the client within {limit}; "
                              f"unread: {self.buf[:80]!r}") from None
        data, self.buf = self.buf.split(marker, 1)
        return data

    def line(self):
        return self._read_to(CRLF)

    def until(self, marker):
        return self._read_to(marker) + marker

    def rest(self, seconds=3.0):
        """Reads until the client closes or goes quiet, for at most `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._fill(deadline)
            except (EOFError, OSError):
                break
        data, self.buf = self.buf, b""
        return data

    def join(self):
        self.thread.join(40)
        check(not self.thread.is_alive(), "scripted server still running")


def t_send_wire_stuffing(binary, name):
    """The exact DATA bytes: line ends made CRLF, every leading dot doubled,
    the first line's included, CRLF . CRLF at the end."""
    need(binary)
    body_in = b".first\nsecond\r\n.\r\n..two\rthird"
    want = b"..first\r\nsecond\r\n..\r\n...two\r\nthird\r\n.\r\n"
    got = {}

    def script(c):
        c.send(b"220 fake.test ESMTP\r\n")
        check(c.line().startswith(b"EHLO "), "no EHLO")
        c.send(b"250 fake.test\r\n")
        got["mail"] = c.line()
        c.send(b"250 2.1.0 ok\r\n")
        got["rcpt"] = c.line()
        c.send(b"250 2.1.5 ok\r\n")
        got["data"] = c.line()
        c.send(b"354 go ahead\r\n")
        got["body"] = c.until(b"\r\n.\r\n")
        c.send(b"250 2.0.0 stored\r\n")
        got["quit"] = c.line()
        c.send(b"221 bye\r\n")

    srv = FakeServer(script)
    r = our_send(binary, srv.port, [TO], body_in, "--starttls", "off")
    srv.join()
    check(srv.error is None, f"scripted server: {srv.error}; send said {short(send_out(r))}")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check(got["mail"] == f"MAIL FROM:<{FROM}>".encode() or
          got["mail"].startswith(f"MAIL FROM:<{FROM}> ".encode()), f"MAIL line {got['mail']!r}")
    check(got["rcpt"] == f"RCPT TO:<{TO}>".encode(), f"RCPT line {got['rcpt']!r}")
    check(got["data"] == b"DATA", f"DATA line {got['data']!r}")
    same(want, got["body"], "DATA bytes on the wire")
    check(got["quit"] == b"QUIT", f"after the message: {got['quit']!r}")


def t_send_starttls_injection(binary, name):
    """A server that puts a plaintext reply right behind its 220 to STARTTLS:
    the client must not read it as a reply nor carry on in plain text."""
    need(binary)

    def script(c):
        c.send(b"220 fake.test ESMTP\r\n")
        c.line()
        c.send(b"250-fake.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        check(c.line() == b"STARTTLS", "client did not send STARTTLS")
        c.send(b"220 2.0.0 go ahead\r\n250 2.1.0 injected\r\n")
        c.after = c.rest()

    srv = FakeServer(script)
    r = our_send(binary, srv.port, [TO], MSG, "--starttls", "required")
    srv.join()
    check(srv.error is None, f"scripted server: {srv.error}")
    check(r.returncode != 0, f"send exit 0 after injected plaintext: {short(send_out(r))}")
    after = getattr(srv, "after", b"")
    check(b"MAIL" not in after and b"EHLO" not in after,
          f"client went on in plain text after STARTTLS: {after[:80]!r}")
    check(not after.startswith(b"\x16\x03"), "client started a TLS handshake over injected bytes")
    check("TLS" in send_out(r), f"send did not say the TLS upgrade failed: {short(send_out(r))}")


def t_send_all_rcpts_failed_lone_dot(binary, name):
    """RFC 2920: every RCPT refused but DATA got 354 -> the client sends a
    lone dot at once, no message text."""
    need(binary)
    got = {}

    def script(c):
        c.send(b"220 fake.test ESMTP\r\n")
        c.line()
        c.send(b"250-fake.test\r\n250 PIPELINING\r\n")
        got["batch"] = c.until(b"DATA\r\n")
        c.send(b"250 2.1.0 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n")
        got["after"] = c.line()
        c.send(b"554 5.5.1 no valid recipients\r\n")
        got["quit"] = c.line()
        c.send(b"221 bye\r\n")

    srv = FakeServer(script)
    r = our_send(binary, srv.port, [TO], b"Subject: 7-bit\r\n\r\nbody\r\n", "--starttls", "off")
    srv.join()
    check(srv.error is None, f"scripted server: {srv.error}; send said {short(send_out(r))}")
    check(r.returncode != 0, f"send exit 0 though the recipient was refused: {short(send_out(r))}")
    check_rcpt_reported(r, TO, False)
    check(got["batch"].count(b"\r\n") == 3 and got["batch"].startswith(b"MAIL FROM:"),
          f"MAIL, RCPT and DATA not pipelined in one batch: {got['batch']!r}")
    check(got["after"] == b".", f"after 354 the client sent {got['after']!r}, want a lone dot")
    check(got["quit"] == b"QUIT", f"then {got['quit']!r}")


def t_send_lmtp(client, server):
    def t():
        need(client)
        need(server)
        srv = OurServer(f"{os.path.basename(client)}-lmtp-{os.path.basename(server)}", server, "--lmtp")
        r = our_send(client, srv.port, [TO, "second@server.test"], MSG, "--lmtp", "--starttls", "off")
        check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
        out = send_out(r)
        for rc in (TO, "second@server.test"):
            check(re.search(rf"^delivery <{re.escape(rc)}>: ACCEPTED 250\b", out, re.M),
                  f"no per-recipient LMTP reply for <{rc}>: {short(out)}")
        rp, received, got = srv.only_message()
        check(rp == FROM, f"Return-Path <{rp}>")
        check(" with LMTP" in received, f"Received line does not say LMTP: {received}")
        same(MSG, got)
        srv.stop()
    return t


# ------------------------------------- our client: several messages, one session

def our_send_several(binary, port, rcpts, files, *flags, timeout=60):
    """send --message FILE ... : the messages over one connection."""
    args = [binary, "--server", f"{HOST}:{port}", "--from", FROM]
    for r in rcpts:
        args += ["--to", r]
    for f in files:
        args += ["--message", f]
    return run(args + list(flags), timeout=timeout)


def several_blocks(r, n, rcpts=(TO,)):
    """The blocks `send --message` prints: `message N (FILE):`, then one
    line per recipient; returns {N: [lines]} and checks there are n, in
    order, each naming its file, each with one line per recipient."""
    out = send_out(r)
    blocks = {}
    current = None
    for line in out.splitlines():
        m = re.fullmatch(r"message (\d+) \((.*)\):", line)
        if m:
            current = int(m.group(1))
            check(current not in blocks, f"message {current} reported twice: {short(out)}")
            check(m.group(2) == SEVERAL_FILES[current - 1], f"message {current} names {m.group(2)}")
            blocks[current] = []
        elif current is not None and re.match(r"(recipient|delivery) <", line):
            blocks[current].append(line)
    check(sorted(blocks) == list(range(1, n + 1)), f"blocks {sorted(blocks)}, want 1..{n}: {short(out)}")
    for i, lines in blocks.items():
        for rc in rcpts:
            got = [l for l in lines if f"<{rc}>:" in l]
            check(len(got) == 1, f"message {i}: {len(got)} lines for <{rc}>: {lines}")
    return blocks


def check_several_delivered(r, n, rcpts=(TO,)):
    out = send_out(r)
    check(r.returncode == 0, f"send exit {r.returncode}: {short(out)}")
    for i, lines in several_blocks(r, n, rcpts).items():
        for line in lines:
            check(re.match(r"delivery <[^>]+>: ACCEPTED 250\b", line), f"message {i}: {line}")
    check(re.search(rf"^connections: 1 \({n} messages, {n} delivered to every recipient\)$", out, re.M),
          f"no `connections: 1 ({n} messages, {n} delivered ...)` line: {short(out)}")


def same_set(want, got, what):
    """The stored messages are the ones sent, each once, in any order."""
    check(len(got) == len(want), f"{len(got)} {what}, want {len(want)}")
    for w, g in zip(sorted(want), sorted(got)):
        same(w, g, what)


def t_several_aiosmtpd(binary, name):
    """Three messages over one session to aiosmtpd, STARTTLS and AUTH once:
    all three stored, bytes as sent, in order, all over connection 0 from
    one client port."""
    need(binary)
    c, k = cert()
    port, outdir, proc = start_aio(f"{name}-aio-several", "--tls-cert", c, "--tls-key", k,
                                   "--require-tls", "--auth", f"{USER}:{PASSWORD}")
    r = our_send_several(binary, port, [TO], SEVERAL_FILES, "--starttls", "required", "--tls-ca", c,
                         "--auth", f"{USER}:{PASSWORD}")
    check_several_delivered(r, 3)
    msgs = stored_peer_messages(outdir, 3)
    check(len(msgs) == 3, f"aiosmtpd stored {len(msgs)} messages, want 3")
    for i, (body, meta) in enumerate(msgs):
        same(SEVERAL[i], body, f"aiosmtpd's message {i + 1}")
        check(meta["mail_from"] == FROM and meta["rcpt_tos"] == [TO], f"envelope {meta}")
        check(meta["tls"] is True and meta["auth"] == USER, f"TLS/AUTH not used: {meta}")
    conns = {m["connection"] for _, m in msgs}
    peers = {tuple(m["peer"]) for _, m in msgs}
    check(conns == {0} and len(peers) == 1, f"connections {conns}, client ports {peers}: want one")
    stop(proc)


def t_several_aiosmtpd_dropped(binary, name):
    """aiosmtpd answers the first message, then closes the connection
    (no 421): the first is reported delivered, the other two NOT SENT
    (the connection ended), exit 1, within the run's time limit; only the
    first stored."""
    need(binary)
    port, outdir, proc = start_aio(f"{name}-aio-several-drop", "--close-after", "1")
    t0 = time.monotonic()
    r = our_send_several(binary, port, [TO], SEVERAL_FILES, "--starttls", "off", timeout=30)
    took = time.monotonic() - t0
    out = send_out(r)
    check(r.returncode == 1, f"send exit {r.returncode}: {short(out)}")
    check(took < 20, f"send took {took:.1f}s")
    blocks = several_blocks(r, 3)
    check(re.match(rf"delivery <{re.escape(TO)}>: ACCEPTED 250\b", blocks[1][0]), f"message 1: {blocks[1]}")
    for i in (2, 3):
        check(blocks[i] == [f"recipient <{TO}>: NOT SENT (the connection ended before the message was sent)"],
              f"message {i}: {blocks[i]}")
    check(re.search(r"^connections: 1 \(3 messages, 1 delivered to every recipient\)$", out, re.M),
          f"no `connections: 1 (3 messages, 1 delivered ...)` line: {short(out)}")
    time.sleep(0.3)
    msgs = stored_peer_messages(outdir, 1)
    check(len(msgs) == 1, f"aiosmtpd stored {len(msgs)} messages, want 1")
    same(SEVERAL[0], msgs[0][0], "aiosmtpd's stored message")
    stop(proc)


def t_several_exim(binary, name):
    """Three messages over one session to exim (CHUNKING): three stored,
    bytes after exim's Received:, one SMTP connection in exim's log."""
    need(binary)
    port, work, proc = start_exim_server(f"{name}-exim-several")
    r = our_send_several(binary, port, [TO], SEVERAL_FILES, "--starttls", "off")
    check_several_delivered(r, 3)
    stored = exim_stored(work, 3)
    same_set(SEVERAL, [m[m.find(b"\r\nFrom: ") + 2:] for m in stored], "messages stored by exim")
    time.sleep(0.3)
    log = exim_log(work)
    received = re.findall(r" <= (\S+) ", log)
    check(received == [FROM] * 3, f"exim's <= lines: {received}")
    via = re.findall(r"message data via: (.*)", log)
    check(len(via) == 3 and all(re.fullmatch(r"BDAT \d+ LAST", v) for v in via), f"via {via}")
    conns = re.findall(r"SMTP connection from \S+ \(TCP/IP connection count", log)
    check(len(conns) == 1, f"exim logged {len(conns)} connections, want 1: {conns}")
    check(re.search(r"SMTP connection from .* closed by QUIT", log), "the session did not end with QUIT")
    ports = set(re.findall(r" <= \S+ H=.*?\[127\.0\.0\.1\]:(\d+) ", log))
    check(len(ports) == 1, f"exim received the messages from client ports {ports}, want one")
    stop(proc)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def t_several_to_serve(client, server):
    """Three messages over one session (STARTTLS + AUTH) to our server:
    three stored with the bytes sent, all logged from one client port."""
    def t():
        need(client)
        need(server)
        c, k = cert()
        srv = OurServer(f"{os.path.basename(client)}-several-{os.path.basename(server)}", server,
                        "--tls-cert", c, "--tls-key", k, "--auth", f"{USER}:{PASSWORD}")
        r = our_send_several(client, srv.port, [TO], SEVERAL_FILES, "--starttls", "required",
                             "--tls-ca", c, "--auth", f"{USER}:{PASSWORD}")
        check_several_delivered(r, 3)
        n = srv.wait_count(3)
        check(n == 3, f"{n} messages stored, want 3")
        time.sleep(0.1)
        msgs = srv.messages()
        for rp, _, _ in msgs:
            check(rp == FROM, f"Return-Path <{rp}>")
        same_set(SEVERAL, [m[2] for m in msgs], "stored messages")
        check_one_connection(srv, 3)
        srv.stop()
    return t


def check_one_connection(srv, n):
    """Our server logged n `message stored` lines, all with one `peer=`."""
    with open(srv.proc.log_path, "rb") as f:
        log = ANSI.sub("", f.read().decode("utf-8", "replace"))
    peers = re.findall(r"message stored .*?peer=(\S+)", log)
    check(len(peers) == n and len(set(peers)) == 1,
          f"the server logged the messages from {peers}, want {n} from one connection")


# ------------------------------------------------- go-smtp, server and client
#
# emersion/go-smtp 0.12.1 (Debian bookworm), built by install.sh into
# PEERS_DIR/gosmtp. Its server hands the backend the message through
# net/textproto's DotReader: dot-unstuffed, and every CRLF turned into a
# bare LF, so what it stores is compared with the message sent after that
# same transformation (lf()); the bytes on the wire are checked through
# tap.py. It offers PIPELINING 8BITMIME ENHANCEDSTATUSCODES (+ STARTTLS,
# AUTH PLAIN after TLS), no CHUNKING. Its client dot-stuffs through
# textproto's DotWriter: CRLF kept, a bare LF sent as CRLF, a final CRLF
# added when missing, and an empty message sent as one empty line.

GOSMTP_DIR = os.path.join(PEERS_DIR, "gosmtp")
GOSMTP_SERVER = os.path.join(GOSMTP_DIR, "gosmtp-server")
GOSMTP_CLIENT = os.path.join(GOSMTP_DIR, "gosmtp-client")
# A first line that starts with a dot, a line of a dot alone, one of two.
DOTS = b".first line starts with a dot\r\n..two\r\n.\r\nlast\r\n"


def lf(data):
    """What go-smtp 0.12's server stores for `data` sent as CRLF lines."""
    return data.replace(CRLF, b"\n")


def stuffed(data):
    """`data` (CRLF lines) dot-stuffed, as it must go out after DATA."""
    return re.sub(rb"(?:^|(?<=\r\n))\.", b"..", data)


def start_gosmtp(name, *flags):
    """go-smtp's server on a free port, under `timeout` and its own
    --seconds; stores msg-N.eml / msg-N.json in WORK/name."""
    check(os.access(GOSMTP_SERVER, os.X_OK), f"{GOSMTP_SERVER} not built (install.sh)")
    port = free_port()
    outdir = os.path.join(WORK, name)
    proc = start(["timeout", "150", GOSMTP_SERVER, "--port", str(port), "--outdir", outdir,
                  "--seconds", "120", *flags], name)
    wait_port(port, proc)
    return port, outdir, proc


def gosmtp_send(port, files, *flags, rcpts=(TO,), sender=FROM):
    """go-smtp's client: each file one transaction over one connection."""
    check(os.access(GOSMTP_CLIENT, os.X_OK), f"{GOSMTP_CLIENT} not built (install.sh)")
    args = [GOSMTP_CLIENT, "--port", str(port), "--from", sender]
    for r in rcpts:
        args += ["--to", r]
    for f in files:
        args += ["--file", f]
    return run(args + list(flags), timeout=70)


def check_gosmtp_meta(meta, rcpts=(TO,), tls=False, auth=None):
    check(meta["mail_from"] == FROM and meta["rcpt_tos"] == list(rcpts), f"envelope {meta}")
    check(meta["tls"] is tls and meta["auth"] == auth, f"TLS/AUTH {meta}, want tls={tls} auth={auth}")
    check(meta["helo"] == "localhost", f"EHLO name {meta['helo']!r}")


def t_send_gosmtp_tls_auth(binary, name):
    need(binary)
    c, k = cert()
    rcpts = [TO, "second@server.test"]
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-tls", "--tls-cert", c, "--tls-key", k,
                                      "--auth", f"{USER}:{PASSWORD}", "--max-messages", "1")
    r = our_send(binary, port, rcpts, MSG, "--starttls", "required", "--tls-ca", c,
                 "--auth", f"{USER}:{PASSWORD}")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    for rc in rcpts:
        check_rcpt_reported(r, rc, True)
    meta = one_stored_message(outdir, "go-smtp", want=lf(MSG))
    check_gosmtp_meta(meta, rcpts, tls=True, auth=USER)
    stop(proc)
    # The certificate not trusted (no --tls-ca): nothing sent, nothing stored.
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-untrusted", "--tls-cert", c, "--tls-key", k,
                                      "--auth", f"{USER}:{PASSWORD}", "--max-messages", "1")
    r = our_send(binary, port, [TO], MSG, "--starttls", "required", "--auth", f"{USER}:{PASSWORD}")
    check(r.returncode != 0, f"send exit 0 with an untrusted certificate: {short(send_out(r))}")
    check(stored_peer_messages(outdir, 1, seconds=0.3) == [], "go-smtp stored a message over an untrusted TLS")
    stop(proc)


def t_send_gosmtp_wire(binary, name):
    """Plain text through tap.py: the DATA section on the wire is the
    message dot-stuffed, CRLF, then `.` CRLF; no BDAT (none offered)."""
    need(binary)
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-wire", "--max-messages", "1")
    tap_port, tapdir, tap = start_tap(port, f"{name}-gosmtp-wire-tap")
    r = our_send(binary, tap_port, [TO], MSG)
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    meta = one_stored_message(outdir, "go-smtp", want=lf(MSG))
    check_gosmtp_meta(meta)
    c2s = tap_bytes(tapdir, tap, "c2s")
    s2c = tap_bytes(tapdir, tap, "s2c")
    check(b"CHUNKING" not in s2c, "go-smtp offers CHUNKING now: add a BDAT case")
    check(re.search(rb"(?:^|\r\n)BDAT ", c2s) is None, "BDAT sent though CHUNKING was not offered")
    m = re.search(rb"(?:^|\r\n)DATA\r\n", c2s)
    check(m is not None, f"no DATA command on the wire: {short(c2s)}")
    data = c2s[m.end():]
    want = stuffed(MSG) + b".\r\n"
    same(want, data[:len(want)], "DATA section on the wire")
    check(data[len(want):] in (b"", b"QUIT\r\n"), f"after the final dot: {data[len(want):]!r}")
    stop(proc)


def t_send_gosmtp_dots_empty(binary, name):
    """A message whose first line starts with a dot, with a line of a dot
    alone (go-smtp must not see an end there), then an empty message."""
    need(binary)
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-dots", "--max-messages", "2")
    r = our_send(binary, port, [TO], DOTS)
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_message_reported(r)
    r = our_send(binary, port, [TO], b"")
    check(r.returncode == 0, f"send (empty message) exit {r.returncode}: {short(send_out(r))}")
    check_message_reported(r)
    msgs = stored_peer_messages(outdir, 2)
    check(len(msgs) == 2, f"go-smtp stored {len(msgs)} messages, want 2")
    same(lf(DOTS), msgs[0][0], "go-smtp's stored message (leading dots)")
    same(b"", msgs[1][0], "go-smtp's stored empty message")
    for _, meta in msgs:
        check_gosmtp_meta(meta)
    stop(proc)


def t_send_gosmtp_rejected_rcpt(binary, name):
    need(binary)
    bad = "nobody@server.test"
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-reject", "--reject-rcpt", bad,
                                      "--max-messages", "1")
    r = our_send(binary, port, [bad, TO], MSG)
    check(r.returncode != 0, f"send exit 0 though <{bad}> was refused: {short(send_out(r))}")
    check_rcpt_reported(r, bad, False)
    check(re.search(rf"^recipient <{re.escape(bad)}>: REJECTED 550 5\.1\.1\b", send_out(r), re.M),
          f"go-smtp's 550 5.1.1 not reported: {short(send_out(r))}")
    check_rcpt_reported(r, TO, True)
    check_message_reported(r)
    meta = one_stored_message(outdir, "go-smtp", " (for the good recipient)", want=lf(MSG))
    check_gosmtp_meta(meta)
    stop(proc)


def t_send_gosmtp_lmtp(binary, name):
    need(binary)
    rcpts = [TO, "second@server.test"]
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-lmtp", "--lmtp", "--max-messages", "1")
    r = our_send(binary, port, rcpts, MSG, "--lmtp", "--starttls", "off")
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    out = send_out(r)
    for rc in rcpts:
        check(re.search(rf"^delivery <{re.escape(rc)}>: ACCEPTED 250\b", out, re.M),
              f"no per-recipient LMTP reply for <{rc}>: {short(out)}")
    meta = one_stored_message(outdir, "go-smtp", want=lf(MSG))
    check_gosmtp_meta(meta, rcpts)
    stop(proc)


def t_several_gosmtp(binary, name):
    """send --message x3 to go-smtp, STARTTLS + AUTH once: three stored in
    order, all from one go-smtp session."""
    need(binary)
    c, k = cert()
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-several", "--tls-cert", c, "--tls-key", k,
                                      "--auth", f"{USER}:{PASSWORD}", "--max-messages", "3")
    r = our_send_several(binary, port, [TO], SEVERAL_FILES, "--starttls", "required",
                         "--tls-ca", c, "--auth", f"{USER}:{PASSWORD}")
    check_several_delivered(r, 3)
    msgs = stored_peer_messages(outdir, 3)
    check(len(msgs) == 3, f"go-smtp stored {len(msgs)} messages, want 3")
    for i, (body, meta) in enumerate(msgs):
        same(lf(SEVERAL[i]), body, f"go-smtp's message {i + 1}")
        check_gosmtp_meta(meta, tls=True, auth=USER)
    conns = {m[1]["conn"] for m in msgs}
    peers = {m[1]["peer"] for m in msgs}
    check(len(conns) == 1 and len(peers) == 1, f"go-smtp saw sessions {conns} from {peers}, want one")
    stop(proc)


# A bare-LF dot line with commands behind it (SMTP smuggling).
LF_SMUGGLE = (b"Subject: smuggling\r\n\r\nline\n.\nMAIL FROM:<smuggled@evil.test>\r\n"
              b"RCPT TO:<victim@server.test>\r\nDATA\r\nsmuggled\r\n")


def t_send_gosmtp_smuggling(binary, name):
    """go-smtp 0.12 ends DATA at a bare `LF . LF` (net/textproto's
    DotReader): a raw client shows it, two messages stored from one DATA.
    Our client, given the same bytes, sends the bare LFs as CRLF and the
    dot doubled: go-smtp stores one message, the smuggled lines inside it."""
    need(binary)
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-smuggle-raw", "--max-messages", "2")
    raw = Raw(port)
    raw.hello()
    raw.envelope()
    raw.cmd("DATA", 354)
    raw.send(LF_SMUGGLE + b".\r\nQUIT\r\n")
    data, _ = raw.rest(5)
    raw.close()
    msgs = stored_peer_messages(outdir, 2, seconds=5)
    check(len(msgs) == 2 and msgs[1][1]["mail_from"] == "smuggled@evil.test",
          f"go-smtp no longer ends DATA at LF.LF (stored {[m[1]['mail_from'] for m in msgs]}, "
          f"replies {short(data)}): this case proves no more than the bare-LF one")
    stop(proc)
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-smuggle", "--max-messages", "1")
    r = our_send(binary, port, [TO], LF_SMUGGLE)
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_message_reported(r)
    time.sleep(0.3)
    msgs = stored_peer_messages(outdir, 1)
    check(len(msgs) == 1, f"go-smtp stored {len(msgs)} messages, want 1: "
                          f"{[m[1]['mail_from'] for m in msgs]}")
    # CRLF on the wire (bare LFs too, checked by the bare-LF case), LF as stored.
    same(LF_SMUGGLE.replace(CRLF, b"\n"), msgs[0][0], "go-smtp's stored message")
    check(msgs[0][1]["mail_from"] == FROM, f"envelope {msgs[0][1]}")
    stop(proc)


GO_UTF8_FROM, GO_UTF8_TO = "ñoño@client.test", "пользователь@сервер.test"
GO_UTF8_MSG = "From: <ñoño@client.test>\r\nSubject: ünïcödé\r\n\r\nUTF-8 body ✓\r\n".encode()


def t_send_gosmtp_smtputf8(binary, name):
    """UTF-8 sender and recipient: to go-smtp with SMTPUTF8 offered,
    delivered (go-smtp saw the SMTPUTF8 parameter); to one without,
    NOT SENT and nothing stored."""
    need(binary)
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-utf8", "--smtputf8", "--max-messages", "1")
    r = our_send(binary, port, [GO_UTF8_TO], GO_UTF8_MSG, sender=GO_UTF8_FROM)
    check(r.returncode == 0, f"send exit {r.returncode}: {short(send_out(r))}")
    check_rcpt_reported(r, GO_UTF8_TO, True)
    meta = one_stored_message(outdir, "go-smtp", want=lf(GO_UTF8_MSG))
    check(meta["mail_from"] == GO_UTF8_FROM and meta["rcpt_tos"] == [GO_UTF8_TO], f"envelope {meta}")
    check(meta["mail_opts"]["utf8"] is True, f"no SMTPUTF8 parameter on MAIL: {meta}")
    stop(proc)
    port, outdir, proc = start_gosmtp(f"{name}-gosmtp-no-utf8", "--max-messages", "1")
    r = our_send(binary, port, [GO_UTF8_TO], GO_UTF8_MSG, sender=GO_UTF8_FROM)
    out = send_out(r)
    check(r.returncode != 0, f"send exit 0 without SMTPUTF8 offered: {short(out)}")
    check(re.search(rf"^recipient <{re.escape(GO_UTF8_TO)}>: NOT SENT \(.*SMTPUTF8.*\)$", out, re.M),
          f"no NOT SENT line naming SMTPUTF8: {short(out)}")
    check(stored_peer_messages(outdir, 1, seconds=0.3) == [], "go-smtp stored a message")
    stop(proc)


def t_gosmtp_smtputf8(binary, name):
    srv = OurServer(f"{name}-gosmtp-client-utf8", binary)
    f = write("gosmtp-utf8.eml", GO_UTF8_MSG)
    r = gosmtp_send(srv.port, [f], "--smtputf8", rcpts=(GO_UTF8_TO,), sender=GO_UTF8_FROM)
    check(r.returncode == 0, f"go-smtp client exit {r.returncode}: {short(r.stdout + r.stderr)}")
    check_stored(srv, GO_UTF8_MSG, sender=GO_UTF8_FROM, rcpt=GO_UTF8_TO)
    srv.stop()


def t_gosmtp_plain(binary, name):
    srv = OurServer(f"{name}-gosmtp-client", binary)
    r = gosmtp_send(srv.port, [MSG_FILE])
    check(r.returncode == 0, f"go-smtp client exit {r.returncode}: {short(r.stdout + r.stderr)}")
    check_stored(srv, MSG)
    srv.stop()


def t_gosmtp_tls_auth(binary, name):
    c, k = cert()
    srv = OurServer(f"{name}-gosmtp-client-tls", binary, "--tls-cert", c, "--tls-key", k, "--auth",
                    f"{USER}:{PASSWORD}")
    r = gosmtp_send(srv.port, [MSG_FILE], "--starttls", "--cafile", c, "--auth", f"{USER}:{PASSWORD}")
    check(r.returncode == 0, f"go-smtp client exit {r.returncode}: {short(r.stdout + r.stderr)}")
    received = check_stored(srv, MSG)
    check("ESMTPSA" in received, f"Received does not say ESMTPSA: {received}")
    srv.stop()


def t_gosmtp_several(binary, name):
    """Three messages, then one with leading dots and an empty one, all
    over one connection: stored as sent (the empty one as the empty line
    go-smtp's DotWriter sends for it)."""
    srv = OurServer(f"{name}-gosmtp-client-several", binary)
    files = SEVERAL_FILES + [write("gosmtp-dots.eml", DOTS), write("gosmtp-empty.eml", b"")]
    r = gosmtp_send(srv.port, files)
    check(r.returncode == 0, f"go-smtp client exit {r.returncode}: {short(r.stdout + r.stderr)}")
    want = SEVERAL + [DOTS, CRLF]
    n = srv.wait_count(len(want))
    check(n == len(want), f"{n} messages stored, want {len(want)}")
    time.sleep(0.1)
    msgs = srv.messages()
    for rp, _, _ in msgs:
        check(rp == FROM, f"Return-Path <{rp}>")
    same_set(want, [m[2] for m in msgs], "stored messages")
    check_one_connection(srv, len(want))
    srv.stop()


def t_gosmtp_lmtp(binary, name):
    rcpts = [TO, "second@server.test"]
    srv = OurServer(f"{name}-gosmtp-client-lmtp", binary, "--lmtp")
    r = gosmtp_send(srv.port, [MSG_FILE], "--lmtp", rcpts=rcpts)
    check(r.returncode == 0, f"go-smtp client exit {r.returncode}: {short(r.stdout + r.stderr)}")
    rp, received, got = srv.only_message()
    check(rp == FROM, f"Return-Path <{rp}>")
    check(" with LMTP" in received, f"Received line does not say LMTP: {received}")
    same(MSG, got)
    srv.stop()


# ------------------------------------------------------------- registration

def register():
    each_server("smtplib -> serve (plain)", t_smtplib_plain)
    each_server("smtplib -> serve (STARTTLS, certificate verified)", t_smtplib_starttls)
    each_server("smtplib -> serve (STARTTLS + AUTH PLAIN)", t_smtplib_auth("PLAIN"))
    each_server("smtplib -> serve (STARTTLS + AUTH LOGIN)", t_smtplib_auth("LOGIN"))
    each_server("smtplib SMTP_SSL -> serve --implicit-tls (AUTH PLAIN, no STARTTLS)",
                t_smtplib_implicit_tls)
    each_server("curl smtps:// -> serve --implicit-tls (certificate checked, AUTH)",
                t_curl_implicit_tls)
    each_server("plaintext client -> serve --implicit-tls (no plaintext answer)",
                t_implicit_tls_plaintext_client)
    each_server("connection over --max-connections on implicit TLS (closed, no plaintext 421)",
                t_implicit_tls_over_limit)
    each_server("raw client talking before the greeting -> serve --greeting-delay (554, 503s); smtplib waits",
                t_greeting_delay)
    each_server("smtplib -> serve --max-messages 2 (LIMITS MAILMAX: third MAIL gets 421, closed)",
                t_max_messages)
    each_server("smtplib -> serve (wrong password 535, then AUTH LOGIN)", t_smtplib_auth_wrong_password)
    each_server("smtplib -> serve (three wrong passwords: 421, closed; a new connection logs in)",
                t_smtplib_auth_guessing)
    each_server("smtplib -> serve (SMTPUTF8 addresses)", t_smtplib_smtputf8)
    each_server("smtplib -> serve (DSN parameters)", t_smtplib_dsn)
    each_server("raw BDAT BODY=BINARYMIME -> serve (NUL, bare CR/LF stored as sent)", t_binarymime)
    each_server("swaks --pipeline -> serve (one write for MAIL/RCPT/DATA)", t_swaks_pipeline)
    each_server("swaks -> serve (STARTTLS + AUTH LOGIN, pipelined)", t_swaks_tls_auth)
    each_server("msmtp -> serve (plain)", t_msmtp)
    each_server("msmtp -> serve (STARTTLS + AUTH PLAIN)", t_msmtp_tls_auth)
    each_server("curl -> serve (CRLF file)", t_curl_plain)
    each_server("curl --crlf -> serve (LF file)", t_curl_crlf)
    each_server("curl -> serve (bare LF refused, nothing stored)", t_curl_bare_lf)
    each_server("nodemailer -> serve (plain, pipelined)", t_nodemailer)
    each_server("nodemailer -> serve (STARTTLS + AUTH)", t_nodemailer_tls_auth)
    each_server("go-smtp client -> serve (plain)", t_gosmtp_plain)
    each_server("go-smtp client -> serve (STARTTLS + AUTH PLAIN, certificate verified)", t_gosmtp_tls_auth)
    each_server("go-smtp client -> serve (5 messages on one connection: leading dots, empty)",
                t_gosmtp_several)
    each_server("go-smtp LMTP client -> serve --lmtp (2 recipients, a reply each)", t_gosmtp_lmtp)
    each_server("go-smtp client -> serve (SMTPUTF8 addresses)", t_gosmtp_smtputf8)
    each_server("exim client -> serve (BDAT)", t_exim_bdat(MSG, "small", 1))
    each_server("exim client -> serve (BDAT, 320 KB in several chunks)", t_exim_bdat(BIG, "big", 2))
    each_server("exim client -> serve (STARTTLS + AUTH + BDAT)", t_exim_tls_auth)
    each_server("smtp-source -> serve (200 messages, 10 sessions, new connection each)",
                t_smtp_source(["-s", "10", "-m", "200"], 200, "conn"))
    each_server("smtp-source -> serve (200 messages, reused connections)",
                t_smtp_source(["-s", "5", "-m", "200", "-d"], 200, "reuse"))
    for label, seq in SMUGGLE:
        each_server(f"smuggling {label} in DATA -> serve (refused, smuggled commands not run)",
                    t_smuggling(seq))
    each_server("smuggling CRLF.CRLF inside BDAT -> serve (data, not an end)", t_smuggling_bdat)
    each_server("STARTTLS with plaintext pipelined behind it -> serve (closed, not answered)",
                t_starttls_injection)
    each_server("over-long line with a command at its end -> serve (500, tail not run)", t_long_line)
    each_server("64 MiB line without CRLF -> serve (500, bounded memory, recovers)", t_huge_line)
    each_server("VRFY / EXPN -> serve (252 / 502, the session goes on)", t_vrfy_expn)
    each_server("32 MiB message over DATA -> serve (stored whole, bounded memory; cut: nothing left)",
                t_big_message)
    each_server("client disconnects mid-DATA / mid-BDAT -> serve (nothing stored)",
                t_disconnect_mid_data)
    each_server("1000 concurrent connections -> serve (1000 messages stored)", t_concurrent(1000))
    each_server("client trickling a DATA body -> serve --session-timeout 2 --max-connections 1 "
                "(421 4.4.2, closed; the place is free again)", t_session_timeout)
    each_server("second connection -> serve --max-connections 0 (taken as 1: 421 4.3.2)",
                t_max_connections_zero)
    each_server("SIGTERM -> serve with an idle client (421 4.3.2 at once, closed, exit 0)",
                t_shutdown_idle)
    each_server("SIGTERM -> serve in the middle of a DATA body "
                "(not listening; 250, stored, then 421, exit 0)", t_shutdown_mid_data)
    each_server("smtplib over ::1 -> HAProxy send-proxy (v1) -> serve --proxy-protocol "
                "(Received: names ::1)", t_haproxy("send-proxy"))
    each_server("smtplib over ::1 -> HAProxy send-proxy-v2 -> serve --proxy-protocol "
                "(Received: names ::1)", t_haproxy("send-proxy-v2"))
    each_server("raw client without a PROXY header -> serve --proxy-protocol "
                "(no greeting, closed; with one: served)", t_proxy_protocol_required)

    case("bounce example -> Python email (RET=FULL: 3 parts, delivery-status blocks, message/rfc822)")(
        t_bounce_full)
    case("bounce example -> Python email (RET=HDRS: text/rfc822-headers)")(t_bounce_hdrs)
    case("bounce example -> Python email (boundary held by the original; long reply folded)")(
        t_bounce_boundary_and_folding)
    case("bounce example -> Python email (UTF-8 sender, recipient and ORCPT: "
         "message/global-delivery-status, message/global, RFC 6533)")(t_bounce_utf8)
    case("bounce example refuses <> and a subject with CRLF (exit 1, nothing written)")(t_bounce_refused)
    case("deliver --bounce -> aiosmtpd refusing one recipient (report -> bounce -> Python email)")(
        t_deliver_bounce())
    case("deliver --bounce -> go-smtp refusing one recipient (report -> bounce -> Python email)")(
        t_deliver_bounce("go-smtp"))
    case("exim bounce (:fail: router) -> read_bounce (dsn::parse_report: both recipients failed, "
         "returned Message-ID)")(t_read_bounce_exim)
    case("Python email.mime multipart/report (CRLF and LF, folded Diagnostic-Code) -> read_bounce")(
        t_read_bounce_python)
    case("bounce example -> read_bounce (the core's writer and reader agree)")(t_read_bounce_own)

    each_client("send -> smtp-sink (2 recipients)", t_send_sink)
    each_client("send -> smtp-sink (every RCPT refused: non-zero exit)", t_send_sink_all_rejected)
    each_client("send -> aiosmtpd (STARTTLS + AUTH)", t_send_aiosmtpd)
    each_client("send -> aiosmtpd (one recipient refused)", t_send_aiosmtpd_rejected_rcpt)
    each_client("send --starttls required -> aiosmtpd without TLS (refuses to send)",
                t_send_starttls_required_refused)
    each_client("send -> exim (CHUNKING, plain)", t_send_exim(MSG, "plain", False))
    each_client("send -> exim (CHUNKING + STARTTLS + AUTH, 320 KB)", t_send_exim(BIG, "tls", True))
    each_client("send --chunking off -> exim (DATA although CHUNKING is offered)", t_send_exim_data)
    each_client("send -> exim (RCPT refused before AUTH)", t_send_exim_rejected)
    each_client("send with a bare LF -> aiosmtpd (DATA) and serve (BDAT): CRLF on the wire",
                t_send_bare_lf)
    each_client("send -> node smtp-server (STARTTLS + AUTH, refused recipient)", t_send_node)
    each_client("send --implicit-tls -> node smtp-server (secure: true, AUTH; untrusted: nothing sent)",
                t_send_node_implicit_tls)
    each_client("send -> go-smtp (STARTTLS + AUTH PLAIN, 2 recipients; untrusted: nothing sent)",
                t_send_gosmtp_tls_auth)
    each_client("send -> go-smtp (plain, through tap: DATA bytes dot-stuffed on the wire, no BDAT)",
                t_send_gosmtp_wire)
    each_client("send -> go-smtp (leading-dot first line, lone-dot line; empty message)",
                t_send_gosmtp_dots_empty)
    each_client("send -> go-smtp (one recipient refused: 550 5.1.1 reported, the other delivered)",
                t_send_gosmtp_rejected_rcpt)
    each_client("send --lmtp -> go-smtp LMTP (2 recipients, a reply each)", t_send_gosmtp_lmtp)
    each_client("send with LF.LF + commands -> go-smtp, which ends DATA there (one message stored)",
                t_send_gosmtp_smuggling)
    each_client("send -> go-smtp (SMTPUTF8 addresses; without SMTPUTF8 offered: NOT SENT)",
                t_send_gosmtp_smtputf8)
    each_client("send --message x3 -> go-smtp (STARTTLS + AUTH once, one session)", t_several_gosmtp)
    each_client("send -> scripted server (exact DATA bytes: CRLF, dots doubled, first line too)",
                t_send_wire_stuffing)
    each_client("send -> scripted server injecting plaintext after STARTTLS's 220 (refused)",
                t_send_starttls_injection)
    each_client("send -> scripted server refusing every RCPT, 354 to DATA (lone dot, RFC 2920)",
                t_send_all_rcpts_failed_lone_dot)
    for cname, cbin in CLIENTS:
        for sname, sbin in SERVERS:
            if (cname, sname) == ("send", "serve") or (os.access(cbin, os.X_OK) and os.access(sbin, os.X_OK)):
                case(f"{cname} --lmtp -> {sname} --lmtp (a reply per recipient)")(t_send_lmtp(cbin, sbin))
                case(f"{cname} -> {sname} --max-recipients 2 (LIMITS RCPTMAX: 5 recipients in 3 transactions)")(
                    t_send_rcptmax(cbin, sbin))
                case(f"{cname} -> {sname} --max-messages 1 (LIMITS MAILMAX: the rest NOT SENT, QUIT, exit 1)")(
                    t_send_mailmax(cbin, sbin))
    each_client("send --message x3 -> aiosmtpd (one session: STARTTLS + AUTH once, one connection)",
                t_several_aiosmtpd)
    each_client("send --message x3 -> exim (one session, one connection in exim's log)", t_several_exim)
    each_client("send --message x3 -> aiosmtpd closing after the first (the rest NOT SENT, exit 1)",
                t_several_aiosmtpd_dropped)
    for cname, cbin in CLIENTS:
        for sname, sbin in SERVERS:
            if (cname, sname) == ("send", "serve") or (os.access(cbin, os.X_OK) and os.access(sbin, os.X_OK)):
                case(f"{cname} --message x3 -> {sname} (STARTTLS + AUTH, one connection, 3 stored)")(
                    t_several_to_serve(cbin, sbin))
    for cname, cbin in CLIENTS:
        for sname, sbin in SERVERS:
            if (cname, sname) == ("send", "serve") or (os.access(cbin, os.X_OK) and os.access(sbin, os.X_OK)):
                case(f"{cname} -> {sname} (STARTTLS + AUTH, 320 KB)")(t_send_to_serve(cbin, sbin))
                case(f"{cname} --implicit-tls -> {sname} --implicit-tls (AUTH, 320 KB)")(
                    t_send_to_serve_implicit_tls(cbin, sbin))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", default=[], help="run cases whose name contains this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    # Every example is required. A missing `serve` or `send` fails each of
    # its cases; a missing blocking one has its cases left out (the pairs
    # with it cannot run), and a full run counts that as a failure.
    global SERVERS, CLIENTS
    left_out = [(n, b) for n, b in SERVERS + CLIENTS
                if n not in ("serve", "send") and not os.access(b, os.X_OK)]
    SERVERS = [(n, b) for n, b in SERVERS if n == "serve" or os.access(b, os.X_OK)]
    CLIENTS = [(n, b) for n, b in CLIENTS if n == "send" or os.access(b, os.X_OK)]
    register()
    if not args.list and not args.only:
        for name, binary in left_out:
            report(f"build: {name}", f"example not built ({binary}); its cases were left out")
    if args.list:
        for name, _ in CASES:
            print(name)
        return 0

    def on_signal(signum, frame):
        stop_all()
        report("suite", f"interrupted by signal {signum}")
        print(f"work directory: {WORK}", file=sys.stderr)
        print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed", flush=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    try:
        for name, fn in CASES:
            if args.only and not any(o in name for o in args.only):
                continue
            t0 = time.monotonic()
            try:
                fn()
                report(name)
            except CaseFailure as e:
                report(name, str(e))
            except subprocess.TimeoutExpired as e:
                report(name, f"timed out: {e.cmd[0] if e.cmd else e}")
            except Exception as e:  # anything else is a failure of the case, not of the suite
                report(name, f"{type(e).__name__}: {e} at {traceback.extract_tb(e.__traceback__)[-1].lineno}")
            finally:
                # Each case stops its own peers; anything left over goes now.
                for proc in list(PROCS):
                    if proc.poll() is None:
                        stop(proc, grace=2.0)
                PROCS.clear()
            if os.environ.get("INTEROP_TIMES"):
                print(f"     ({time.monotonic() - t0:.1f}s)", flush=True)
    finally:
        stop_all()
    if RESULTS["failed"] == 0 and not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print(f"work directory: {WORK} ({time.monotonic() - started:.0f}s)", file=sys.stderr)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed", flush=True)
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
