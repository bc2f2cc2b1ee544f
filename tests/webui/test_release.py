"""The release page against a real node (release API on loopback, real TLS) and a real
IPP printer (ippeveprinter): sign-in, listing, releasing to "printed", deleting, every
validation error; and the same page served by the node itself on its release port."""

from __future__ import annotations

import html
import http.cookiejar
import re
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.fixtures.ipptool import printer_job, send_to_node_printer
from tests.integration.conftest import PASSWORDS, Site, make_site, wait_for
from tests.webui.conftest import Browser, https_client, text
from webui import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rsite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("release-page"), 1)


@pytest.fixture(scope="module")
def printer(rsite: Site) -> Iterator[VirtualPrinter]:
    with MdnsBus() as bus, VirtualPrinter(bus) as printer:
        rsite.add_printer("lobby", printer.uri, "--location", "Front desk")
        yield printer


@pytest.fixture
def rapp(rsite: Site, printer: VirtualPrinter) -> Flask:
    node = rsite.mesh.nodes[0]
    app = create_app({"MESHPRINT_DATA": str(node.data), "RELEASE_API": node.release})
    from webui.context import store

    with app.app_context():
        store().query("DELETE FROM attempts")
    return app


@pytest.fixture
def user(rapp: Flask) -> Browser:
    browser = Browser(https_client(rapp))
    response = browser.post(
        "/release/login", {"name": "alice", "password": PASSWORDS["alice"]}, page="/release/"
    )
    assert response.status_code == 302, text(response)
    return browser


SETTLED = ("printed", "failed", "unknown")


def follow(
    browser: Browser, progress: str, timeout: float = 60, until: tuple[str, ...] = SETTLED
) -> list[dict[str, Any]]:
    """The releases on the progress page, once every one has reached a stage in `until`."""
    ids = urllib.parse.parse_qs(urllib.parse.urlsplit(progress).query)["r"]
    page = text(browser.get(progress))
    assert all(i in page for i in ids) and "release.js" in page
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [browser.get(f"/release/releases/{i}.json").get_json() for i in ids]
        if all(s["stage"] in until for s in states):
            return states
        time.sleep(0.3)
    raise AssertionError(f"not settled: {states}")


def test_sign_in_errors_are_the_same_and_rate_limited(rapp: Flask) -> None:
    browser = Browser(https_client(rapp))
    page = text(browser.get("/release/?printer=lobby"))
    assert "Sign in" in page and "lobby" in page
    unknown = browser.post(
        "/release/login", {"name": "nobody", "password": "x" * 12}, page="/release/"
    )
    wrong = browser.post(
        "/release/login", {"name": "alice", "password": "x" * 12}, page="/release/"
    )
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong name or password." in text(unknown) and "Wrong name or password." in text(wrong)
    for _ in range(3):
        browser.post("/release/login", {"name": "alice", "password": "y" * 12}, page="/release/")
    limited = browser.post(
        "/release/login", {"name": "alice", "password": PASSWORDS["alice"]}, page="/release/"
    )
    assert limited.status_code == 429 and "Too many wrong attempts" in text(limited)


def test_release_one_job_to_printed(rsite: Site, user: Browser) -> None:
    receipt = rsite.submit(
        0, b"Quarterly figures\n" * 500, title="Figures.txt", content_type="text/plain"
    )
    page = text(user.get("/release/?printer=lobby"))
    assert "Figures.txt" in page and '<option value="lobby" selected' in page
    assert "deleted in" in page and "sent" in page
    response = user.post(
        "/release/print",
        {"job": receipt["id"], "printer": "lobby", "copies": "2", "sides": "two-sided-long-edge"},
        page="/release/",
    )
    assert response.status_code == 302 and "/release/progress" in response.location
    [delivery] = follow(user, response.location)
    assert delivery["stage"] == "printed", delivery
    assert "Figures.txt" not in text(user.get("/release/"))


def test_release_all_and_delete(rsite: Site, user: Browser) -> None:
    ids = [rsite.submit(0, b"page %d\n" % i, title=f"Doc {i}")["id"] for i in range(3)]
    user.post("/release/delete", {"job": ids[0]}, page="/release/")
    page = text(user.get("/release/"))
    assert "Doc 0" not in page and "Doc 1" in page and "The job was deleted." in page
    response = user.post(
        "/release/print", {"all": "1", "printer": "lobby", "mono": "on"}, page="/release/"
    )
    assert response.status_code == 302
    states = follow(user, response.location)
    assert [s["stage"] for s in states] == ["printed", "printed"]
    assert "Nothing waiting" in text(user.get("/release/"))


