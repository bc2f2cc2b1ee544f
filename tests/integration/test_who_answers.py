"""Clients check who answers: a removed member's key, still CA-signed and answering at an
address, gets no password, submit token or release command from the command line or the
web UI's release page; the same commands against a current member work."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.clients.models import SignedDirectory
from appliance.https.server import Request, Response, Server, json_response
from appliance.site.tls import server_context
from tests.integration.conftest import PASSWORDS, Site, make_site
from tests.webui.conftest import Browser, https_client, text
from webui import create_app

pytestmark = pytest.mark.integration

REFUSED = "is not a current member of the site (revoked?): not sending"


@dataclass
class Impostor:
    """An HTTPS server with the removed node's own key and certificate. It serves the
    member list from before the removal (all it has) and records every other request."""

    stale: SignedDirectory
    seen: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/v1/members":
            return json_response(self.stale)
        body = request.body.read_all(1 << 20)
        with self.lock:
            auth = request.headers.get("Authorization", "")
            self.seen.append((request.method, request.path, auth, body))
        return json_response({"jobs": []})

    def received(self) -> list[tuple[str, str, str, bytes]]:
        with self.lock:
            return list(self.seen)


@pytest.fixture(scope="module")
def removed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Impostor, str]]:
    """A three-node site whose node 2 was removed; its key answers at the returned address."""
    for site in make_site(tmp_path_factory.mktemp("who-answers"), 3):
        laptop = site.mesh.nodes[2]
        stale = site.mesh.client(2).members()
        controller = str(site.mesh.nodes[0].data)
        result = site.mesh.cli("member", "remove", laptop.id, "--data", controller)
        assert "revoked" in result.stdout
        site.mesh.kill(2)
        site.mesh.wait_directory()
        impostor = Impostor(stale)
        tls = laptop.data / "tls"
        context = server_context(tls / "node.pem", tls / "node.key", None)
        server = Server("impostor", ("127.0.0.1", 0), impostor.app, context)
        server.start()
        try:
            yield site, impostor, f"127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def _password_file(site: Site) -> str:
    path = site.mesh.root / ".alice.password"
    path.write_text(PASSWORDS["alice"] + "\n")
    return str(path)


def _never_sent(impostor: Impostor, *secrets: str) -> None:
    for method, path, auth, body in impostor.received():
        for secret in secrets:
            assert secret.encode() not in body, (method, path)
            assert secret not in auth and secret not in path
            decoded = base64.b64decode(auth.split(" ")[-1] or "").decode(errors="replace")
            assert secret not in decoded


def test_the_command_line_sends_nothing_to_a_removed_node(
    removed: tuple[Site, Impostor, str], tmp_path: Path
) -> None:
    site, impostor, address = removed
    ca = str(site.mesh.ca)
    password = _password_file(site)
    # A user who never ran meshprint before (an empty cache): the removed node serves its
    # old member list, the other members it names serve the newer one, which wins.
    fresh = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    user = ("--user", "alice", "--password-file", password)
    for args in (
        ("jobs", *user),
        ("job", "show", "01HZZZZZZZZZZZZZZZZZZZZZZZ", *user),
        ("release", "01HZZZZZZZZZZZZZZZZZZZZZZZ", "--to", str(tmp_path / "out"), *user),
    ):
        result = site.mesh.cli(*args, "--node", address, "--ca", ca, check=False, env=fresh)
        assert result.returncode == 1, result.stdout
        assert REFUSED in result.stderr and "your password" in result.stderr
        assert "Traceback" not in result.stderr
    token = site.tokens["alice"]
    document = tmp_path / "doc.txt"
    document.write_bytes(b"a secret document")
    result = site.mesh.cli(
        "submit", str(document), "--user", "alice", f"--token={token}",
        "--node", address, "--ca", ca, check=False, env=fresh,
    )  # fmt: skip
    assert result.returncode == 1 and REFUSED in result.stderr
    assert "not sending your submit token" in result.stderr
    # With a node's data directory, its own directory decides (no member list asked).
    result = site.mesh.cli(
        "jobs", *user, "--node", address, "--data", str(site.mesh.nodes[1].data), check=False
    )
    assert result.returncode == 1 and REFUSED in result.stderr

    # Not one request reached it but the member-list reads: no password, token, document.
    assert impostor.received() == []
    _never_sent(impostor, PASSWORDS["alice"], token)
    assert not (tmp_path / "out").exists()

    # The newest list is now in the user's cache: it is never rolled back to the old one.
    cached = list((tmp_path / "cache" / "meshprint").glob("members-*.json"))
    assert len(cached) == 1

    # The same commands against a current member work.
    member = site.mesh.nodes[1].release
    ok = site.mesh.cli("jobs", *user, "--node", member, "--ca", ca, env=fresh)
    assert ok.returncode == 0
    job = site.mesh.cli(
        "submit", str(document), "--user", "alice", f"--token={token}",
        "--node", site.mesh.nodes[1].submit, "--ca", ca, env=fresh,
    ).stdout.strip()  # fmt: skip
    out = tmp_path / "released"
    site.mesh.cli("release", job, "--to", str(out), *user, "--node", member, "--ca", ca, env=fresh)
    assert out.read_bytes() == b"a secret document"


def test_the_release_page_sends_no_password_to_a_removed_node(
    removed: tuple[Site, Impostor, str],
) -> None:
    site, impostor, address = removed
    controller = site.mesh.nodes[0]
    before = len(impostor.received())
    app = create_app({"MESHPRINT_DATA": str(controller.data), "RELEASE_API": address})
    browser = Browser(https_client(app))
    answer = browser.post(
        "/release/login", {"name": "alice", "password": PASSWORDS["alice"]}, page="/release/"
    )
    assert answer.status_code == 403
    page = text(answer)
    assert "not a current member of the site" in page and "not sending your password" in page
    assert len(impostor.received()) == before  # not one request: nothing was sent
    _never_sent(impostor, PASSWORDS["alice"])

    # The same page against a current member signs in.
    good = create_app({"MESHPRINT_DATA": str(controller.data), "RELEASE_API": controller.release})
    browser = Browser(https_client(good))
    answer = browser.post(
        "/release/login", {"name": "alice", "password": PASSWORDS["alice"]}, page="/release/"
    )
    assert answer.status_code == 302, text(answer)


def test_the_member_list_anyone_may_read_holds_no_user(removed: tuple[Site, Impostor, str]) -> None:
    site, _, _ = removed
    for api in ("release", "submit"):
        signed = site.mesh.client(1, api).members()
        raw = base64.b64decode(signed["raw"])
        assert b"alice" not in raw and b"wrapped" not in raw and b"token" not in raw
        assert site.mesh.nodes[1].id.encode() in raw and b"revoked" in raw
