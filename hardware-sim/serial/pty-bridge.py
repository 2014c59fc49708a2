#!/usr/bin/env python3
"""Bridges a new pseudo-terminal to a virtual board's TCP console.

Usage: pty-bridge.py HOST PORT
Prints "PTY /dev/pts/N" once ready, then copies bytes both ways until the
TCP side closes or the process is terminated. Standard library only.
Data written by a client that opens and closes the slave repeatedly keeps
flowing: the bridge holds its own slave fd open so the master never sees EOF.
"""
import os
import pty
import select
import signal
import socket
import sys
import tty


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    master, slave = pty.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    sock = socket.create_connection((host, port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("PTY " + name, flush=True)
    while True:
        r, _, _ = select.select([master, sock], [], [])
        if master in r:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if data:
                sock.sendall(data)
        if sock in r:
            data = sock.recv(4096)
            if not data:
                return 0
            os.write(master, data)


if __name__ == "__main__":
    sys.exit(main())
