"""The sync's schedule (co-holders with back-off, a gossip round with a few peers in turn,
failed members retried with back-off, pushes on a change) and the liveness it feeds
(direct checks against gossip rumours)."""

from __future__ import annotations

import itertools
import ssl
import time
from collections import Counter

import pytest

from appliance.mesh.peers import (
    FANOUT,
    GOSSIP_INTERVAL,
    LIVE_WINDOW,
    MAX_SKEW,
    MAX_SYNC_INTERVAL,
    SYNC_INTERVAL,
    Peers,
)
from appliance.mesh.sync import MAX_RETRY_INTERVAL, Schedule, _news, shared_jobs
from appliance.store.jobs import Holder, Job

PEERS = [f"n{i}" for i in range(29)]


def test_quiet_exchanges_with_a_coholder_back_off_to_the_longest_interval() -> None:
    schedule = Schedule()
    assert schedule.note_state(1, {"j": 1})
    seen = []
    now = 0.0
    for _ in range(6):
        schedule.done("b", now, news=False)
        seen.append(schedule.interval("b"))
        now += schedule.interval("b")
        assert schedule.due("b", now) and not schedule.due("b", now - 0.2)
    assert seen[0] == SYNC_INTERVAL
    assert seen[-1] == MAX_SYNC_INTERVAL
    assert seen == sorted(seen)
    assert 2 * MAX_SYNC_INTERVAL < LIVE_WINDOW  # a live co-holder is heard twice per window


def test_news_keeps_a_peer_at_one_tick_and_a_failure_backs_off() -> None:
    schedule = Schedule()
    schedule.note_state(1, {})
    for _ in range(5):
        schedule.done("b", 0.0, news=False)
    schedule.done("b", 10.0, news=True)
    assert schedule.interval("b") == SYNC_INTERVAL
    assert schedule.due("b", 11.0)
    intervals = []
    for _ in range(8):
        schedule.done("c", 0.0, news=True, failed=True)
        intervals.append(schedule.interval("c"))
    assert intervals == sorted(intervals) and intervals[-1] == MAX_RETRY_INTERVAL


def test_an_idle_node_calls_fanout_peers_per_gossip_round_in_turn() -> None:
    schedule = Schedule()
    schedule.note_state(1, {})
    assert schedule.pick(99.0, PEERS, set(), set(), set()) == PEERS  # at start: a hello to all
    calls: Counter[str] = Counter()
    now, rounds = 100.0, 0
    while now < 100.0 + 2 * len(PEERS) / FANOUT * GOSSIP_INTERVAL:
        picked = schedule.pick(now, PEERS, set(), set(), set())
        if picked:
            rounds += 1
            assert len(picked) == FANOUT
        calls.update(picked)
        now += SYNC_INTERVAL
    # Calls per round stay at FANOUT whatever the site's size, and every peer has its turn.
    assert sum(calls.values()) == FANOUT * rounds
    assert set(calls) == set(PEERS)
    assert max(calls.values()) - min(calls.values()) <= 1


def test_coholders_and_failed_members_are_due_on_their_own_schedule() -> None:
    schedule = Schedule()
    schedule.note_state(1, {"j": 1})
    picked = schedule.pick(0.0, PEERS, {"n1", "n2"}, {"n3"}, set())
    assert {"n1", "n2", "n3"} <= set(picked)
    schedule.done("n1", 0.0, news=False)
    schedule.done("n2", 0.0, news=False)
    schedule.done("n3", 0.0, news=True, failed=True)
    later = schedule.pick(0.5, PEERS, {"n1", "n2"}, {"n3"}, set())
    assert not {"n1", "n2", "n3"} & set(later)
    # Gossip says the failed member was alive after our check failed: at once.
    assert "n3" in schedule.pick(0.6, PEERS, {"n1", "n2"}, {"n3"}, {"n3"})
    # A failed member is not taken in the gossip rotation: it has its own back-off.
    tries = []
    for step in range(300):
        now = 1.0 + step * SYNC_INTERVAL
        if "n3" in schedule.pick(now, PEERS, set(), {"n3"}, set()):
            tries.append(now)
            schedule.done("n3", now, news=True, failed=True)
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps == sorted(gaps) and max(gaps) <= MAX_RETRY_INTERVAL and len(tries) < 20


def test_a_change_here_makes_every_coholder_due_and_a_new_directory_is_pushed() -> None:
    schedule = Schedule()
    OTHERS = [*PEERS, "b", "c"]
    schedule.note_state(1, {"j": 1})
    for peer in ("b", "c"):
        for _ in range(5):
            schedule.done(peer, 100.0, news=False)
    schedule.pick(100.0, OTHERS, set(), set(), set())  # a gossip round
    assert not schedule.pick(101.0, OTHERS, {"b", "c"}, set(), set())
    assert not schedule.note_state(1, {"j": 1})  # the same state: nothing due
    assert schedule.note_state(1, {"j": 2})  # a new holder list
    assert {"b", "c"} <= set(schedule.pick(101.0, OTHERS, {"b", "c"}, set(), set()))
    # A directory version from a peer: a gossip round now, not a push to all.
    schedule.done("b", 101.0, news=False)
    schedule.done("c", 101.0, news=False)
    assert schedule.note_state(2, {"j": 2})
    assert len(schedule.pick(101.5, OTHERS, {"b", "c"}, set(), set())) == FANOUT
    # A version this node made (the controller): pushed to every peer at once.
    assert schedule.note_state(3, {"j": 2}, originator=True)
    assert schedule.pick(101.6, OTHERS, set(), set(), set()) == OTHERS


