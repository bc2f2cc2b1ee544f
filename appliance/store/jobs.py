"""Held jobs on one node: a sealed document file plus a metadata row.

A job becomes visible only when its sealed file is complete and fsynced under its
final name *and* its row is committed; until then it lives in `incoming/` and is
swept at start. So a crash at any moment leaves either the whole job or nothing.
Deleting a job leaves a tombstone, which tells peers that were off to delete theirs. A
job this node was taking in from its client when it stopped gets one too, at start: its
peers may have whole copies of it, which the client was never told were held.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from appliance import spare
from appliance.datadir import create_private, private_dir
from appliance.errors import BadRequest, Conflict, Gone, InsufficientStorage, NotFound
from appliance.portable import fsync_dir, start_writeback
from appliance.printoptions import clean_options
from appliance.store.db import Database
from appliance.store.states import JobState
from appliance.store.submissions import SubmissionKey, SubmissionLog

JOB_ID_RE = re.compile(r"j[0-9a-f]{24}")
TOMBSTONE_DAYS = 7
PRUNE_EVERY = 600.0  # seconds between prunings of old tombstones
# Written data is pushed to the disk in the background, first after one sealed chunk,
# then each time as much again as was written, at most every 16 MiB: a small job's fsync
# at commit finds little left to write, while a large job costs a few dozen data syncs,
# not one per chunk.
WRITEBACK_FIRST = 256 * 1024
WRITEBACK_EVERY = 16 * 1024 * 1024
_datasync = getattr(os, "fdatasync", os.fsync)
TAKING_IN = ".intake"  # incoming/: a job this node takes in from its client
REPLICA = ".part"  # incoming/: a copy a peer sends
NOT_TAKEN_IN = "not taken in: the node stopped before it held the job"
HEARD_FOR = 600.0  # seconds a delete heard before a copy arrived stays in mind
HEARD_MAX = 10_000  # such deletes kept at most (the oldest go first)


def new_job_id() -> str:
    return "j" + secrets.token_hex(12)


def check_job_id(job_id: str) -> str:
    if not JOB_ID_RE.fullmatch(job_id):
        raise NotFound(f"no job {job_id[:40]!r}: job ids look like j0123456789abcdef01234567")
    return job_id


@dataclass(frozen=True)
class Holder:
    node: str
    x: int


@dataclass
class Job:
    id: str
    owner: str
    title: str
    size: int
    sealed_size: int
    created_at: float
    expires_at: float
    holders: list[Holder]
    holders_version: int
    share_x: int
    share: bytes = field(repr=False)
    user_share: bytes = field(repr=False)
    format: str = "application/octet-stream"  # the document's MIME type, as submitted
    state: JobState = JobState.HELD
    release_id: str | None = None
    delivery_node: str | None = None
    reason: str = ""  # why the last delivery failed, shown to the owner
    options: dict[str, Any] = field(default_factory=dict)  # defaults for release (printoptions.py)
    pages: int | None = None  # the document's pages, counted at intake (jobs/pages.py)

    def replica_meta(
        self, holders: list[Holder], version: int, share_x: int, share: bytes
    ) -> dict[str, Any]:
        """What a new holder is sent with the sealed document: its own share only."""
        return {
            "id": self.id,
            "owner": self.owner,
            "title": self.title,
            "format": self.format,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "holders": holders_to_list(holders),
            "holders_version": version,
            "user_share": base64.b64encode(self.user_share).decode(),
            "share_x": share_x,
            "share": base64.b64encode(share).decode(),
            "options": self.options,
            "pages": self.pages,
        }

    @classmethod
    def from_replica_meta(cls, meta: dict[str, Any], size: int, sealed_size: int) -> Job:
        """The job a holder stores from `replica_meta` (ValueError/KeyError if malformed)."""
        return cls(
            id=str(meta["id"]),
            owner=str(meta["owner"]),
            title=str(meta["title"]),
            format=str(meta.get("format", "application/octet-stream"))[:100],
            size=size,
            sealed_size=sealed_size,
            created_at=float(meta["created_at"]),
            expires_at=float(meta["expires_at"]),
            holders=holders_from_list(meta["holders"]),
            holders_version=int(meta["holders_version"]),
            share_x=int(meta["share_x"]),
            share=base64.b64decode(meta["share"], validate=True),
            user_share=base64.b64decode(meta["user_share"], validate=True),
            options=clean_options(meta.get("options")),
            pages=clean_pages(meta.get("pages")),
        )

    def public(self) -> dict[str, object]:
        """What the owner and admins may see: never shares or content."""
        return {
            "id": self.id,
            "owner": self.owner,
            "title": self.title,
            "format": self.format,
            "size": self.size,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "holders": [h.node for h in self.holders],
            "state": str(self.state),
            "release_id": self.release_id,
            "delivery_node": self.delivery_node,
            "reason": self.reason,
            "options": self.options,
            "pages": self.pages,
        }

    def listed(self) -> dict[str, object]:
        """`public()` with the holders version, for job lists merged across holders."""
        return {**self.public(), "holders_version": self.holders_version}

    def holder_info(self) -> dict[str, object]:
        """What a member releasing the job needs from a holder: the public metadata, the
        sealed user share (only the owner's key opens it) and the holders' share points."""
        return {
            **self.public(),
            "user_share": base64.b64encode(self.user_share).decode(),
            "holders_x": holders_to_list(self.holders),
        }


def clean_pages(value: object) -> int | None:
    """A page count from the wire: a whole number from 1, else unknown."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 1_000_000:
        return value
    return None


def holders_from_list(items: list[list[object]]) -> list[Holder]:
    """Holders from their wire and database form [[node id, share point], …]."""
    return [Holder(str(node), int(x)) for node, x in items]  # type: ignore[call-overload]


def holders_to_list(holders: list[Holder]) -> list[list[object]]:
    return [[h.node, h.x] for h in holders]


def _row_to_job(row: object) -> Job:
    r = dict(row)  # type: ignore[call-overload]
    r["holders"] = holders_from_list(json.loads(r["holders"]))
    r["options"] = clean_options(json.loads(r.get("options") or "{}"))
    r["state"] = JobState(r["state"])
    return Job(**r)


def _cannot_store(err: OSError) -> InsufficientStorage:
    return InsufficientStorage(f"this node cannot store the job: {err.strerror}")


class _Writeback:
    """Where the kernel cannot be asked to start writing a file's pages itself
    (`portable.start_writeback`: Linux can), pushes what was written towards the disk
    while more arrives (on a spare thread), so that the fsync before a job is
    acknowledged has little left to do: at most one data sync runs at a time, and a
    wake-up while one runs asks for one more. It works on a descriptor of its own, so
    stopping it never waits for a sync under way."""

    def __init__(self, fd: int) -> None:
        self.fd = os.dup(fd)
        self.wake = threading.Event()
        self.done = False
        spare.spawn(self._run, name="writeback")

    def _run(self) -> None:
        try:
            while True:
                self.wake.wait()
                self.wake.clear()
                if self.done:
                    return
                _datasync(self.fd)
        except OSError:
            return  # the commit's own fsync reports the error
        finally:
            os.close(self.fd)

    def stop(self) -> None:
        self.done = True
        self.wake.set()


class Incoming:
    """A sealed document being written. `commit(job)` makes it a held job; `abort()` drops it.

    Taken in from a client (`taking_in`), its file's name is made durable beside the first
    writes (`wait_recorded`), so that a restart after a crash finds it and tombstones the
    job (`JobStore.recover`)."""

    def __init__(self, store: JobStore, job_id: str, taking_in: bool = False) -> None:
        self.store = store
        self.job_id = job_id
        suffix = TAKING_IN if taking_in else REPLICA
        self.path = store.incoming / f"{job_id}.{secrets.token_hex(4)}{suffix}"
        self.file: BinaryIO = create_private(self.path)  # 0600; closed by commit/abort
        self.written = 0
        self._writeback: _Writeback | None = None
        self._next_writeback = WRITEBACK_FIRST
        self._pushed = 0  # bytes whose writeback was started
        self._unrecorded: OSError | None = None
        self._recording = spare.spawn(self._record, name="record") if taking_in else None

    def _record(self) -> None:
        try:
            fsync_dir(self.store.incoming)
        except OSError as err:
            self._unrecorded = err

    def wait_recorded(self) -> None:
        """Until the file's name is on disk (at once for a replica's)."""
        if self._recording is not None:
            self._recording.join()
            self._recording = None
        if self._unrecorded is not None:
            self.abort()
            raise _cannot_store(self._unrecorded)

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
            self.written += len(data)
            if self.written >= self._next_writeback:
                self._next_writeback = self.written + min(self.written, WRITEBACK_EVERY)
                self._push()
        except OSError as err:
            self.abort()
            raise _cannot_store(err) from None

    def _push(self) -> None:
        """Start writing what was written since the last push to the disk."""
        self.file.flush()
        if start_writeback(self.file.fileno(), self._pushed, self.written - self._pushed):
            self._pushed = self.written
            return
        if self._writeback is None:
            self._writeback = _Writeback(self.file.fileno())
        self._writeback.wake.set()

    def _stop_writeback(self) -> None:
        if self._writeback is not None:
            self._writeback.stop()
            self._writeback = None

    def commit(self, job: Job, key: SubmissionKey | None = None) -> None:
        try:
            self.file.flush()
            self._stop_writeback()
            os.fsync(self.file.fileno())  # beside a writeback still under way: both end
            self.file.close()
            if self.written != job.sealed_size:
                raise BadRequest(
                    f"the document was cut off: got {self.written} of {job.sealed_size} bytes"
                )
            self.store.commit(job, self.path, key)
        except OSError as err:
            self.abort()
            raise _cannot_store(err) from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._stop_writeback()
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


class JobStore:
    def __init__(self, root: Path, db: Database) -> None:
        self.jobs = root / "jobs"
        self.incoming = root / "incoming"
        self.db = db
        self.submissions = SubmissionLog(db)
        self._pruned_at = 0.0
        # job id -> (members, reason, when): deletes heard before a copy was held here
        self._heard: OrderedDict[str, tuple[frozenset[str], str, float]] = OrderedDict()
        self._heard_lock = threading.Lock()
        private_dir(self.jobs)
        private_dir(self.incoming)

    def get_or_hear_delete(self, job_id: str, member: str, reason: str) -> Job | None:
        """The job held here, or None after noting `member`'s word that it is deleted
        (`reason`): a copy committed within HEARD_FOR seconds whose holder list names that
        member is then refused with a tombstone. Not a tombstone at once: a member's word
        about a job this node cannot check would keep a repair from ever bringing it here;
        the copy's holder list checks it. A copy sent just after the job's answer (its third)
        can arrive after the job was already released and deleted everywhere else."""
        with self._heard_lock:
            job = self.get(job_id)
            if job is None:  # every member's word counts: a stranger's cannot hide a holder's
                members = self._heard.get(job_id, (frozenset(), "", 0.0))[0] | {member}
                self._heard[job_id] = (members, reason, time.time())
                self._heard.move_to_end(job_id)
                while len(self._heard) > HEARD_MAX:
                    self._heard.popitem(last=False)
            return job

    def _heard_deleted(self, job: Job) -> str | None:
        """The reason a holder of `job` gave for its delete, heard before it was held here."""
        heard = self._heard.pop(job.id, None)
        if heard is None or time.time() - heard[2] > HEARD_FOR:
            return None
        members, reason, _ = heard
        return reason if members & {h.node for h in job.holders} else None

    def recover(self) -> None:
        """At start: drop half-received documents and files no committed row points to;
        tombstone the jobs this node was taking in from a client (see `Incoming`)."""
        known = {row["id"] for row in self.db.query("SELECT id FROM jobs")}
        for part in self.incoming.iterdir():
            job_id = part.name.split(".", 1)[0]
            if part.suffix == TAKING_IN and JOB_ID_RE.fullmatch(job_id) and job_id not in known:
                self.delete(job_id, NOT_TAKEN_IN)
            part.unlink(missing_ok=True)
        for path in self.jobs.iterdir():
            if path.suffix != ".sealed" or path.stem not in known:
                path.unlink(missing_ok=True)

    def path(self, job_id: str) -> Path:
        return self.jobs / f"{check_job_id(job_id)}.sealed"

    def used_bytes(self) -> int:
        """What the held jobs take on disk (their sealed documents)."""
        rows = self.db.query("SELECT COALESCE(SUM(sealed_size), 0) AS used FROM jobs")
        return int(rows[0]["used"])

    def receive(self, job_id: str, taking_in: bool = False) -> Incoming:
        """Somewhere to write job `job_id`'s sealed document: a copy from a peer, or
        (`taking_in`) the job this node takes in from its client."""
        check_job_id(job_id)
        if self.is_tombstoned(job_id):
            raise Gone(f"job {job_id} was already released or deleted")
        return Incoming(self, job_id, taking_in)

    def is_receiving(self, job_id: str) -> bool:
        """Whether job `job_id`'s document is arriving here, or its commit is under way.
        Ask after looking for the job's row: a commit moves the file before the row shows."""
        return any(self.incoming.glob(f"{job_id}.*")) or self.path(job_id).exists()

    def commit(self, job: Job, part: Path, key: SubmissionKey | None = None) -> None:
        """Make the job held; with its submission's idempotency `key` in the same
        transaction (KeyTaken, and nothing held, when that key is used)."""
        final = self.path(job.id)
        with self._heard_lock:
            heard = self._heard_deleted(job)
            if heard is not None:
                self.delete(job.id, heard)
            self._commit(job, part, final, key)

    def _commit(self, job: Job, part: Path, final: Path, key: SubmissionKey | None) -> None:
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM tombstones WHERE id=?", (job.id,)).fetchone():
                raise Gone(f"job {job.id} was already released or deleted")
            if key is not None:
                self.submissions.record(conn, key, job.id)
            os.replace(part, final)
            fsync_dir(self.jobs)
            conn.execute(
                "INSERT OR REPLACE INTO jobs (id, owner, title, format, size, sealed_size,"
                " created_at, expires_at, holders, holders_version, share_x, share, user_share,"
                " state, options, pages) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job.id,
                    job.owner,
                    job.title,
                    job.format,
                    job.size,
                    job.sealed_size,
                    job.created_at,
                    job.expires_at,
                    json.dumps(holders_to_list(job.holders)),
                    job.holders_version,
                    job.share_x,
                    job.share,
                    job.user_share,
                    job.state,
                    json.dumps(job.options),
                    job.pages,
                ),
            )

    def get(self, job_id: str) -> Job | None:
        rows = self.db.query("SELECT * FROM jobs WHERE id=?", (check_job_id(job_id),))
        return _row_to_job(rows[0]) if rows else None

    def require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id} on this node")
        return job

    def has_jobs(self) -> bool:
        return bool(self.db.query("SELECT 1 FROM jobs LIMIT 1"))

    def all(self, owner: str | None = None) -> list[Job]:
        if owner is None:
            rows = self.db.query("SELECT * FROM jobs ORDER BY created_at")
        else:
            rows = self.db.query("SELECT * FROM jobs WHERE owner=? ORDER BY created_at", (owner,))
        return [_row_to_job(r) for r in rows]

    def delivering(self) -> list[Job]:
        """The jobs a delivery has claimed here (state delivering)."""
        rows = self.db.query("SELECT * FROM jobs WHERE state=?", (str(JobState.DELIVERING),))
        return [_row_to_job(r) for r in rows]

    def open_sealed(self, job_id: str) -> BinaryIO:
        try:
            return open(self.path(job_id), "rb")
        except FileNotFoundError:
            raise NotFound(f"no job {job_id} on this node") from None

    def set_holders(self, job_id: str, holders: list[Holder], version: int) -> bool:
        """Adopt a newer holder list; drop the job here when this node is no longer in it."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET holders=?, holders_version=? WHERE id=? AND holders_version<?",
                (json.dumps(holders_to_list(holders)), version, job_id, version),
            )
            return cur.rowcount > 0

    def drop(self, job_id: str) -> None:
        """Forget a job without a tombstone (it lives on, held elsewhere)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        self.path(job_id).unlink(missing_ok=True)

    def delete(self, job_id: str, reason: str) -> bool:
        """Delete a job for good and leave a tombstone. True when this node held it."""
        check_job_id(job_id)
        with self.db.transaction() as conn:
            held = conn.execute("DELETE FROM jobs WHERE id=?", (job_id,)).rowcount > 0
            conn.execute(
                "INSERT OR IGNORE INTO tombstones (id, reason, at) VALUES (?,?,?)",
                (job_id, reason, time.time()),
            )
        self.path(job_id).unlink(missing_ok=True)
        return held

    def expired_since(self, after: float) -> list[tuple[str, float]]:
        """(job id, when) of the jobs deleted as expired after `after`, oldest first."""
        rows = self.db.query(
            "SELECT id, at FROM tombstones WHERE reason='expired' AND at>? ORDER BY at", (after,)
        )
        return [(str(r["id"]), float(r["at"])) for r in rows]

    def is_tombstoned(self, job_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM tombstones WHERE id=?", (job_id,)))

    def tombstoned(self, job_ids: Iterable[str]) -> dict[str, str]:
        ids = list(job_ids)
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            for row in self.db.query(
                f"SELECT id, reason FROM tombstones WHERE id IN ({marks})", tuple(batch)
            ):
                out[row["id"]] = row["reason"]
        return out

    def expired(self, now: float) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM jobs WHERE expires_at<=?", (now,))]

    def prune_tombstones(self, now: float) -> None:
        """Forget tombstones and idempotency keys older than TOMBSTONE_DAYS; at most once
        per PRUNE_EVERY (the maintenance loop asks every tick)."""
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM tombstones WHERE at<?", (now - TOMBSTONE_DAYS * 86400,))
            self.submissions.prune(conn, now - TOMBSTONE_DAYS * 86400)

    def claim(self, job_id: str, release_id: str, node: str, may_take_over: bool) -> Job:
        """Mark the job as being delivered by `release_id` from `node`. The same release from
        the same node may claim again; anything else only when `may_take_over` (the earlier
        delivery was cut off and the owner asked for a reprint). Conflict otherwise, so a
        job never prints twice by accident — not even when a release is repeated elsewhere."""
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no job {job_id} on this node")
            job = _row_to_job(row)
            busy = job.state in (JobState.DELIVERING, JobState.UNKNOWN) and (
                job.release_id != release_id or job.delivery_node != node
            )
            if busy and not may_take_over:
                raise Conflict(
                    f"job {job_id} is already being printed (release {job.release_id} on node "
                    f"{job.delivery_node})"
                )
            conn.execute(
                "UPDATE jobs SET state=?, release_id=?, delivery_node=?, reason='' WHERE id=?",
                (JobState.DELIVERING, release_id, node, job_id),
            )
        job.state, job.release_id, job.delivery_node = JobState.DELIVERING, release_id, node
        return job

    def mark_unknown(self, job_id: str, release_id: str, node: str, reason: str) -> None:
        """The delivery may or may not have printed: only an explicit reprint takes it on.
        Only the claim of `release_id` by `node` changes."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state=?, reason=? WHERE id=? AND release_id=? AND delivery_node=?",
                (JobState.UNKNOWN, reason[:300], job_id, release_id, node),
            )

    def set_pages(self, job_id: str, pages: int) -> bool:
        """The document's page count, from the node that took it in (once: a count this
        copy has is kept); whether it was set."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET pages=? WHERE id=? AND pages IS NULL", (pages, job_id)
            )
            return cur.rowcount > 0

    def unclaim(self, job_id: str, release_id: str, node: str, reason: str) -> None:
        """Back to held (the delivery did not happen), with the reason for the owner.
        Only the claim of `release_id` by `node` is released."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state=?, release_id=NULL, delivery_node=NULL, reason=?"
                " WHERE id=? AND release_id=? AND delivery_node=?",
                (JobState.HELD, reason[:300], job_id, release_id, node),
            )

    def record_release(self, release_id: str, job_id: str) -> bool:
        """Remember a release id; False when it was seen before (a replay)."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO releases (release_id, job_id, at) VALUES (?,?,?)",
                (release_id, job_id, time.time()),
            )
            return cur.rowcount > 0
