"""Streaming a sealed job to another holder while it is being sealed (or read from disk).

An upload streamed while the job is sealed runs on a thread of its own (a spare one,
`appliance.spare`) fed by a small bounded queue, so the sender never holds more than a
few chunks per peer. A peer that fails stops taking chunks; the others go on. `abort()`
cuts the stream so the peer drops what it received. An upload of a copy already on disk
is `send` in the caller's thread.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from appliance import spare
from appliance.crypto.stream import HEADER_SIZE, parse_header, plaintext_size
from appliance.errors import BadRequest, Conflict, Forbidden, IntegrityError, MeshprintError
from appliance.mesh.budget import check_room
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import parse_holders
from appliance.mesh.peers import Peers
from appliance.store.jobs import Job, check_job_id

QUEUE_CHUNKS = 8
_END = object()
_ABORT = object()


class Aborted(MeshprintError):
    """The upload was cut on purpose (the source failed)."""


def encode_meta(meta: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(meta, separators=(",", ":")).encode()).decode()


def decode_meta(text: str) -> dict[str, Any]:
    data = json.loads(base64.b64decode(text, validate=True))
    if not isinstance(data, dict):
        raise ValueError("metadata is not an object")
    return data


class ReplicaUpload:
    def __init__(
        self,
        peers: Peers,
        node_id: str,
        job_id: str,
        meta: dict[str, Any],
        length: int | None,
        done: threading.Condition,
    ) -> None:
        self.peers = peers
        self.node_id = node_id
        self.job_id = job_id
        self.meta = meta
        self.length = length
        self.done_signal = done
        self.queue: queue.Queue[object] = queue.Queue(QUEUE_CHUNKS)
        self.ok = False
        self.finished = False
        self.error: str | None = None
        self._task: spare.Task | None = None

    def start(self) -> None:
        self._task = spare.spawn(self.run, name=f"replicate-{self.job_id}-{self.node_id}")

    def join(self, timeout: float | None = None) -> None:
        if self._task is not None:
            self._task.join(timeout)

    def put(self, chunk: bytes) -> None:
        if not self.finished:
            self.queue.put(chunk)

    def end(self) -> None:
        if not self.finished:
            self.queue.put(_END)

    def abort(self) -> None:
        if not self.finished:
            self.queue.put(_ABORT)

    def _chunks(self) -> Iterator[bytes]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if item is _ABORT:
                raise Aborted("upload cut off because the source failed")
            assert isinstance(item, bytes)
            yield item

    def run(self) -> None:
        """The streamed upload (`start`): what `put` hands over, until `end`."""
        self.send(self._chunks())
        if not self.ok:
            self._drain()

    def send(self, chunks: Iterable[bytes]) -> None:
        """Upload the whole copy from `chunks` in this thread; `ok` or `error` tell."""
        try:
            self.peers.client(self.node_id, timeout=120.0).put_replica(
                self.job_id, encode_meta(self.meta), chunks, self.length
            )
            self.ok = True
        except MeshprintError as err:
            self.error = str(err)
        except Exception as err:  # a bug or an odd socket error: report it, never hang
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self._finish()

    def fail(self, reason: str) -> None:
        """The copy could not be sent at all (nothing went to the peer)."""
        self.error = reason
        self._finish()

    def _finish(self) -> None:
        with self.done_signal:
            self.finished = True
            self.done_signal.notify_all()

    def _drain(self) -> None:
        """Keep taking chunks after a failure so the producer never blocks on us."""
        while True:
            try:
                item = self.queue.get(timeout=0.5)
            except queue.Empty:
                return  # `finished` is set, so nothing more will be queued
            if item is _END or item is _ABORT:
                return


class Upload(Protocol):
    """A document or replica as it arrives (the HTTPS server's request body is one): its
    declared length when known, and `read(n)`, which returns b"" at its end."""

    @property
    def length(self) -> int | None: ...

    def read(self, n: int = ...) -> bytes: ...


Finish = Callable[[Job, dict[str, Any]], None]


def store_replica(
    mesh: MeshContext,
    job_id: str,
    sender: str,
    meta_text: str,
    body: Upload,
    finish: Finish | None = None,
) -> None:
    """Keep a sealed replica member `sender` sends (streamed), with its metadata
    (`encode_meta`): whole and fsynced, or not at all. Only a holder on the replica's own
    holder list sends one, only for a job this node does not hold yet (a copy is never
    replaced, so a member cannot swap a job's share or list). `finish` runs once the
    document is whole, before it is kept (a repair completes the share there)."""
    check_job_id(job_id)
    try:
        meta = decode_meta(meta_text)
        job = Job.from_replica_meta(meta, 0, 0)
        if job.id != job_id:
            raise ValueError("job id differs")
        parse_holders(meta["holders"], job.holders_version)
    except (ValueError, KeyError, TypeError):
        raise BadRequest("replica metadata is missing or malformed") from None
    listed = {h.node: h.x for h in job.holders}
    if sender not in listed or listed.get(mesh.id) != job.share_x:
        raise Forbidden("a replica comes from a holder on its list, for this node's share point")
    if mesh.store.get(job_id) is not None:
        raise Conflict(f"this node already holds job {job_id}")
    check_room(mesh, body.length or 0)
    incoming = mesh.store.receive(job_id)
    try:
        header = b""
        while piece := body.read():
            if len(header) < HEADER_SIZE:
                header += piece[: HEADER_SIZE - len(header)]
            incoming.write(piece)
        job.size = plaintext_size(incoming.written, parse_header(header))
        job.sealed_size = incoming.written
        if job.size < 0:
            raise IntegrityError("replica is not a whole sealed job")
        if finish is not None:
            finish(job, meta)
    except BaseException:
        incoming.abort()
        raise
    incoming.commit(job)
