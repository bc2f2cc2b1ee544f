"""A node leaving the site (`meshprint edge uninstall`) hands its copies over first.

The leaving node is stopped, so the other holders see it gone; after the site's repair
grace period their repair (`appliance.mesh.repair`) rebuilds each of its copies on
another member, with masked resharing, from the two remaining holders. Meanwhile every
job stays releasable (two of three shares are up). This module waits, asking the other
holders of each job it held over the peer API (with this node's own certificate, still
valid), until every job is on three holders none of which is this node; only then may
the data directory go. A job deleted meanwhile (released or expired) is done too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.datadir import DataDir
from appliance.errors import MeshprintError, NotFound
from appliance.mesh.peers import Peers
from appliance.mesh.placement import COPIES
from appliance.site.state import open_site
from appliance.site.tls import peer_client_context
from appliance.store.jobs import JobStore


@dataclass
class Progress:
    waiting: dict[str, list[str]]  # job id: its holders as last heard (excluding us)
    done: int


def held_jobs(data: DataDir) -> dict[str, list[str]]:
    """The jobs this node holds a copy of, with their other holders."""
    db, _ = open_site(data)
    me = data.identity().node_id
    return {
        job.id: [h.node for h in job.holders if h.node != me]
        for job in JobStore(data.root, db).all()
    }


def wait_handed_off(
    data: DataDir,
    timeout: float,
    poll: float = 5.0,
    report: Callable[[Progress], None] = lambda p: None,
) -> Progress:
    """Wait until every job held here has COPIES holders elsewhere; the progress at the
    end (`waiting` empty: all handed off)."""
    me = data.identity().node_id
    waiting = held_jobs(data)
    total = len(waiting)
    _, site = open_site(data)
    peers = Peers(
        me, peer_client_context(data.node_cert, data.node_key, data.ca_cert), site.directory
    )
    deadline = time.monotonic() + timeout
    while waiting:
        for job_id, holders in list(waiting.items()):
            now_held = _holders_elsewhere(peers, me, job_id, holders)
            if now_held is None or len(now_held) >= COPIES:
                del waiting[job_id]
            else:
                waiting[job_id] = now_held
        progress = Progress(dict(waiting), total - len(waiting))
        report(progress)
        if not waiting or time.monotonic() >= deadline:
            return progress
        time.sleep(poll)
    return Progress({}, total)


def _holders_elsewhere(peers: Peers, me: str, job_id: str, holders: list[str]) -> list[str] | None:
    """The job's holders other than `me`, as the first other holder that answers says;
    None when the job is gone everywhere asked (released, expired or deleted)."""
    gone = 0
    for node_id in holders:
        try:
            info = peers.client(node_id).job(job_id)
        except NotFound:
            gone += 1
            continue
        except MeshprintError:
            continue
        return [str(h[0]) for h in info["holders_x"] if str(h[0]) != me]
    return None if holders and gone == len(holders) else holders
