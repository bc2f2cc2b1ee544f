"""The release API's signed-in sessions: sign-in runs the key opening (the KDF) once;
calls with the session's token run none; sign-out and expiry end it, after which only
the password works again; a call with the password (the CLI's one-off) opens the key
each time."""

from __future__ import annotations

import io
import json
from email.message import Message
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.api import release as release_api
from appliance.errors import Unauthorized
from appliance.https.auth import basic_header
from appliance.https.server import Body, Request, Response
from appliance.jobs import release, releases
from appliance.jobs.sessions import KeySessions
from appliance.site.directory import UserRecord

KEY = X25519PrivateKey.generate()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeDirectory:
    def __init__(self) -> None:
        self.version = 1
        self.users = {"alice": UserRecord("alice", "public-1", {}, "token-1")}

    def user(self, name: str) -> UserRecord | None:
        return self.users.get(name)


class FakeNode:
    id = "node-a"

    def __init__(self) -> None:
        self.doc = FakeDirectory()

    def directory(self) -> Any:
        return self.doc


@pytest.fixture
def kdf(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key opening (one KDF run each) by user name."""
    runs: list[str] = []

    def authenticate(node: Any, name: str, password: str) -> X25519PrivateKey:
        runs.append(name)
        if password != "right":
            raise release.WrongPassword("wrong user name or password")
        return KEY

    monkeypatch.setattr(release, "authenticate", authenticate)
    monkeypatch.setattr(releases, "jobs_of", lambda node, owner: [{"owner": owner[0]}])

    def release_job(node: Any, job_id: str, data: Any, owner: Any) -> dict[str, Any]:
        assert owner == ("alice", KEY)
        return {"release_id": data["release_id"]}

    monkeypatch.setattr(releases, "release_job", release_job)
    return runs


def call(app: Any, method: str, path: str, auth: str = "", body: bytes = b"") -> Response:
    headers = Message()
    if auth:
        headers["Authorization"] = auth
    request = Request(
        method=method,
        path=path,
        query={},
        headers=headers,
        body=Body(io.BytesIO(body), len(body), False),
        client=("127.0.0.1", 5000),
    )
    return app(request)  # type: ignore[no-any-return]


def sign_in(app: Any) -> str:
    answer = call(app, "POST", "/v1/sessions", basic_header("alice", "right"))
    assert answer.status == 201
    return str(json.loads(answer.body)["session"])  # type: ignore[arg-type]


def test_a_signed_in_session_releases_without_the_kdf(kdf: list[str]) -> None:
    app = release_api.app(FakeNode())  # type: ignore[arg-type]
    token = sign_in(app)
    assert kdf == ["alice"]
    for n in range(5):
        body = json.dumps({"printer": "lobby", "release_id": f"{n:032x}"}).encode()
        answer = call(app, "POST", "/v1/jobs/abcdefgh12/release", f"Session {token}", body)
        assert answer.status == 202
        assert call(app, "GET", "/v1/jobs", f"Session {token}").status == 200
    assert kdf == ["alice"]


def test_sign_out_clears_the_key(kdf: list[str]) -> None:
    app = release_api.app(FakeNode())  # type: ignore[arg-type]
    token = sign_in(app)
    assert call(app, "DELETE", "/v1/sessions", f"Session {token}").status == 200
    with pytest.raises(Unauthorized):
        call(app, "GET", "/v1/jobs", f"Session {token}")
    assert kdf == ["alice"]


def test_an_expired_session_needs_the_password_again(kdf: list[str]) -> None:
    clock = Clock()
    app = release_api.app(FakeNode(), held=KeySessions(clock=clock))  # type: ignore[arg-type]
    token = sign_in(app)
    clock.now += 30 * 60 + 1
    body = json.dumps({"printer": "lobby", "release_id": "0" * 32}).encode()
    with pytest.raises(Unauthorized):
        call(app, "POST", "/v1/jobs/abcdefgh12/release", f"Session {token}", body)
    with pytest.raises(Unauthorized):
        call(app, "POST", "/v1/jobs/abcdefgh12/release", "Session ", body)
    assert kdf == ["alice"]
    again = call(app, "POST", "/v1/jobs/abcdefgh12/release", basic_header("alice", "right"), body)
    assert again.status == 202 and kdf == ["alice", "alice"]


def test_the_one_off_password_path_opens_the_key_each_time(kdf: list[str]) -> None:
    app = release_api.app(FakeNode())  # type: ignore[arg-type]
    for _ in range(3):
        assert call(app, "GET", "/v1/jobs", basic_header("alice", "right")).status == 200
    assert kdf == ["alice"] * 3
    with pytest.raises(release.WrongPassword):
        call(app, "POST", "/v1/sessions", basic_header("alice", "wrong"))


def test_a_password_reset_reaching_the_node_ends_the_session(kdf: list[str]) -> None:
    node = FakeNode()
    held = KeySessions()
    app = release_api.app(node, held=held)  # type: ignore[arg-type]
    token = sign_in(app)
    assert call(app, "GET", "/v1/jobs", f"Session {token}").status == 200
    # The directory version with alice's new key pair arrives (sync from the controller).
    node.doc.version = 2
    node.doc.users["alice"] = UserRecord("alice", "public-2", {}, "token-2")
    with pytest.raises(Unauthorized):
        call(app, "GET", "/v1/jobs", f"Session {token}")
    assert len(held) == 0
    assert sign_in(app) and kdf == ["alice", "alice"]  # the (new) password opens a new one
