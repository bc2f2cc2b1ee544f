"""Input hygiene of the node's HTTPS servers, against real nodes over TLS: garbage posted
to every route of the peer, submit and release APIs gets a 4xx JSON error and leaves no
traceback in the node's log; the framing edges (chunked plus Content-Length, transfer
codings, trailers, HTTP/0.9, http.server's old HTML errors) are refused; the data
directory's files are the node's alone."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.https.auth import basic_header
from appliance.https.client import Client
from appliance.site.tls import client_context, peer_client_context
from tests.integration.conftest import PASSWORDS, Site, make_site

pytestmark = pytest.mark.integration

JOB = "j" + "0" * 24
FIELDS = [
    "ca",
    "command",
    "controller",
    "copies",
    "created_at",
    "csr",
    "expires",
    "expires_at",
    "format",
    "gone",
    "held",
    "holders",
    "holders_version",
    "holders_x",
    "hosts",
    "id",
    "job",
    "machine_id",
    "mono",
    "name",
    "new",
    "node",
    "node_id",
    "opener",
    "options",
    "owner",
    "printer",
    "raw",
    "reason",
    "release_id",
    "reprint",
    "role",
    "secret",
    "share",
    "share_x",
    "sides",
    "signature",
    "site",
    "title",
    "token",
    "type",
    "user_share",
    "version",
    "x",
    "host",
    "peer_port",
    "submit_port",
    "release_port",
]
WRONG = [1, -1, 2.5, True, None, "x", "", [], {}, [[1, "a"]], {"a": {"b": 1}}, "A" * 5000]


def bodies() -> list[bytes]:
    """Garbage: not JSON, not an object, nested, every known field of each wrong type."""
    found = [
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b"123",
        b'"text"',
        b"null",
        b"[" * 100_000,
        b'{"a":' * 40 + b"1" + b"}" * 40,
        b'{"holders": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ]
    found += [json.dumps(dict.fromkeys(FIELDS, value)).encode() for value in WRONG]
    found += [json.dumps({name: [value] for name in FIELDS}).encode() for value in WRONG[:4]]
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("hygiene"), 3)


@pytest.fixture(scope="module")
def job_id(site: Site) -> str:
    return str(site.submit(0, b"%PDF-1.4 hygiene\n" * 50)["id"])


def call(
    client: Client, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn = client.open()
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def assert_json_error(status: int, raw: bytes, what: str) -> None:
    """A 4xx JSON error (or, for garbage a route may take as "field absent", a success)."""
    assert status < 500, f"{what}: {status} {raw[:300]!r}"
    if status < 400:
        return
    answer = json.loads(raw)
    assert set(answer) == {"error", "type"}, f"{what}: {answer}"


def assert_no_traceback(site: Site) -> None:
    for node in site.mesh.nodes:
        log = node.log.read_text(errors="replace")
        assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]


def node_client(site: Site, index: int, api: str) -> Client:
    node = site.mesh.nodes[index]
    port = {"submit": node.submit_port, "release": node.release_port}[api]
    context = client_context(node.data / "tls" / "ca.pem")
    return Client("127.0.0.1", port, context, server_name=node.id, timeout=30)


def peer_http(site: Site, caller: int, target: int) -> Client:
    tls = site.mesh.nodes[caller].data / "tls"
    context = peer_client_context(tls / "node.pem", tls / "node.key", tls / "ca.pem")
    node = site.mesh.nodes[target]
    return Client("127.0.0.1", node.peer_port, context, server_name=node.id, timeout=30)


PEER_POSTS = [
    "/peer/sync",
    "/peer/directory",
    "/peer/jobs/{job}/open",
    "/peer/jobs/{job}/share",
    "/peer/jobs/{job}/release",
    "/peer/jobs/{job}/deliver",
    "/peer/jobs/{job}/repair-share",
    "/peer/jobs/{job}/holders",
    "/peer/jobs/{job}/delete",
    "/peer/jobs/{job}/claim",
    "/peer/jobs/{job}/unclaim",
    "/peer/jobs/{job}/unknown",
    "/peer/jobs/{job}/bogus-step",
]


def test_garbage_to_every_peer_route(site: Site, job_id: str) -> None:
    client = peer_http(site, 1, 0)  # node 0 is the controller
    headers = {"Content-Type": "application/json"}
    for template in PEER_POSTS:
        for job in (job_id, JOB):
            path = template.format(job=job)
            for body in bodies():
                status, raw = call(client, "POST", path, body, headers)
                assert_json_error(status, raw, f"POST {path} {body[:40]!r}")
    for meta in ("not json", "[]", json.dumps({name: [1] for name in FIELDS}), "{" * 3000):
        for job in (JOB, "j" + "1" * 24):
            headers = {"X-Meshprint-Job": meta}
            status, raw = call(client, "PUT", f"/peer/jobs/{job}", b"sealed?", headers)
            assert_json_error(status, raw, f"PUT meta {meta[:30]}")
    for path in ("/peer/jobs?owner=" + "x" * 5000, "/peer/jobs/../../etc", "/peer/releases/x"):
        status, raw = call(client, "GET", path, None, {})
        assert_json_error(status, raw, f"GET {path[:40]}")
    assert_no_traceback(site)


def test_garbage_to_every_submit_route(site: Site) -> None:
    client = node_client(site, 0, "submit")
    alice = {"Authorization": basic_header("alice", site.tokens["alice"])}
    door = json.loads((site.mesh.nodes[0].data / "intake.json").read_text())
    intake = {"X-Meshprint-Intake-Secret": door["secret"]}
    for body in bodies()[:12]:
        status, raw = call(client, "POST", "/v1/join", body, {})
        assert_json_error(status, raw, f"join {body[:40]!r}")
    for query in ("title=" + "t" * 3000, "title=%ff%fe", "title=a&title=b"):
        for content_type in ("", "text/x-nonsense", "application/pdf; charset=" + "x" * 500):
            headers = {**alice, "Content-Type": content_type}
            status, raw = call(client, "POST", "/v1/jobs?" + query, b"\x00\x01junk", headers)
            assert_json_error(status, raw, f"submit {query[:20]} {content_type[:20]}")
    for query in (
        "user=alice&copies=x",
        "user=alice&copies=-1",
        "user=alice&copies=99999999999999999999",
        "user=alice&sides=[]",
        "user=alice&color=2",
        "user=nobody",
        "user=",
        "",
    ):
        status, raw = call(client, "POST", "/v1/intake?" + query, b"%PDF junk", intake)
        assert_json_error(status, raw, f"intake {query}")
    assert_no_traceback(site)


def test_garbage_to_every_release_route(site: Site, job_id: str) -> None:
    client = node_client(site, 1, "release")
    alice = {
        "Authorization": basic_header("alice", PASSWORDS["alice"]),
        "Content-Type": "application/json",
    }
    garbage = bodies()
    for job in (job_id, JOB):
        for body in garbage[:10] + garbage[-6:]:
            status, raw = call(client, "POST", f"/v1/jobs/{job}/release", body, alice)
            assert_json_error(status, raw, f"release {body[:40]!r}")
    # without credentials the body may carry a signed command instead: garbage there too
    for body in garbage:
        path = f"/v1/jobs/{job_id}/release"
        status, raw = call(client, "POST", path, body, {"Content-Type": "application/json"})
        assert_json_error(status, raw, f"release, no credentials {body[:40]!r}")
    for method, path in (
        ("GET", "/v1/jobs/../x"),
        ("GET", "/v1/jobs/" + "j" * 3000),
        ("GET", "/v1/releases/%00"),
        ("DELETE", "/v1/jobs/nope"),
        ("PUT", "/v1/jobs"),
    ):
        status, raw = call(client, method, path, None, alice)
        assert_json_error(status, raw, f"{method} {path[:40]}")
    for header in ("Basic !!!", "Basic " + "QQ" * 3000, "Bearer x", "Basic YWxpY2U="):
        status, raw = call(client, "GET", "/v1/jobs", None, {"Authorization": header})
        assert_json_error(status, raw, f"auth {header[:20]}")
    assert_no_traceback(site)


# Framing edges, on raw TLS sockets


def raw_tls(site: Site, index: int = 0) -> ssl.SSLSocket:
    node = site.mesh.nodes[index]
    context = client_context(node.data / "tls" / "ca.pem")
    sock = socket.create_connection(("127.0.0.1", node.submit_port), timeout=10)
    return context.wrap_socket(sock, server_hostname=node.id)


def exchange(site: Site, wire: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one answer: (status, headers, body)."""
    with raw_tls(site) as sock:
        sock.sendall(wire)
        response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def health(body: bytes = b"", headers: str = "") -> bytes:
    return (
        f"POST /v1/health HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body
    )  # POST: a route that reads no body


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/3.0\r\n\r\n", 501),
        (b"BREW /v1/health HTTP/1.1\r\n\r\n", 501),
        (b"GET /v1/health HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET /v1/health HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
        (b"GET /v1/health HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400),
        (b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 40_000 + b"\r\n\r\n", 413),
        (b"GET /v1/health HTTP/1.1\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n", 413),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 413),
        (b"POST /v1/jobs HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"POST /v1/jobs HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 400),
        (b"POST /v1/jobs HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"POST /v1/jobs HTTP/1.1\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (b"POST /v1/jobs HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        (b"POST /v1/jobs HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (
            b"POST /v1/jobs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (b"POST /v1/jobs HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET /v1/health HTTP/1.1\r\nExpect: something\r\n\r\n", 400),
    ],
)
def test_malformed_heads_get_json_errors(site: Site, wire: bytes, status: int) -> None:
    got, headers, body = exchange(site, wire)
    assert got == status, body
    assert headers["Content-Type"] == "application/json"
    assert set(json.loads(body)) == {"error", "type"}


def test_chunked_trailers_are_bounded(site: Site) -> None:
    auth = f"Authorization: {basic_header('alice', site.tokens['alice'])}\r\n"
    head = f"POST /v1/jobs HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\n".encode()
    pdf = b"%PDF-1.4 trailers\n"
    chunk = b"%x\r\n%s\r\n" % (len(pdf), pdf)
    few = b"0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n"
    status, _, body = exchange(site, head + chunk + few)
    assert status == 201, body
    many = b"0\r\n" + b"X-T: 1\r\n" * 1000 + b"\r\n"
    status, _, body = exchange(site, head + chunk + many)
    assert status == 400, body
    assert "trailers" in json.loads(body)["error"]
    huge = b"0\r\nX-T: " + b"a" * 5000 + b"\r\n\r\n"
    status, _, body = exchange(site, head + chunk + huge)
    assert status == 400, body


def test_http09_request_is_closed_at_once(site: Site) -> None:
    with raw_tls(site) as sock:
        sock.sendall(b"GET /v1/health\r\n")
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed, nothing said
        assert time.monotonic() - started < 2


def test_expect_continue_and_http10(site: Site) -> None:
    auth = f"Authorization: {basic_header('alice', site.tokens['alice'])}\r\n"
    pdf = b"%PDF-1.4 continue\n"
    with raw_tls(site) as sock:
        head = (
            f"POST /v1/jobs HTTP/1.1\r\n{auth}Content-Length: {len(pdf)}\r\n"
            "Expect: 100-continue\r\n\r\n"
        )
        sock.sendall(head.encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(pdf)
        response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        response.begin()
        assert response.status == 201
    status, headers, body = exchange(site, b"GET /v1/health HTTP/1.0\r\n\r\n")
    assert status == 200 and headers["Connection"] == "close" and json.loads(body)["ok"]


class _Shared:
    """One buffered reader for several responses on one connection (http.client would
    make, and close, one per response)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.reader = sock.makefile("rb")

    def makefile(self, *args: Any, **kwargs: Any) -> Any:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def close(self) -> None:
        pass


def test_keep_alive_serves_several_requests_then_idles_out(site: Site) -> None:
    with raw_tls(site) as sock:
        shared = _Shared(sock)

        def answer() -> int:
            response = http.client.HTTPResponse(shared)  # type: ignore[arg-type]
            response.begin()
            response.read()
            return response.status

        for _ in range(3):
            sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer() == 200
        sock.sendall(b"GET /v1/health HTTP/1.1\r\n\r\n" * 2)  # pipelined, one write
        assert [answer(), answer()] == [200, 200]
        started = time.monotonic()
        assert shared.reader.read(1) == b""  # the server closes an idle connection
        assert 3 < time.monotonic() - started < 9


# The data directory


def test_data_directory_is_private(site: Site) -> None:
    job_id = str(site.submit(0, b"%PDF-1.4 private\n")["id"])
    for node in site.mesh.nodes:
        root = node.data
        checked: dict[str, Any] = {}
        for path in (root, *root.rglob("*")):
            mode = stat.S_IMODE(path.stat().st_mode)
            expected = 0o700 if path.is_dir() else 0o600
            assert mode == expected, f"{path}: {oct(mode)}"
            checked[path.name] = mode
        for name in ("meshprint.db", "meshprint.db-wal", "meshprint.db-shm", "jobs", "incoming"):
            assert name in checked, name
    held = [n for n in site.mesh.nodes if (n.data / "jobs" / f"{job_id}.sealed").exists()]
    assert held


def test_modes_of_an_older_directory_are_put_right_at_start(site: Site) -> None:
    node = site.mesh.nodes[2]
    site.mesh.kill(2)
    loose = [node.data / "meshprint.db", node.data / "jobs", node.data / "tls" / "ca.pem"]
    for path in loose:
        path.chmod(0o755 if path.is_dir() else 0o644)
    site.mesh.start(2)
    for path in loose:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(Path(path).stat().st_mode) == expected, path
