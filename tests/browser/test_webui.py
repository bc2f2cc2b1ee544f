"""The web UI in a real browser: the whole setup wizard to a printed test page, an admin
adding a user and a printer, a user releasing a held job from a phone and seeing it
printed, and rate limits on wrong setup codes and passwords. Screenshots of the wizard,
the dashboard and the release page land in docs/screenshots/."""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.site import recovery
from tests.browser.conftest import PRINTER_NAME, Appliance, screenshot, start_appliance
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.fixtures.ipptool import printer_job, send_to_node_printer
from tests.integration.test_node_printer import PDF, _request

pytestmark = pytest.mark.integration

ADMIN = ("office-admin", "correct horse battery")
ALICE = ("alice", "velvet-orbit-71")
PRINTER = "office-laser"


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 1200, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        ignore_https_errors=True,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def submit(appliance: Appliance, configured: dict[str, Any], data: bytes, title: str) -> Any:
    """Alice prints a document (through the submit API, as the Secure Print queue does)."""
    credentials = (ALICE[0], configured["alice_token"])
    return appliance.mesh.client(0, "submit").submit(credentials, data, title, "text/plain")


def sign_in_admin(page: Any, appliance: Appliance) -> None:
    page.goto(f"{appliance.url}/login")
    page.fill("input[name=name]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")


@pytest.fixture(scope="module")
def configured(chromium: Any, appliance: Appliance) -> dict[str, Any]:
    """Walk the whole wizard once in the browser; what it saw, for the tests to check."""
    context = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 1100, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    seen: dict[str, Any] = {}
    try:
        page.goto(f"{appliance.url}/")
        page.wait_for_url("**/setup/code")
        screenshot(page, "wizard-1-setup-code")
        page.fill("input[name=code]", "WRNG-CODE-0000")
        page.click("button[type=submit]")
        seen["wrong_code"] = page.inner_text(".notice.error")
        page.fill("input[name=code]", appliance.code.lower())
        page.click("button[type=submit]")

        page.wait_for_url("**/setup/admin")
        page.fill("input[name=name]", ADMIN[0])
        page.fill("input[name=password]", ADMIN[1])
        page.fill("input[name=confirm]", ADMIN[1])
        page.click("button[type=submit]")

        page.wait_for_url("**/setup/site")
        page.fill("input[name=site_name]", "Smith & Co, Main Street")
        page.select_option("select[name=retention]", "12h")
        page.click("button[type=submit]")
        page.wait_for_selector("#recovery-key")
        seen["recovery_key"] = page.inner_text("#recovery-key")
        screenshot(page, "wizard-1-recovery-key")
        page.click("text=I have kept it: continue")
        # The node service notices the new site and starts (systemd does this on the appliance).
        appliance.mesh.start(0)

        page.wait_for_url("**/setup/timezone")
        page.select_option("select[name=timezone]", "Europe/London")
        page.click("button[type=submit]")

        page.wait_for_url("**/setup/printers")
        row = page.locator("tr", has_text=PRINTER_NAME)
        row.locator("button", has_text="Add").click()
        page.wait_for_selector(f"text=Added {PRINTER}")
        page.locator("tr", has_text=PRINTER).locator("button", has_text="Print a test page").click()
        page.wait_for_selector(".notice")
        seen["test_page"] = page.inner_text(".notice")
        screenshot(page, "wizard-2-printers")
        page.click("button[value=continue]")

        page.wait_for_url("**/setup/users")
        page.fill("input[name=name]", ALICE[0])
        page.fill("input[name=password]", ALICE[1])
        page.fill("input[name=confirm]", ALICE[1])
        page.click("button[value=add]")
        seen["user_added"] = page.inner_text(".notice.ok")
        seen["alice_token"] = page.inner_text(".notice.ok td.mono.small")
        page.click("button[value=continue]")

        page.wait_for_url("**/setup/queue")
        seen["queue_has_qr"] = page.locator(".qr svg").count() == 1
        screenshot(page, "wizard-3-secure-print")
        page.click("button:has-text('Continue')")

        page.wait_for_url("**/setup/nodes")
        page.click("button[value=invite]")
        seen["join_token"] = page.inner_text("#join-token")
        seen["join_qr"] = page.locator(".qr svg").count() == 1
        seen["office_heading"] = page.inner_text("h1")
        page.click("#steps-linux summary")
        seen["linux_steps"] = page.inner_text("#steps-linux pre")
        seen["windows_steps"] = page.inner_text("#steps-windows pre")
        seen["cert_link"] = page.get_attribute("#add-office-pc a[download]", "href")
        screenshot(page, "wizard-add-office-pc")
        page.click("button[value=continue]")

        page.wait_for_url("**/setup/upstream")
        page.fill("input[name=upstream]", "not a url")
        page.click("button[type=submit]")
        seen["bad_upstream"] = page.inner_text(".notice.error")
        page.fill("input[name=upstream]", "")
        page.click("button[type=submit]")

        page.wait_for_url("**/setup/finish")
        screenshot(page, "wizard-4-finish")
        page.click("button:has-text('Finish setup')")
        page.wait_for_url("**/admin/")
        seen["after_setup"] = page.goto(f"{appliance.url}/setup/").status
    finally:
        context.close()
    return seen


