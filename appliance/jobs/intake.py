"""Intake: a document comes in, is sealed under a fresh key as it streams, and lands on
up to three holders. The key is split 2-of-4 (three holders + the owner); each holder
receives only its own share. The job is acknowledged once two holders have it durably:
this node and one peer, whose copy streams in beside this node's and is committed beside
it, not after it; should this node stop before its own commit, it finds the job's intake
file at start and tombstones the job, so the peer drops a copy the client never saw
accepted. The third copy follows the answer, sent from the committed file. A holder that
fails is dropped from the job's holder list so repair can replace it.

A submission may carry an idempotency key (the client's choice, header
`Idempotency-Key`): the key is recorded with the job as it becomes held, so the same
request again — after an answer lost to a dropped connection or a node killed before it
answered — returns that job instead of a second one; the same key with another document
(or title, type, options) is a Conflict.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from appliance import spare
from appliance.crypto import shamir
from appliance.crypto.stream import CHUNK_SIZE, ciphertext_size, encrypt_stream
from appliance.crypto.userkeys import seal, unb64
from appliance.errors import (
    BadRequest,
    Conflict,
    Gone,
    MeshprintError,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from appliance.jobs.options import from_query
from appliance.jobs.pages import PageCounter
from appliance.jobs.sniff import OCTET_STREAM, SNIFF_SIZE, sniff
from appliance.mesh.budget import check_room, peer_room
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import change_holders, delete_everywhere
from appliance.mesh.placement import USER_X, choose_holders, share_points
from appliance.mesh.replicate import ReplicaUpload, Upload
from appliance.printoptions import clean_options
from appliance.site.ca import sha256_hex
from appliance.site.directory import Directory
from appliance.store.jobs import Incoming, Job, new_job_id
from appliance.store.submissions import KeyTaken, Submission, SubmissionKey

log = logging.getLogger(__name__)
TITLE_MAX = 200
FORMAT_RE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,40}/[a-z0-9][a-z0-9.+-]{0,60}")
IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def check_idempotency_key(key: str | None) -> str | None:
    """A submission's idempotency key as the client sent it (None: none sent)."""
    if key is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise BadRequest("an idempotency key is 16-64 letters, digits, '_' or '-'")
    return key


@dataclass
class Receipt:
    job: Job
    durable_on: list[str]
    pending: list[str]

    def to_dict(self) -> dict[str, object]:
        return {
            **self.job.public(),
            "durable_on": self.durable_on,
            "replicating_to": self.pending,
            "under_replicated": len(self.durable_on) + len(self.pending) < 3,
        }


def clean_format(content_type: str) -> str:
    """The document's MIME type from a Content-Type header; octet-stream when unusable."""
    mime = content_type.split(";")[0].strip().lower()
    return mime if FORMAT_RE.fullmatch(mime) else OCTET_STREAM


def clean_title(title: str) -> str:
    title = "".join(ch for ch in title if ch.isprintable()).strip()
    return title[:TITLE_MAX] or "Untitled"


