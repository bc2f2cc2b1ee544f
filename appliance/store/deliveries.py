"""The deliveries this node made: one row per release id, so a repeated or redelivered
release command is answered from here instead of printing again."""

from __future__ import annotations

import time
from dataclasses import dataclass

from appliance.clients.models import DeliveryInfo
from appliance.store.db import Database
from appliance.store.states import OPEN_STAGES, Stage


@dataclass(frozen=True)
class Delivery:
    release_id: str
    job_id: str
    printer: str
    stage: Stage
    printer_job: str | None
    reason: str
    updated_at: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))

    def to_dict(self) -> DeliveryInfo:
        return DeliveryInfo(
            release_id=self.release_id,
            job_id=self.job_id,
            printer=self.printer,
            stage=str(self.stage),
            printer_job=self.printer_job,
            reason=self.reason,
            updated_at=self.updated_at,
        )


class DeliveryLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, release_id: str) -> Delivery | None:
        rows = self.db.query("SELECT * FROM deliveries WHERE release_id=?", (release_id,))
        return Delivery(**dict(rows[0])) if rows else None

    def start(self, release_id: str, job_id: str, printer: str) -> Delivery | None:
        """Record a new delivery, before its job is claimed (stage claiming); None when
        this release id was seen before."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO deliveries (release_id, job_id, printer, stage, reason,"
                " updated_at) VALUES (?,?,?,?,'',?)",
                (release_id, job_id, printer, str(Stage.CLAIMING), time.time()),
            )
            if cur.rowcount == 0:
                return None
        return self.get(release_id)

    def update(
        self, release_id: str, stage: Stage, printer_job: str | None = None, reason: str = ""
    ) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET stage=?, printer_job=COALESCE(?, printer_job), reason=?,"
                " updated_at=? WHERE release_id=?",
                (str(stage), printer_job, reason[:300], time.time(), release_id),
            )

    def forget(self, release_id: str) -> None:
        """Drop a delivery that never got its claims (nothing was sent): the same release
        id may be tried again."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM deliveries WHERE release_id=? AND stage=?",
                (release_id, str(Stage.CLAIMING)),
            )

    def open(self) -> list[Delivery]:
        marks = ",".join("?" * len(OPEN_STAGES))
        stages = tuple(str(s) for s in OPEN_STAGES)
        rows = self.db.query(f"SELECT * FROM deliveries WHERE stage IN ({marks})", stages)
        return [Delivery(**dict(r)) for r in rows]

    def changed_since(self, since: float) -> list[Delivery]:
        rows = self.db.query("SELECT * FROM deliveries WHERE updated_at>=?", (since,))
        return [Delivery(**dict(r)) for r in rows]

    def for_job(self, job_id: str) -> list[Delivery]:
        rows = self.db.query(
            "SELECT * FROM deliveries WHERE job_id=? ORDER BY updated_at", (job_id,)
        )
        return [Delivery(**dict(r)) for r in rows]