def test_shared_jobs_name_each_coholder_with_the_jobs_it_shares() -> None:
    def job(job_id: str, nodes: list[str], version: int) -> Job:
        holders = [Holder(n, i + 1) for i, n in enumerate(nodes)]
        return Job(
            id=job_id,
            owner="u",
            title="t",
            size=1,
            sealed_size=1,
            created_at=0.0,
            expires_at=1.0,
            holders=holders,
            holders_version=version,
            share_x=1,
            share=b"",
            user_share=b"",
        )

    jobs = [job("a", ["me", "b", "c"], 1), job("z", ["me", "c", "d"], 4)]
    assert shared_jobs("me", jobs) == {"b": {"a": 1}, "c": {"a": 1, "z": 4}, "d": {"z": 4}}


def test_what_counts_as_news() -> None:
    quiet = {
        "directory_version": 3,
        "addresses": "d1",
        "tombstoned": {},
        "holders": {},
        "missing": [],
    }
    assert not _news(3, "d1", quiet)
    assert _news(4, "d1", quiet) and _news(2, "d1", quiet)
    assert _news(3, "d2", quiet)  # another set of address announcements
    assert _news(3, "d1", {**quiet, "tombstoned": {"j": "released"}})
    assert _news(3, "d1", {**quiet, "holders": {"j": {}}})
    assert _news(3, "d1", {**quiet, "missing": ["j"]})


def test_a_new_address_announcement_starts_a_gossip_round() -> None:
    schedule = Schedule()
    schedule.note_state(2, {}, addresses="d1")
    assert schedule.pick(100.0, ["a"], set(), set(), set()) == ["a"]  # the first round
    assert schedule.pick(100.2, ["a"], set(), set(), set()) == []
    assert not schedule.note_state(2, {}, addresses="d1")
    assert schedule.note_state(2, {}, addresses="d2")
    assert schedule.pick(100.3, ["a"], set(), set(), set()) == ["a"]


class _Directory:
    def __init__(self, nodes: list[str]) -> None:
        self.nodes = dict.fromkeys(nodes)


@pytest.fixture
def peers() -> Peers:
    directory = _Directory(["me", "b", "c"])
    return Peers("me", ssl.create_default_context(), lambda: directory)  # type: ignore[arg-type, return-value]


def test_a_rumour_makes_a_member_live_but_never_gone(peers: Peers) -> None:
    assert not peers.is_live("b")
    now_ms = int(time.time() * 1000)
    peers.merge_beats({"b": now_ms, "me": now_ms, "stranger": now_ms})
    assert peers.is_live("b") and peers.gone_for("b") == 0.0
    assert peers.beats()["b"] == now_ms and "stranger" not in peers.beats()
    # An older heartbeat is no news; one from too far ahead is ignored.
    peers._rumour["b"] = 0.0
    peers.merge_beats({"b": now_ms - 5})
    assert not peers.is_live("b")
    peers.merge_beats({"b": now_ms + int(2 * MAX_SKEW * 1000), "c": True})
    assert not peers.is_live("b") and not peers.is_live("c")
    # A member removed since: no longer passed on.
    del peers.directory().nodes["b"]
    assert "b" not in peers.beats()


def test_own_failed_check_beats_rumours_and_alone_counts_as_gone(peers: Peers) -> None:
    peers.saw("b")
    peers.started -= 200
    peers._seen["b"] -= 100  # heard directly 100 s ago
    peers.merge_beats({"b": int(time.time() * 1000)})
    assert peers.is_live("b") and peers.gone_for("b") == 0.0  # no direct check failed
    peers.missed("b")
    assert peers.failing("b") and not peers.is_live("b")
    assert 99 < peers.gone_for("b") < 102  # since it was last heard from directly
    assert not peers.rumoured_since_missed("b")
    time.sleep(0.01)
    peers.merge_beats({"b": int(time.time() * 1000) + 1})
    assert peers.rumoured_since_missed("b")  # check again, directly
    assert not peers.is_live("b")  # but a rumour does not overrule our own check
    peers.saw("b")
    assert peers.is_live("b") and not peers.failing("b") and peers.gone_for("b") == 0.0


def test_broker_presence_is_advisory_liveness_and_offline_asks_for_a_check(peers: Peers) -> None:
    peers.presence("b", online=True)
    assert peers.is_live("b") and peers.gone_for("b") == 0.0  # never counts towards gone
    peers.presence("b", online=False)  # its last will
    assert not peers.is_live("b") and peers.suspects() == {"b"}
    assert peers.gone_for("b") == 0.0  # the broker's word alone replaces no holder
    peers.saw("b")  # the direct check answered
    assert peers.suspects() == set() and peers.is_live("b")
    peers.presence("c", online=True)
    peers.missed("c")  # our own check failed: that beats the broker's "online"
    assert not peers.is_live("c")
    peers.saw("c")
    peers.broker_lost()
    peers._seen["c"] -= 2 * LIVE_WINDOW
    assert not peers.is_live("c")  # without the broker, its presence says nothing
    peers.presence("me", online=False)
    assert peers.suspects() == set()
