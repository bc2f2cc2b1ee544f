"""A sign-in storm against a real node's release API, and the node's memory meanwhile:
for `bench/kdf.py` and the integration tests of the sign-in limits.

Each bad sign-in is its own TLS connection with a wrong password (GET /v1/jobs), sent
from a chosen loopback source address (Linux routes all of 127/8 to lo), so a test on
one machine can play many clients. All of them start at once (a barrier).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import secrets
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from appliance.site.tls import client_context

RSS_INTERVAL = 0.01


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused or reset)
    retry_after: str | None = None
    seconds: float = 0.0
    source: str | None = None  # the client address it was sent from


def sign_in(
    host: str,
    port: int,
    context: ssl.SSLContext,
    user: str,
    password: str,
    source: str | None = None,
    timeout: float = 60,
) -> Answer:
    """One GET /v1/jobs with these credentials on a fresh connection from `source`."""
    started = time.perf_counter()
    conn = http.client.HTTPSConnection(
        host, port, context=context, timeout=timeout, source_address=(source, 0) if source else None
    )
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        conn.request("GET", "/v1/jobs", headers={"Authorization": f"Basic {auth}"})
        response = conn.getresponse()
        response.read()
        return Answer(
            response.status,
            response.getheader("Retry-After"),
            time.perf_counter() - started,
            source,
        )
    except (OSError, http.client.HTTPException):
        return Answer(0, None, time.perf_counter() - started, source)
    finally:
        conn.close()


@dataclass
class Storm:
    """`per_source` concurrent bad sign-ins from each of `sources`, to `users` in turn
    (unknown names cost the node a decoy KDF run like a wrong password)."""

    host: str
    port: int
    ca: Path
    sources: list[str]
    per_source: int
    users: list[str] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)

    def run(self) -> Counter[int]:
        """Send them all at once; the count of each status."""
        context = client_context(self.ca)
        total = len(self.sources) * self.per_source
        barrier = threading.Barrier(total)
        lock = threading.Lock()

        def one(index: int) -> None:
            source = self.sources[index % len(self.sources)]
            user = self.users[index % len(self.users)] if self.users else f"nobody{index}"
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)
            answer = sign_in(self.host, self.port, context, user, secrets.token_urlsafe(12), source)
            with lock:
                self.answers.append(answer)

        threads = [
            threading.Thread(target=one, args=(i,), daemon=True, name=f"storm-{i}")
            for i in range(total)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return Counter(a.status for a in self.answers)


def loopback_sources(count: int, first: int = 2) -> list[str]:
    """`count` distinct loopback addresses other than 127.0.0.1 (the node's own web UI)."""
    return [f"127.0.{(first + i) // 250}.{(first + i) % 250 + 2}" for i in range(count)]


def rss(pid: int) -> int:
    """The resident set size of a process, in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class RssPeak(threading.Thread):
    """Samples a process's RSS every RSS_INTERVAL seconds while running; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-peak", daemon=True)
        self.pid = pid
        self.idle = rss(pid)
        self.peak = self.idle
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, rss(self.pid))
            self._halt.wait(RSS_INTERVAL)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    @property
    def growth(self) -> int:
        return self.peak - self.idle


@contextlib.contextmanager
def watching(pid: int) -> Iterator[RssPeak]:
    """The process's RSS peak over the block, against its RSS when the block began."""
    sampler = RssPeak(pid)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()
