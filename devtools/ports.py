"""Free tcp ports for tests and benchmarks that run the bus over tcp (it uses a port and the two after it)."""

from __future__ import annotations

import random
import socket


def free_port_block(host: str = "127.0.0.1", count: int = 3, attempts: int = 200) -> int:
    """A port p such that p .. p+count-1 can be bound on `host` now (another process may still take one later)."""
    for _ in range(attempts):
        base = random.randrange(20_000, 60_000)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no block of {count} free ports on {host}")
