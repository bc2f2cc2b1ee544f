"""The sync's schedule: back-off while nothing changes, everyone due at once on a change."""

from __future__ import annotations

from appliance.mesh.peers import LIVE_WINDOW, MAX_SYNC_INTERVAL, SYNC_INTERVAL
from appliance.mesh.sync import Schedule, _news


def test_quiet_exchanges_back_off_to_the_longest_interval() -> None:
    schedule = Schedule()
    assert schedule.note_state(1, {})
    assert schedule.due("b", 0.0)
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
    assert 2 * MAX_SYNC_INTERVAL < LIVE_WINDOW  # a live peer is heard from twice per window


def test_news_or_a_failure_keeps_a_peer_at_one_tick() -> None:
    schedule = Schedule()
    schedule.note_state(1, {})
    for _ in range(5):
        schedule.done("b", 0.0, news=False)
    schedule.done("b", 10.0, news=True)
    assert schedule.interval("b") == SYNC_INTERVAL
    assert schedule.due("b", 11.0)


def test_a_change_here_makes_every_peer_due_at_once() -> None:
    schedule = Schedule()
    schedule.note_state(1, {"j": 1})
    for peer in ("b", "c"):
        for _ in range(5):
            schedule.done(peer, 100.0, news=False)
    assert not schedule.due("b", 101.0)
    assert not schedule.note_state(1, {"j": 1})  # the same state: nothing due
    assert not schedule.due("c", 101.0)
    assert schedule.note_state(1, {"j": 2})  # a new holder list
    assert schedule.due("b", 101.0) and schedule.due("c", 101.0)
    for peer in ("b", "c"):
        schedule.done(peer, 101.0, news=False)
    assert schedule.note_state(2, {"j": 2})  # a new directory version
    assert schedule.due("b", 101.5)
    assert schedule.note_state(2, {})  # a job dropped
    assert schedule.due("c", 101.5)


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


def test_a_new_address_announcement_makes_every_peer_due() -> None:
    schedule = Schedule()
    schedule.note_state(2, {}, "d1")
    schedule.done("a", 100.0, news=False)
    assert not schedule.due("a", 100.2)
    assert not schedule.note_state(2, {}, "d1")
    assert schedule.note_state(2, {}, "d2")
    assert schedule.due("a", 100.2)
