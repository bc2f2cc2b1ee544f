"""Job events and printer status, found by comparing this node's state with what it was
a moment ago (so the job code needs no hooks): metadata only, never content or title.

    held        a job was taken in here (this node is its first holder)
    replicated  a copy of a job arrived here (replication or repair)
    released    this node started delivering a job to a printer
    printed     the printer reported a job this node delivered as printed
    failed      a delivery from this node failed (the job is held again)
    expired     a job held here expired and was deleted
"""

from __future__ import annotations

import time
from typing import Any

from appliance.mqtt.context import AgentContext
from appliance.store import printer_status
from appliance.store.states import Stage

Event = dict[str, Any]


class Watcher:
    """Call `changes()` periodically; the first call only takes the baseline."""

    def __init__(self, node: AgentContext) -> None:
        self.node = node
        self._jobs: dict[str, int] | None = None
        self._deliveries: dict[str, Stage] = {}
        self._expired_after = time.time()
        self._printers: dict[str, Any] | None = None

    def changes(self) -> list[Event]:
        node = self.node
        now = time.time()
        events: list[Event] = []
        jobs = {job.id: job for job in node.store.all()}
        deliveries = {d.release_id: d for d in node.deliveries.changed_since(now - 3600)}
        if self._jobs is not None:
            for job in jobs.values():
                if job.id in self._jobs:
                    continue
                first = job.holders[0].node if job.holders else None
                events.append(
                    self._event(
                        "held" if first == node.id else "replicated",
                        job.id,
                        owner=job.owner,
                        size=job.size,
                        holders=[h.node for h in job.holders],
                    )
                )
            for release_id, d in deliveries.items():
                before = self._deliveries.get(release_id)
                where = {"release_id": release_id, "printer": d.printer}
                if before is None:
                    events.append(self._event("released", d.job_id, **where))
                if d.stage != before and d.stage in (Stage.PRINTED, Stage.FAILED):
                    events.append(self._event(str(d.stage), d.job_id, **where))
        for job_id, at in node.store.expired_since(self._expired_after):
            events.append(self._event("expired", job_id))
            self._expired_after = at
        self._jobs = {job_id: len(job.holders) for job_id, job in jobs.items()}
        self._deliveries = {rid: d.stage for rid, d in deliveries.items()}
        return events

    def printers(self) -> dict[str, Any] | None:
        """This node's printer status when it changed since the last call, else None."""
        status = {
            name: {k: v for k, v in s.items() if k != "checked_at"}
            for name, s in printer_status.known(self.node.db).items()
        }
        if status == self._printers:
            return None
        self._printers = status
        return status

    def forget_printers(self) -> None:
        self._printers = None

    def _event(self, kind: str, job_id: str, **details: Any) -> Event:
        return {"event": kind, "job": job_id, "node": self.node.id, "at": time.time(), **details}
