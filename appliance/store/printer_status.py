"""The last status of each printer, as this node's SNMP monitor saw it (`printer_status`
table): ready or not, why not, when, and the SNMP details (supplies, pages, alerts)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.store.db import Database

MAX_REASON = 300


@dataclass(frozen=True)
class PolledStatus:
    name: str
    checked_at: float
    ready: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)  # device, errors, pages, supplies …

    def to_dict(self) -> dict[str, Any]:
        """ready, reason, checked_at and the details, as the status API shows them."""
        return {
            "ready": self.ready,
            "reason": self.reason,
            "checked_at": self.checked_at,
            **self.details,
        }


def record(db: Database, name: str, ready: bool, reason: str, details: dict[str, Any]) -> None:
    """Keep what a poll of printer `name` found, replacing the last one."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO printer_status (name, checked_at, ready, reason, status)"
            " VALUES (?,?,?,?,?)",
            (name, time.time(), int(ready), reason[:MAX_REASON], json.dumps(details)),
        )


def latest(db: Database) -> dict[str, PolledStatus]:
    """The last status of each printer polled, by printer name."""
    return {
        row["name"]: PolledStatus(
            row["name"],
            row["checked_at"],
            bool(row["ready"]),
            row["reason"],
            json.loads(row["status"]),
        )
        for row in db.query("SELECT * FROM printer_status")
    }


def known(db: Database) -> dict[str, dict[str, Any]]:
    """`latest` as plain dicts (`PolledStatus.to_dict`), by printer name."""
    return {name: status.to_dict() for name, status in latest(db).items()}