def test_whole_wizard_to_a_printed_test_page(
    configured: dict[str, Any], appliance: Appliance, printer: VirtualPrinter
) -> None:
    assert "not this appliance's setup code" in configured["wrong_code"]
    assert len(recovery.normalise(configured["recovery_key"])) == 25
    assert "Test page printed on office-laser" in configured["test_page"]
    assert list(printer.spool.rglob("*")), "the printer received no test page"
    assert "Added 1 user" in configured["user_added"]
    assert configured["queue_has_qr"] and configured["join_qr"]
    assert configured["join_token"].startswith("mp1.")
    assert configured["office_heading"].startswith("Add an office PC")
    for steps in (configured["linux_steps"], configured["windows_steps"]):
        assert f"meshprint edge install {configured['join_token']}" in steps
        assert f"--index-url {appliance.url}/simple --cert appliance.pem meshprint" in steps
    assert configured["cert_link"] == "/appliance.pem"
    assert "mqtts://" in configured["bad_upstream"]
    assert configured["after_setup"] == 404
    assert not (appliance.data / "setup-code").exists()


def test_admin_adds_a_user_and_a_printer(
    configured: dict[str, Any], appliance: Appliance, page: Any, bus: MdnsBus
) -> None:
    sign_in_admin(page, appliance)
    page.wait_for_selector("[data-field=state] .badge.ok")  # the node is up
    # The wizard's printer has no SNMP: its state comes from IPP, ready after the test page.
    page.wait_for_selector("[data-field=ready]:text-is('1')", timeout=30_000)
    row = page.locator("#printers tr", has_text=PRINTER_NAME)  # its display name
    assert "ready" in row.locator("[data-field=state]").inner_text()
    assert page.inner_text("[data-field=held]") == "0"
    # A job arrives: the dashboard shows it without a reload (dashboard.js polls).
    receipt = submit(appliance, configured, b"Draft contract\n", "Contract.txt")
    page.wait_for_selector("[data-field=held]:text-is('1')", timeout=30_000)
    # Recent events are the node's too: the job it took in, in plain words.
    page.wait_for_selector(f"#events li:has-text('…{receipt['id'][-6:]} held')", timeout=30_000)
    assert "job-completed" not in page.inner_text("#events")
    screenshot(page, "dashboard")
    appliance.mesh.client(0).delete(receipt["id"], ALICE)

    page.click("nav >> text=Users")
    form = page.locator("form.user-form")
    form.locator("input[name=name]").fill("bob")
    form.locator("input[name=password]").fill("quiet-harbor-22")
    form.locator("input[name=confirm]").fill("quiet-harbor-22")
    form.locator("button[value=add]").click()
    assert "Added 1 user" in page.inner_text(".notice.ok")
    said = page.inner_text(".notice.ok")
    assert "key for scripts" in said.lower() and "without their password" in said
    assert page.locator("td strong", has_text="bob").count() == 1
    screenshot(page, "users-added")

    with VirtualPrinter(bus, name="Second Floor") as second:
        page.click("nav >> text=Printers")
        form = page.locator("form.printer-form")
        form.locator("input[name=name]").fill("second-floor")
        form.locator("input[name=uri]").fill(second.uri)
        form.locator("input[name=location]").fill("Stairs")
        form.locator("button[value=add]").click()
        assert "Added second-floor: found" in page.inner_text(".notice.ok")
        row = page.locator("tr", has_text="second-floor")
        row.locator("details summary", has_text="Rename").click()
        row.locator("input[name=label]").fill("Second floor, by the stairs")
        row.locator("button[value=set]").click()
        assert "shown as “Second floor, by the stairs”" in page.inner_text(".notice.ok")
        # Nothing answers at this address: refused, saying so, unless added unchecked.
        form = page.locator("form.printer-form")
        form.locator("input[name=name]").fill("nobody-home")
        form.locator("input[name=uri]").fill("ipp://127.0.0.1:9/ipp/print")
        form.locator("button[value=add]").click()
        refused = page.inner_text(".notice.error")
        assert "nobody-home was not added: no answer from the printer at" in refused, refused
        assert page.locator("tr", has_text="nobody-home").count() == 0
        kept = page.locator("form.printer-form input[name=uri]").input_value()
        assert kept == "ipp://127.0.0.1:9/ipp/print"  # the form is kept, to fix or tick
        screenshot(page, "printers")
        row = page.locator("tr", has_text="second-floor")
        row.locator("button", has_text="Test page").click()
        assert "Test page: printed" in page.inner_text(".notice")
        page.locator("tr", has_text="second-floor").locator("a", has_text="QR poster").click()
        assert "release?printer=second-floor" in page.inner_text(".poster")
        assert "Second floor, by the stairs" in page.inner_text(".poster h1")
        assert page.locator(".poster .qr svg").count() == 1

    # The time zone chosen in the wizard can be changed later.
    page.goto(f"{appliance.url}/admin/settings")
    assert page.locator("select[name=timezone]").input_value() == "Europe/London"
    page.select_option("select[name=timezone]", "Europe/Berlin")
    page.click("form.stack button:has-text('Save settings')")
    assert "Settings saved" in page.inner_text(".notice.ok")
    assert page.locator("select[name=timezone]").input_value() == "Europe/Berlin"
    screenshot(page, "settings")


