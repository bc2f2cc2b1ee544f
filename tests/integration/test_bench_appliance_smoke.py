"""Smoke test: bench/appliance.py starts the appliance's services (node, gunicorn web UI,
Mosquitto, CUPS, avahi), prints each one's idle CPU and memory and the verdict against
the budget, and stops them all. No figure is asserted (the machine is shared)."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_bench_smoke import assert_cleaned_up, run_quick

pytestmark = pytest.mark.integration


def test_appliance_bench_quick_prints_every_service_and_cleans_up() -> None:
    result, output = run_quick("appliance")

    for service, procs in [("node", 1), ("webui", 2), ("mosquitto", 1), ("cups", 1), ("avahi", 1)]:
        row = re.search(
            rf"^{service}\s+(\d+)\s+\d+\.\d{{3}}\s+\d+\.\d\s+\d+\.\d", result.stdout, re.MULTILINE
        )
        assert row, (service, output[-4000:])
        assert int(row.group(1)) >= procs, (service, output[-4000:])  # master + one worker
    assert re.search(r"^TARGET memory: .* (PASS|MISS)$", result.stdout, re.MULTILINE), output
    assert re.search(r"^TARGET CPU: .* (PASS|MISS)$", result.stdout, re.MULTILINE), output
    assert_cleaned_up(result, output, sessions=6)
