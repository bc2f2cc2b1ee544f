"""appliance.jobs.deliver claims: the delivering node is the caller, and a claim is
settled from its delivering node's record (a restarted node, a holder that was away)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from appliance.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from appliance.jobs import deliver
from appliance.jobs.deliver import Claim, ClaimWatch, settle_claim
from appliance.store.db import Database
from appliance.store.deliveries import DeliveryLog
from appliance.store.jobs import Job, JobStore
from appliance.store.states import JobState, Stage

from .conftest import JobFactory

ME, OTHER = "n-holder", "n-deliverer"


class FakePeer:
    def __init__(self, log: DeliveryLog | None) -> None:
        self.log = log

    def release_status(self, release_id: str) -> dict[str, Any]:
        if self.log is None:
            raise Unavailable("connection refused")
        found = self.log.get(release_id)
        if found is None:
            raise NotFound(f"no release {release_id} here")
        return dict(found.to_dict())


@dataclass
class FakePeers:
    other_log: DeliveryLog | None
    live: set[str] = field(default_factory=lambda: {OTHER})

    def is_live(self, node_id: str) -> bool:
        return node_id == ME or node_id in self.live

    def client(self, node_id: str) -> FakePeer:
        return FakePeer(self.other_log)


@dataclass
class FakeNode:
    store: JobStore
    deliveries: DeliveryLog
    peers: FakePeers
    id: str = ME


@pytest.fixture
def other_log(tmp_path: Any) -> DeliveryLog:
    return DeliveryLog(Database(tmp_path / "other.db"))


@pytest.fixture
def node(store: JobStore, db: Database, other_log: DeliveryLog) -> FakeNode:
    return FakeNode(store, DeliveryLog(db), FakePeers(other_log))


def held(store: JobStore, make_job: JobFactory) -> Job:
    job = make_job(sealed_size=100)
    incoming = store.receive(job.id)
    incoming.write(os.urandom(100))
    incoming.commit(job)
    return job


def test_the_claim_is_the_callers_and_naming_another_node_is_refused() -> None:
    claim, reason = Claim.from_wire("j1", OTHER, {"job": "j1", "release_id": "release-1"})
    assert (claim.node, claim.release_id, reason) == (OTHER, "release-1", "")
    assert "node" not in claim.to_wire()
    same = {"job": "j1", "release_id": "release-1", "node": OTHER}
    assert Claim.from_wire("j1", OTHER, same)[0] == claim
    with pytest.raises(Forbidden):
        Claim.from_wire("j1", "n-attacker", same)
    with pytest.raises(BadRequest):
        Claim.from_wire("j1", OTHER, {"job": "j1"})
    with pytest.raises(BadRequest):
        Claim.from_wire("j1", OTHER, {"job": "j2", "release_id": "release-1"})


def test_peer_step_acts_for_the_caller_only(
    node: FakeNode, store: JobStore, make_job: JobFactory
) -> None:
    job = held(store, make_job)
    params = {"job_id": job.id, "step": "claim"}
    deliver.peer_step(node, OTHER, params, {"job": job.id, "release_id": "release-1"})
    assert (store.require(job.id).state, store.require(job.id).delivery_node) == (
        JobState.DELIVERING,
        OTHER,
    )
    unclaim = {"job_id": job.id, "step": "unclaim"}
    # Another member's unclaim matches no claim of its own: nothing changes.
    deliver.peer_step(node, "n-attacker", unclaim, {"job": job.id, "release_id": "release-1"})
    assert store.require(job.id).state == JobState.DELIVERING
    with pytest.raises(NotFound):
        deliver.peer_step(node, OTHER, {"job_id": job.id, "step": "nope"}, {})


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (Stage.CLAIMING, JobState.DELIVERING),
        (Stage.DELIVERING, JobState.DELIVERING),
        (Stage.QUEUED, JobState.DELIVERING),
        (Stage.FAILED, JobState.HELD),
        (Stage.UNKNOWN, JobState.UNKNOWN),
        (Stage.PRINTED, None),
    ],
)
def test_a_claim_follows_its_delivering_nodes_record(
    node: FakeNode,
    store: JobStore,
    other_log: DeliveryLog,
    make_job: JobFactory,
    stage: Stage,
    expected: JobState | None,
) -> None:
    job = held(store, make_job)
    other_log.start("release-1", job.id, "p1")
    other_log.update("release-1", stage, reason="why")
    store.claim(job.id, "release-1", OTHER, may_take_over=False)
    after = settle_claim(node, store.require(job.id))
    if expected is None:  # printed: deleted here, as its node would have done
        assert store.get(job.id) is None and store.is_tombstoned(job.id)
        return
    assert after.state == expected
    if expected != JobState.DELIVERING:
        assert after.reason == "why"


def test_a_job_this_node_printed_but_did_not_delete_before_it_stopped_is_deleted(
    node: FakeNode, store: JobStore, make_job: JobFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed between recording the delivery printed and deleting the job everywhere: its
    # own claim watch reads its own record and deletes it; another release finds no job.
    job = held(store, make_job)
    node.deliveries.start("release-1", job.id, "p1")
    store.claim(job.id, "release-1", ME, may_take_over=False)
    node.deliveries.update("release-1", Stage.PRINTED)
    clock = [1000.0]
    monkeypatch.setattr(deliver.time, "monotonic", lambda: clock[0])
    watch = ClaimWatch()
    watch.run(node)
    assert store.require(job.id).state == JobState.DELIVERING
    clock[0] += deliver.CLAIM_CHECK_AFTER
    watch.run(node)
    assert store.get(job.id) is None
    with pytest.raises(NotFound):
        deliver.claim_here(node, Claim(job.id, "release-2", OTHER, reprint=True))


def test_a_claim_its_node_has_no_record_of_is_freed_only_by_the_watch(
    node: FakeNode, store: JobStore, make_job: JobFactory
) -> None:
    job = held(store, make_job)
    store.claim(job.id, "forged-release", OTHER, may_take_over=False)
    kept = settle_claim(node, store.require(job.id), unrecorded_frees=False)
    assert kept.state == JobState.DELIVERING
    freed = settle_claim(node, store.require(job.id))
    assert freed.state == JobState.HELD and "no record" in freed.reason


def test_a_claim_stands_while_its_node_cannot_be_asked(
    node: FakeNode, store: JobStore, make_job: JobFactory
) -> None:
    job = held(store, make_job)
    store.claim(job.id, "release-1", OTHER, may_take_over=False)
    node.peers.other_log = None  # it does not answer
    assert settle_claim(node, store.require(job.id)).state == JobState.DELIVERING
    node.peers.live = set()  # and is down: the claim stands, cut off (reprint takes it)
    assert settle_claim(node, store.require(job.id)).state == JobState.DELIVERING


def test_a_release_claiming_a_job_whose_delivery_failed_meanwhile_gets_it(
    node: FakeNode, store: JobStore, other_log: DeliveryLog, make_job: JobFactory
) -> None:
    job = held(store, make_job)
    other_log.start("release-1", job.id, "p1")
    store.claim(job.id, "release-1", OTHER, may_take_over=False)
    mine = Claim(job.id, "release-2", ME)
    with pytest.raises(Conflict):  # still open there
        deliver.claim_here(node, mine)
    other_log.update("release-1", Stage.FAILED, reason="jammed")  # the unclaim never came
    assert deliver.claim_here(node, mine).release_id == "release-2"


def test_the_watch_asks_only_about_claims_that_have_stood_a_while(
    node: FakeNode,
    store: JobStore,
    other_log: DeliveryLog,
    make_job: JobFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = held(store, make_job)
    other_log.start("release-1", job.id, "p1")
    other_log.update("release-1", Stage.UNKNOWN, reason="cut off")
    store.claim(job.id, "release-1", OTHER, may_take_over=False)
    clock = [1000.0]
    monkeypatch.setattr(deliver.time, "monotonic", lambda: clock[0])
    watch = ClaimWatch()
    watch.run(node)
    assert store.require(job.id).state == JobState.DELIVERING  # first seen: not asked yet
    clock[0] += deliver.CLAIM_CHECK_AFTER
    watch.run(node)
    assert store.require(job.id).state == JobState.UNKNOWN


def test_a_delivery_is_recorded_claiming_and_forgotten_if_never_claimed(db: Database) -> None:
    log = DeliveryLog(db)
    started = log.start("release-1", "j1", "p1")
    assert started is not None and started.stage is Stage.CLAIMING
    assert log.start("release-1", "j1", "p1") is None
    assert [d.release_id for d in log.open()] == ["release-1"]
    log.forget("release-1")
    assert log.get("release-1") is None
    log.start("release-2", "j1", "p1")
    log.update("release-2", Stage.DELIVERING)
    log.forget("release-2")  # it may have printed: never forgotten
    assert log.get("release-2") is not None


class SlowPeer:
    """A holder that takes `delay` seconds per delivery step, refusing the claim when
    another delivery has the job."""

    def __init__(self, name: str, calls: list[tuple[str, str]], delay: float, busy: bool):
        self.name, self.calls, self.delay, self.busy = name, calls, delay, busy

    def delivery_step(self, job_id: str, step: Any, claim: dict[str, Any]) -> None:
        import time

        time.sleep(self.delay)
        self.calls.append((self.name, step.value))
        if self.busy and step.value == "claim":
            raise Conflict("another delivery has the job")


@dataclass
class SlowPeers:
    calls: list[tuple[str, str]]
    busy: set[str] = field(default_factory=set)

    def is_live(self, node_id: str) -> bool:
        return True

    def client(self, node_id: str) -> SlowPeer:
        return SlowPeer(node_id, self.calls, 0.4, node_id in self.busy)


def test_the_holders_are_claimed_at_once_and_a_refusal_unclaims_the_others(
    store: JobStore, db: Database
) -> None:
    import time

    from appliance.store.states import DeliveryStep

    calls: list[tuple[str, str]] = []
    node = FakeNode(store, DeliveryLog(db), SlowPeers(calls))  # type: ignore[arg-type]
    claim = Claim("j1", "release-1", ME, False)
    started = time.monotonic()
    done = deliver._on_holders(node, ["a", "b", "c"], DeliveryStep.CLAIM, claim)  # type: ignore[arg-type]
    assert sorted(done) == ["a", "b", "c"]
    assert (
        time.monotonic() - started < 1.1
    )  # the first, then the others side by side: 2 x 0.4 s, not 3
    calls.clear()
    node.peers.busy = {"b"}
    with pytest.raises(Conflict):
        deliver._on_holders(node, ["a", "b", "c"], DeliveryStep.CLAIM, claim)  # type: ignore[arg-type]
    assert sorted(c for c in calls if c[1] == "unclaim") == [("a", "unclaim"), ("c", "unclaim")]
