#!/usr/bin/env python3
"""Hostile clients for bench/soak: malformed requests, smuggling attempts, oversized heads,
and clients that disconnect mid-request or mid-response. Runs THREADS loops until DURATION
seconds have passed, then prints one line per attack kind: attempts and what came back.
Usage: hostile.py HOST PORT DURATION [THREADS]"""
import collections, random, socket, struct, sys, threading, time

HOST, PORT, DURATION = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
THREADS = int(sys.argv[4]) if len(sys.argv) > 4 else 4

ATTACKS = {
    "garbage": lambda r: bytes(r.getrandbits(8) for _ in range(r.randint(1, 200))) + b"\r\n\r\n",
    "bad-method-line": lambda r: b"GET /ok/x HTTP/9.9\r\nHost: a\r\n\r\n",
    "cl-te": lambda r: b"POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-obfuscated": lambda r: b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "bad-chunk-size": lambda r: b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    "huge-header": lambda r: b"GET /ok/x HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
    "huge-uri": lambda r: b"GET /ok/" + b"a" * 12000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    "nul-in-header": lambda r: b"GET /ok/x HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "two-hosts": lambda r: b"GET /ok/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "half-head": None,
    "half-body": None,
    "slowloris": None,
    "abort-mid-response": None,
    "pipeline-no-read": None,
}


def connect():
    s = socket.create_connection((HOST, PORT), timeout=3)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def status_of(s):
    try:
        data = s.recv(64)
    except socket.timeout:
        return "timeout"
    except OSError:
        return "reset"
    if not data:
        return "closed"
    parts = data.split(b" ", 2)
    return parts[1].decode("latin1") if len(parts) > 1 and data.startswith(b"HTTP/") else "junk"


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def attack(kind, r):
    s = connect()
    try:
        if kind == "half-head":
            s.sendall(b"GET /ok/x HTTP/1.1\r\nHost: a\r\nX-Par")
            time.sleep(r.random() * 0.05)
            rst_close(s) if r.random() < 0.5 else s.close()
            return "disconnected"
        if kind == "half-body":
            s.sendall(b"POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            time.sleep(r.random() * 0.05)
            rst_close(s)
            return "disconnected"
        if kind == "slowloris":
            for b in b"GET /ok/x HTTP/1.1\r\nHost: a\r\n":
                s.send(bytes([b]))
                time.sleep(0.02)
            s.close()
            return "disconnected"
        if kind == "abort-mid-response":
            s.sendall(b"GET /ok/big HTTP/1.1\r\nHost: a\r\n\r\n")
            st = status_of(s)
            rst_close(s)
            return st
        if kind == "pipeline-no-read":
            s.sendall(b"GET /ok/index.html HTTP/1.1\r\nHost: a\r\n\r\n" * 50)
            rst_close(s)
            return "disconnected"
        s.sendall(ATTACKS[kind](r))
        return status_of(s)
    finally:
        try:
            s.close()
        except OSError:
            pass


counts = collections.Counter()
lock = threading.Lock()


def loop(seed):
    r = random.Random(seed)
    kinds = list(ATTACKS)
    deadline = time.time() + DURATION
    while time.time() < deadline:
        kind = r.choice(kinds)
        try:
            outcome = attack(kind, r)
        except OSError as e:
            outcome = "client-error:" + type(e).__name__
        with lock:
            counts[(kind, outcome)] += 1


threads = [threading.Thread(target=loop, args=(i,)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for (kind, outcome), n in sorted(counts.items()):
    print(f"HOSTILE {kind} {outcome} {n}")
