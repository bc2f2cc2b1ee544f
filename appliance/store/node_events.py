"""This node's recent events (`node_events` table), for the admin dashboard: jobs held,
replicated, released, printed, failed and expired here, and members going up or down as
this node sees them. Metadata only: job id, size, printer, node; never a title, an owner
or content. The newest KEEP are kept."""

from __future__ import annotations

import json
import time
from typing import Any

from appliance.store.db import Database

KEEP = 500
KINDS = ("held", "replicated", "released", "printed", "failed", "expired", "node-up", "node-down")
FIELDS = ("job", "size", "printer", "node", "release_id", "holders")


def record(db: Database, kind: str, **fields: Any) -> None:
    """Keep one event (unknown kinds and fields are not kept)."""
    if kind not in KINDS:
        return
    kept = {k: v for k, v in fields.items() if k in FIELDS and v is not None}
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO node_events (at, kind, fields) VALUES (?,?,?)",
            (float(fields.get("at") or time.time()), kind, json.dumps(kept)),
        )
        conn.execute(
            "DELETE FROM node_events WHERE id <= (SELECT MAX(id) FROM node_events) - ?", (KEEP,)
        )


def recent(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """The newest `limit` events, newest first: {"at", "kind", **fields}."""
    rows = db.query(
        "SELECT at, kind, fields FROM node_events ORDER BY id DESC LIMIT ?",
        (max(1, min(limit, KEEP)),),
    )
    return [{"at": row["at"], "kind": row["kind"], **json.loads(row["fields"])} for row in rows]
