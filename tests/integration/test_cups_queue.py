"""A printer added through a CUPS `everywhere` queue: created by `printer add --cups-queue`,
ready before the command returns, and released through CUPS to the real printer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.localmesh import LocalMesh
from appliance.printers.virtual import MdnsBus, VirtualPrinter
from tests.fixtures.cups import PrivateCups
from tests.integration.conftest import Site

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
