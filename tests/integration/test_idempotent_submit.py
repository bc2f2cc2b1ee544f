"""Uploads can be retried: a submission repeated with its idempotency key gets the job
the first one made — also when the node was killed after holding the job and before the
client read the answer — and never a second job; the same key with another document is
refused, and so is a malformed key."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.clients.node import IDEMPOTENCY_HEADER, new_idempotency_key
from appliance.errors import BadRequest, Conflict
from appliance.site.tls import client_context
from tests.integration.conftest import Site, make_site, random_bytes, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def isite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("idempotent"), 3)


def _submit(
    site: Site, index: int, data: bytes, key: str, user: str = "alice", title: str = "retried"
) -> str:
    client = site.mesh.client(index, "submit")
    receipt = client.submit((user, site.tokens[user]), data, title, idempotency_key=key)
    return receipt["id"]


def _titled(site: Site, title: str = "retried", user: str = "alice") -> list[str]:
    return [j["id"] for j in site.jobs(0, user) if j["title"] == title]


def _keyed_job(data_dir: Path, key: str) -> str | None:
    """The job node's database has for this idempotency key (read-only, as it runs; the
    database keeps the key's SHA-256)."""
    uri = f"file:{data_dir / 'meshprint.db'}?mode=ro"
    hashed = hashlib.sha256(key.encode()).hexdigest()
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
        row = db.execute("SELECT job_id FROM submissions WHERE key=?", (hashed,)).fetchone()
    return str(row[0]) if row else None


def test_a_repeat_with_the_same_key_gets_the_same_job(isite: Site) -> None:
    data, key = random_bytes(300_000), new_idempotency_key()
    first = _submit(isite, 0, data, key)
    assert _submit(isite, 0, data, key) == first
    assert _titled(isite) == [first]
    # Another user's key is theirs: the same key makes bob a job of his own.
    other = _submit(isite, 0, data, key, user="bob")
    assert other != first and _titled(isite, user="bob") == [other]
    # The same key with a different document is refused, and holds nothing new.
    err = isite.error(_submit, isite, 0, data + b"changed", key)
    assert isinstance(err, Conflict) and err.status == 409, err
    assert "another submission" in str(err)
    assert _titled(isite) == [first]


def test_two_submissions_with_one_key_at_the_same_moment_make_one_job(isite: Site) -> None:
    data, key = random_bytes(1_000_000), new_idempotency_key()
    start, ids = threading.Barrier(2), []

    def submit(index: int) -> None:
        start.wait()
        ids.append(_submit(isite, index, data, key, title="together"))

    threads = [threading.Thread(target=submit, args=(0,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(ids) == 2 and ids[0] == ids[1], ids
    wait_for(lambda: _titled(isite, "together") == [ids[0]])


def test_a_malformed_key_is_refused_before_anything_is_held(isite: Site) -> None:
    before = _titled(isite, "bad key")
    for key in ("short", "x" * 65, "has space in it-123", "ünïcode-0123456789"):
        client = isite.mesh.client(0, "submit")
        credentials = ("alice", isite.tokens["alice"])
        with pytest.raises(BadRequest) as info:
            client.submit(credentials, b"doc", "bad key", idempotency_key=key)
        assert info.value.status == 400 and "idempotency key" in str(info.value)
    assert _titled(isite, "bad key") == before


def test_the_cli_sends_a_key_and_takes_one_to_repeat_a_submission(
    isite: Site, tmp_path: Path
) -> None:
    document = tmp_path / "cli.txt"
    document.write_bytes(b"submitted from the command line\n")
    key = new_idempotency_key()
    args = ["submit", str(document), "--node", isite.mesh.nodes[1].submit, "--ca"]
    args += [str(isite.mesh.ca), "--user", "alice", "--token", isite.tokens["alice"]]
    first = isite.mesh.cli(*args, f"--idempotency-key={key}").stdout.strip()  # may start with -
    again = isite.mesh.cli(*args, f"--idempotency-key={key}").stdout.strip()
    assert first == again and _titled(isite, "cli.txt") == [first]
    fresh = isite.mesh.cli(*args).stdout.strip()  # a key of its own: a new job
    assert fresh != first and sorted(_titled(isite, "cli.txt")) == sorted([first, fresh])
    refused = isite.mesh.cli(*args, "--idempotency-key", "no good", check=False)
    assert refused.returncode != 0 and "idempotency key" in refused.stderr


def test_kill_9_after_the_job_is_held_and_before_the_answer_is_read(isite: Site) -> None:
    """The client sends the whole request and never reads the answer; the node is killed
    the moment the job (with its key) is held; the retry gets that very job."""
    mesh, node = isite.mesh, isite.mesh.nodes[0]
    data, key = random_bytes(2_000_000), new_idempotency_key()
    token = base64.b64encode(f"alice:{isite.tokens['alice']}".encode()).decode()
    conn = http.client.HTTPSConnection(
        "127.0.0.1", node.submit_port, context=client_context(mesh.ca), timeout=30
    )
    headers = {"Authorization": f"Basic {token}", IDEMPOTENCY_HEADER: key}
    conn.request("POST", "/v1/jobs?title=killed", body=data, headers=headers)
    held = wait_for(lambda: _keyed_job(node.data, key), timeout=30, interval=0.005)
    mesh.kill(0)
    conn.close()  # the answer, if it was written at all, is never read
    assert (node.data / "jobs" / f"{held}.sealed").exists()

    mesh.start(0)
    mesh.wait_live(3)
    assert isinstance(isite.error(_submit, isite, 0, data, key), Conflict)  # another title
    again = _submit(isite, 0, data, key, title="killed")
    assert again == held
    assert _titled(isite, "killed") == [held]
    # And a retry that lands later, after replication settled, is the same job still.
    time.sleep(1)
    assert _submit(isite, 0, data, key, title="killed") == held
    assert _titled(isite, "killed") == [held]


def test_the_cli_reports_the_key_when_the_answer_is_lost(isite: Site, tmp_path: Path) -> None:
    document = tmp_path / "lost.txt"
    document.write_bytes(b"nobody answers\n")
    mesh = isite.mesh
    mesh.kill(2)
    try:
        args = ["submit", str(document), "--node", mesh.nodes[2].submit, "--ca", str(mesh.ca)]
        args += ["--user", "alice", "--token", isite.tokens["alice"]]
        lost: subprocess.CompletedProcess[str] = mesh.cli(*args, check=False)
        assert lost.returncode != 0
        assert "--idempotency-key" in lost.stderr, lost.stderr
    finally:
        mesh.start(2)
        mesh.wait_live(3)
