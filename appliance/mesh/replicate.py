"""A sealed job's copy, sent to another holder (`ReplicaUpload`) and kept by it
(`store_replica`).

`ReplicaUpload.send` uploads one copy in the caller's thread, from pieces as they are
sealed (intake iterates them in the request's own thread) or read from disk: a peer that
fails ends its upload with `error` set and takes nothing more; an exception from the
pieces themselves cuts the upload, so the peer drops what it received.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from appliance.crypto.stream import HEADER_SIZE, parse_header, plaintext_size
from appliance.errors import BadRequest, Conflict, Forbidden, IntegrityError, MeshprintError
from appliance.mesh.budget import check_room
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import parse_holders
from appliance.mesh.peers import Peers
from appliance.store.jobs import Job, check_job_id


def encode_meta(meta: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(meta, separators=(",", ":")).encode()).decode()


def decode_meta(text: str) -> dict[str, Any]:
    data = json.loads(base64.b64decode(text, validate=True))
    if not isinstance(data, dict):
        raise ValueError("metadata is not an object")
    return data


class ReplicaUpload:
    """One peer's copy of a job: `send` it; then `ok`, or `error` says why not."""

    def __init__(
        self, peers: Peers, node_id: str, job_id: str, meta: dict[str, Any], length: int | None
    ) -> None:
        self.peers = peers
        self.node_id = node_id
        self.job_id = job_id
        self.meta = meta
        self.length = length
        self.ok = False
        self.finished = False
        self.error: str | None = None

    def send(self, pieces: Iterable[bytes]) -> None:
        """Upload the whole copy from `pieces` in this thread."""
        try:
            self.peers.client(self.node_id, timeout=120.0).put_replica(
                self.job_id, encode_meta(self.meta), pieces, self.length
            )
            self.ok = True
        except MeshprintError as err:
            self.error = str(err)
        except Exception as err:  # the pieces' own failure, a bug or an odd socket error
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self.finished = True

    def fail(self, reason: str) -> None:
        """The copy could not be sent at all (nothing went to the peer)."""
        self.error, self.finished = reason, True


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
