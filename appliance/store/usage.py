"""Usage records: one row per printed release (job id + release id), metadata only.

The delivering node writes a draft as the document goes to the printer and completes
it when the printer reports the job printed; a draft whose delivery failed is dropped.
A node other than the controller keeps its records until the controller has them
(`forwarded`); the controller keeps every node's, inserted once whatever how often they
are sent (the primary key).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from appliance.store.db import Database
from appliance.store.states import OPEN_STAGES

PENDING, PRINTED = "pending", "printed"
SOURCES = ("printer", "document", "unknown")


@dataclass(frozen=True)
class UsageRecord:
    job_id: str
    release_id: str
    user: str
    printer: str
    node: str  # the node that delivered it
    at: float  # when it printed (the draft: when it was sent)
    copies: int
    duplex: bool
    color: bool
    doc_pages: int | None  # the document's pages, counted at intake
    pages: int = 0  # impressions (page sides printed)
    sheets: int = 0  # sheets of paper
    source: str = ""  # where `pages` came from: printer, document or unknown
    state: str = PENDING

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: Any) -> UsageRecord:
        r = dict(row)
        r.pop("forwarded", None)
        r["duplex"], r["color"] = bool(r["duplex"]), bool(r["color"])
        return cls(**r)


class UsageLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def draft(self, record: UsageRecord) -> None:
        """The delivery's record as it is sent (once per release id)."""
        self._insert([record], forwarded=False)

    def drop(self, job_id: str, release_id: str) -> None:
        """A draft whose delivery did not print."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM usage WHERE job_id=? AND release_id=? AND state=?",
                (job_id, release_id, PENDING),
            )

    def printed(
        self, job_id: str, release_id: str, pages: int, sheets: int, source: str, forwarded: bool
    ) -> UsageRecord | None:
        """Complete a draft with what was printed; None when there is no draft (or it
        was completed already: the first report counts)."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE usage SET pages=?, sheets=?, source=?, state=?, at=?, forwarded=?"
                " WHERE job_id=? AND release_id=? AND state=?",
                (pages, sheets, source, PRINTED, time.time(), int(forwarded), job_id, release_id,
                 PENDING),
            )  # fmt: skip
            if cur.rowcount == 0:
                return None
        return self.get(job_id, release_id)

    def get(self, job_id: str, release_id: str) -> UsageRecord | None:
        rows = self.db.query(
            "SELECT * FROM usage WHERE job_id=? AND release_id=?", (job_id, release_id)
        )
        return UsageRecord.from_row(rows[0]) if rows else None

    def accept(self, records: list[UsageRecord]) -> int:
        """Printed records from another node (controller): each kept once; how many were
        new."""
        return self._insert([r for r in records if r.state == PRINTED], forwarded=True)

    def _insert(self, records: list[UsageRecord], forwarded: bool) -> int:
        new = 0
        with self.db.transaction() as conn:
            for r in records:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO usage (job_id, release_id, user, printer, node, at,"
                    " copies, duplex, color, doc_pages, pages, sheets, source, state, forwarded)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r.job_id, r.release_id, r.user, r.printer, r.node, r.at, r.copies,
                     int(r.duplex), int(r.color), r.doc_pages, r.pages, r.sheets, r.source,
                     r.state, int(forwarded)),
                )  # fmt: skip
                new += cur.rowcount
        return new

    def pending(self, user: str) -> list[UsageRecord]:
        """`user`'s drafts whose delivery is still open: jobs this node is printing now
        (not one cut off, whose draft stays as it was)."""
        marks = ",".join("?" * len(OPEN_STAGES))
        rows = self.db.query(
            "SELECT usage.* FROM usage JOIN deliveries ON deliveries.release_id=usage.release_id"
            f" WHERE usage.state=? AND usage.user=? AND deliveries.stage IN ({marks})",
            (PENDING, user, *(str(s) for s in OPEN_STAGES)),
        )
        return [UsageRecord.from_row(r) for r in rows]

    def unforwarded(self, limit: int = 200) -> list[UsageRecord]:
        rows = self.db.query(
            "SELECT * FROM usage WHERE state=? AND forwarded=0 ORDER BY at LIMIT ?",
            (PRINTED, limit),
        )
        return [UsageRecord.from_row(r) for r in rows]

    def mark_forwarded(self, records: list[UsageRecord]) -> None:
        with self.db.transaction() as conn:
            for r in records:
                conn.execute(
                    "UPDATE usage SET forwarded=1 WHERE job_id=? AND release_id=?",
                    (r.job_id, r.release_id),
                )

    def between(
        self, since: float = 0.0, until: float = float("inf"), user: str | None = None
    ) -> list[UsageRecord]:
        """Printed records with `since <= at < until`, oldest first (one user's, if named)."""
        sql = "SELECT * FROM usage WHERE state=? AND at>=? AND at<?"
        params: tuple[object, ...] = (PRINTED, since, min(until, 1e18))
        if user is not None:
            sql += " AND user=?"
            params += (user,)
        rows = self.db.query(sql + " ORDER BY at", params)
        return [UsageRecord.from_row(r) for r in rows]
