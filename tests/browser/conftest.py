"""Browser tests: Debian's Chromium driven by Playwright (never `playwright install`),
against the web UI served over HTTPS on loopback, real node processes (LocalMesh) and a
real IPP printer (ippeveprinter) found over DNS-SD on a private avahi."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.devtools.localmesh import LocalMesh
from appliance.devtools.processes import free_port
from appliance.devtools.webserver import WebServer, self_signed
from appliance.site import setupcode
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from webui import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PRINTER_NAME = "Office Laser"


@dataclass
class Appliance:
    """A fresh appliance: its data directory (no site yet), setup code, web UI, the node
    that will run once the wizard created the site, and a printer on the network."""

    mesh: LocalMesh
    data: Path
    code: str
    web: WebServer
    printer: VirtualPrinter

    @property
    def url(self) -> str:
        return self.web.url

    @property
    def release_url(self) -> str:
        return f"https://127.0.0.1:{self.mesh.nodes[0].release_port}"


def start_appliance(root: Path, bus: MdnsBus, printer: VirtualPrinter) -> Appliance:
    mesh = LocalMesh(root / "mesh", size=1, name="unused")
    data = mesh.nodes[0].data
    code = setupcode.ensure(data)
    release = f"https://127.0.0.1:{mesh.nodes[0].release_port}"
    app = create_app(
        {
            "MESHPRINT_DATA": str(data),
            "RELEASE_API": mesh.nodes[0].release,
            "RELEASE_URL": release,
            "DISCOVERY_ENV": bus.env,
        }
    )
    cert, key = self_signed(root / "web")
    web = WebServer(app, "127.0.0.1", free_port(), cert, key).start()
    return Appliance(mesh, data, code, web, printer)


@pytest.fixture(scope="module")
def bus() -> Iterator[MdnsBus]:
    with MdnsBus() as bus:
        yield bus


@pytest.fixture(scope="module")
def printer(bus: MdnsBus) -> Iterator[VirtualPrinter]:
    with VirtualPrinter(bus, name=PRINTER_NAME) as printer:
        yield printer


@pytest.fixture(scope="module")
def appliance(
    tmp_path_factory: pytest.TempPathFactory, bus: MdnsBus, printer: VirtualPrinter
) -> Iterator[Appliance]:
    found = start_appliance(tmp_path_factory.mktemp("appliance"), bus, printer)
    try:
        yield found
    finally:
        found.web.stop()
        found.mesh.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def has_chromium() -> bool:
    return shutil.which("chromium") is not None
