#!/usr/bin/env python3
"""Faulty upstreams for bench/soak.
  reset PORT: reads a request, then alternately resets (RST) before any response byte or
              after half a response head.
  slow PORT:  reads a request and answers only after SLOW_SECONDS (beyond the route timeout).
"""
import socket, struct, sys, threading, time

SLOW_SECONDS = 2.0


def rst(conn):
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def handle(kind, conn, n):
    try:
        conn.settimeout(10)
        while True:
            if read_head(conn) is None:
                conn.close()
                return
            if kind == "reset":
                if n % 2:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
                rst(conn)
                return
            time.sleep(SLOW_SECONDS)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow\n")
    except OSError:
        conn.close()


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1024)
    n = 0
    while True:
        conn, _ = srv.accept()
        n += 1
        threading.Thread(target=handle, args=(kind, conn, n), daemon=True).start()


if __name__ == "__main__":
    main()
