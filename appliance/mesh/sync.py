"""Anti-entropy and gossip: a node tells a peer which of the jobs they share it holds,
which directory version it has, and the heartbeats it knows (`peers.Peers.beats`). The
peer answers with tombstones for any of those jobs, newer holder lists, its own directory
version and its heartbeats; the older side then fetches or pushes the directory. So a
node that was off catches up with deletions, repairs and membership.

Whom, and when (`Schedule`), so that an idle mesh costs each node the same whatever the
size of the site (issue 15):

- *co-holders* (members that hold a job with this node): synced every tick after a
  change, backing off to `MAX_SYNC_INTERVAL` while nothing changes. These are the only
  members whose loss this node acts on (repair), and it sees them with its own eyes.
- *everyone else*: one gossip round every `GOSSIP_INTERVAL` with `FANOUT` peers, taken
  in turn from a shuffled list (so each is also checked directly now and then). The
  heartbeats spread epidemically: every member hears of every other within a few rounds.
- *a member whose direct check failed*: tried again with a back-off (up to
  `MAX_RETRY_INTERVAL`), at once when gossip says it was alive after the failure; a
  member the site broker reports offline (its last will) is checked at once.
- *start-up*: a node that starts syncs with every member once, so each sees it up
  at once.
- *a change*: this node's own state changed (a job taken, dropped or given a new holder
  list: its co-holders are due at once; a new directory version: the controller, which
  makes them, pushes it to every peer at once, any other node starts a gossip round).

The calls go over kept-alive connections (`Peers.client`).
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Iterable
from typing import Any

from appliance.crypto.userkeys import unb64
from appliance.errors import Forbidden, MeshprintError
from appliance.mesh.budget import room
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import accept_tombstone, adopt_holders
from appliance.mesh.peers import FANOUT, GOSSIP_INTERVAL, MAX_SYNC_INTERVAL, SYNC_INTERVAL
from appliance.store.jobs import JOB_ID_RE, Job, holders_to_list

SYNC_TIMEOUT = 3.0  # seconds a sync call (or the directory fetch after it) may take
log = logging.getLogger(__name__)
MAX_RETRY_INTERVAL = 30.0  # back-off for a member that could not be reached
JITTER = 0.05  # a tick's jitter does not skip one


class Schedule:
    """Whom to sync with, this tick: co-holders with back-off, a gossip round now and
    then, members that failed with back-off, and everyone at once on a pushed change."""

    def __init__(self) -> None:
        self._directory: int | None = None
        self._held: frozenset[tuple[str, int]] | None = None
        self._addresses: str | None = None
        self._interval: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._push_all = True  # at start: every member hears from us at once
        self._next_round = 0.0
        self._order: list[str] = []

    def note_state(
        self,
        directory_version: int,
        held: dict[str, int],
        originator: bool = False,
        addresses: str = "",
    ) -> bool:
        """Record this node's state; True when it changed. A new holder list or job makes
        every co-holder due now; a new directory version every peer (`originator`: this
        node made it) or the next gossip round (it came from a peer), as does a new digest
        of the address announcements this node has (`addresses`)."""
        state = frozenset(held.items())
        changed = False
        if state != self._held:
            self._held = state
            self._interval.clear()
            self._due.clear()
            changed = True
        if directory_version != self._directory:
            if self._directory is not None or originator:
                self._push_all = self._push_all or originator
                self._next_round = 0.0
            self._directory = directory_version
            changed = True
        if addresses != self._addresses:
            if self._addresses is not None:
                self._next_round = 0.0
            self._addresses = addresses
            changed = True
        return changed

    def pick(
        self,
        now: float,
        others: Iterable[str],
        coholders: set[str],
        failing: set[str],
        rumoured: set[str],
    ) -> list[str]:
        """The peers to sync with now (`others`: the reachable members)."""
        others = list(others)
        if self._push_all:
            self._push_all = False
            self._next_round = now + GOSSIP_INTERVAL - JITTER
            return others
        chosen = [
            p
            for p in others
            if p in rumoured or ((p in coholders or p in failing) and self.due(p, now))
        ]
        if now >= self._next_round:
            self._next_round = now + GOSSIP_INTERVAL - JITTER
            chosen += self._rotate(others, skip=set(chosen) | failing)
        return chosen

    def _rotate(self, others: list[str], skip: set[str]) -> list[str]:
        """The next FANOUT peers of the shuffled round-robin (reshuffled when spent)."""
        candidates = [p for p in others if p not in skip]
        picked: list[str] = []
        for _ in range(2):  # the current list, then a fresh one
            self._order = [p for p in self._order if p in candidates and p not in picked]
            while self._order and len(picked) < FANOUT:
                picked.append(self._order.pop())
            if len(picked) >= FANOUT:
                break
            self._order = random.sample(candidates, len(candidates))
        return picked

    def due(self, peer_id: str, now: float) -> bool:
        return now >= self._due.get(peer_id, 0.0)

    def done(self, peer_id: str, now: float, news: bool, failed: bool = False) -> None:
        """After an exchange with `peer_id`: news keeps it at one tick; a quiet exchange
        doubles its interval up to MAX_SYNC_INTERVAL, a failed one up to
        MAX_RETRY_INTERVAL (gossip saying it is back makes it due at once)."""
        interval = self._interval.get(peer_id, SYNC_INTERVAL / 2)
        if news and not failed:
            interval = SYNC_INTERVAL
        else:
            interval = min(2 * interval, MAX_RETRY_INTERVAL if failed else MAX_SYNC_INTERVAL)
        self._interval[peer_id] = interval
        self._due[peer_id] = now + interval - JITTER

    def interval(self, peer_id: str) -> float:
        return self._interval.get(peer_id, SYNC_INTERVAL)


def shared_jobs(node_id: str, jobs: Iterable[Job]) -> dict[str, dict[str, int]]:
    """Per co-holder, the jobs this node holds with it (job id -> holders version)."""
    shared: dict[str, dict[str, int]] = {}
    for job in jobs:
        for h in job.holders:
            if h.node != node_id:
                shared.setdefault(h.node, {})[job.id] = job.holders_version
    return shared


def run(node: MeshContext, schedule: Schedule | None = None) -> None:
    """Sync with the peers that are due (every reachable one without a `schedule`)."""
    directory = node.directory()
    jobs = node.store.all()
    held = {job.id: job.holders_version for job in jobs}
    mine = directory.addresses_digest
    shared = shared_jobs(node.id, jobs)
    peers = node.peers
    others = [p.id for p in peers.others() if p.reachable]
    now = time.time()
    if schedule is None:
        chosen = others
    else:
        schedule.note_state(directory.version, held, directory.controller_id == node.id, mine)
        failing = {p for p in others if peers.failing(p)}
        rumoured = {p for p in failing if peers.rumoured_since_missed(p)}
        rumoured |= peers.suspects() & set(others)  # the broker says offline: look
        chosen = schedule.pick(now, others, set(shared), failing, rumoured)
    for peer_id in chosen:
        request = {
            "directory_version": directory.version,
            "held": shared.get(peer_id, {}),
            "beats": peers.beats(),
            "addresses": mine,
        }
        now = time.time()
        try:
            answer = peers.client(peer_id, timeout=SYNC_TIMEOUT).sync(request)
        except Forbidden:
            peers.forget(peer_id)
            _introduce(node, peer_id)
            if schedule is not None:
                schedule.done(peer_id, now, news=True, failed=True)
            continue
        except MeshprintError as err:
            log.debug("sync with %s failed: %s", peer_id, err)
            peers.forget(peer_id)
            if schedule is not None:
                schedule.done(peer_id, now, news=True, failed=True)
            continue
        peers.merge_beats(answer.get("beats"))
        node.last_sync[peer_id] = {
            "at": time.time(),
            "jobs": answer.get("jobs", 0),
            "disk_free": answer.get("disk_free"),
            "room": answer.get("room"),
            "missing": set(answer.get("missing") or ()),
        }
        if schedule is not None:
            schedule.done(peer_id, now, news=_news(directory.version, mine, answer))
        apply(node, peer_id, answer)


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
    node.peers.merge_beats(request.get("beats"))
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
        and not node.store.is_receiving(job_id)
    ]
    directory = node.directory()
    return {
        "directory_version": directory.version,
        "addresses": directory.addresses_digest,
        "tombstoned": tombstoned,
        "holders": holders,
        "missing": missing,
        "jobs": len(mine),
        "disk_free": shutil.disk_usage(node.store.jobs).free,
        "room": room(node),
        "beats": node.peers.beats(),
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
        theirs == ours.version and their_addresses not in (None, ours.addresses_digest)
    ):
        doc = node.peers.client(peer_id, timeout=SYNC_TIMEOUT).directory()
        if node.site.adopt(unb64(doc["raw"]), unb64(doc["signature"]), doc.get("addresses")):
            log.info("directory version %d from %s", theirs, peer_id)
    ours = node.directory()
    if ours.version > theirs or (
        ours.version == theirs and their_addresses not in (None, ours.addresses_digest)
    ):
        node.peers.client(peer_id, timeout=SYNC_TIMEOUT).offer_directory(ours.signed())
