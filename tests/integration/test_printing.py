"""Releasing held jobs to real printers: ippeveprinter over IPP, a RAW sink, SNMP status
from snmpsim, and exactly-once delivery when releases repeat or a holder dies mid-way."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import MeshprintError
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.fixtures.rawsink import RawSink
from tests.fixtures.snmpagent import SnmpPrinterAgent, snmp_printer
from tests.integration.conftest import PASSWORDS, Site, make_site, random_bytes, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def psite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("printing"), 3)


@pytest.fixture(scope="module")
def bus() -> Iterator[MdnsBus]:
    with MdnsBus() as bus:
        yield bus


@pytest.fixture
def printer(bus: MdnsBus) -> Iterator[VirtualPrinter]:
    with VirtualPrinter(bus) as printer:
        yield printer


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[SnmpPrinterAgent]:
    with snmp_printer(tmp_path / "snmp") as agent:
        yield agent


def _name(printer: VirtualPrinter | RawSink) -> str:
    return f"p{printer.port}"


def test_release_prints_once_on_an_ipp_printer_with_the_options(
    psite: Site, printer: VirtualPrinter
) -> None:
    psite.add_printer(_name(printer), printer.uri, "--location", "Lobby")
    data = b"Minutes of the board meeting\n" * 10_000
    receipt = psite.submit(1, data, title="Board minutes", content_type="text/plain")
    delivery = psite.release_to(
        2,
        receipt["id"],
        _name(printer),
        copies=2,
        sides="two-sided-long-edge",
        media="na_legal_8.5x14in",
        release_id="rel-ipp-0001",
    )
    assert delivery["stage"] == "printed", delivery
    at_printer = printer.client().get_job_attributes(int(delivery["printer_job"]))
    assert (at_printer.copies, at_printer.sides) == (2, "two-sided-long-edge")
    assert at_printer.attributes["media"].values == ["na_legal_8.5x14in"]
    assert at_printer.user == "alice" and at_printer.name == "Board minutes"
    assert printer.document(int(delivery["printer_job"])).read_bytes() == data
    wait_for(lambda: psite.held_on(receipt["id"]) == [])

    # The same release again, here or at another node, never prints a second copy.
    again = psite.mesh.client(2).release(
        receipt["id"],
        {"printer": _name(printer), "release_id": "rel-ipp-0001"},
        ("alice", PASSWORDS["alice"]),
    )
    assert again["stage"] == "printed"
    elsewhere = psite.release_to(0, receipt["id"], _name(printer), release_id="rel-ipp-0001")
    assert elsewhere == delivery  # node 0 answers with node 2's delivery
    assert {p.name.split("-")[0] for p in printer.spool.iterdir()} == {"1"}, "printed twice"


def test_jammed_printer_keeps_the_job_held_until_it_is_fixed(
    psite: Site, printer: VirtualPrinter, agent: SnmpPrinterAgent
) -> None:
    name = _name(printer)
    psite.add_printer(
        name, printer.uri, "--snmp", f"127.0.0.1:{agent.port}", "--community", agent.community
    )
    receipt = psite.submit(0, b"quarterly figures\n")
    agent.jam()
    err = psite.error(psite.release_to, 1, receipt["id"], name)
    assert err.status == 503 and "jam" in str(err).lower()
    job = next(j for j in psite.jobs(1) if j["id"] == receipt["id"])
    assert job["state"] == "held" and "jam" in job["reason"].lower()
    assert len(psite.held_on(receipt["id"])) == 3

    agent.reset()
    agent.empty_toner()
    err = psite.error(psite.release_to, 1, receipt["id"], name)
    assert err.status == 503 and "toner" in str(err).lower()

    agent.reset()
    assert psite.release_to(1, receipt["id"], name)["stage"] == "printed"


def test_raw_printer_gets_the_document_byte_for_byte(psite: Site) -> None:
    with RawSink() as sink:
        psite.add_printer(_name(sink), f"socket://127.0.0.1:{sink.port}", "--pdl", "as-is")
        data = random_bytes(2_000_000)
        receipt = psite.submit(2, data)
        assert psite.release_to(0, receipt["id"], _name(sink))["stage"] == "printed"
        assert sink.wait(1) == [data]
    wait_for(lambda: psite.held_on(receipt["id"]) == [])


def test_bad_printer_requests_leave_the_job_held(psite: Site) -> None:
    receipt = psite.submit(0, b"stays")
    err = psite.error(psite.release_to, 0, receipt["id"], "no-such-printer")
    assert err.status == 404 and "no printer 'no-such-printer'" in str(err)
    err = psite.error(psite.release_to, 0, receipt["id"], "x", copies=0)
    assert err.status == 400 and "copies" in str(err)
    # Nothing answers there: refused at add time, saying what was found, nothing added.
    data_dir = str(psite.mesh.nodes[0].data)
    refused = psite.mesh.cli(
        "printer", "add", "nobody-home", "--uri", "ipp://127.0.0.1:9/ipp/print",
        "--data", data_dir, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "was not added" in refused.stderr, refused
    assert "--no-check" in refused.stderr and "Traceback" not in refused.stderr
    listed = psite.mesh.cli("printer", "list", "--json", "--data", data_dir).stdout
    assert "nobody-home" not in listed
    psite.add_printer("nobody-home", "ipp://127.0.0.1:9/ipp/print", "--no-check")
    err = psite.error(psite.release_to, 0, receipt["id"], "nobody-home")
    assert err.status == 503
    job = next(j for j in psite.jobs(0) if j["id"] == receipt["id"])
    assert job["state"] == "held" and job["reason"]
    assert len(psite.held_on(receipt["id"])) == 3


@pytest.fixture
def site3(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, 3)


def test_holder_killed_mid_delivery_needs_an_explicit_reprint(site3: Site) -> None:
    with RawSink(read_delay=0.05) as slow:
        name = _name(slow)
        site3.add_printer(name, f"socket://127.0.0.1:{slow.port}", "--pdl", "as-is")
        data = random_bytes(6_000_000)
        receipt = site3.submit(0, data)
        wait_for(lambda: len(site3.held_on(receipt["id"])) == 3)
        errors: list[BaseException] = []

        def release() -> None:
            try:
                site3.release_to(1, receipt["id"], name)
            except (MeshprintError, AssertionError) as err:
                errors.append(err)

        thread = threading.Thread(target=release)
        thread.start()
        wait_for(lambda: any(slow.directory.iterdir()), timeout=20)
        site3.mesh.kill(1)
        thread.join(30)
        assert errors, "the release whose node died must not report success"
        # While node 1 may still be alive, others refuse; once it is gone, they still do.
        err = site3.error(site3.release_to, 2, receipt["id"], name)
        assert err.status == 409

        def node1_down() -> bool:
            members = site3.mesh.status(2)["members"]
            return not next(m for m in members if m["id"] == site3.mesh.nodes[1].id)["live"]

        wait_for(node1_down)
        # Node 1 may or may not have got it all out: the others must not guess.
        err = site3.error(site3.release_to, 2, receipt["id"], name)
        assert err.status == 409 and "may already have printed" in str(err)
        job = next(j for j in site3.jobs(0) if j["id"] == receipt["id"])
        assert job["state"] in ("delivering", "unknown")
        delivery = site3.release_to(2, receipt["id"], name, reprint=True)
        assert delivery["stage"] == "printed"
        assert data in slow.received(include_broken=True)


def test_printer_test_reports_what_the_printer_says(
    psite: Site, printer: VirtualPrinter, agent: SnmpPrinterAgent
) -> None:
    name = f"{_name(printer)}-t"
    psite.add_printer(
        name, printer.uri, "--snmp", f"127.0.0.1:{agent.port}", "--community", agent.community
    )
    data = ["printer", "test", name, "--data", str(psite.mesh.nodes[0].data)]
    report = json.loads(psite.mesh.cli(*data, "--json", "--page").stdout)
    assert report["ok"] and report["reachable"]
    assert "text/plain" in report["formats"]
    assert report["status"]["pages"] == 12345
    assert report["status"]["supplies"][0]["percent"] == 42
    assert report["test_page"].startswith("printed")
    assert any(printer.spool.iterdir())

    agent.jam()
    jammed = psite.mesh.cli(*data, check=False)
    assert jammed.returncode == 1 and "jam" in jammed.stdout.lower()
    assert "Traceback" not in jammed.stderr

    psite.add_printer("gone", "socket://127.0.0.1:9", "--no-check")
    gone = psite.mesh.cli(
        "printer", "test", "gone", "--data", str(psite.mesh.nodes[0].data), check=False
    )
    assert gone.returncode == 1 and "nothing answers" in gone.stdout


def test_status_and_printer_list_show_supplies_and_alerts(
    psite: Site, printer: VirtualPrinter, agent: SnmpPrinterAgent
) -> None:
    name = f"{_name(printer)}-s"
    psite.add_printer(
        name, printer.uri, "--snmp", f"127.0.0.1:{agent.port}", "--community", agent.community
    )

    def polled(ready: bool) -> dict[str, object] | None:
        entry = next(p for p in psite.mesh.status(0)["printers"] if p["name"] == name)
        return entry if entry["ready"] is ready else None

    entry = wait_for(lambda: polled(True))
    assert entry["pages"] == 12345 and entry["supplies"][0]["percent"] == 42
    listing = psite.mesh.cli("printer", "list", "--data", str(psite.mesh.nodes[0].data)).stdout
    assert name in listing and "ready" in listing and "42%" in listing
    agent.jam()
    assert "jam" in str(wait_for(lambda: polled(False), timeout=45)["reason"]).lower()
    status = psite.mesh.cli(
        "status", "--node", psite.mesh.nodes[0].release, "--ca", str(psite.mesh.ca)
    ).stdout
    assert "NOT READY" in status


def test_a_printer_without_snmp_reports_its_state_over_ipp(psite: Site, bus: MdnsBus) -> None:
    """No SNMP: the monitor asks the printer itself (IPP printer-state and reasons), so
    it is ready, then down when switched off, then ready again, in plain words."""
    with VirtualPrinter(bus, name="No SNMP Laser") as laser:
        psite.add_printer("no-snmp", laser.uri, "--display-name", "Front desk")

        def polled(ready: bool) -> dict[str, object] | None:
            entry = next(p for p in psite.mesh.status(0)["printers"] if p["name"] == "no-snmp")
            return entry if entry["ready"] is ready else None

        entry = wait_for(lambda: polled(True))
        assert entry["source"] == "ipp" and entry["printer"] == "idle"
        assert entry["display_name"] == "Front desk"
        data = ["--data", str(psite.mesh.nodes[0].data)]
        listing = psite.mesh.cli("printer", "list", *data).stdout
        assert "shown as 'Front desk'" in listing
        line = next(line for line in listing.splitlines() if "checked" in line and "ready" in line)
        assert "ago" in line or "just now" in line
        renamed = psite.mesh.cli("printer", "set", "no-snmp", "--display-name", "Reception", *data)
        assert "display name 'Reception'" in renamed.stdout
        psite.mesh.wait_directory()
        status = psite.mesh.cli(
            "status", "--node", psite.mesh.nodes[0].release, "--ca", str(psite.mesh.ca)
        ).stdout
        assert "no-snmp (Reception)" in status
        nothing = psite.mesh.cli("printer", "set", "no-snmp", *data, check=False)
        assert nothing.returncode == 1 and "say what to change" in nothing.stderr
        laser.stop()
        down = wait_for(lambda: polled(False), timeout=45)
        assert "refused" in str(down["reason"]) and "-error" not in str(down["reason"])
        laser.start()
        wait_for(lambda: polled(True), timeout=45)
    psite.mesh.cli("printer", "remove", "no-snmp", *data)
    psite.mesh.wait_directory()


def test_discover_finds_printers_over_dns_sd_and_snmp(
    psite: Site, bus: MdnsBus, agent: SnmpPrinterAgent
) -> None:
    with VirtualPrinter(bus, name="Front Desk Laser") as laser:
        env = {"DBUS_SYSTEM_BUS_ADDRESS": bus.address}

        def found() -> list[dict[str, object]] | None:
            out = psite.mesh.cli(
                "printer", "discover", "--data", str(psite.mesh.nodes[0].data), "--json", env=env
            ).stdout
            items = [f for f in json.loads(out) if f["name"] == "Front Desk Laser"]
            return items or None

        (item,) = wait_for(found, timeout=20)
        assert laser.uri in item["uris"] and "dns-sd" in item["sources"]
        assert "text/plain" in item["formats"] and item["make_and_model"]
    # An SNMP sweep of the loopback address finds the simulated printer too.
    from appliance.printers.discover import discover

    hits = discover("127.0.0.1/32", agent.community, env=env, snmp_port=agent.port)
    swept = [f for f in hits if "snmp" in f.sources]
    assert swept and swept[0].host == "127.0.0.1"