def ingest(
    node: MeshContext,
    owner: str,
    title: str,
    content_type: str,
    body: Upload,
    options: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> Receipt:
    """Seal and store the document `body` as `owner`'s job; its receipt. With an
    idempotency key already used by `owner`, the job made then (nothing new is stored)."""
    directory = node.directory()
    user = directory.user(owner)
    if user is None:
        raise Unauthorized("wrong user name or token")
    settings = directory.settings
    if body.length is not None and body.length > settings.max_job_size:
        raise TooLarge(
            f"the document is {body.length} bytes; this site accepts at most "
            f"{settings.max_job_size} bytes per job"
        )
    sealed_size = ciphertext_size(body.length) if body.length is not None else None
    options = clean_options(options)
    request_digest = _request_digest(idempotency_key, title, content_type, options)
    if idempotency_key is not None:
        earlier = node.store.submissions.get(owner, idempotency_key)
        if earlier is not None:
            drained = _Counted(body, b"", settings.max_job_size, request_digest)
            while drained.read(CHUNK_SIZE):
                pass
            return _repeated(node, earlier, drained.digest())
    check_room(node, sealed_size or 0)

    job_id = new_job_id()
    me = directory.node(node.id)
    assert me is not None
    live_peers = [n for n in node.peers.live() if n.id != node.id and n.reachable]
    holders = share_points(
        choose_holders(job_id, me, live_peers, room=peer_room(node), needed=sealed_size or 0)
    )
    document_format = clean_format(content_type)
    first = b""
    if document_format == OCTET_STREAM:  # unsaid: its first bytes tell
        first = body.read(SNIFF_SIZE)
        document_format = sniff(first)
    key = os.urandom(32)
    shares = shamir.split(key, [h.x for h in holders] + [USER_X])
    now = time.time()
    job = Job(
        id=job_id,
        owner=owner,
        title=clean_title(title),
        format=document_format,
        size=0,  # known once the whole document has streamed in
        sealed_size=0,
        created_at=now,
        expires_at=now + settings.retention,
        holders=holders,
        holders_version=1,
        share_x=holders[0].x,
        share=shares[holders[0].x],
        user_share=seal(unb64(user.public_key), shares[USER_X], job_id.encode()),
        options=options,
    )
    uploads = [
        ReplicaUpload(
            node.peers, h.node, job_id, job.replica_meta(holders, 1, h.x, shares[h.x]), sealed_size
        )
        for h in holders[1:]
    ]
    del shares
    source = _Counted(body, first, settings.max_job_size, request_digest)
    source.pages = PageCounter(document_format)
    sealed = encrypt_stream(source.read, key, job_id.encode(), CHUNK_SIZE, body.length)
    del key
    incoming = node.store.receive(job_id, taking_in=True)

    def commit() -> None:
        job.size = source.size
        job.pages = source.pages.pages if source.pages is not None else None
        job.sealed_size = ciphertext_size(job.size)
        submission = None
        if idempotency_key is not None:
            submission = SubmissionKey(owner, idempotency_key, source.digest())
        incoming.commit(job, submission)

    # One peer's copy streams beside this node's, and the two are what the answer waits
    # for; the third copy follows the answer, sent from the file committed here, so the
    # two have the machine (its cores, disk and uplink) to themselves.
    streamed, following = uploads[:1], uploads[1:]
    kept = _KeptHere(incoming, sealed, commit)
    try:
        for upload in streamed:
            upload.send(kept)
        if kept.error is not None:
            raise kept.error
        kept.keep_rest()  # no peer, or it failed before the end: the rest is kept here
    except BaseException as err:
        incoming.abort()
        if kept.handed_on and isinstance(err, Exception):
            _withdraw(node, job_id, streamed, err)
        if isinstance(err, KeyTaken):  # the same request, at the same time
            return _repeated(node, err.earlier, source.digest())
        raise

    # Durable here plus on one peer is enough to answer. Should the streamed copy fail,
    # the next peer is sent the copy committed here before the answer, in its place.
    sent_to = list(streamed)
    while not any(u.ok for u in sent_to) and following:
        upload = following.pop(0)
        _send_held(node, job, upload)
        sent_to.append(upload)
    if sent_to and not any(u.ok for u in sent_to):
        node.store.delete(job_id, "not replicated")
        reasons = "; ".join(f"{u.node_id}: {u.error or 'no answer'}" for u in sent_to)
        raise Unavailable(
            f"could not store a second copy of the job, so it was not accepted ({reasons})"
        )
    spare.spawn(_settle, node, job, sent_to, following, name=f"settle-{job_id}")
    return Receipt(
        job,
        durable_on=[node.id] + [u.node_id for u in sent_to if u.ok],
        pending=[u.node_id for u in following],
    )


class _HereFailed(Exception):
    """Ends the streamed peer's upload when this node's own part failed."""


class _KeptHere:
    """The sealed pieces, each written to this node's intake file before the streamed
    peer's upload (which iterates them) sends it: the header first, a document piece
    only once the file's name is on disk, so that if this node stops before it commits
    it tombstones the job at start and the peer drops its copy (a retry with the same
    key makes a new job then). After the last piece went out, the job is committed here
    while the peer commits its copy. A failure here is kept in `error` and cuts the
    upload (`_HereFailed`)."""

    def __init__(
        self, incoming: Incoming, sealed: Iterator[bytes], commit: Callable[[], None]
    ) -> None:
        self.incoming, self._commit = incoming, commit
        self.error: Exception | None = None
        self.handed_on = False  # the peer was sent all of it
        self.committed = False
        self._pieces = self._keep(sealed)

    def _keep(self, sealed: Iterator[bytes]) -> Iterator[bytes]:
        for index, piece in enumerate(sealed):
            self.incoming.write(piece)
            if index:
                self.incoming.wait_recorded()
            yield piece

    def __iter__(self) -> Iterator[bytes]:
        try:
            for piece in self._pieces:  # noqa: UP028 (yield from would close `_pieces` too)
                yield piece
            self.handed_on = True
            self.commit()
        except Exception as err:
            self.error = err
            raise _HereFailed(str(err)) from err

    def commit(self) -> None:
        self._commit()
        self.committed = True

    def keep_rest(self) -> None:
        """What no peer took (all of it, or the rest after a peer failed), kept here."""
        if not self.committed:
            for _ in self._pieces:
                pass
            self.commit()


def _send_held(node: MeshContext, job: Job, upload: ReplicaUpload) -> None:
    """Send `upload`'s peer the job's copy committed here, with its page count and size
    (known now, so the peer needs no word of them later)."""
    upload.meta["pages"], upload.length = job.pages, job.sealed_size
    try:
        if node.store.get(job.id) is None:
            raise NotFound(f"job {job.id} was released or deleted before this copy")
        sealed = node.store.open_sealed(job.id)
    except NotFound as err:  # released and deleted since the answer
        upload.fail(str(err))
        return
    with sealed:
        upload.send(iter(lambda: sealed.read(CHUNK_SIZE), b""))
    if upload.ok and node.store.get(job.id) is None:
        # Released (or deleted) while the copy went, and the peer was not told then (it
        # did not hold it yet, and was not reachable for the word to wait there): now.
        reason = node.store.tombstoned([job.id]).get(job.id, "deleted")
        upload.ok, upload.error = False, f"the job was {reason} while its copy went"
        try:
            node.peers.client(upload.node_id).delete(job.id, reason)
        except MeshprintError as err:
            log.warning("job %s: %s keeps a copy until it syncs: %s", job.id, upload.node_id, err)


def _withdraw(node: MeshContext, job_id: str, uploads: list[ReplicaUpload], err: Exception) -> None:
    """This node could not commit a job whose streamed peer may have a whole copy: delete
    it (a peer still committing meets the tombstone, here or at its next sync)."""
    reason = "repeated submission" if isinstance(err, KeyTaken) else "not taken in"
    try:
        delete_everywhere(node, job_id, reason, holders=[u.node_id for u in uploads])
    except Exception as failure:  # a full disk, say: the error being answered comes first
        log.warning("job %s: copies on the peers not withdrawn: %s", job_id, failure)


def _request_digest(
    key: str | None, title: str, content_type: str, options: dict[str, Any]
) -> hmac.HMAC | None:
    """An HMAC-SHA256 under the idempotency `key` of what the request says besides the
    document (which follows), or None without a key. Keyed, so the digest kept on disk
    cannot confirm a guess of a document's content without the client's key."""
    if key is None:
        return None
    said = json.dumps([clean_title(title), content_type, options], sort_keys=True)
    return hmac.new(key.encode(), said.encode() + b"\0", hashlib.sha256)


def _repeated(node: MeshContext, earlier: Submission, digest: str) -> Receipt:
    """The answer to a submission repeated with its idempotency key: the job it made."""
    if not hmac.compare_digest(digest, earlier.digest):
        raise Conflict(
            "this idempotency key was used for another submission (a different document, "
            "title, type or options): choose a new key for a new job"
        )
    job = node.store.get(earlier.job_id)
    if job is None:
        raise Gone(f"job {earlier.job_id}, submitted with this key, was released or deleted")
    log.info("job %s: submission repeated with its idempotency key", job.id)
    return Receipt(job, durable_on=[h.node for h in job.holders], pending=[])


class _Counted:
    """The body as `read(n)` for the sealer: what was already read comes first, the size
    is counted, the site's limit enforced and the request digest updated as the document
    streams."""

    def __init__(self, body: Upload, first: bytes, limit: int, digest: hmac.HMAC | None) -> None:
        self.body, self.pending, self.limit, self.size = body, first, limit, 0
        self._digest = digest
        self.pages: PageCounter | None = None  # counts the pages as they pass

    def digest(self) -> str:
        return self._digest.hexdigest() if self._digest is not None else ""

    def read(self, n: int) -> bytes:
        if self.pending:
            data, self.pending = self.pending[:n], self.pending[n:]
        else:
            data = self.body.read(n)
        if self._digest is not None:
            self._digest.update(data)
        if self.pages is not None:
            self.pages.feed(data)
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"the document is larger than this site's limit of {self.limit} bytes")
        return data