def test_user_releases_a_held_job_from_a_phone(
    configured: dict[str, Any], appliance: Appliance, phone: Any, printer: VirtualPrinter
) -> None:
    submit(appliance, configured, b"Invoice for March\n" * 200, "Invoice March.txt")
    # The phone scans the printer's QR poster: the release page on the node's release port.
    phone.goto(f"{appliance.release_url}/release?printer={PRINTER}")
    phone.fill("input[name=name]", ALICE[0])
    phone.fill("input[name=password]", ALICE[1])
    phone.click("button[type=submit]")
    phone.wait_for_selector("text=Invoice March.txt")
    assert phone.locator("select[name=printer]").input_value() == PRINTER
    screenshot(phone, "release-phone")
    before = len(list(printer.spool.rglob("*")))
    phone.locator("li.job", has_text="Invoice March.txt").locator(
        "button", has_text="Print"
    ).click()
    phone.wait_for_url("**/release/progress**")
    phone.wait_for_selector("[data-field=stage]:has-text('printed')", timeout=90_000)
    screenshot(phone, "release-phone-printed")
    deadline = time.time() + 10
    while len(list(printer.spool.rglob("*"))) <= before and time.time() < deadline:
        time.sleep(0.2)
    assert len(list(printer.spool.rglob("*"))) > before
    phone.click("text=Back to my jobs")
    phone.wait_for_selector("text=Nothing waiting")


