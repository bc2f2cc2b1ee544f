"""appliance.https.connections and the server on it, in-process with small limits: idle
connections take no worker, the caps per address and per port hold (the longest-idle
connection of the busiest address makes room), deadlines close what sends nothing, and
the open-file limit is checked at start."""

from __future__ import annotations

import http.client
import json
import resource
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.https import connections
from appliance.https.connections import Limits, fit_to_fd_limit
from appliance.https.server import Request, Response, Server, json_response
from appliance.site.ca import cert_pem, key_pem, self_signed

SMALL = Limits(
    max_connections=8,
    per_address=4,
    workers=3,
    per_address_workers=1,
    head_timeout=1.0,
    idle_timeout=0.5,
    io_timeout=2,
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = self_signed("localhost", ["localhost", "127.0.0.1"], 1)
    (folder / "cert.pem").write_bytes(cert_pem(cert))
    (folder / "key.pem").write_bytes(key_pem(key))
    return folder / "cert.pem", folder / "key.pem"


def app(request: Request) -> Response:
    if request.path == "/field":
        return json_response({"upper": request.json()["name"].upper()})
    if request.path == "/bug":
        raise TypeError("a bug of ours, not the client's")
    if request.path == "/slow":
        time.sleep(float(request.query.get("s", "1")))
    if request.path == "/echo":
        return json_response({"got": len(request.body.read_all(1 << 20))})
    if request.path == "/reads":
        sizes = []
        while piece := request.body.read(64 * 1024):
            sizes.append(len(piece))
        return json_response({"reads": sizes})
    return json_response({"ok": True, "path": request.path})


@pytest.fixture
def server(tls: tuple[Path, Path]) -> Iterator[Server]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls)
    srv = Server("test", ("127.0.0.1", 0), app, context, SMALL)
    thread = srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def client_ctx(tls: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls[0]))


def get(
    server: Server, tls: tuple[Path, Path], path: str = "/", source: str = "127.0.0.1"
) -> tuple[int, object]:
    conn = http.client.HTTPSConnection(
        "localhost",
        server.server_address[1],
        context=client_ctx(tls),
        timeout=5,
        source_address=(source, 0),
    )
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, json.loads(body)


def idle(server: Server, source: str) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.server_address[1]))
    return sock


def closed(sock: socket.socket, within: float = 2.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def settle(server: Server, count: int) -> None:
    deadline = time.monotonic() + 3
    while server.connections.connections != count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_serves_and_idle_connections_take_no_worker(server: Server, tls: tuple[Path, Path]) -> None:
    held = [idle(server, f"127.0.1.{i}") for i in range(6)]  # more than the 2 workers
    try:
        assert get(server, tls) == (200, {"ok": True, "path": "/"})
        started = time.monotonic()
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(get(server, tls, "/slow?s=0.5")[0]))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200, 200]
        assert time.monotonic() - started < 1.4  # both workers ran at once
    finally:
        for sock in held:
            sock.close()


