"""Smoke test: bench/idle.py runs end to end at 3 nodes with a short window, prints its
table, and cleans up after itself. No figure is asserted (the machine is shared)."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_bench_smoke import assert_cleaned_up, run_quick

pytestmark = pytest.mark.integration


def test_idle_bench_quick_prints_the_table_and_cleans_up() -> None:
    result, output = run_quick("idle")

    assert "nodes  CPU-s/node/min" in result.stdout, output[-4000:]
    row = re.search(
        r"^\s+3\s+(\d+\.\d{3})\s+\d+\.\d{3}\s+\d+\.\d\d\s+\d+\.\d\s", result.stdout, re.MULTILINE
    )
    assert row, output[-4000:]
    assert_cleaned_up(result, output, sessions=3)
