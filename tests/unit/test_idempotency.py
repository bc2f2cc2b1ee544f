"""Submission idempotency keys: checked, recorded atomically with the job, one per user,
retried once by the client on a lost answer, the same for every CUPS attempt."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from appliance.clients.node import IDEMPOTENCY_HEADER, NodeClient, lost_answer
from appliance.errors import BadRequest, Conflict, Unavailable, from_wire
from appliance.intake import backend
from appliance.jobs.intake import check_idempotency_key
from appliance.store.jobs import JobStore
from appliance.store.submissions import KeyTaken, SubmissionKey

from .conftest import JobFactory


def test_keys_are_checked() -> None:
    assert check_idempotency_key(None) is None
    assert check_idempotency_key("A" * 16) == "A" * 16
    assert check_idempotency_key("a_b-c" * 12 + "abcd") == "a_b-c" * 12 + "abcd"
    for bad in ("", "short", "x" * 65, "with space 0123456789", "slash/0123456789abc", "é" * 20):
        with pytest.raises(BadRequest):
            check_idempotency_key(bad)


def _commit(store: JobStore, make_job: JobFactory, key: SubmissionKey | None) -> str:
    job = make_job(sealed_size=10)
    incoming = store.receive(job.id)
    incoming.write(os.urandom(10))
    incoming.commit(job, key)
    return job.id


def test_a_key_is_recorded_with_its_job_and_only_once(
    store: JobStore, make_job: JobFactory
) -> None:
    key = SubmissionKey("alice", "k" * 20, "digest-1")
    job_id = _commit(store, make_job, key)
    found = store.submissions.get("alice", "k" * 20)
    assert found is not None and (found.job_id, found.digest) == (job_id, "digest-1")
    assert store.submissions.get("bob", "k" * 20) is None  # keys are per user
    # The disk keeps a hash of the key, not the key (it keys the request's digest).
    raw = store.db.query("SELECT key FROM submissions")
    assert [r["key"] for r in raw] == [hashlib.sha256(b"k" * 20).hexdigest()]
    # A second job with the same key is not held at all: no row, no file left behind.
    with pytest.raises(KeyTaken) as info:
        _commit(store, make_job, SubmissionKey("alice", "k" * 20, "digest-2"))
    assert info.value.earlier.job_id == job_id and isinstance(info.value, Conflict)
    assert [j.id for j in store.all()] == [job_id]
    assert sorted(p.stem for p in store.jobs.iterdir()) == [job_id]
    assert list(store.incoming.iterdir()) == []
    # Bob's own use of the same key is his.
    bobs = _commit(store, make_job, SubmissionKey("bob", "k" * 20, "digest-1"))
    assert {j.id for j in store.all()} == {job_id, bobs}


def test_keys_are_pruned_with_the_tombstones(store: JobStore, make_job: JobFactory) -> None:
    _commit(store, make_job, SubmissionKey("alice", "k" * 20, "d"))
    store.prune_tombstones(now=10**12)
    assert store.submissions.get("alice", "k" * 20) is None


class _Client(NodeClient):
    """A NodeClient whose posts go to `answers` (an error to raise, or a receipt)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.posts: list[tuple[bytes, dict[str, str]]] = []

    def _receipt(self, path: str, document: Any, headers: dict[str, str], length: Any) -> Any:
        body = document if isinstance(document, bytes) else b"".join(document)
        self.posts.append((body, dict(headers)))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_a_lost_answer_is_retried_once_with_the_same_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("appliance.clients.node.RETRY_PAUSE", 0)
    client = _Client([Unavailable("connection reset"), {"id": "j1"}])
    assert client.submit(("alice", "t"), b"doc", "title") == {"id": "j1"}
    (first, h1), (again, h2) = client.posts
    assert first == again == b"doc"
    assert h1[IDEMPOTENCY_HEADER] == h2[IDEMPOTENCY_HEADER] and len(h1[IDEMPOTENCY_HEADER]) == 32
    # A document given as a callable is produced anew for the retry.
    client = _Client([Unavailable("timed out"), {"id": "j2"}])
    client.submit(None, lambda: iter([b"a", b"b"]), "t", idempotency_key="K" * 20)
    assert [p[0] for p in client.posts] == [b"ab", b"ab"]
    assert {p[1][IDEMPOTENCY_HEADER] for p in client.posts} == {"K" * 20}


def test_no_retry_when_the_node_answered_or_the_document_streams_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("appliance.clients.node.RETRY_PAUSE", 0)
    answered = from_wire(503, {"error": "no second copy", "type": "Unavailable"}, "node")
    assert isinstance(answered, Unavailable) and not lost_answer(answered)
    client = _Client([answered, {"id": "never"}])
    with pytest.raises(Unavailable):
        client.submit(None, b"doc", "t")
    assert len(client.posts) == 1
    client = _Client([Unavailable("reset"), {"id": "never"}])
    with pytest.raises(Unavailable):
        client.submit(None, iter([b"streamed"]), "t")
    assert len(client.posts) == 1
    # Lost twice: the error goes to the caller after the one retry.
    client = _Client([Unavailable("reset"), Unavailable("reset again")])
    with pytest.raises(Unavailable, match="again"):
        client.submit(None, b"doc", "t")
    assert len(client.posts) == 2


def test_the_backend_key_is_the_same_for_every_attempt_at_one_cups_job(tmp_path: Path) -> None:
    spooled = tmp_path / "d00042-001"
    document = b"%PDF-1.4 " + os.urandom(600_000)
    spooled.write_bytes(document)
    said = ["alice", "doc", "application/pdf"]
    with spooled.open("rb") as one, spooled.open("rb") as two:
        key = backend.idempotency_key("42", one, said)
        assert one.tell() == 0  # the document is not read for it
        assert backend.idempotency_key("42", two, said) == key
    assert check_idempotency_key(key) == key
    assert hashlib.sha256(document).hexdigest()[:32] not in key
    with spooled.open("rb") as source:
        assert backend.idempotency_key("43", source, said) != key
    # The next job's file, even under a job id cupsd hands out again, is another key.
    spooled.unlink()
    spooled.write_bytes(b"%PDF-1.4 another document")
    with spooled.open("rb") as source:
        assert backend.idempotency_key("42", source, said) != key
    # From a filter's pipe: the job id and what CUPS said about it.
    piped = io.BytesIO(b"raster")
    assert check_idempotency_key(backend.idempotency_key("42", piped, said))
