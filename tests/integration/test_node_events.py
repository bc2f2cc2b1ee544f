"""Each node keeps its own events (no broker needed) for the dashboard: a job held on
the node it was sent to, its copies arriving on the others, a release printed, and a
killed node seen going down; the log is for the same machine only."""

from __future__ import annotations

import pytest

from appliance.devtools.virtual_printer import MdnsBus, VirtualPrinter
from tests.integration.conftest import Site, wait_for

pytestmark = pytest.mark.integration


def kinds(site: Site, index: int) -> list[str]:
    return [e["kind"] for e in site.mesh.client(index).events()]


def test_nodes_log_jobs_printing_and_members_going_down(site3: Site) -> None:
    with MdnsBus() as bus, VirtualPrinter(bus) as printer:
        site3.add_printer("lobby", printer.uri)
        receipt = site3.submit(0, b"minutes\n", title="Minutes", content_type="text/plain")
        assert wait_for(lambda: "held" in kinds(site3, 0), 15)
        [held] = [e for e in site3.mesh.client(0).events() if e["kind"] == "held"]
        assert held["job"] == receipt["id"] and held["node"] == site3.mesh.nodes[0].id
        assert "owner" not in held and "title" not in held  # metadata only
        assert wait_for(lambda: "replicated" in kinds(site3, 1), 15)
        site3.release_to(0, receipt["id"], "lobby")
        everywhere = lambda: [e for i in range(3) for e in site3.mesh.client(i).events()]  # noqa: E731
        assert wait_for(lambda: any(e["kind"] == "printed" for e in everywhere()), 30)
        [printed] = [e for e in everywhere() if e["kind"] == "printed"]
        assert printed["printer"] == "lobby" and printed["job"] == receipt["id"]
    gone = site3.mesh.nodes[2].id
    site3.mesh.kill(2)
    assert wait_for(lambda: "node-down" in kinds(site3, 0), 30)
    down = [e for e in site3.mesh.client(0).events() if e["kind"] == "node-down"]
    assert [e["node"] for e in down] == [gone]