def test_release_validation_errors(rsite: Site, user: Browser) -> None:
    job = rsite.submit(0, b"held\n", title="Kept")["id"]
    cases = [
        ({"job": job, "printer": "lobby", "copies": "0"}, 400, "copies must be"),
        ({"job": job, "printer": "lobby", "copies": "two"}, 400, "copies must be"),
        ({"job": job, "printer": "lobby", "sides": "three"}, 400, "sides must be"),
        ({"job": job, "printer": "nowhere"}, 404, "no printer"),
        ({"job": "../etc/passwd", "printer": "lobby"}, 404, "job ids look like"),
    ]
    for form, status, message in cases:
        response = user.post("/release/print", form, page="/release/")
        assert response.status_code == status and message in text(response), (form, text(response))
    response = user.post("/release/delete", {"job": "j" + "0" * 25}, page="/release/")
    assert response.status_code == 404
    assert "Kept" in text(user.get("/release/"))
    user.post("/release/delete", {"job": job}, page="/release/")


def test_signed_out_user_is_sent_to_sign_in(rapp: Flask, user: Browser) -> None:
    user.post("/release/logout", page="/release/")
    assert "Sign in" in text(user.get("/release/"))
    assert user.get("/release/releases/abcdefgh12.json").status_code == 401
    assert (
        user.post("/release/print", {"job": "x", "printer": "lobby"}, page="/release/").status_code
        == 302
    )


def test_the_node_serves_the_release_page_on_its_release_port(rsite: Site) -> None:
    """The node's own 9266 server: /v1 is the API, every other path the release page."""
    node = rsite.mesh.nodes[0]
    job = rsite.submit(0, b"from the node\n", title="Node page job")["id"]
    context = ssl.create_default_context(cafile=str(rsite.mesh.ca))
    context.check_hostname = False
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor(jar)
    )
    base = f"https://{node.release}"
    with opener.open(f"{base}/release/") as response:
        page = response.read().decode()
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    form = urllib.parse.urlencode(
        {"csrf_token": token, "name": "alice", "password": PASSWORDS["alice"]}
    ).encode()
    with opener.open(f"{base}/release/login", form) as response:
        jobs_page = response.read().decode()
    assert "Node page job" in jobs_page and "Your print jobs" in jobs_page
    with opener.open(f"{base}/v1/health") as response:
        assert b'"ok": true' in response.read()
    rsite.mesh.client(0).delete(job, ("alice", PASSWORDS["alice"]))


def test_data_dir_holds_no_password(rsite: Site, user: Browser) -> None:
    data: Path = rsite.mesh.nodes[0].data
    for path in data.rglob("*"):
        if path.is_file():
            assert PASSWORDS["alice"].encode() not in path.read_bytes(), path


def test_a_session_releases_several_jobs_and_sign_out_ends_it_on_the_node(
    rsite: Site, user: Browser
) -> None:
    """Two releases in one signed-in session (no password sent again: the cookie holds
    only the node's session token); after sign-out, the same cookie replayed is refused
    by the node and leads back to sign-in, and the job stays held."""
    first = rsite.submit(0, b"one\n", title="First.txt", content_type="text/plain")["id"]
    second = rsite.submit(0, b"two\n", title="Second.txt", content_type="text/plain")["id"]
    cookie = user.client.get_cookie("meshprint")
    assert cookie is not None and PASSWORDS["alice"] not in cookie.value
    response = user.post("/release/print", {"job": first, "printer": "lobby"}, page="/release/")
    # Handed to the printer is enough here: printing to the end is test_release_one_job_to_printed
    # (this once waited 60 s with the job queued at ippeveprinter under a loaded machine).
    [delivery] = follow(user, response.location, until=("queued", "printing", *SETTLED))
    assert delivery["stage"] in ("queued", "printing", "printed"), delivery
    csrf = user.csrf
    user.post("/release/logout", page="/release/")
    user.client.set_cookie("meshprint", cookie.value, domain=cookie.domain or "localhost")
    replay = user.client.post(
        "/release/print", data={"csrf_token": csrf, "job": second, "printer": "lobby"}
    )
    assert replay.status_code == 302 and "/release/progress" not in replay.location
    assert "Sign in" in text(user.get("/release/"))
    held = rsite.mesh.client(0).jobs(("alice", PASSWORDS["alice"]))
    assert second in [j["id"] for j in held]
    rsite.mesh.client(0).delete(second, ("alice", PASSWORDS["alice"]))


