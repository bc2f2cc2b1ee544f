"""appliance.https.client.ConnectionPool: which kept-alive connections serve again."""

from __future__ import annotations

import socket
import time
from typing import Any, cast

import pytest

from appliance.https.client import ConnectionPool


class Conn:
    """A connection's stand-in: a socket whose other end plays the server."""

    def __init__(self) -> None:
        self.sock: socket.socket | None
        self.sock, self.server = socket.socketpair()
        self.closed = False

    def close(self) -> None:
        self.closed = True
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.server.close()


def pooled(*conns: Conn, **kwargs: Any) -> ConnectionPool:
    pool = ConnectionPool(**kwargs)
    for conn in conns:
        pool.give(cast(Any, conn))
    return pool


def test_an_idle_connection_serves_the_next_call() -> None:
    first, second = Conn(), Conn()
    pool = pooled(first, second)
    assert pool.take() is second and pool.take() is first  # the freshest first
    assert pool.take() is None


def test_one_the_server_closed_or_spoke_on_is_dropped() -> None:
    closed, spoke, fine = Conn(), Conn(), Conn()
    pool = pooled(fine, spoke, closed)
    closed.server.close()  # the server's idle timeout, or a restart
    spoke.server.sendall(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    assert pool.take() is fine
    assert closed.closed and spoke.closed and not fine.closed


def test_one_idle_too_long_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    old = Conn()
    pool = pooled(old, idle_for=60.0)
    later = time.monotonic() + 61
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert pool.take() is None and old.closed


def test_the_pool_keeps_at_most_its_size_and_closes_the_rest() -> None:
    conns = [Conn() for _ in range(3)]
    pool = pooled(*conns, size=2)
    assert conns[2].closed and not conns[0].closed
    pool.close()
    assert all(c.closed for c in conns) and pool.take() is None
