"""What a benchmark's main() does around its run: a scratch directory, SIGTERM as a clean
exit, the logs of a failed run, and a last line saying what was removed and whether any
process it started (each in a session of its own, listed in `sessions`) was left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from appliance.devtools.processes import session_members


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanup below


def run_in_scratch(
    prefix: str,
    run: Callable[[Path, list[int]], int],
    logs: Sequence[str] = ("mesh/node*.log",),
) -> int:
    """run(root, sessions) in a fresh directory; `logs`: globs under it shown on failure."""
    signal.signal(signal.SIGTERM, _terminate)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    sessions: list[int] = []
    started = time.perf_counter()
    status = 1
    left: dict[int, list[int]] = {}
    try:
        status = run(root, sessions)
    except Exception as err:
        print(f"\nbenchmark failed: {type(err).__name__}: {err}", file=sys.stderr)
        for pattern in logs:
            for log in sorted(root.glob(pattern)):
                print(f"--- {log.name} (last lines) ---\n{tail(log)}", file=sys.stderr)
    finally:
        left = {sid: session_members(sid) for sid in sessions}
        left = {sid: pids for sid, pids in left.items() if pids}
        _stop(left)  # a run cut short (SIGTERM, an error mid-start) did not stop them
        shutil.rmtree(root, ignore_errors=True)
        print(
            f"(total {time.perf_counter() - started:.0f}s; removed {root}; "
            f"processes left: {f'{left}, now stopped' if left else 'none'})",
            flush=True,
        )
    return status if not left else 1


def _stop(left: dict[int, list[int]], grace: float = 5.0) -> None:
    """SIGTERM each session, SIGKILL what is still there after `grace` seconds."""
    for sid in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(session_members(sid) for sid in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    for sid in left:
        for pid in session_members(sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
