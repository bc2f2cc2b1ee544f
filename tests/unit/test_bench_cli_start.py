"""bench/cli_start.py runs and prints its figures against the baseline of the same run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not shutil.which("/usr/bin/time"), reason="/usr/bin/time is not installed")
def test_cli_start_bench_reports_help_against_python() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cli_start.py"), "--reps", "1"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert re.search(r"python -c pass \(baseline\)\s+[\d.]+\s+1\.00", out.stdout), out.stdout
    assert re.search(
        r"meshprint --help\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+<= 0\.1 CPU-s", out.stdout
    )
    assert "load before:" in out.stdout and "load after:" in out.stdout
