"""How much more this node may hold (issue 16: a good guest on someone's PC).

Every node keeps the site's `disk_reserve` free. An edge node also holds at most its
budget (its directory record's `budget`, else the site's `edge_budget`) and never leaves
its disk under `EDGE_FREE_FLOOR` free. The node enforces it on every job and replica it
is given (`check_room`, InsufficientStorage: 507) and tells peers its `room` in each sync
answer, so placement passes over a full node (`placement.choose_holders`).
"""

from __future__ import annotations

import shutil

from appliance.config import EDGE_FREE_FLOOR
from appliance.errors import InsufficientStorage
from appliance.humanize import human_size
from appliance.mesh.context import MeshContext


def room(node: MeshContext) -> int:
    """Bytes this node may still take (0 or less: full)."""
    directory = node.directory()
    settings = directory.settings
    disk = shutil.disk_usage(node.store.jobs)
    left = disk.free - settings.disk_reserve
    record = directory.node(node.id)
    if record is not None and record.role == "edge":
        budget = record.budget if record.budget is not None else settings.edge_budget
        left = min(
            left,
            disk.free - int(disk.total * EDGE_FREE_FLOOR),
            budget - node.store.used_bytes(),
        )
    return left


def check_room(node: MeshContext, needed: int) -> None:
    """InsufficientStorage unless this node may take `needed` more bytes."""
    left = room(node)
    if needed > left or left <= 0:
        raise InsufficientStorage(
            f"this node is out of space for the job: it needs {human_size(needed)} and this node "
            f"may take {human_size(max(left, 0))} more (its disk budget, or its free space)"
        )


def peer_room(node: MeshContext) -> dict[str, int]:
    """The room each peer said it has at its last sync (peers that did not say: absent)."""
    out = {}
    for peer_id, said in node.last_sync.items():
        value = said.get("room")
        if isinstance(value, int) and not isinstance(value, bool):
            out[peer_id] = value
    return out