def test_user_adds_secure_print_to_a_computer_with_the_personal_url(
    configured: dict[str, Any], appliance: Appliance, page: Any
) -> None:
    """The release page's "Add Secure Print to this computer": the Windows steps give the
    PowerShell line with the user's personal URL, and a job sent to that URL with no
    credentials (as Windows' class driver sends it) is on the page as the user's."""
    page.goto(f"{appliance.release_url}/release")
    page.fill("input[name=name]", ALICE[0])
    page.fill("input[name=password]", ALICE[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#add-printer")
    url = page.inner_text("#add-printer code.personal-url")
    port = appliance.mesh.nodes[0].ipp_port
    assert url.startswith(f"ipps://127.0.0.1:{port}/ipp/print/")
    assert not page.locator("#add-printer code.powershell").is_visible()  # folded away
    page.click("#add-printer summary:has-text('Windows')")
    assert page.inner_text("#add-printer code.powershell") == (
        f'Add-Printer -Name "Secure Print" -IppURL "{url}"'
    )
    screenshot(page, "release-add-printer")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=60)
    conn.request(
        "POST",
        urllib.parse.urlsplit(url).path,
        _request(0x0002, b"\x42\x00\x08job-name\x00\x0cFrom Windows") + PDF,
        {"Content-Type": "application/ipp"},
    )
    answer = conn.getresponse()
    assert answer.status == 200 and answer.read()[2:4] == b"\x00\x00"  # successful-ok
    conn.close()
    page.reload()
    page.wait_for_selector("li.job:has-text('From Windows')")
    held = [j for j in appliance.mesh.client(0).jobs(ALICE) if j["title"] == "From Windows"]
    assert len(held) == 1
    appliance.mesh.client(0).delete(held[0]["id"], ALICE)


def test_release_page_keeps_the_jobs_own_settings(
    configured: dict[str, Any], appliance: Appliance, phone: Any, printer: VirtualPrinter
) -> None:
    """Alice prints to Secure Print (the node's own IPP printer, by ipptool) asking for 2
    copies, two-sided, black and white, with a long title; the phone page shows those
    settings chosen, the whole title and its page count, and the job reaches the real
    printer so (its own Get-Jobs)."""
    title = "Board minutes of the annual general meeting of the Smith and Co partnership 2026"
    port = appliance.mesh.nodes[0].ipp_port
    send_to_node_printer(
        port, ALICE, title, copies=2, sides="two-sided-long-edge", color_mode="monochrome"
    )
    phone.goto(f"{appliance.release_url}/release?printer={PRINTER}")
    phone.fill("input[name=name]", ALICE[0])
    phone.fill("input[name=password]", ALICE[1])
    phone.click("button[type=submit]")
    job = phone.locator("li.job", has_text="Board minutes")
    job.wait_for()
    job_id = job.get_attribute("data-job")
    assert (
        job.locator("[data-field=settings]")
        .inner_text()
        .startswith("2 copies, two-sided, black & white")
    )
    job.locator("details.settings summary").click()
    assert job.locator(f"input[name=copies-{job_id}]").input_value() == "2"
    assert job.locator(f"select[name=sides-{job_id}]").input_value() == "two-sided-long-edge"
    assert job.locator(f"select[name=colour-{job_id}]").input_value() == "mono"
    # The long title is there in full, wrapped on the phone's narrow screen.
    shown = job.locator("[data-field=title]")
    assert shown.inner_text() == title
    box = shown.bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] > 30  # two lines or more
    assert (
        phone.locator("select[name=printer] option:checked").inner_text().startswith(PRINTER_NAME)
    )  # the display name, not the id
    screenshot(phone, "release-phone-settings")
    job.locator("button", has_text="Print").click()
    phone.wait_for_url("**/release/progress**")
    phone.wait_for_selector("[data-field=stage]:has-text('printed')", timeout=90_000)
    deadline = time.time() + 20
    while (got := printer_job(printer, title)) is None and time.time() < deadline:
        time.sleep(0.5)
    assert got is not None, "the printer has no such job"
    assert got["copies"] == "2"
    assert got["sides"] == "two-sided-long-edge"
    assert got["print-color-mode"] == "monochrome"


def test_wrong_password_is_rate_limited(
    configured: dict[str, Any], appliance: Appliance, page: Any, phone: Any
) -> None:
    page.goto(f"{appliance.url}/login")
    for _ in range(5):
        page.fill("input[name=name]", ADMIN[0])
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        assert "Wrong name or password." in page.inner_text(".notice.error")
    page.fill("input[name=name]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    assert "Too many wrong attempts" in page.inner_text(".notice.error")

    phone.goto(f"{appliance.release_url}/release")
    for _ in range(6):
        phone.fill("input[name=name]", "bob")
        phone.fill("input[name=password]", "not-bobs-password")
        phone.click("button[type=submit]")
    assert "Too many wrong attempts" in phone.inner_text(".notice.error")


def test_wrong_setup_code_is_rate_limited(
    chromium: Any, tmp_path: Path, bus: MdnsBus, printer: VirtualPrinter
) -> None:
    fresh = start_appliance(tmp_path, bus, printer)
    context = chromium.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{fresh.url}/setup/")
        for _ in range(5):
            page.fill("input[name=code]", "AAAA-BBBB-CCCC")
            page.click("button[type=submit]")
            assert "not this appliance's setup code" in page.inner_text(".notice.error")
        page.fill("input[name=code]", fresh.code)
        page.click("button[type=submit]")
        assert "Too many wrong attempts" in page.inner_text(".notice.error")
        assert page.url.endswith("/setup/code")
    finally:
        context.close()
        fresh.web.stop()
