"""Intake's order: one peer's copy streams in and is committed beside the ingesting
node's, and that peer gets anything of the job only once the node's intake file is on
disk; a node that then fails to commit (or is killed first, and tombstones the job at
start) takes that copy back, so the client's retry never makes a second job beside it.
The third copy goes after the answer, from the committed file (before it, in the place
of a streamed copy that failed). The peers here are recorders in place of the uploads;
the store and the directory are real."""

from __future__ import annotations

import io
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto.stream import CHUNK_SIZE, HEADER_SIZE, ciphertext_size
from appliance.crypto.userkeys import b64, public_bytes
from appliance.errors import InsufficientStorage
from appliance.jobs import intake
from appliance.site.ca import SiteCA
from appliance.site.directory import Directory
from appliance.store import jobs as store_jobs
from appliance.store.jobs import JobStore

RECORDED: list[Path] = []  # the directories fsynced so far


class Body(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.length: int | None = len(data)


class RecordingUpload:
    """Stands in for `ReplicaUpload`: counts what it is given, and when, of the job. The
    first `peers.refusing` uploads made answer their copy with an error once it is all
    in (a full disk there); with `peers.breaking`, the first breaks after one piece."""

    made: list[RecordingUpload] = []

    def __init__(self, peers: Any, node_id: str, job_id: str, meta: Any, length: Any) -> None:
        self.node_id, self.job_id, self.meta, self.length = node_id, job_id, meta, length
        self.store: JobStore = peers.store
        self.refuse = len(RecordingUpload.made) < peers.refusing
        self.breaks = peers.breaking and not RecordingUpload.made
        # with `peers.releasing`, the job is released at its holders while the second goes
        self.releases = peers.releasing and len(RecordingUpload.made) == 1
        self.before_commit = 0  # bytes given while the ingesting node had no row yet
        self.unrecorded = 0  # document bytes given before the intake file was on disk
        self.total = 0
        self.ok = self.finished = False
        self.error: str | None = None
        RecordingUpload.made.append(self)

    def send(self, pieces: Any) -> None:
        try:
            for piece in pieces:
                if self.store.get(self.job_id) is None:
                    self.before_commit += len(piece)
                if self.total >= HEADER_SIZE and self.store.incoming not in RECORDED:
                    self.unrecorded += len(piece)
                self.total += len(piece)
                if self.breaks:
                    raise ConnectionResetError("the peer went away")
            if self.releases:
                self.store.delete(self.job_id, "released")
        except Exception as err:  # as ReplicaUpload.send: its own failure or the pieces'
            self.error = f"{type(err).__name__}: {err}"
        else:
            self.ok = not self.refuse
            self.error = "refused" if self.refuse else None
        self.finished = True

    def fail(self, reason: str) -> None:
        self.error, self.finished = reason, True


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
    real_fsync_dir = store_jobs.fsync_dir

    def fsync_dir(path: Path) -> None:
        time.sleep(0.02)  # slow: what is sent before this ends is sent without waiting
        real_fsync_dir(path)
        RECORDED.append(path)

    RECORDED.clear()
    monkeypatch.setattr(store_jobs, "fsync_dir", fsync_dir)
    return SimpleNamespace(
        id=me.id,
        store=store,
        directory=lambda: site,
        peers=SimpleNamespace(
            live=lambda: [me, *peers],
            store=store,
            is_live=lambda n: False,
            refusing=0,
            breaking=False,
            releasing=False,
        ),
        last_sync={},
    )


def wait_whole(upload: RecordingUpload, size: int) -> None:
    """Until the upload (sent after the answer, by the job's settling) has all of it."""
    deadline = time.monotonic() + 10
    while not upload.finished and time.monotonic() < deadline:
        time.sleep(0.005)
    assert upload.total == size


@pytest.mark.parametrize("size", [10, CHUNK_SIZE, 3 * CHUNK_SIZE + 5])
@pytest.mark.parametrize("key", [None, "k" * 20])
@pytest.mark.parametrize("said", [True, False])  # a Content-Length, or chunked
def test_one_peer_gets_the_job_as_it_is_sealed_once_the_intake_file_is_on_disk(
    node: SimpleNamespace, size: int, key: str | None, said: bool
) -> None:
    body = Body(b"x" * size)
    body.length = size if said else None
    receipt = intake.ingest(node, "alice", "t", "", body, idempotency_key=key)
    streamed, following = RecordingUpload.made
    assert receipt.durable_on == [node.id, streamed.node_id]
    assert receipt.pending == [following.node_id]
    sealed = ciphertext_size(size)
    assert streamed.total == sealed  # the streamed peer got the whole sealed job ...
    assert streamed.before_commit == sealed  # ... to commit beside this node's commit
    assert streamed.unrecorded == 0  # ... but nothing of it before the intake was on disk
    wait_whole(following, sealed)  # the third copy: after the answer, the committed file
    assert following.before_commit == 0
    assert following.meta["pages"] == receipt.job.pages
    assert following.length == sealed  # sent with its size, even when the client's was unsaid
    assert node.store.get(receipt.job.id) is not None
    assert not any(node.store.incoming.iterdir())
    if key is not None:
        assert node.store.submissions.get("alice", key) is not None


def test_a_failed_streamed_copy_is_replaced_by_the_next_peers_before_the_answer(
    node: SimpleNamespace,
) -> None:
    node.peers.refusing = 1
    receipt = intake.ingest(node, "alice", "t", "", Body(b"x" * (2 * CHUNK_SIZE)))
    streamed, following = RecordingUpload.made
    assert streamed.error == "refused"
    # sent before the answer, from the file committed here, and durable there
    assert following.total == ciphertext_size(2 * CHUNK_SIZE) and following.ok
    assert receipt.durable_on == [node.id, following.node_id]
    assert receipt.pending == []


def test_a_streamed_copy_broken_midway_leaves_the_job_whole_here_and_on_the_next_peer(
    node: SimpleNamespace,
) -> None:
    node.peers.breaking = True
    data = b"x" * (3 * CHUNK_SIZE + 5)
    receipt = intake.ingest(node, "alice", "t", "", Body(data))
    streamed, following = RecordingUpload.made
    assert streamed.total < ciphertext_size(len(data)) and not streamed.ok
    assert following.total == ciphertext_size(len(data)) and following.ok
    assert receipt.durable_on == [node.id, following.node_id]
    assert receipt.job.size == len(data)
    with node.store.open_sealed(receipt.job.id) as sealed:
        assert len(sealed.read()) == ciphertext_size(len(data))


def test_a_job_released_while_its_third_copy_goes_is_deleted_there_at_once(
    node: SimpleNamespace,
) -> None:
    """The third copy follows the answer: a release meanwhile did not reach a peer that
    held nothing yet; once the copy is in, it is told, so no copy outlives the release."""
    told: list[tuple[str, str, str]] = []

    class Peer:
        def __init__(self, node_id: str) -> None:
            self.node_id = node_id

        def delete(self, job_id: str, reason: str) -> bool:
            told.append((self.node_id, job_id, reason))
            return True

    node.peers.client = lambda node_id, **kwargs: Peer(node_id)
    node.peers.releasing = True
    receipt = intake.ingest(node, "alice", "t", "", Body(b"x" * 10))
    _, following = RecordingUpload.made
    deadline = time.monotonic() + 10
    while not told and time.monotonic() < deadline:
        time.sleep(0.005)
    assert told == [(following.node_id, receipt.job.id, "released")]


def test_a_job_no_peer_takes_is_not_accepted(node: SimpleNamespace) -> None:
    node.peers.refusing = 2
    with pytest.raises(intake.Unavailable, match="could not store a second copy"):
        intake.ingest(node, "alice", "t", "", Body(b"x" * 10))
    (upload, *_) = RecordingUpload.made
    assert node.store.get(upload.job_id) is None
    assert node.store.tombstoned([upload.job_id]) == {upload.job_id: "not replicated"}


def test_a_failed_local_commit_takes_the_peers_copies_back(
    node: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(JobStore, "commit", refuse)
    with pytest.raises(intake.MeshprintError, match="cannot store the job"):
        intake.ingest(node, "alice", "t", "", Body(b"x" * (2 * CHUNK_SIZE)))
    (upload, following) = RecordingUpload.made
    # The streamed peer had all of it: the tombstone left here tells it to drop it (at
    # once when it can be reached, else at its next sync with this node).
    assert upload.total == ciphertext_size(2 * CHUNK_SIZE)
    assert following.total == 0  # the third copy goes only after an answer
    assert node.store.tombstoned([upload.job_id]) == {upload.job_id: "not taken in"}
    assert not any(node.store.incoming.iterdir())


def test_a_full_disk_is_what_the_client_hears_even_when_no_tombstone_can_be_written(
    node: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    def full(*args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(JobStore, "commit", refuse)
    monkeypatch.setattr(JobStore, "delete", full)
    with pytest.raises(InsufficientStorage, match="No space left on device"):
        intake.ingest(node, "alice", "t", "", Body(b"x" * 10))


def test_a_job_cut_off_midway_leaves_the_peers_without_a_whole_copy(
    node: SimpleNamespace,
) -> None:
    class CutOff(Body):
        def read(self, n: int | None = -1) -> bytes:
            if self.tell() >= CHUNK_SIZE:
                raise intake.BadRequest("upload was cut off")
            return super().read(n)

    with pytest.raises(intake.BadRequest, match="cut off"):
        intake.ingest(node, "alice", "t", "", CutOff(b"x" * (3 * CHUNK_SIZE)))
    (upload, *_) = RecordingUpload.made
    assert upload.total < ciphertext_size(3 * CHUNK_SIZE)
    assert not upload.ok  # its stream was cut: the peer drops what it got
    assert not node.store.tombstoned([upload.job_id])  # nothing to take back