def test_the_page_shows_the_users_personal_printer_url(rsite: Site, user: Browser) -> None:
    """ "Add Secure Print to this computer": the URL the release page opens with the user's
    key (the directory keeps only its hash), the steps, and the PowerShell line; a rotated
    URL shows as the new one."""
    from appliance.site import admin, printer_urls

    node = rsite.mesh.nodes[0]
    page = text(user.get("/release/"))
    assert "Add Secure Print to this computer" in page
    for step in ("Windows 10 and 11", "macOS", "ChromeOS", "Linux"):
        assert step in page
    url = re.search(r'class="personal-url">(ipps://[^<]+)<', page).group(1)  # type: ignore[union-attr]
    assert url.startswith(f"ipps://localhost:{node.ipp_port}/ipp/print/")
    secret = url.rsplit("/", 1)[1]
    site = rsite.admin_site()
    assert printer_urls.owner_of(site.directory(), secret) == "alice"
    shown = html.unescape(page)
    assert f'Add-Printer -Name "Secure Print" -IppURL "{url}"' in shown
    assert f"lpadmin -p SecurePrint -E -v '{url}' -m everywhere" in shown
    new = admin.printer_url(site, "alice", rotate=True)
    assert new is not None
    # (the node takes up the controller's new version within its sync interval)

    def page_with(wanted: str) -> str | None:
        shown = text(user.get("/release/"))
        return shown if wanted in shown else None

    assert secret not in wait_for(lambda: page_with(new))
    admin.revoke_printer_url(site, "alice")
    assert new not in wait_for(lambda: page_with("has no personal printer URL"))
    admin.printer_url(site, "alice", rotate=True)


def _chosen(page: str, job_id: str) -> dict[str, str]:
    """The settings the page shows chosen for one job, as its form would send them."""
    copies = re.search(rf'name="copies-{job_id}"[^>]*value="(\d+)"', page)
    sides = re.search(
        rf'name="sides-{job_id}">(?:(?!</select>).)*?<option value="([^"]+)" selected', page, re.S
    )
    colour = re.search(
        rf'name="colour-{job_id}">(?:(?!</select>).)*?<option value="([^"]+)" selected', page, re.S
    )
    assert copies and sides and colour, page
    return {
        f"copies-{job_id}": copies.group(1),
        f"sides-{job_id}": sides.group(1),
        f"colour-{job_id}": colour.group(1),
    }


def test_the_page_keeps_each_jobs_own_settings(
    rsite: Site, user: Browser, printer: VirtualPrinter
) -> None:
    """A job sent to Secure Print as 2 copies, two-sided, black and white is shown so and
    prints so; another job's settings changed on the page apply to it alone."""
    alice = ("alice", PASSWORDS["alice"])
    port = rsite.mesh.nodes[0].ipp_port
    send_to_node_printer(
        port, alice, "Minutes AGM", copies=2, sides="two-sided-long-edge", color_mode="monochrome"
    )
    send_to_node_printer(port, alice, "Poster in colour")
    page = text(user.get("/release/"))
    jobs = {j["title"]: j["id"] for j in rsite.jobs(0)}
    minutes, poster = jobs["Minutes AGM"], jobs["Poster in colour"]
    assert "2 copies, two-sided, black &amp; white" in user.get("/release/").get_data(as_text=True)
    assert _chosen(page, minutes) == {
        f"copies-{minutes}": "2",
        f"sides-{minutes}": "two-sided-long-edge",
        f"colour-{minutes}": "mono",
    }
    assert _chosen(page, poster) == {
        f"copies-{poster}": "1",
        f"sides-{poster}": "one-sided",
        f"colour-{poster}": "colour",
    }
    form = {"all": "1", "printer": "lobby", **_chosen(page, minutes), **_chosen(page, poster)}
    form[f"copies-{poster}"] = "3"
    bad = user.post("/release/print", {**form, f"colour-{poster}": "sepia"}, page="/release/")
    assert bad.status_code == 400 and "colour must be" in text(bad)
    assert {"Minutes AGM", "Poster in colour"} <= {j["title"] for j in rsite.jobs(0)}
    response = user.post("/release/print", form, page="/release/")
    assert response.status_code == 302, text(response)
    assert [s["stage"] for s in follow(user, response.location)] == ["printed", "printed"]
    got = {title: printer_job(printer, title) for title in ("Minutes AGM", "Poster in colour")}
    assert got["Minutes AGM"] is not None and got["Poster in colour"] is not None, got
    assert (got["Minutes AGM"]["copies"], got["Minutes AGM"]["sides"]) == (
        "2",
        "two-sided-long-edge",
    )
    assert got["Minutes AGM"]["print-color-mode"] == "monochrome"
    assert (got["Poster in colour"]["copies"], got["Poster in colour"]["sides"]) == (
        "3",
        "one-sided",
    )
    # Colour is the printer's default: sent as is, or left out.
    assert got["Poster in colour"]["print-color-mode"] in ("color", "")
