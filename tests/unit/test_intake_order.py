"""Intake's order of commits: no peer gets a whole copy of a job before the ingesting node
has committed it (with its idempotency key). Killed in between, the node would have no
record of the job while its peers held it, and the client's retry with the same key would
make a second job. The peers here are recorders in place of the upload threads; the store
and the directory are real."""

from __future__ import annotations

import io
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto.stream import CHUNK_SIZE, ciphertext_size
from appliance.crypto.userkeys import b64, public_bytes
from appliance.jobs import intake
from appliance.site.ca import SiteCA
from appliance.site.directory import Directory
from appliance.store.jobs import JobStore


class Body(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.length: int | None = len(data)


class RecordingUpload:
    """Stands in for `ReplicaUpload`: counts what it is given, and when, of the job."""

    made: list[RecordingUpload] = []

    def __init__(
        self, peers: Any, node_id: str, job_id: str, meta: Any, length: Any, done: Any
    ) -> None:
        self.node_id, self.job_id, self.done = node_id, job_id, done
        self.store: JobStore = peers.store
        self.before_commit = 0  # bytes given while the ingesting node had no row yet
        self.total = 0
        self.ok = self.finished = False
        self.error: str | None = None
        RecordingUpload.made.append(self)

    def start(self) -> None:
        pass

    def put(self, chunk: bytes) -> None:
        if self.store.get(self.job_id) is None:
            self.before_commit += len(chunk)
        self.total += len(chunk)

    def end(self) -> None:
        with self.done:
            self.ok = self.finished = True
            self.done.notify_all()

    def abort(self) -> None:
        self.finished = True

    def join(self, timeout: float | None = None) -> None:
        pass


@pytest.fixture
def node(
    store: JobStore, directory: Directory, ca: SiteCA, monkeypatch: pytest.MonkeyPatch
) -> SimpleNamespace:
    alice = X25519PrivateKey.generate()
    user = {"public_key": b64(public_bytes(alice)), "wrapped_key": {}, "token_hash": "x"}
    site = directory.edited(ca, lambda doc: doc["users"].update(alice=user))
    me = site.node(site.controller_id)
    assert me is not None
    peers = [replace(me, id=f"n-peer{i}", machine_id=f"machine-{i}", point=i) for i in (2, 3)]
    monkeypatch.setattr(intake, "ReplicaUpload", RecordingUpload)
    RecordingUpload.made = []
    return SimpleNamespace(
        id=me.id,
        store=store,
        directory=lambda: site,
        peers=SimpleNamespace(live=lambda: [me, *peers], store=store),
        last_sync={},
    )


@pytest.mark.parametrize("size", [10, CHUNK_SIZE, 3 * CHUNK_SIZE + 5])
@pytest.mark.parametrize("key", [None, "k" * 20])
def test_peers_get_the_last_piece_only_once_the_job_is_committed_here(
    node: SimpleNamespace, size: int, key: str | None
) -> None:
    receipt = intake.ingest(node, "alice", "t", "", Body(b"x" * size), idempotency_key=key)
    uploads: list[RecordingUpload] = RecordingUpload.made
    assert sorted(u.node_id for u in uploads) == ["n-peer2", "n-peer3"]
    sealed = ciphertext_size(size)
    for upload in uploads:
        assert upload.total == sealed  # each peer got the whole sealed job ...
        # ... but not before it was committed here: all of it but its last byte
        assert upload.before_commit == sealed - 1
    assert node.store.get(receipt.job.id) is not None
    if key is not None:
        assert node.store.submissions.get("alice", key) is not None


def test_a_failed_local_commit_leaves_the_peers_without_a_whole_copy(
    node: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JobStore, "commit", refuse)
    with pytest.raises(intake.MeshprintError, match="cannot store the job"):
        intake.ingest(node, "alice", "t", "", Body(b"x" * (2 * CHUNK_SIZE)))
    sealed = ciphertext_size(2 * CHUNK_SIZE)
    assert all(u.total < sealed and not u.ok for u in RecordingUpload.made)
