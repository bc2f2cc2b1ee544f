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


class Recorder:
    """Keeps this node's events in its database (`store.node_events`) whether or not a
    broker is named: the job events of a `Watcher`, and members going up or down as
    this node's peer view sees them. `step()` periodically; the first step takes the
    baseline (nothing is recorded for what was already there)."""

    def __init__(self, node: AgentContext) -> None:
        self.node = node
        self.watcher = Watcher(node)
        self._live: dict[str, bool] | None = None

    def step(self) -> None:
        from appliance.store import node_events

        db = self.node.db
        for event in self.watcher.changes():
            fields = {k: v for k, v in event.items() if k not in ("event", "owner")}
            node_events.record(db, str(event["event"]), **fields)
        members = self.node.directory().nodes
        live = {
            node_id: node_id == self.node.id or self.node.peers.is_live(node_id)
            for node_id in members
        }
        if self._live is not None:
            for node_id, up in live.items():
                if self._live.get(node_id, False) != up:
                    node_events.record(db, "node-up" if up else "node-down", node=node_id)
        self._live = live


def start_recorder(node: AgentContext, stop: Any, interval: float = 2.0) -> None:
    """Record events in a thread of its own until `stop` (a threading.Event) is set."""
    import logging
    import threading

    log = logging.getLogger(__name__)

    def run() -> None:
        recorder = Recorder(node)
        while not stop.is_set():
            try:
                recorder.step()
            except Exception:
                log.exception("event log step failed")
            stop.wait(interval)

    threading.Thread(target=run, name="event-log", daemon=True).start()
