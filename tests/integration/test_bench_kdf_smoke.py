"""Smoke test: bench/kdf.py runs end to end with small storms, reports the KDF cost and
the storms' memory, and cleans up after itself (no process it started is left, its
directory is gone)."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_bench_smoke import assert_cleaned_up, run_quick

pytestmark = pytest.mark.integration


def test_kdf_bench_quick_reports_cost_and_storm_memory_and_cleans_up() -> None:
    result, output = run_quick("kdf")

    kdf = [line for line in result.stdout.splitlines() if re.match(r"KDF +(current|old) ", line)]
    assert [line.split()[2] for line in kdf] == ["argon2id", "scrypt"], output[-4000:]
    for line in kdf:
        assert re.search(r"= +\d+\.\d guesses/s per core here; Pi 4 estimate", line), line
    memory = [line for line in result.stdout.splitlines() if line.startswith("MEMORY storm")]
    assert len(memory) == 2, output[-4000:]
    for line in memory:
        assert re.search(r"idle \d+ MiB, peak \d+ MiB, growth -?\d+ MiB .*(PASS|MISS)$", line)
    assert "load average before" in result.stdout

    sids = assert_cleaned_up(result, output, sessions=1)
    assert len(sids) == 1, sids  # the one node
