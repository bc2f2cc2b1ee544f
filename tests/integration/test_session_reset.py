"""A password reset ends the user's signed-in release sessions on every node, once the
node has the directory version with the reset (issue 15): the opened key leaves memory
and the session's token releases nothing any more. Other users' sessions go on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.clients.node import SessionToken
from appliance.errors import RemoteError
from appliance.site import admin
from tests.integration.conftest import PASSWORDS, Site, make_site, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def site3r(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, 3)


def ended(site: Site, index: int, token: SessionToken) -> bool:
    try:
        site.mesh.client(index).jobs(token)
    except RemoteError as err:
        assert err.status == 401, err
        return True
    return False


def test_a_password_reset_ends_the_users_sessions_on_every_node(site3r: Site) -> None:
    site, mesh = site3r, site3r.mesh
    alice = {i: mesh.client(i).sign_in(("alice", PASSWORDS["alice"])) for i in (0, 2)}
    bob = mesh.client(2).sign_in(("bob", PASSWORDS["bob"]))
    receipt = site.submit(1, b"held for alice")
    for i, token in alice.items():
        assert receipt["id"] in {j["id"] for j in mesh.client(i).jobs(token)}

    # The admin resets alice's password on the controller (as the web UI does: a new
    # signed directory version, which the node processes pick up).
    admin.reset_password(site.admin_site(), "alice", "new-lantern-93")
    mesh.wait_directory()
    for i, token in alice.items():
        wait_for(lambda i=i, t=token: ended(site, i, t), timeout=10)  # type: ignore[misc]
        assert "Traceback" not in mesh.nodes[i].log.read_text()
    # Bob's session goes on; alice signs in again with the new password only.
    assert mesh.client(2).jobs(bob) == []
    with pytest.raises(RemoteError) as old:
        mesh.client(2).sign_in(("alice", PASSWORDS["alice"]))
    assert old.value.status == 401
    assert mesh.client(2).sign_in(("alice", "new-lantern-93"))