def test_one_address_gets_its_share_of_the_workers(server: Server, tls: tuple[Path, Path]) -> None:
    done: dict[str, float] = {}
    started = time.monotonic()

    def slow(name: str, source: str) -> None:
        assert get(server, tls, "/slow?s=0.6", source)[0] == 200
        done[name] = time.monotonic() - started

    threads = [
        threading.Thread(target=slow, args=(name, source))
        for name, source in (("a1", "127.0.6.1"), ("a2", "127.0.6.1"), ("b", "127.0.6.2"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert done["b"] < 1.0  # another address was not held up
    assert max(done["a1"], done["a2"]) > 1.1  # the second from 127.0.6.1 waited its turn


def test_per_address_cap(server: Server) -> None:
    socks = [idle(server, "127.0.2.1") for _ in range(SMALL.per_address + 2)]
    try:
        settle(server, SMALL.per_address)
        assert closed(socks[-1], 0.5) and closed(socks[-2], 0.5)
        assert not any(closed(s, 0.01) for s in socks[: SMALL.per_address])
    finally:
        for sock in socks:
            sock.close()


def test_port_cap_closes_the_busiest_addresss_oldest_idle(
    server: Server, tls: tuple[Path, Path]
) -> None:
    busy = [idle(server, "127.0.3.1") for _ in range(4)]
    time.sleep(0.05)
    others = [idle(server, f"127.0.3.{i}") for i in range(2, 6)]
    try:
        settle(server, 8)
        assert server.connections.connections == 8
        assert get(server, tls, "/", "127.0.3.9")[0] == 200  # made room: one of `busy` went
        assert closed(busy[0], 0.5)
        assert not any(closed(s, 0.05) for s in others)
    finally:
        for sock in busy + others:
            sock.close()


def test_silent_and_trickling_connections_hit_the_head_deadline(server: Server) -> None:
    silent = idle(server, "127.0.4.1")
    trickle = ssl.create_default_context()
    trickle.check_hostname, trickle.verify_mode = False, ssl.CERT_NONE
    slow = trickle.wrap_socket(idle(server, "127.0.4.2"))
    started = time.monotonic()
    slow.sendall(b"GET / HTTP/1.1\r\n")
    assert closed(silent, 3)
    slow.settimeout(3)
    assert slow.recv(1) == b""
    assert SMALL.head_timeout - 0.3 < time.monotonic() - started < SMALL.head_timeout + 1.5


def test_kept_alive_connection_is_closed_when_idle(server: Server, tls: tuple[Path, Path]) -> None:
    conn = http.client.HTTPSConnection(
        "localhost", server.server_address[1], context=client_ctx(tls), timeout=5
    )
    conn.request("GET", "/")
    conn.getresponse().read()
    conn.request("GET", "/again")  # the same connection, kept alive
    assert json.loads(conn.getresponse().read())["path"] == "/again"
    assert conn.sock is not None
    started = time.monotonic()
    assert conn.sock.recv(1) == b""
    assert time.monotonic() - started < SMALL.idle_timeout + 0.8
    conn.close()


def test_a_body_that_stops_arriving_times_out(server: Server, tls: tuple[Path, Path]) -> None:
    sock = client_ctx(tls).wrap_socket(idle(server, "127.0.5.1"), server_hostname="localhost")
    sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nhalf")
    sock.settimeout(SMALL.io_timeout + 2)
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"type": "RequestTimeout"' in answer
    sock.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_in_small_tls_records_is_read_in_whole_pieces(
    server: Server, tls: tuple[Path, Path], chunked: bool
) -> None:
    """A read asks for what the request says is coming and gets all of it, not one TLS
    record (a client sending 1000 bytes at a time, some after a pause)."""
    sock = client_ctx(tls).wrap_socket(idle(server, "127.0.6.1"), server_hostname="localhost")
    total = 200_000
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(f"POST /reads HTTP/1.1\r\n{framing}\r\n\r\n".encode())
    if chunked:
        sock.sendall(b"%x\r\n" % total)
    for i in range(total // 1000):
        sock.sendall(b"x" * 1000)
        if i in (10, 100):
            time.sleep(0.05)  # the read waits for the rest, never returns it short
    if chunked:
        sock.sendall(b"\r\n0\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        answer += sock.recv(4096)
    sock.close()
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "reads": [65536, 65536, 65536, total - 3 * 65536]
    }


def test_server_errors_are_json(server: Server, tls: tuple[Path, Path]) -> None:
    assert get(server, tls, "/x")[0] == 200
    sock = client_ctx(tls).wrap_socket(idle(server, "127.0.5.2"), server_hostname="localhost")
    sock.sendall(b"GET /\x01 HTTP/1.1\r\n\r\n")
    sock.settimeout(3)
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.split(b"\r\n\r\n", 1)[1].startswith(b"{")
    sock.close()


def post(server: Server, tls: tuple[Path, Path], path: str, body: bytes) -> tuple[int, object]:
    conn = http.client.HTTPSConnection(
        "localhost", server.server_address[1], context=client_ctx(tls), timeout=5
    )
    conn.request("POST", path, body=body)
    response = conn.getresponse()
    answer = json.loads(response.read())
    conn.close()
    return response.status, answer


def test_a_field_of_the_wrong_type_is_a_bad_request(
    server: Server, tls: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    assert post(server, tls, "/field", b'{"name": "x"}') == (200, {"upper": "X"})
    for body in (b'{"name": 1}', b'{"name": []}', b"{}", b'{"name": null}'):
        status, answer = post(server, tls, "/field", body)
        assert status == 400
        assert answer == {
            "error": "malformed request: a field is missing or of the wrong type",
            "type": "BadRequest",
        }
    assert "malformed field" in caplog.text and "Traceback" not in caplog.text


def test_an_error_before_any_json_is_still_internal(server: Server, tls: tuple[Path, Path]) -> None:
    status, answer = post(server, tls, "/bug", b"{}")
    assert (status, answer) == (500, {"error": "internal error", "type": "InternalError"})


# The open-file limit


@pytest.fixture
def rlimit(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, int]]:
    state = {"limit": (1024, 1024)}

    def getrlimit(which: int) -> tuple[int, int]:
        return state["limit"]

    def setrlimit(which: int, value: tuple[int, int]) -> None:
        if value[0] > state["limit"][1]:
            raise ValueError("not allowed to raise the limit")
        state["limit"] = value

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    return state


def test_fd_limit_is_raised_to_what_the_caps_need(rlimit: dict[str, tuple[int, int]]) -> None:
    rlimit["limit"] = (1024, 65536)
    limits = fit_to_fd_limit(3)
    assert limits == connections.DEFAULT_LIMITS
    needed = 3 * limits.file_descriptors() + connections.FD_RESERVE
    assert rlimit["limit"] == (needed, 65536)


def test_caps_shrink_to_a_low_hard_limit(
    rlimit: dict[str, tuple[int, int]], caplog: pytest.LogCaptureFixture
) -> None:
    rlimit["limit"] = (1024, 1024)
    limits = fit_to_fd_limit(3)
    assert 3 * limits.file_descriptors() + connections.FD_RESERVE <= 1024
    assert limits.per_address <= limits.max_connections // 4
    assert "raise LimitNOFILE" in caplog.text


def test_the_units_limit_holds_the_default_caps() -> None:
    unit = Path(__file__).parents[2] / "systemd" / "meshprint-node.service"
    line = next(x for x in unit.read_text().splitlines() if x.startswith("LimitNOFILE="))
    needed = 3 * connections.DEFAULT_LIMITS.file_descriptors() + connections.FD_RESERVE
    assert int(line.split("=")[1]) >= needed


@pytest.fixture
def both(tls: tuple[Path, Path]) -> Iterator[Server]:
    """A port that takes plain HTTP and TLS (as the IPP printer's)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls)
    srv = Server("both", ("127.0.0.1", 0), secure_app, context, SMALL, plain=True)
    thread = srv.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def secure_app(request: Request) -> Response:
    return json_response({"secure": request.secure, "path": request.path})


UPGRADE = (
    b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n"
)


def _head(read: object) -> bytes:
    got = b""
    while b"\r\n\r\n" not in got:
        piece = read(1)  # type: ignore[operator]
        if not piece:
            break
        got += piece
    return got


def test_a_plain_connection_upgrades_to_tls_rfc_2817(both: Server, tls: tuple[Path, Path]) -> None:
    with idle(both, "127.0.0.1") as sock:
        sock.sendall(UPGRADE)
        assert _head(sock.recv).startswith(b"HTTP/1.1 101 Switching Protocols")
        with client_ctx(tls).wrap_socket(sock, server_hostname="localhost") as secure:
            assert _head(secure.recv).startswith(b"HTTP/1.1 200 OK")  # the OPTIONS' answer
            secure.sendall(b"GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = _head(secure.recv)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = b""
            while len(body) < length:
                body += secure.recv(length - len(body))
            assert json.loads(body) == {"secure": True, "path": "/after"}


def test_after_the_101_plain_http_is_closed_never_served(both: Server) -> None:
    with idle(both, "127.0.0.1") as sock:
        sock.sendall(UPGRADE)
        assert _head(sock.recv).startswith(b"HTTP/1.1 101")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert closed(sock)


def test_no_upgrade_with_something_pipelined_or_over_tls(
    both: Server, server: Server, tls: tuple[Path, Path]
) -> None:
    with idle(both, "127.0.0.1") as sock:  # a request sent in the clear after the ask
        sock.sendall(UPGRADE + b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert _head(sock.recv).startswith(b"HTTP/1.1 400")
        sock.settimeout(2)
        while sock.recv(4096):  # the rest of the answer, then the end
            pass
    with idle(both, "127.0.0.1") as sock:  # no Upgrade: an OPTIONS * like any request
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert _head(sock.recv).startswith(b"HTTP/1.1 200")
    # Already TLS: nothing to upgrade, the request goes to the app.
    conn = http.client.HTTPSConnection(
        "localhost", server.server_address[1], context=client_ctx(tls), timeout=5
    )
    conn.request("OPTIONS", "*", headers={"Upgrade": "TLS/1.2", "Connection": "Upgrade"})
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["path"] == "*"
    conn.close()
