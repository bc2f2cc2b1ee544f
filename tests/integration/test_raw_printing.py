"""RAW printers that speak only PostScript or PCL: held PDFs converted through CUPS's real
filters in memory, options written into the document, and completion told by the SNMP
page counter (snmpsim), end to end through a three-node mesh."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.printers.convert import MEMORY_DIRS
from tests.fixtures.rawsink import RawSink
from tests.fixtures.snmpagent import SnmpPrinterAgent, snmp_printer
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = pytest.mark.integration
PAGE_MARK = "meshprint-page"


@pytest.fixture(scope="module")
def rsite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("raw"), 3)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[SnmpPrinterAgent]:
    with snmp_printer(tmp_path / "snmp") as agent:
        yield agent


def text_pdf(pages: int) -> bytes:
    """A real PDF of `pages` pages, made by CUPS's texttopdf."""
    text = "\f".join(f"{PAGE_MARK} {n}\n" for n in range(1, pages + 1))
    made = subprocess.run(
        ["cupsfilter", "-i", "text/plain", "-m", "application/pdf", "-"],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    assert made.stdout.startswith(b"%PDF-")
    return made.stdout


def conversion_leftovers() -> list[Path]:
    return [p for d in MEMORY_DIRS for p in Path(d).glob("meshprint-convert-*")]


def test_pdf_reaches_a_postscript_printer_as_postscript_with_copies_and_duplex(
    rsite: Site,
) -> None:
    with RawSink() as sink:
        name = f"ps{sink.port}"
        rsite.add_printer(name, f"socket://127.0.0.1:{sink.port}", "--pdl", "postscript")
        receipt = rsite.submit(1, text_pdf(2), title="Quarterly figures")
        delivery = rsite.release_to(0, receipt["id"], name, copies=2, sides="two-sided-long-edge")
        assert delivery["stage"] == "printed", delivery
        (document,) = sink.wait(1)
    assert document.startswith(b"%!PS-Adobe")
    assert b"%PDF" not in document
    assert b"/Duplex true" in document and b"/Tumble false" in document
    assert document.count(b"%%Page:") == 4  # two pages, two collated copies
    assert conversion_leftovers() == []
    wait_for(lambda: rsite.held_on(receipt["id"]) == [])


def test_pdf_reaches_a_pcl_printer_as_pcl_xl_in_black_and_white(rsite: Site) -> None:
    with RawSink() as sink:
        name = f"pcl{sink.port}"
        rsite.add_printer(name, f"socket://127.0.0.1:{sink.port}", "--pdl", "pcl")
        receipt = rsite.submit(2, text_pdf(1))
        assert rsite.release_to(1, receipt["id"], name, mono=True)["stage"] == "printed"
        (document,) = sink.wait(1)
    assert document.startswith(b"\x1b%-12345X@PJL")
    assert b"RENDERMODE=GRAYSCALE" in document
    assert b") HP-PCL XL" in document  # the PCL XL stream header
    assert conversion_leftovers() == []


def test_a_pdf_printer_gets_the_pdf_unchanged_when_no_option_needs_writing(rsite: Site) -> None:
    pdf = text_pdf(1)
    with RawSink() as sink:
        name = f"pdf{sink.port}"
        rsite.add_printer(name, f"socket://127.0.0.1:{sink.port}", "--pdl", "pdf")
        receipt = rsite.submit(0, pdf)
        assert rsite.release_to(0, receipt["id"], name)["stage"] == "printed"
        assert sink.wait(1) == [pdf]


def test_a_format_the_filters_cannot_convert_stays_held_with_the_reason(rsite: Site) -> None:
    with RawSink() as sink:
        name = f"ps{sink.port}"
        rsite.add_printer(name, f"socket://127.0.0.1:{sink.port}")  # PostScript by default
        receipt = rsite.submit(0, bytes(range(256)) * 64)  # not a document format at all
        err = rsite.error(rsite.release_to, 0, receipt["id"], name)
        assert "could not convert the application/octet-stream document" in str(err)
        assert sink.received(include_broken=True) in ([], [b""])
    job = next(j for j in rsite.jobs(0) if j["id"] == receipt["id"])
    assert job["state"] == "held"
    assert len(rsite.held_on(receipt["id"])) == 3


def test_raw_job_is_printed_only_when_the_page_counter_moves(
    rsite: Site, agent: SnmpPrinterAgent
) -> None:
    with RawSink() as sink:
        name = f"counted{sink.port}"
        rsite.add_printer(
            name,
            f"socket://127.0.0.1:{sink.port}",
            "--snmp",
            f"127.0.0.1:{agent.port}",
            "--community",
            agent.community,
        )
        before = agent.get("1.3.6.1.2.1.43.10.2.1.4.1.1")
        assert isinstance(before, int)
        receipt = rsite.submit(1, text_pdf(3))
        release_id = rsite.start_release(0, receipt["id"], name)["release_id"]
        sink.wait(1)
        # Sent, but the printer has counted nothing yet: not printed.
        status = wait_for(lambda: rsite.delivery(0, release_id)["reason"] or None)
        delivery = rsite.delivery(0, release_id)
        assert delivery["stage"] in ("queued", "printing"), delivery
        assert "0 of 3" in status
        agent.jam()
        wait_for(lambda: "jam" in rsite.delivery(0, release_id)["reason"].lower())
        agent.reset()
        agent.set_pages(before + 2)
        wait_for(lambda: "2 of 3" in rsite.delivery(0, release_id)["reason"])
        assert len(rsite.held_on(receipt["id"])) == 3
        agent.set_pages(before + 3)
        done = wait_for(
            lambda: d if (d := rsite.delivery(0, release_id))["stage"] == "printed" else None
        )
        assert "3 page(s) counted" in done["reason"]
    wait_for(lambda: rsite.held_on(receipt["id"]) == [])
