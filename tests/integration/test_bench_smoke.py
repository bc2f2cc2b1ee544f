"""Smoke test: the intake benchmark runs end to end with small sizes and cleans up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def test_intake_bench_quick_runs_and_reports_ratios() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "intake.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    ratios = [line for line in result.stdout.splitlines() if line.startswith("RATIO")]
    assert len(ratios) == 2, output[-4000:]
    for line in ratios:
        assert re.search(r"= \d+\.\d\d\s.*(PASS|MISS)$", line), line
    memory = [line for line in result.stdout.splitlines() if line.startswith("MEMORY")]
    assert len(memory) == 2, output[-4000:]

    # It stopped its nodes and removed its temporary directory.
    removed = re.search(r"removed (\S+)\)", result.stdout)
    assert removed, output[-4000:]
    root = removed.group(1)
    assert not Path(root).exists()
    assert processes_mentioning(root) == []
