"""The admin console against a running two-node site: live status on the dashboard, a join
token (text + QR) from the nodes page, and removing a node revokes it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from appliance.site.tokens import JoinToken
from tests.fixtures.console import add_console_admin
from tests.integration.conftest import Site, make_site, wait_for
from tests.webui.conftest import Browser, https_client, text
from webui import create_app
from webui.store import Store

pytestmark = pytest.mark.integration
ADMIN = ("boss", "copper-meadow-1")


@pytest.fixture(scope="module")
def site2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("console"), 2)


@pytest.fixture
def console(site2: Site) -> Browser:
    node = site2.mesh.nodes[0]
    if not Store(node.data / "webui.db").has_admin():
        add_console_admin(site2.mesh, *ADMIN)
    app: Flask = create_app({"MESHPRINT_DATA": str(node.data), "RELEASE_API": node.release})
    browser = Browser(https_client(app))
    response = browser.post("/login", {"name": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 302
    return browser


def test_dashboard_shows_the_live_mesh(site2: Site, console: Browser) -> None:
    site2.submit(1, b"hello\n", title="secret title")
    status = wait_for(
        lambda: (s := console.get("/admin/status.json").get_json())["jobs"]["held"] and s
    )
    assert status["offline"] is False
    assert [m["live"] for m in status["members"]] == [True, True]
    me = next(m for m in status["members"] if m["id"] == site2.mesh.nodes[0].id)
    assert me["disk"]["total"] > 0 and me["controller"]
    page = text(console.get("/admin/"))
    assert "secret title" not in page
    assert '<div id="offline" class="notice warn" hidden>' in page


def test_invite_and_remove_a_node(site2: Site, console: Browser) -> None:
    page = console.post("/admin/nodes", {"action": "invite", "ttl": "30m"})
    assert page.status_code == 200
    body = text(page)
    token = body.split('id="join-token">')[1].split("<")[0]
    assert JoinToken.decode(token).controller == site2.mesh.nodes[0].submit
    assert "<svg" in body
    assert "Add an office PC" in body
    for os_steps in ("steps-windows", "steps-macos", "steps-linux"):
        steps = body.split(f'id="{os_steps}"')[1].split("</details>")[0]
        assert f"edge install {token}" in steps
        assert "--index-url https://localhost/simple --cert appliance.pem meshprint" in steps
    bad = console.post("/admin/nodes", {"action": "invite", "ttl": "30 weeks"})
    assert bad.status_code == 400 and "not a duration" in text(bad)
    edge = site2.mesh.nodes[1]
    response = console.post("/admin/nodes", {"action": "remove", "node": edge.id})
    assert response.status_code == 302
    page = text(console.get("/admin/nodes"))
    assert edge.id not in page and "revoked" in page
    assert edge.id not in [m["id"] for m in site2.mesh.status()["members"]]
