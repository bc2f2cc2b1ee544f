"""The console unlocks the site authority for a signed-in administrator's session only:
the wizard's site keeps its CA key sealed (no clear file), a session's changes are
signed, sign-out locks it again, and a controller from before (its CA key in the clear)
has the key sealed and the file removed at the next sign-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from appliance.datadir import DataDir
from appliance.site import authority, recovery
from appliance.site.ca import key_pem, write_private
from appliance.site.state import open_site
from tests.webui.conftest import ADMIN, Browser, claim, https_client, make_admin, make_site, text
from webui.store import Store

USER = {
    "action": "add",
    "name": "maria",
    "password": "saffron-tide-44",
    "confirm": "saffron-tide-44",
}


@pytest.fixture
def recovery_key(browser: Browser, code: str) -> str:
    """The wizard run up to the site (signed in); the recovery key it showed."""
    claim(browser, code)
    make_admin(browser)
    return make_site(browser)


def _unlocks(data: Path) -> int:
    return int(Store(data / "webui.db").query("SELECT COUNT(*) AS n FROM unlocks")[0]["n"])


def _login(app: Flask) -> Browser:
    browser = Browser(https_client(app))
    assert browser.post("/login", {"name": ADMIN[0], "password": ADMIN[1]}).status_code == 302
    return browser


def test_a_session_unlocks_and_sign_out_locks(
    admin_browser: Browser, app: Flask, data: Path
) -> None:
    root = DataDir(data)
    assert not root.ca_key.exists()  # the wizard's site: the CA key only sealed
    assert authority.admins(root) == [ADMIN[0]]
    site = open_site(root)[1]
    assert site.ca.key is None  # on the disk alone: locked
    version = site.directory().version
    assert admin_browser.post("/admin/users", USER).status_code == 200
    assert site.directory().version == version + 1  # signed in the session
    before = _unlocks(data)
    assert before >= 1

    admin_browser.post("/logout", page="/admin/")
    assert _unlocks(data) == before - 1  # sign-out drops the session's unlock
    again = _login(app)  # a new session unlocks again with the password
    assert again.post("/admin/users", {**USER, "name": "anna"}).status_code == 200
    assert site.directory().version == version + 2


def test_a_session_without_its_unlock_changes_nothing(
    admin_browser: Browser, app: Flask, data: Path
) -> None:
    """The database row alone (what the disk keeps) opens nothing: with the rows gone,
    the session is signed in but the site stays locked and a change says so."""
    with Store(data / "webui.db").transaction() as conn:
        conn.execute("DELETE FROM unlocks")
    site = open_site(DataDir(data))[1]
    version = site.directory().version
    response = admin_browser.post("/admin/users", USER)
    assert response.status_code == 403 and "locked" in text(response)
    assert site.directory().version == version


def test_a_clear_ca_key_is_sealed_and_removed_at_the_next_sign_in(
    browser: Browser, recovery_key: str, app: Flask, data: Path
) -> None:
    root = DataDir(data)
    state = open_site(root)[1]
    ca = recovery.open_authority(
        state.directory().doc["recovery"], state.ca, state.site_id, recovery_key
    )
    assert ca.key is not None
    # as an older version left it: the key in the clear, no administrator's copy
    write_private(root.ca_key, key_pem(ca.key))
    authority.remove_admin(root, ADMIN[0])
    assert open_site(root)[1].ca.key is not None
    signed_in = _login(app)
    assert not root.ca_key.exists()
    assert authority.admins(root) == [ADMIN[0]]
    assert open_site(root)[1].ca.key is None
    assert signed_in.post("/admin/users", USER).status_code == 200
    assert open_site(root)[1].directory().user("maria") is not None


def test_the_wizard_on_a_site_made_on_the_command_line_wants_its_recovery_key(
    browser: Browser, code: str, data: Path
) -> None:
    from appliance.site.enroll import create_site

    key = create_site(DataDir(data), "Made by hand").recovery_key
    claim(browser, code)
    form = {"name": ADMIN[0], "password": ADMIN[1], "confirm": ADMIN[1]}
    refused = browser.post("/setup/admin", form)
    assert refused.status_code == 400 and "recovery key" in text(refused)
    assert authority.admins(DataDir(data)) == []
    wrong = browser.post("/setup/admin", {**form, "recovery_key": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"})
    assert wrong.status_code == 401 and authority.admins(DataDir(data)) == []
    assert browser.post("/setup/admin", {**form, "recovery_key": key}).status_code == 302
    assert browser.post("/admin/users", USER).status_code == 200
    assert open_site(DataDir(data))[1].directory().user("maria") is not None
