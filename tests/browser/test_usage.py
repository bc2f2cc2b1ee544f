"""The Usage page and quotas in a real browser (Debian's Chromium): a job printed on a
real IPP printer (ippeveprinter, counting its impressions) shows on the admin's Usage
page with its server-drawn chart and in the CSV export; with a monthly quota set there,
the release page shows the user's balance and refuses a job that would go past it, and a
top-up lets it through. Screenshots land in docs/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.devtools.localmesh import LocalMesh
from appliance.devtools.processes import free_port
from appliance.devtools.webserver import WebServer, self_signed
from appliance.store.db import Database
from appliance.store.usage import UsageLog
from tests.browser.conftest import screenshot
from tests.fixtures.console import add_console_admin
from tests.fixtures.documents import pdf
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from webui import create_app

pytestmark = pytest.mark.integration

ADMIN = ("office-admin", "correct horse battery")
ALICE = ("alice", "velvet-orbit-71")
PRINTER = "front-desk"
IMPRESSIONS = 7  # what the printer counts for each job


@dataclass
class Office:
    mesh: LocalMesh
    web: WebServer
    printer: VirtualPrinter
    token: str

    @property
    def release_url(self) -> str:
        return f"https://127.0.0.1:{self.mesh.nodes[0].release_port}"

    def print_job(self, pages: int, title: str, **options: Any) -> None:
        """Alice sends a PDF and releases it to the printer; wait until it is counted."""
        submit = self.mesh.client(0, "submit")
        receipt = submit.submit((ALICE[0], self.token), pdf(pages), title, "application/pdf")
        before = len(self.records())
        self.mesh.client(0).release(receipt["id"], {"printer": PRINTER, **options}, ALICE)
        _wait(lambda: len(self.records()) > before)

    def records(self) -> list[Any]:
        return UsageLog(Database(self.mesh.nodes[0].data / "meshprint.db")).between()


def _wait(condition: Any, timeout: float = 60) -> None:
    import time

    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Office]:
    root = tmp_path_factory.mktemp("usage-office")
    command = root / "print-command"
    command.write_text(
        f'#!/bin/sh\necho "ATTR: job-impressions-completed={IMPRESSIONS}" >&2\nexit 0\n'
    )
    command.chmod(0o755)
    with MdnsBus() as bus, VirtualPrinter(bus, name="Front Desk", command=str(command)) as printer:
        mesh = LocalMesh(root / "mesh", size=1, name="Usage office")
        web: WebServer | None = None
        try:
            mesh.create()
            token = mesh.add_user(*ALICE)
            data = mesh.nodes[0].data
            mesh.cli("printer", "add", PRINTER, "--uri", printer.uri, "--data", str(data))
            add_console_admin(mesh, *ADMIN)
            app = create_app({"MESHPRINT_DATA": str(data), "RELEASE_API": mesh.nodes[0].release})
            cert, key = self_signed(root / "web")
            web = WebServer(app, "127.0.0.1", free_port(), cert, key).start()
            yield Office(mesh, web, printer, token)
        finally:
            if web is not None:
                web.stop()
            mesh.close()


def _context(chromium: Any, **kwargs: Any) -> Any:
    context = chromium.new_context(ignore_https_errors=True, accept_downloads=True, **kwargs)
    context.set_default_timeout(60_000)
    return context


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = _context(chromium, viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    context = _context(
        chromium,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    yield context.new_page()
    context.close()


def sign_in_admin(page: Any, office: Office) -> None:
    page.goto(f"{office.web.url}/login")
    page.fill("input[name=name]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")


def test_usage_page_chart_and_csv(office: Office, page: Any, tmp_path: Path) -> None:
    office.print_job(3, "Quarterly figures")
    office.print_job(2, "Menu", mono=True, sides="two-sided-long-edge")
    blocked: list[str] = []
    page.on(
        "console", lambda msg: blocked.append(msg.text) if "Content Security" in msg.text else None
    )
    sign_in_admin(page, office)
    page.click("nav >> text=Usage")
    page.wait_for_url("**/admin/usage/")
    assert page.inner_text("#usage-pages") == str(2 * IMPRESSIONS)
    assert page.inner_text("#usage-color") == "50%"
    assert page.inner_text("#usage-duplex") == "50%"
    # the charts are SVG drawn by the server: a bar for alice, for the printer, for the month
    assert page.locator("svg.chart").count() == 3
    bar = page.locator("svg.chart").first.locator("rect.bar-color").first
    assert bar.bounding_box()["width"] > 100  # drawn, and styled by the stylesheet
    assert "alice: 7 colour pages" in bar.locator("title").text_content()
    assert page.locator("svg.chart").first.locator("rect.bar-mono").count() == 2  # + legend
    assert page.locator("#usage-users td strong", has_text="alice").count() == 1
    screenshot(page, "usage")

    with page.expect_download() as info:
        page.click("#usage-csv")
    saved = tmp_path / "usage.csv"
    info.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("user,printer,jobs,pages,sheets,color_pages")
    # 7 + 7 pages; the two-sided job's 7 impressions take 4 sheets
    assert lines[1] == f"alice,{PRINTER},2,14,11,7,7,7,7"

    # A range with nothing printed in it: an empty export, and the page says so.
    page.fill("input[name=from]", "2020-01-01")
    page.fill("input[name=to]", "2020-01-31")
    page.click("button:has-text('Show')")
    assert page.inner_text("#usage-pages") == "0"
    assert "Nothing printed in this range" in page.inner_text("main")
    assert blocked == []


def test_quota_refusal_on_the_release_page(office: Office, page: Any, phone: Any) -> None:
    used = sum(r.pages for r in office.records())
    # Without a quota the release page says only what was printed this month.
    phone.goto(f"{office.release_url}/release?printer={PRINTER}")
    phone.fill("input[name=name]", ALICE[0])
    phone.fill("input[name=password]", ALICE[1])
    phone.click("button[type=submit]")
    assert f"Printed this month: {used} pages" in phone.inner_text("#my-usage")
    assert phone.locator("#pages-left").count() == 0

    sign_in_admin(page, office)
    page.goto(f"{office.web.url}/admin/usage/")
    page.fill("input[name=monthly_pages]", str(used + 1))
    page.click("button:has-text('Save quotas')")
    assert "Monthly quota" in page.inner_text(".notice.ok")
    assert page.locator("#usage-balances td", has_text="alice").count() == 1

    submit = office.mesh.client(0, "submit")
    submit.submit((ALICE[0], office.token), pdf(3), "Poster draft", "application/pdf")
    phone.goto(f"{office.release_url}/release?printer={PRINTER}")
    phone.wait_for_selector("text=Poster draft")
    assert phone.inner_text("#pages-left") == "1"
    phone.locator("li.job", has_text="Poster draft").locator("button", has_text="Print").click()
    refusal = phone.inner_text(".notice.error")
    assert "Not printed" in refusal and "needs 3 page(s)" in refusal
    assert f"has 1 of {used + 1} page(s) left" in refusal and "top up" in refusal
    assert phone.locator("li.job", has_text="Poster draft").count() == 1  # still held
    screenshot(phone, "release-quota")

    # The admin tops alice up; the release page shows the new balance and prints.
    page.goto(f"{office.web.url}/admin/usage/")
    page.select_option("#topup select[name=user]", "alice")
    page.fill("#topup input[name=pages]", "20")
    page.click("button:has-text('Top up this month')")
    assert "Topped up alice" in page.inner_text(".notice.ok")
    phone.goto(f"{office.release_url}/release?printer={PRINTER}")
    assert phone.inner_text("#pages-left") == "21"
    phone.locator("li.job", has_text="Poster draft").locator("button", has_text="Print").click()
    phone.wait_for_url("**/release/progress**")
    phone.wait_for_selector("[data-field=stage]:has-text('printed')", timeout=90_000)
