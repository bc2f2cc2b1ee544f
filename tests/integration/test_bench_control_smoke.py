"""Smoke test: bench/control.py runs end to end with a few runs, reports its ratios and
cleans up after itself (no process it started is left, its directory is gone)."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_bench_smoke import assert_cleaned_up, run_quick

pytestmark = pytest.mark.integration


def test_control_bench_quick_reports_p50_p99_ratios_and_cleans_up() -> None:
    result, output = run_quick("control")

    ratios = [line for line in result.stdout.splitlines() if line.startswith("RATIO")]
    assert [line.split()[2] for line in ratios] == ["p50", "p99"], output[-4000:]
    for line in ratios:
        assert re.search(r"MQTT/HTTPS = \d+\.\d\d\s.*(PASS|MISS)$", line), line
    assert re.search(r"MQTT command: p50 +\d+\.\d ms", result.stdout), output[-4000:]

    sids = assert_cleaned_up(result, output, sessions=4)
    assert len(sids) == 4, sids  # three nodes and mosquitto
