"""Anti-entropy: each node tells each peer which jobs it holds and which directory
version it has. The peer answers with tombstones for any of those jobs, newer holder
lists, and its own directory version; the older side then fetches or pushes the
directory. So a node that was off catches up with deletions, repairs and membership
from whichever peer it reaches first. Each call doubles as a liveness heartbeat.

When: `Schedule`. A peer is synced every tick (`SYNC_INTERVAL`) after a change; while
exchanges with it bring nothing new the interval doubles up to `MAX_SYNC_INTERVAL`
(back-off). Whenever this node's own state changes — a directory version, a job
taken, dropped or given a new holder list — every peer is due at once (a push), so a
change still reaches every node within a tick or two. The calls go over kept-alive
connections (`Peers.kept`).
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from appliance.crypto.userkeys import unb64
from appliance.errors import Forbidden, MeshprintError
from appliance.mesh.budget import room
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import accept_tombstone, adopt_holders
from appliance.mesh.peers import MAX_SYNC_INTERVAL, SYNC_INTERVAL
from appliance.site.addresses import digest
from appliance.store.jobs import JOB_ID_RE, holders_to_list

log = logging.getLogger(__name__)


class Schedule:
    """When each peer is next synced: back-off while nothing changes, all at once when
    this node's own state does."""

    def __init__(self) -> None:
        self._state: tuple[int, str, frozenset[tuple[str, int]]] | None = None
        self._interval: dict[str, float] = {}
        self._due: dict[str, float] = {}

    def note_state(self, directory_version: int, held: dict[str, int], addresses: str = "") -> bool:
        """Record this node's state (its directory version, the jobs it holds and the
        digest of the address announcements it has); True (and every peer due now) when
        it changed."""
        state = (directory_version, addresses, frozenset(held.items()))
        if state == self._state:
            return False
        self._state = state
        self._interval.clear()
        self._due.clear()
        return True

    def due(self, peer_id: str, now: float) -> bool:
        return now >= self._due.get(peer_id, 0.0)

    def done(self, peer_id: str, now: float, news: bool) -> None:
        """After an exchange with `peer_id` (or a failed one: `news` True keeps it at one
        tick, so a peer coming back is found at once)."""
        interval = self._interval.get(peer_id, SYNC_INTERVAL / 2)
        interval = SYNC_INTERVAL if news else min(2 * interval, MAX_SYNC_INTERVAL)
        self._interval[peer_id] = interval
        self._due[peer_id] = now + interval - 0.05  # a tick's jitter does not skip one

    def interval(self, peer_id: str) -> float:
        return self._interval.get(peer_id, SYNC_INTERVAL)


def run(node: MeshContext, schedule: Schedule | None = None) -> None:
    """Sync with every reachable peer that is due (every one without a `schedule`)."""
    directory = node.directory()
    held = {job.id: job.holders_version for job in node.store.all()}
    mine = digest(directory.announced)
    request = {"directory_version": directory.version, "held": held, "addresses": mine}
    schedule = schedule or Schedule()
    schedule.note_state(directory.version, held, mine)
    for peer in node.peers.others():
        now = time.time()
        if not peer.reachable or not schedule.due(peer.id, now):
            continue
        try:
            answer = node.peers.kept(peer.id).sync(request)
        except Forbidden:
            node.peers.forget(peer.id)
            _introduce(node, peer.id)
            schedule.done(peer.id, now, news=True)
            continue
        except MeshprintError as err:
            log.debug("sync with %s failed: %s", peer.id, err)
            node.peers.forget(peer.id)
            schedule.done(peer.id, now, news=True)
            continue
        node.last_sync[peer.id] = {
            "at": time.time(),
            "jobs": answer.get("jobs", 0),
            "disk_free": answer.get("disk_free"),
            "room": answer.get("room"),
            "missing": set(answer.get("missing") or ()),
        }
        schedule.done(peer.id, now, news=_news(directory.version, mine, answer))
        apply(node, peer.id, answer)


def _news(ours: int, addresses: str, answer: dict[str, Any]) -> bool:
    """Whether a sync answer asks for more than a heartbeat's worth of attention."""
    return bool(
        answer.get("tombstoned")
        or answer.get("holders")
        or answer.get("missing")
        or int(answer.get("directory_version", 0)) != ours
        or answer.get("addresses", addresses) != addresses
    )


def _introduce(node: MeshContext, peer_id: str) -> None:
    """A peer that refuses us as a member may not know of us yet (a restored
    controller): offer it our directory, which it adopts if the site authority signed it
    and it is newer."""
    try:
        node.peers.client(peer_id, timeout=3).offer_directory(node.directory().signed())
    except MeshprintError as err:
        log.debug("%s refused our directory: %s", peer_id, err)


def answer(node: MeshContext, request: dict[str, Any]) -> dict[str, Any]:
    """What a peer that sent `request` needs to know (run on the called node)."""
    held: dict[str, int] = request.get("held") or {}
    tombstoned = node.store.tombstoned(held)
    mine = {job.id: job for job in node.store.all()}  # one query, not one per held job
    holders = {
        job_id: {"holders": holders_to_list(job.holders), "version": job.holders_version}
        for job_id, version in held.items()
        if job_id not in tombstoned
        and (job := mine.get(job_id)) is not None
        and job.holders_version > int(version)
    }
    # Jobs the peer holds that we neither hold, nor deleted, nor are receiving: if we are
    # one of their holders, our copy is missing (repair counts it as lost).
    missing = [
        job_id
        for job_id in held
        if JOB_ID_RE.fullmatch(job_id)
        and job_id not in mine
        and job_id not in tombstoned
        and not any(node.store.incoming.glob(f"{job_id}.*.part"))
    ]
    directory = node.directory()
    return {
        "directory_version": directory.version,
        "addresses": digest(directory.announced),
        "tombstoned": tombstoned,
        "holders": holders,
        "missing": missing,
        "jobs": len(mine),
        "disk_free": shutil.disk_usage(node.store.jobs).free,
        "room": room(node),
    }


def apply(node: MeshContext, peer_id: str, answer: dict[str, Any]) -> None:
    for job_id, reason in answer.get("tombstoned", {}).items():
        accept_tombstone(node, job_id, peer_id, str(reason))
    for job_id, change in answer.get("holders", {}).items():
        try:
            adopt_holders(node, job_id, peer_id, change.get("holders"), change.get("version"))
        except MeshprintError as err:
            log.debug("job %s: holder list from %s not adopted: %s", job_id, peer_id, err)
    ours = node.directory()
    theirs = int(answer.get("directory_version", 0))
    their_addresses = answer.get("addresses")
    if theirs > ours.version or (
        theirs == ours.version and their_addresses not in (None, digest(ours.announced))
    ):
        doc = node.peers.kept(peer_id).directory()
        if node.site.adopt(unb64(doc["raw"]), unb64(doc["signature"]), doc.get("addresses")):
            log.info("directory version %d from %s", theirs, peer_id)
    ours = node.directory()
    if ours.version > theirs or (
        ours.version == theirs and their_addresses not in (None, digest(ours.announced))
    ):
        node.peers.kept(peer_id).offer_directory(ours.signed())
