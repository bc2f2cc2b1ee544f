"""A printer added through a CUPS `everywhere` queue: created by `printer add --cups-queue`,
ready before the command returns, and released through CUPS to the real printer."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.devtools.localmesh import LocalMesh
from appliance.devtools.virtual_printer import MdnsBus, VirtualPrinter
from appliance.printers.delivery.cups import CUPS_LOCK, _connect, service_account
from appliance.printers.ipp.exceptions import IppError
from tests.fixtures.cups import PrivateCups
from tests.integration.conftest import Site, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def cups_site(tmp_path: Path) -> Iterator[tuple[Site, PrivateCups, VirtualPrinter]]:
    with (
        PrivateCups() as cupsd,  # its own temp dir: CUPS filters run as lp
        MdnsBus() as bus,
        VirtualPrinter(bus) as printer,
    ):
        mesh = LocalMesh(tmp_path / "mesh", size=3, env={"CUPS_SERVER": cupsd.server})
        try:
            mesh.create()
            yield Site(mesh), cupsd, printer
        finally:
            mesh.close()


def test_printer_added_with_a_cups_queue_prints_through_cups(
    cups_site: tuple[Site, PrivateCups, VirtualPrinter],
) -> None:
    site, cupsd, printer = cups_site
    site.add_printer("office", printer.uri, "--cups-queue", "Office_Laser")
    listing = site.mesh.cli("printer", "list", "--data", str(site.mesh.nodes[0].data)).stdout
    assert "cups:Office_Laser" in listing
    model = cupsd.run("lpstat", "-l", "-p", "Office_Laser").stdout
    assert "Office_Laser" in model

    data = b"Printed through CUPS\n" * 200
    receipt = site.submit(1, data, content_type="text/plain")
    delivery = site.release_to(0, receipt["id"], "office", copies=2)
    assert delivery["stage"] == "printed", delivery
    jobs = printer.client().get_job_attributes(1)
    assert jobs.copies == 2
    # alice has no Unix account: CUPS got the job from the node's own account, with her
    # name in the job's name (cupsd 2.4.2-3+deb12u10 crashed on jobs owned by her name).
    assert (jobs.user, jobs.name) == (service_account(), "alice: doc")
    assert cupsd.running

    bad = site.mesh.cli(
        "printer",
        "add",
        "raw",
        "--uri",
        "socket://127.0.0.1:9100",
        "--cups-queue",
        "Nope",
        "--data",
        str(site.mesh.nodes[0].data),
        check=False,
    )
    assert bad.returncode == 1 and "needs an ipp" in bad.stderr


def test_a_cupsd_that_dies_during_a_delivery_fails_the_release_promptly(
    cups_site: tuple[Site, PrivateCups, VirtualPrinter],
) -> None:
    site, cupsd, printer = cups_site
    site.add_printer("office", printer.uri, "--cups-queue", "Office_Laser")
    with CUPS_LOCK:  # CUPS takes the job and keeps it, as for a printer that is busy
        _connect(cupsd.server).disablePrinter("Office_Laser", reason="paused for the test")
    receipt = site.submit(1, b"CUPS stops while it has this\n" * 50, content_type="text/plain")
    delivery = site.start_release(0, receipt["id"], "office", release_id="cupsd-dies-01")
    assert delivery["stage"] in ("queued", "printing"), delivery
    assert cupsd.process is not None
    cupsd.process.kill()
    cupsd.process.wait()
    stopped = time.monotonic()

    settled = wait_for(lambda: site._settled(0, "cupsd-dies-01"), timeout=40)
    assert time.monotonic() - stopped < 20
    assert settled["stage"] == "unknown", settled
    assert "CUPS is not running" in settled["reason"] and "reprint" in settled["reason"]
    # Still held on every holder, for its owner to print again on purpose.
    assert len(site.held_on(receipt["id"])) == 3
    [job] = [j for j in site.jobs(1) if j["id"] == receipt["id"]]
    assert job["state"] == "unknown", job


@pytest.fixture
def routed_site(tmp_path: Path) -> Iterator[tuple[Site, VirtualPrinter]]:
    """Three nodes; only node 0's CUPS is real (the others point at a socket that is not
    there), as when the queue exists on the appliance alone."""
    with PrivateCups() as cupsd, MdnsBus() as bus, VirtualPrinter(bus) as printer:
        nowhere = {"CUPS_SERVER": str(tmp_path / "no-cups-here.sock")}
        real = {"CUPS_SERVER": cupsd.server}
        mesh = LocalMesh(tmp_path / "mesh", size=3, env=nowhere)
        try:
            mesh.create()
            mesh.kill(0, signal.SIGTERM)
            mesh.start(0, env=real)
            mesh.wait_live(3)
            data = str(mesh.nodes[0].data)
            mesh.cli(
                "printer", "add", "office", "--uri", printer.uri, "--cups-queue", "Office",
                "--data", data, env=real,
            )  # fmt: skip
            mesh.wait_directory()
            yield Site(mesh), printer
        finally:
            mesh.close()


def test_a_cups_printer_is_delivered_by_the_node_whose_cups_has_the_queue(
    routed_site: tuple[Site, VirtualPrinter],
) -> None:
    site, printer = routed_site
    listing = json.loads(
        site.mesh.cli("printer", "list", "--json", "--data", str(site.mesh.nodes[0].data)).stdout
    )
    assert [(p["name"], p["node"]) for p in listing] == [("office", site.mesh.nodes[0].id)]

    # Released on node 2, whose CUPS has no such queue: node 0 delivers it.
    receipt = site.submit(1, b"Routed to the queue's node\n" * 100, content_type="text/plain")
    delivery = site.release_to(2, receipt["id"], "office", copies=2, release_id="routed-0001")
    assert delivery["stage"] == "printed", delivery
    assert printer.client().get_job_attributes(1).copies == 2
    again = site.start_release(1, receipt["id"], "office", release_id="routed-0001")
    assert again["release_id"] == "routed-0001" and again["printer"] == "office"
    wait_for(lambda: site.held_on(receipt["id"]) == [])

    # With the queue's node down the job stays held, and the owner is told why.
    site.mesh.kill(0)
    site.mesh.wait_live(2, index=2)
    wait_for(lambda: not any(m["live"] for m in site.mesh.status(2)["members"]
                             if m["id"] == site.mesh.nodes[0].id))  # fmt: skip
    receipt = site.submit(1, b"waits for node 0\n", content_type="text/plain")
    err = site.error(site.release_to, 2, receipt["id"], "office")
    assert err.status == 503 and "not up" in str(err) and "stays held" in str(err)
    assert len(site.held_on(receipt["id"])) == 2
    with pytest.raises(IppError):  # nothing printed a second time
        printer.client().get_job_attributes(2)