def _settle(
    node: MeshContext, job: Job, sent_to: list[ReplicaUpload], following: list[ReplicaUpload]
) -> None:
    """After the answer: send the third copy, tell the streamed copy the page count, and
    drop the holders whose copy failed from the job."""
    for upload in following:
        _send_held(node, job, upload)
    uploads = sent_to + following
    for upload in uploads:
        if upload.ok and job.pages is not None and upload.meta.get("pages") is None:
            # a streamed replica's metadata went before the document, so before its count
            try:
                node.peers.client(upload.node_id).set_pages(job.id, job.pages)
            except MeshprintError as err:
                log.info("job %s: pages not told to %s: %s", job.id, upload.node_id, err)
    failed = {u.node_id for u in uploads if not u.ok}
    if not failed:
        return
    for upload in uploads:
        if not upload.ok:
            log.warning("job %s: copy to %s failed: %s", job.id, upload.node_id, upload.error)
    try:
        change_holders(node, job.id, [h for h in job.holders if h.node not in failed])
    except MeshprintError as err:
        log.warning("job %s: could not update holders: %s", job.id, err)


def check_submit_token(directory: Directory, user: str, token: str) -> None:
    """The user's submit token, checked in constant time (and as long for no such user)."""
    record = directory.user(user)
    expected = record.token_hash if record else sha256_hex(b"no such user")
    if not hmac.compare_digest(sha256_hex(token.encode()), expected) or record is None:
        raise Unauthorized("wrong user name or token")


def ingest_on_behalf(
    node: MeshContext,
    query: dict[str, str],
    content_type: str,
    body: Upload,
    idempotency_key: str | None = None,
) -> Receipt:
    """A job the local Secure Print backend hands in for the user `query` names, with the
    options CUPS was given (`POST /v1/intake?user=U&title=T&copies=N&sides=S&color=0|1`)."""
    given = query.get("user", "")
    # The queue's user name, or one of a user's aliases (a Windows HOST\\user, a macOS
    # short name), regardless of case.
    user = node.directory().find_user(given)
    if user is None:
        raise NotFound(
            f"unknown user {clean_title(given)[:64]}: this site has no such user or alias, "
            "so the job was not accepted (print as your meshprint user name, or ask the "
            "administrator to add this name as your alias)"
        )
    title = query.get("title", "Untitled")
    return ingest(node, user.name, title, content_type, body, from_query(query), idempotency_key)
