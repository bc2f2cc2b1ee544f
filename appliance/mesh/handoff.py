"""A node leaving the site (`meshprint edge uninstall`) hands its copies over first.

The leaving node is stopped, so the other members see it gone; after the site's repair
grace period their repair (`appliance.mesh.repair`) rebuilds each of its copies on
another member with masked resharing from the two remaining holders. Meanwhile every
job stays releasable (two of three shares are up). This module waits until a member's
status (the public status API, which needs no client certificate: a peer call with this
node's certificate would make it look alive and stop the repair) says every job in the
mesh is on three live copies; only then may the data directory go.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.clients.node import NodeClient
from appliance.datadir import DataDir
from appliance.errors import MeshprintError
from appliance.https.client import Client
from appliance.site.state import open_site
from appliance.site.tls import client_context
from appliance.store.jobs import JobStore


@dataclass(frozen=True)
class Progress:
    asked: str | None  # the member whose status this is (None: no member answered)
    held: int  # jobs in the mesh, as it sees them
    under_replicated: int  # of those, on fewer than three live copies

    @property
    def done(self) -> bool:
        return self.asked is not None and self.under_replicated == 0


def held_here(data: DataDir) -> int:
    """How many jobs this node holds a copy of."""
    db, _ = open_site(data)
    return len(JobStore(data.root, db).all())


def mesh_status(data: DataDir) -> tuple[str, dict[str, Any]] | None:
    """The status of the first other member that answers, trusting the site CA."""
    me = data.identity().node_id
    _, site = open_site(data)
    for record in site.directory().nodes.values():
        if record.id == me or not record.host or not record.release_port:
            continue
        try:
            client = Client(record.host, record.release_port, client_context(data.ca_cert))
            return record.id, NodeClient(client).status()
        except MeshprintError:
            continue
    return None


def wait_handed_off(
    data: DataDir,
    timeout: float,
    poll: float = 5.0,
    report: Callable[[Progress], None] = lambda p: None,
) -> Progress:
    """Wait (this node stopped) until the mesh has every job on three live copies."""
    deadline = time.monotonic() + timeout
    while True:
        found = mesh_status(data)
        if found is None:
            progress = Progress(None, 0, 0)
        else:
            asked, status = found
            jobs = status["jobs"]
            progress = Progress(asked, int(jobs["held"]), int(jobs["under_replicated"]))
        report(progress)
        if progress.done or time.monotonic() >= deadline:
            return progress
        time.sleep(poll)
