"""What a benchmark's main() does around its run: a scratch directory, SIGTERM as a clean
exit, the logs of a failed run, and a last line saying what was removed and whether any
process it started (each in a session of its own, listed in `sessions`) was left.
"""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from appliance.sessions import session_members


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
        shutil.rmtree(root, ignore_errors=True)
        print(
            f"(total {time.perf_counter() - started:.0f}s; removed {root}; "
            f"processes left: {left or 'none'})",
            flush=True,
        )
    return status if not left else 1
