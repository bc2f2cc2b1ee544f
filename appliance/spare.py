"""Spare threads: short background work (a job's settling and its third copy, making an
intake file's name durable, a writeback where the kernel cannot start one) runs on a
thread kept idle from earlier work, or on a new one when none is idle.

A job starts several such threads and each used to be new: starting a thread and
opening its own database connection (connections are per thread) cost a node about a
millisecond per thread on the 2-core development machine, on the intake path before
the peers got their first byte. There is no cap on running threads (work never waits for
another job's to finish, as it would in a fixed-size pool); at most `MAX_IDLE` are kept
idle, each for `IDLE_FOR` seconds, with the database connection it opened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

IDLE_FOR = 60.0
MAX_IDLE = 16


class Task:
    """One piece of work handed to `spawn`: `join` waits for it, `is_alive` tells."""

    def __init__(self, target: Callable[..., object], args: tuple[Any, ...], name: str) -> None:
        self._target, self._args, self.name = target, args, name
        self._done = threading.Event()

    def run(self) -> None:
        threading.current_thread().name = self.name
        try:
            self._target(*self._args)
        except Exception:  # as a plain thread would: reported, never silent
            log.exception("%s failed", self.name)
        finally:
            self._done.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the work is done (at most `timeout` seconds); whether it is."""
        return self._done.wait(timeout)

    def is_alive(self) -> bool:
        return not self._done.is_set()


class _Slot:
    """An idle thread, waiting to be handed a task."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.task: Task | None = None

    def take(self) -> Task | None:
        """The task handed over (None: none), leaving the slot empty."""
        task, self.task = self.task, None
        return task


_lock = threading.Lock()
_idle: list[_Slot] = []


def spawn(target: Callable[..., object], *args: Any, name: str = "spare") -> Task:
    """Run `target(*args)` in the background, on an idle thread if there is one."""
    task = Task(target, args, name)
    with _lock:
        if _idle:
            slot = _idle.pop()
            slot.task = task
            slot.wake.set()
            return task
    threading.Thread(target=_serve, args=(task,), daemon=True).start()  # named by the task
    return task


def idle() -> int:
    """How many threads wait for work."""
    with _lock:
        return len(_idle)


def _serve(task: Task) -> None:
    slot = _Slot()
    while True:
        task.run()
        slot.wake.clear()
        with _lock:
            if len(_idle) >= MAX_IDLE:
                return
            _idle.append(slot)
        slot.wake.wait(IDLE_FOR)
        with _lock:
            handed = slot.take()
            if handed is None:  # not handed work in time: this thread ends
                _idle.remove(slot)
                return
        task = handed
