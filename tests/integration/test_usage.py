"""Usage accounting end to end: a job printed on a real IPP printer (ippeveprinter)
leaves a usage record with the printer's own page count (job-impressions-completed),
and the record reaches the controller although it was down when the job printed; a RAW
printer's pages are its SNMP page counter's advance (snmpsim)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store.db import Database
from appliance.store.usage import UsageLog, UsageRecord
from tests.fixtures.documents import pdf
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.fixtures.rawsink import RawSink
from tests.fixtures.snmpagent import SnmpPrinterAgent, snmp_printer
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = pytest.mark.integration
IMPRESSIONS = 7  # what the printer says it printed: not 3 pages x 2 copies


@pytest.fixture
def usite(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path / "site", 3)


@pytest.fixture
def counting_printer(tmp_path: Path) -> Iterator[VirtualPrinter]:
    """ippeveprinter whose print command reports the impressions it made, as a real
    printer's job-impressions-completed would."""
    command = tmp_path / "print-command"
    command.write_text(
        f'#!/bin/sh\necho "ATTR: job-impressions-completed={IMPRESSIONS}" >&2\nexit 0\n'
    )
    command.chmod(0o755)
    with MdnsBus() as bus, VirtualPrinter(bus, command=str(command)) as printer:
        yield printer


def _records(site: Site, index: int) -> list[UsageRecord]:
    return UsageLog(Database(site.mesh.nodes[index].data / "meshprint.db")).between()


def test_printed_job_usage_reaches_the_controller_with_the_printers_count(
    usite: Site, counting_printer: VirtualPrinter
) -> None:
    name = f"p{counting_printer.port}"
    usite.add_printer(name, counting_printer.uri, "--location", "Front desk")
    receipt = usite.submit(1, pdf(3), title="Three pages", content_type="application/pdf")
    assert receipt["pages"] == 3  # counted at intake from the PDF's page tree
    # the other holders learn the count once the document is in
    wait_for(lambda: all(usite.peer(1, i).job(receipt["id"]).get("pages") == 3 for i in (0, 2)))

    usite.mesh.kill(0)  # the controller is off while the job prints
    delivery = usite.release_to(
        2, receipt["id"], name, copies=2, sides="two-sided-long-edge", release_id="rel-usage-0001"
    )
    assert delivery["stage"] == "printed", delivery
    at_printer = counting_printer.client().get_job_attributes(int(delivery["printer_job"]))
    assert at_printer.attributes["job-impressions-completed"].values == [IMPRESSIONS]

    [kept] = wait_for(lambda: [r for r in _records(usite, 2) if r.state == "printed"])
    assert (kept.user, kept.printer, kept.copies, kept.duplex, kept.color) == (
        "alice", name, 2, True, True
    )  # fmt: skip
    assert (kept.pages, kept.source, kept.doc_pages) == (IMPRESSIONS, "printer", 3)
    assert kept.sheets == 4  # two copies of 4 impressions (7 over 2 copies), two-sided

    usite.mesh.start(0)  # back: node 2 forwards what it kept
    [arrived] = wait_for(lambda: _records(usite, 0), timeout=60)
    assert arrived == kept

    # Sent again (a retry after a lost answer): kept once.
    again = usite.peer(2, 0).usage([kept.to_wire()])
    assert again == {"accepted": 0, "sent": 1}
    assert len(_records(usite, 0)) == 1

    out = subprocess.run(
        [usite.mesh.nodes[0].python, "-m", "appliance.cli", "usage", "--csv", "--data",
         str(usite.mesh.nodes[0].data)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("user,printer,jobs,pages,sheets,color_pages")
    assert lines[1] == f"alice,{name},1,{IMPRESSIONS},4,{IMPRESSIONS},0,{IMPRESSIONS},0"

    # The owner sees it on their release API.
    mine = usite.mesh.client(1).usage(("alice", "velvet-orbit-71"))
    assert (mine["pages"], mine["pages_left"], mine["complete"]) == (IMPRESSIONS, None, True)
    assert json.dumps(mine)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[SnmpPrinterAgent]:
    with snmp_printer(tmp_path / "snmp") as agent:
        yield agent


def test_raw_printers_page_counter_gives_the_pages(usite: Site, agent: SnmpPrinterAgent) -> None:
    with RawSink() as sink:
        name = f"raw{sink.port}"
        usite.add_printer(
            name, f"socket://127.0.0.1:{sink.port}", "--pdl", "pdf",
            "--snmp", f"127.0.0.1:{agent.port}", "--community", agent.community,
        )  # fmt: skip
        before = agent.get("1.3.6.1.2.1.43.10.2.1.4.1.1")
        assert isinstance(before, int)
        receipt = usite.submit(0, pdf(3), content_type="application/pdf")
        release_id = usite.start_release(0, receipt["id"], name, mono=True)["release_id"]
        sink.wait(1)
        agent.set_pages(before + 4)  # the printer counted 4 (say, a banner page too)
        wait_for(lambda: usite.delivery(0, release_id)["stage"] == "printed")
    [kept] = wait_for(lambda: _records(usite, 0))
    assert (kept.pages, kept.sheets, kept.source, kept.color) == (4, 4, "printer", False)
