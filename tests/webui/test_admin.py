"""The admin console through the Flask test client (no node running: the dashboard shows
the configured site and says the node is not answering)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from flask import Flask

from appliance.datadir import DataDir
from appliance.site.state import open_site
from tests.webui.conftest import Browser, https_client, text
from webui.store import Store

PAGES = ("/admin/", "/admin/users", "/admin/printers", "/admin/nodes", "/admin/settings")


def test_every_page_needs_a_signed_in_admin(admin_browser: Browser, app: Flask) -> None:
    stranger = https_client(app)
    for path in (*PAGES, "/admin/status.json", "/admin/diagnostics.zip"):
        response = stranger.get(path)
        assert response.status_code == 302 and "/login" in response.location, path
    for path in PAGES:
        assert admin_browser.get(path).status_code == 200, path


def test_dashboard_when_the_node_is_down(admin_browser: Browser) -> None:
    page = text(admin_browser.get("/admin/"))
    assert "Test office" in page and "not answering" in page
    status = admin_browser.get("/admin/status.json").get_json()
    assert status["offline"] is True and status["members"][0]["controller"] is True
    assert "dashboard.js" in page


def test_users_add_reset_remove(admin_browser: Browser, data: Path) -> None:
    form = {
        "action": "add",
        "name": "maria",
        "password": "saffron-tide-44",
        "confirm": "saffron-tide-44",
    }
    assert admin_browser.post("/admin/users", form).status_code == 200
    bad = admin_browser.post("/admin/users", {**form, "name": "-x"})
    assert bad.status_code == 400 and "not a valid user name" in text(bad)
    _, site = open_site(DataDir(data))
    key = site.directory().user("maria").public_key  # type: ignore[union-attr]
    reset = {"action": "reset", "name": "maria", "password": "amber-lagoon-22", "confirm": "nope"}
    assert admin_browser.post("/admin/users", reset).status_code == 400
    reset["confirm"] = "amber-lagoon-22"
    assert admin_browser.post("/admin/users", reset).status_code == 200
    assert site.directory().user("maria").public_key != key  # type: ignore[union-attr]
    missing = admin_browser.post("/admin/users", {"action": "remove", "name": "nobody"})
    assert missing.status_code == 404
    assert (
        admin_browser.post("/admin/users", {"action": "remove", "name": "maria"}).status_code == 302
    )
    assert site.directory().users == []
    assert admin_browser.post("/admin/users", {"action": "explode"}).status_code == 400


def test_users_aliases_and_personal_urls(admin_browser: Browser, data: Path) -> None:
    admin_browser.post(
        "/admin/users",
        {
            "action": "add",
            "name": "maria",
            "password": "saffron-tide-44",
            "confirm": "saffron-tide-44",
        },
    )
    admin_browser.post(
        "/admin/users",
        {
            "action": "add",
            "name": "tom",
            "password": "juniper-kettle-9",
            "confirm": "juniper-kettle-9",
        },
    )
    _, site = open_site(DataDir(data))
    added = admin_browser.post(
        "/admin/users", {"action": "alias", "name": "maria", "alias": "OFFICE-PC\\Maria"}
    )
    assert added.status_code == 302
    page = text(admin_browser.get("/admin/users"))
    assert "office-pc\\maria" in page and "Personal printer URL" in page
    taken = admin_browser.post(
        "/admin/users", {"action": "alias", "name": "tom", "alias": "office-pc\\MARIA"}
    )
    assert taken.status_code == 400 and "already maria" in text(taken)
    record = site.directory().user("maria")
    assert record is not None and record.printer_url is not None
    before = record.printer_url["hash"]
    rotate = admin_browser.post("/admin/users", {"action": "rotate-url", "name": "maria"})
    assert rotate.status_code == 302
    after = site.directory().user("maria")
    assert after is not None and after.printer_url is not None
    assert after.printer_url["hash"] != before
    assert "was replaced" in text(admin_browser.get("/admin/users"))
    admin_browser.post("/admin/users", {"action": "revoke-url", "name": "maria"})
    revoked = site.directory().user("maria")
    assert revoked is not None and revoked.printer_url is None
    assert "Personal printer URL (none)" in text(admin_browser.get("/admin/users"))
    removed = admin_browser.post(
        "/admin/users", {"action": "unalias", "name": "maria", "alias": "office-pc\\maria"}
    )
    assert removed.status_code == 302
    gone = site.directory().user("maria")
    assert gone is not None and gone.aliases == ()
    missing = admin_browser.post("/admin/users", {"action": "rotate-url", "name": "nobody"})
    assert missing.status_code == 404


def test_users_csv_import(admin_browser: Browser) -> None:
    response = admin_browser.post(
        "/admin/users",
        {"action": "import", "csv": (io.BytesIO(b"\xff\xfe"), "u.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "UTF-8" in text(response)
    response = admin_browser.post(
        "/admin/users",
        {"action": "import", "csv": (io.BytesIO(b"name\nann\n"), "u.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200 and "Added 1 user" in text(response)


def test_printers_add_poster_remove(admin_browser: Browser, app: Flask) -> None:
    app.config["RELEASE_URL"] = "https://office.example:9266"
    bad = admin_browser.post(
        "/admin/printers", {"action": "add", "name": "lobby", "uri": "ftp://x"}
    )
    assert bad.status_code == 400 and "not a printer URI" in text(bad)
    bad = admin_browser.post(
        "/admin/printers",
        {
            "action": "add",
            "name": "lobby",
            "uri": "ipp://10.0.0.5/ipp/print",
            "anyway": "on",
            "snmp": "h:x",
        },
    )
    assert bad.status_code == 400 and "SNMP port" in text(bad)
    ok = admin_browser.post(
        "/admin/printers",
        {
            "action": "add",
            "name": "lobby",
            "uri": "ipp://10.0.0.5/ipp/print",
            "anyway": "on",
            "location": "Hall",
        },
    )
    assert ok.status_code == 302
    assert "lobby" in text(admin_browser.get("/admin/printers"))
    poster = text(admin_browser.get("/admin/printers/lobby/poster"))
    assert "https://office.example:9266/release?printer=lobby" in poster and "<svg" in poster
    assert admin_browser.get("/admin/printers/nope/poster").status_code == 404
    removed = admin_browser.post("/admin/printers", {"action": "remove", "name": "lobby"})
    assert removed.status_code == 302
    assert (
        admin_browser.post("/admin/printers", {"action": "remove", "name": "lobby"}).status_code
        == 404
    )


def test_nodes_remove_and_invite_errors(admin_browser: Browser, data: Path) -> None:
    _, site = open_site(DataDir(data))
    controller = site.directory().controller_id
    response = admin_browser.post("/admin/nodes", {"action": "remove", "node": controller})
    assert response.status_code == 400 and "controller cannot remove itself" in text(response)
    response = admin_browser.post("/admin/nodes", {"action": "remove", "node": "n123"})
    assert response.status_code == 404
    response = admin_browser.post("/admin/nodes", {"action": "invite", "ttl": "1h"})
    assert response.status_code == 400 and "start the node first" in text(response)


def test_settings_validate_and_save(admin_browser: Browser, data: Path) -> None:
    form = {"retention": "2h", "repair_grace": "15m", "max_job_size": "100M", "upstream": ""}
    bad = admin_browser.post("/admin/settings", {**form, "retention": "10m"})
    assert bad.status_code == 400 and "retention must be between" in text(bad)
    bad = admin_browser.post("/admin/settings", {**form, "upstream": "ftp://x"})
    assert bad.status_code == 400 and "upstream" in text(bad)
    _, site = open_site(DataDir(data))
    assert site.directory().settings.describe()["retention"] == "4h"
    ok = admin_browser.post("/admin/settings", {**form, "upstream": "mqtts://cloud.example"})
    assert ok.status_code == 302
    described = site.directory().settings.describe()
    assert (described["retention"], described["max_job_size"]) == ("2h", "100M")
    assert Store(data / "webui.db").get("upstream") == "mqtts://cloud.example"


def test_diagnostics_bundle_has_no_secrets(admin_browser: Browser, data: Path) -> None:
    admin_browser.post(
        "/admin/users",
        {
            "action": "add",
            "name": "maria",
            "password": "saffron-tide-44",
            "confirm": "saffron-tide-44",
        },
    )
    admin_browser.post(
        "/admin/printers",
        {
            "action": "add",
            "name": "lobby",
            "uri": "ipp://10.0.0.5/ipp/print",
            "anyway": "on",
            "snmp": "10.0.0.5",
            "community": "sekrit-community",
        },
    )
    response = admin_browser.get("/admin/diagnostics.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(response.data))
    assert set(bundle.namelist()) == {"about.json", "directory.json", "status.json", "events.json"}
    everything = b"".join(bundle.read(name) for name in bundle.namelist())
    for secret in (b"sekrit-community", b"wrapped_key", b"token_hash", b"maria", b"PRIVATE KEY"):
        assert secret not in everything, secret
    assert b"lobby" in everything


def test_printer_status_toner_and_alerts_from_the_node_database(
    admin_browser: Browser, data: Path
) -> None:
    """What the node's SNMP monitor recorded is what the console shows."""
    from appliance.store import printer_status

    admin_browser.post(
        "/admin/printers",
        {
            "action": "add",
            "name": "lobby",
            "uri": "ipp://10.0.0.5/ipp/print",
            "anyway": "on",
            "snmp": "10.0.0.5",
        },
    )
    db, _ = open_site(DataDir(data))
    printer_status.record(
        db,
        "lobby",
        False,
        "out of toner",
        {"supplies": [{"name": "Black Toner", "percent": 3}], "alerts": ["toner empty"]},
    )
    for path in ("/admin/", "/admin/printers"):
        page = text(admin_browser.get(path))
        assert "out of toner" in page and "Black Toner" in page and 'value="3"' in page
        assert "toner empty" in page
    status = admin_browser.get("/admin/status.json").get_json()
    assert status["printers"][0]["supplies"][0]["percent"] == 3


def test_admin_changes_their_password(admin_browser: Browser, app: Flask) -> None:
    from tests.webui.conftest import ADMIN

    cases = [
        (
            {"current": "wrong-one-1", "password": "brand-new-1", "confirm": "brand-new-1"},
            "not right",
        ),
        ({"current": ADMIN[1], "password": "brand-new-1", "confirm": "other-1"}, "differ"),
        ({"current": ADMIN[1], "password": "short", "confirm": "short"}, "at least"),
    ]
    for form, message in cases:
        response = admin_browser.post("/admin/password", form, page="/admin/settings")
        assert response.status_code == 303
        assert message in text(admin_browser.get("/admin/settings"))
    form = {"current": ADMIN[1], "password": "brand-new-1", "confirm": "brand-new-1"}
    assert admin_browser.post("/admin/password", form, page="/admin/settings").status_code == 302
    fresh = Browser(https_client(app))
    assert fresh.post("/login", {"name": ADMIN[0], "password": ADMIN[1]}).status_code == 401
    assert fresh.post("/login", {"name": ADMIN[0], "password": "brand-new-1"}).status_code == 302
