"""appliance.spare: work runs on an idle thread when there is one, on a new one when not
(never waiting for other work), idle threads are capped and leave after a while, and a
failure is reported, not lost."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from appliance import spare


@pytest.fixture(autouse=True)
def quick_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spare, "IDLE_FOR", 0.5)
    monkeypatch.setattr(spare, "MAX_IDLE", 2)
    with spare._lock:  # threads left idle by earlier tests: woken without work, they end
        for slot in spare._idle:
            slot.wake.set()
    wait_idle(0)


def wait_idle(count: int, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while spare.idle() != count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spare.idle() == count


def test_a_finished_thread_takes_the_next_task() -> None:
    first = spare.spawn(lambda: threading.get_ident(), name="one")
    seen: list[int] = []
    assert first.join(2)
    wait_idle(1)
    task = spare.spawn(lambda: seen.append(threading.get_ident()), name="two")
    assert task.join(2) and not task.is_alive()
    wait_idle(1)
    again = spare.spawn(lambda: seen.append(threading.get_ident()), name="three")
    assert again.join(2)
    assert len(seen) == 2 and seen[0] == seen[1]  # the same thread both times


def test_work_never_waits_for_other_work() -> None:
    release = threading.Event()
    blocked = [spare.spawn(release.wait, 5, name=f"busy-{i}") for i in range(5)]
    quick = spare.spawn(lambda: None, name="quick")
    assert quick.join(2)  # while five others still run
    assert all(t.is_alive() for t in blocked)
    release.set()
    assert all(t.join(2) for t in blocked)
    wait_idle(spare.MAX_IDLE)  # beyond the cap, threads end instead of idling


def test_idle_threads_leave_after_a_while() -> None:
    assert spare.spawn(lambda: None).join(2)
    wait_idle(1, within=0.3)
    wait_idle(0, within=2.0)


def test_a_failing_task_is_logged_and_the_thread_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom() -> None:
        raise ValueError("broken")

    with caplog.at_level(logging.ERROR, logger="appliance.spare"):
        assert spare.spawn(boom, name="boom-task").join(2)
    assert "boom-task failed" in caplog.text and "ValueError" in caplog.text
    assert spare.spawn(lambda: None).join(2)
