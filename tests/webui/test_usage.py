"""The admin Usage page through the Flask test client: who may see it, the figures and
chart from usage records in the node's database, the CSV export, bad ranges and quota
forms that change nothing."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask

from appliance.datadir import DataDir
from appliance.site.state import open_site
from appliance.store.db import Database
from appliance.store.usage import UsageLog, UsageRecord
from tests.webui.conftest import Browser, https_client, text


def _printed(data: Path, n: int, user: str, pages: int, color: bool, at: float) -> None:
    UsageLog(Database(DataDir(data).db)).accept(
        [
            UsageRecord(f"j{n:024x}", f"rel-{n:08d}", user, "front", "n1", at, 1, False, color,
                        pages, pages, pages, "document", "printed")
        ]
    )  # fmt: skip


def test_only_admins(admin_browser: Browser, app: Flask) -> None:
    stranger = https_client(app)
    for path in ("/admin/usage/", "/admin/usage/usage.csv"):
        response = stranger.get(path)
        assert response.status_code == 302 and "/login" in response.location
    assert stranger.post("/admin/usage/topup").status_code in (302, 400)


def test_figures_chart_and_csv(admin_browser: Browser, data: Path) -> None:
    now = time.time()
    _printed(data, 1, "alice", 6, True, now)
    _printed(data, 2, "=cmd|evil", 2, False, now)
    _printed(data, 3, "bob", 4, False, 86400.0)  # 1970: outside the range below
    page = text(admin_browser.get("/admin/usage/"))
    assert 'id="usage-pages">12<' in page
    assert page.count('<svg class="chart"') == 3 and "<script" not in page
    assert "<title>alice: 6 colour pages</title>" in page
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    ranged = text(admin_browser.get(f"/admin/usage/?from={day}&to={day}&period=week"))
    assert 'id="usage-pages">8<' in ranged and "Pages per week" in ranged
    csv = admin_browser.get(f"/admin/usage/usage.csv?from={day}&to={day}")
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[1:] == ["'=cmd|evil,front,1,2,2,0,2,0,2", "alice,front,1,6,6,6,0,0,6"]


def test_bad_range_is_said(admin_browser: Browser) -> None:
    response = admin_browser.get("/admin/usage/?from=31/12/2026")
    assert response.status_code == 400 and "not a date" in text(response)
    assert (
        admin_browser.get("/admin/usage/usage.csv?from=2026-12-02&to=2026-12-01").status_code == 400
    )


def _add_user(admin_browser: Browser, name: str) -> None:
    """Through the users page (the site authority is unlocked for the admin's session)."""
    form = {"action": "add", "name": name, "password": "saffron-tide-44"}
    assert (
        admin_browser.post("/admin/users", {**form, "confirm": form["password"]}).status_code == 200
    )


def test_quota_forms(admin_browser: Browser, data: Path) -> None:
    _add_user(admin_browser, "alice")
    site = open_site(DataDir(data))[1]
    version = site.directory().version
    bad = admin_browser.post(
        "/admin/usage/quotas", {"monthly_pages": "-5", "monthly_color_pages": "0"},
        page="/admin/usage/", follow_redirects=True,
    )  # fmt: skip
    assert "whole number" in text(bad) and site.directory().version == version
    admin_browser.post(
        "/admin/usage/quotas", {"monthly_pages": "100", "monthly_color_pages": "10"},
        page="/admin/usage/",
    )  # fmt: skip
    page = admin_browser.post(
        "/admin/usage/topup", {"user": "alice", "pages": "25", "color_pages": "0"},
        page="/admin/usage/", follow_redirects=True,
    )  # fmt: skip
    assert "Topped up alice" in text(page)
    assert "<td>125</td>" in text(page) and "+25" in text(page)
    unknown = admin_browser.post(
        "/admin/usage/topup", {"user": "nobody", "pages": "5", "color_pages": "0"},
        page="/admin/usage/", follow_redirects=True,
    )  # fmt: skip
    assert "no user" in text(unknown)


def test_diagnostics_bundle_names_no_one_topped_up(admin_browser: Browser, data: Path) -> None:
    import io
    import zipfile

    _add_user(admin_browser, "maria")
    admin_browser.post(
        "/admin/usage/quotas", {"monthly_pages": "100", "monthly_color_pages": "0"},
        page="/admin/usage/",
    )  # fmt: skip
    admin_browser.post(
        "/admin/usage/topup", {"user": "maria", "pages": "5", "color_pages": "0"},
        page="/admin/usage/",
    )  # fmt: skip
    bundle = zipfile.ZipFile(io.BytesIO(admin_browser.get("/admin/diagnostics.zip").data))
    everything = b"".join(bundle.read(name) for name in bundle.namelist())
    assert b"maria" not in everything and b'"monthly_pages": 100' in everything
