"""Bounded abuse of the HTTPS servers, against a real node: 1,100 idle connections from
other addresses neither occupy its workers nor starve a normal client (each of whose
calls is timed), nor run it out of file descriptors; one address gets at most its cap;
a head that trickles in is cut off at the head deadline.

The attackers use 127.0.0.2 and up as source addresses (all of 127/8 is loopback)."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from appliance.https.connections import DEFAULT_LIMITS
from appliance.site.tls import client_context
from tests.integration.conftest import Site, make_site

pytestmark = pytest.mark.integration

STORM = 1100
PER_ADDRESS = 20  # below the per-address cap, so only the port's cap stops the storm
SERVED_WITHIN = 2.0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One node, started with the 1,024 open files the issue measured with (it raises its
    own soft limit as far as its caps need); this process may hold the whole storm."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, soft), hard))
    try:
        sites = make_site(tmp_path_factory.mktemp("storm"), 1)
        site = next(sites)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wanted = STORM + 2 * DEFAULT_LIMITS.max_connections
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    yield site
    with contextlib.suppress(StopIteration):
        next(sites)


def attacker(number: int) -> str:
    """A loopback source address other than 127.0.0.1."""
    return f"127.0.{2 + number // 250}.{2 + number % 250}"


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def tls_context(site: Site) -> ssl.SSLContext:
    return client_context(site.mesh.nodes[0].data / "tls" / "ca.pem")


def open_fds(site: Site) -> int:
    process = site.mesh.nodes[0].process
    assert process is not None
    return len(os.listdir(f"/proc/{process.pid}/fd"))


def still_open(sock: socket.socket) -> bool:
    """True while the server has not closed the connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def timed_calls(site: Site, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.monotonic()
        assert site.mesh.client(0).health()
        site.jobs(0)  # GET /v1/jobs, signed in: the call that hung 46 s, then failed
        times.append(time.monotonic() - started)
    return times


def test_idle_connection_storm_does_not_starve_a_normal_client(site: Site) -> None:
    port = site.mesh.nodes[0].release_port
    context = tls_context(site)
    baseline = timed_calls(site, 2)
    held: list[socket.socket] = []
    served: list[float] = []
    storming = threading.Event()

    def normal_client() -> None:
        storming.wait()
        while storming.is_set():
            served.extend(timed_calls(site, 1))

    alongside = threading.Thread(target=normal_client)
    alongside.start()
    storming.set()
    try:
        for number in range(STORM):
            sock = connect_from(attacker(number // PER_ADDRESS), port)
            if number % 4 == 0:  # some finish TLS and then say nothing, most not even that
                with contextlib.suppress(OSError):
                    tls = context.wrap_socket(sock, server_hostname=site.mesh.nodes[0].id)
                    tls.sendall(b"GET /v1/health HTTP/1.1\r\n")  # ...and a head never ends
                    sock = tls
            held.append(sock)
        during = timed_calls(site, 5)
        fds = open_fds(site)
    finally:
        storming.clear()
        alongside.join(60)
    try:
        times = served + during
        print(f"normal client: {len(times)} calls, slowest {max(times):.2f} s; node fds {fds}")
        assert len(times) >= 5
        assert max(times) < SERVED_WITHIN, (baseline, times)
        # the node kept within its caps: never near running out of file descriptors
        assert fds < 3 * DEFAULT_LIMITS.file_descriptors(), fds
        open_now = sum(still_open(s) for s in held)
        assert open_now <= DEFAULT_LIMITS.max_connections, open_now
    finally:
        for sock in held:
            sock.close()
    log = site.mesh.nodes[0].log.read_text()
    assert "Traceback" not in log
    assert "unable to open database" not in log
    assert "at the connection cap" in log


def test_one_address_gets_at_most_its_cap(site: Site) -> None:
    port = site.mesh.nodes[0].submit_port
    cap = DEFAULT_LIMITS.per_address
    socks = [connect_from("127.0.9.9", port) for _ in range(cap + 16)]
    try:
        time.sleep(1)
        assert sum(still_open(s) for s in socks) == cap
        assert site.mesh.client(0, "submit").health()  # another address still served
    finally:
        for sock in socks:
            sock.close()


def test_a_trickling_head_is_cut_off_at_the_deadline(site: Site) -> None:
    port = site.mesh.nodes[0].submit_port
    sock = tls_context(site).wrap_socket(
        connect_from("127.0.9.10", port), server_hostname=site.mesh.nodes[0].id
    )
    started = time.monotonic()
    closed_after = None
    with sock:
        for byte in b"GET /v1/health HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            if not still_open(sock):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.5)
    assert closed_after is not None
    timeout = DEFAULT_LIMITS.head_timeout
    assert timeout - 1 < closed_after < timeout + 3, closed_after
