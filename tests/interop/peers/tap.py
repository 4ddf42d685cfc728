#!/usr/bin/env python3
"""Byte-exact wire recorder: a TCP relay between an SMTP client and server.

Listens on 127.0.0.1:LISTEN, relays each connection to 127.0.0.1:TARGET and
writes every byte seen, per connection and direction, to OUTDIR:
  conn-N.c2s   bytes the client sent
  conn-N.s2c   bytes the server sent
  conn-N.log   both directions interleaved, one "C: " / "S: " record per read
                (repr() of the chunk), to see pipelining (several commands in
                one read) at a glance.
Plain TCP only (after STARTTLS the recorded bytes are TLS records).

Bounded: exits after --max-conns connections or --seconds seconds.
"""
import argparse
import os
import socket
import threading
import time


def relay(src, dst, raw, log, tag, lock):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            raw.write(data)
            raw.flush()
            with lock:
                log.write(f"{tag}: {data!r}\n")
                log.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--max-conns", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    deadline = time.monotonic() + args.seconds
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.listen))
    lsock.listen(8)
    threads = []
    for n in range(args.max_conns):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        lsock.settimeout(remaining)
        try:
            client, _ = lsock.accept()
        except socket.timeout:
            break
        server = socket.create_connection(("127.0.0.1", args.target), timeout=10)
        server.settimeout(None)
        base = os.path.join(args.outdir, f"conn-{n}")
        c2s = open(base + ".c2s", "wb")
        s2c = open(base + ".s2c", "wb")
        log = open(base + ".log", "w")
        lock = threading.Lock()
        for src, dst, raw, tag in ((client, server, c2s, "C"), (server, client, s2c, "S")):
            t = threading.Thread(target=relay, args=(src, dst, raw, log, tag, lock), daemon=True)
            t.start()
            threads.append(t)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    lsock.close()


if __name__ == "__main__":
    main()
