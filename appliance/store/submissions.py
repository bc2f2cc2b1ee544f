"""Idempotency keys of submissions: a client that lost the answer to a submit sends it
again with the same key and gets the job it already made instead of a second one.

A key is recorded in the transaction that makes its job held (`JobStore.commit`), so
after kill -9 at any moment there is either the job and its key or neither. A key
belongs to one user; it is kept as long as tombstones are (`prune`). Only a SHA-256 of
the key is stored, and the request's digest is keyed with the key itself, so a stolen
disk cannot confirm a guess of what a job's document was.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass

from appliance.errors import Conflict
from appliance.store.db import Database


@dataclass(frozen=True)
class SubmissionKey:
    """A submission's idempotency key: whose, the key, and the digest of what was sent
    (title, type, options and document, keyed with the key) to tell a repeat from a
    different request."""

    owner: str
    key: str
    digest: str


@dataclass(frozen=True)
class Submission:
    owner: str
    key: str  # its SHA-256
    digest: str
    job_id: str
    at: float


class KeyTaken(Conflict):
    """The key was recorded meanwhile by a concurrent submission (`earlier`)."""

    def __init__(self, earlier: Submission) -> None:
        super().__init__("this idempotency key is already used")
        self.earlier = earlier


class SubmissionLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, owner: str, key: str) -> Submission | None:
        rows = self.db.query(
            "SELECT * FROM submissions WHERE owner=? AND key=?", (owner, _hashed(key))
        )
        return Submission(**dict(rows[0])) if rows else None

    @staticmethod
    def record(conn: sqlite3.Connection, key: SubmissionKey, job_id: str) -> None:
        """Within the transaction that commits the job; KeyTaken if the key is used."""
        hashed = _hashed(key.key)
        row = conn.execute(
            "SELECT * FROM submissions WHERE owner=? AND key=?", (key.owner, hashed)
        ).fetchone()
        if row is not None:
            raise KeyTaken(Submission(**dict(row)))
        conn.execute(
            "INSERT INTO submissions (owner, key, digest, job_id, at) VALUES (?,?,?,?,?)",
            (key.owner, hashed, key.digest, job_id, time.time()),
        )

    @staticmethod
    def prune(conn: sqlite3.Connection, before: float) -> None:
        conn.execute("DELETE FROM submissions WHERE at<?", (before,))


def _hashed(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
