"""Smoke tests: each benchmark runs end to end with small sizes, reports its ratios and
cleans up after itself (no process it started is left, its directory is gone)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.devtools.processes import processes_mentioning, session_members

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def run_quick(bench: str) -> tuple[subprocess.CompletedProcess[str], str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return result, output


def assert_cleaned_up(
    result: subprocess.CompletedProcess[str], output: str, sessions: int
) -> list[int]:
    """Every process the benchmark started ran in a session of its own (at least
    `sessions` of them): all have ended, nothing runs from its directory, which is gone."""
    found = re.search(r"SESSIONS ((?:\d+ ?)+)$", result.stdout, re.MULTILINE)
    assert found, output[-4000:]
    sids = [int(s) for s in found.group(1).split()]
    assert len(sids) >= sessions, sids
    assert {sid: session_members(sid) for sid in sids if session_members(sid)} == {}
    removed = re.search(r"removed (\S+);", result.stdout)
    assert removed, output[-4000:]
    root = removed.group(1)
    assert not Path(root).exists()
    assert processes_mentioning(root) == []
    assert "processes left: none" in result.stdout
    return sids


def test_intake_bench_quick_runs_and_reports_ratios() -> None:
    result, output = run_quick("intake")

    ratios = [line for line in result.stdout.splitlines() if line.startswith("RATIO")]
    assert len(ratios) == 4, output[-4000:]  # 2 intake/raw-AEAD, 2 IPP Print-Job
    for line in ratios:
        assert re.search(r"= \d+\.\d\d\s.*(PASS|MISS)$", line), line
    ipp = [line for line in ratios if line.startswith("RATIO IPP Print-Job")]
    assert [line.split()[3] for line in ipp] == ["1", "16"], ipp
    assert all("cups/meshprint" in line for line in ipp), ipp
    assert "CUPS holds all 5 jobs (job-hold-until=indefinite)" in result.stdout  # warm-up, 3 + 1
    assert re.search(r"^IPP Validate-Job \(the fixed part\): meshprint \d", result.stdout, re.M)
    assert re.search(
        r"^LOAD during the IPP runs: load average .* of \d+ cores", result.stdout, re.M
    )
    memory = [line for line in result.stdout.splitlines() if line.startswith("MEMORY")]
    assert len(memory) == 2, output[-4000:]

    # It stopped its nodes and removed its temporary directory.
    removed = re.search(r"removed (\S+)\)", result.stdout)
    assert removed, output[-4000:]
    root = removed.group(1)
    assert not Path(root).exists()
    assert processes_mentioning(root) == []


def test_release_bench_quick_runs_reports_a_ratio_and_cleans_up() -> None:
    result, output = run_quick("release")

    ratios = [line for line in result.stdout.splitlines() if line.startswith("RATIO")]
    assert len(ratios) == 4, output[-4000:]  # session and one-off: 1 MB best and median
    for side in ("session", "one-off"):
        lines = [line for line in ratios if f"release {side} " in line]
        assert len(lines) == 2, ratios
        for line in lines:
            assert re.search(r"1 MB .*meshprint/CUPS = \d+\.\d\d\s.*(PASS|MISS)$", line), line
    assert "CUPS sent:" in result.stdout and "meshprint session sent:" in result.stdout
    assert "meshprint one-off sent:" in result.stdout and "load average" in result.stdout

    assert_cleaned_up(result, output, sessions=7)  # dbus, avahi, ippeveprinter, cupsd, 3 nodes
