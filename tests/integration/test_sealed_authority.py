"""No master key at rest: a copy of the controller's data directory, as it lies on the
disk (locked), signs no directory version. The attacker plays with the project's own
modules against real nodes over mutual TLS: it tries to move a printer, swap a user's
public key and add a member of its own; every member refuses and nothing changes. The
same copy with an administrator's password (the credential, not the disk) signs one
that the members take."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.clients.peer import PeerClient
from appliance.crypto.userkeys import b64
from appliance.datadir import DataDir
from appliance.errors import Forbidden, RemoteError, Unauthorized
from appliance.https.client import Client
from appliance.site import authority, recovery
from appliance.site.authority import AdminPassword
from appliance.site.ca import SiteCA, key_fingerprint, key_pem, load_key, new_key
from appliance.site.directory import next_point
from appliance.site.state import open_site
from appliance.site.tls import peer_client_context
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = pytest.mark.integration

ADMIN, ADMIN_PASSWORD = "ops", "amber-lantern-58"
PRINTER_URI = "ipp://127.0.0.1:9/ipp/print"
ELSEWHERE = "ipp://10.66.66.66:631/ipp/print"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    yield from make_site(tmp_path, 3)


def _copy_of_the_controller(site: Site, where: Path) -> DataDir:
    """The controller's data directory as it lies on its disk (the node stopped for a
    consistent copy, then started again)."""
    mesh = site.mesh
    mesh.kill(0, signal.SIGTERM)
    shutil.copytree(mesh.nodes[0].data, where)
    mesh.start(0)
    mesh.wait_live(3)
    return DataDir(where)


def _as_appliance(site: Site, copy: DataDir, target: int) -> PeerClient:
    """Node `target`'s peer API, called with the stolen appliance's own certificate."""
    context = peer_client_context(copy.node_cert, copy.node_key, copy.ca_cert)
    node = site.mesh.nodes[target]
    return PeerClient(Client("127.0.0.1", node.peer_port, context, server_name=node.id))


def _changes(site: Site) -> dict[str, Callable[[dict[str, Any]], None]]:
    """What a thief would sign: a printer's address, a user's public key, a member."""
    thief_key = new_key()

    def move_printer(doc: dict[str, Any]) -> None:
        doc["printers"]["office"]["uri"] = ELSEWHERE

    def swap_key(doc: dict[str, Any]) -> None:
        doc["users"]["alice"]["public_key"] = b64(bytes(32))

    def add_member(doc: dict[str, Any]) -> None:
        doc["nodes"]["n0123456789ab"] = {
            "id": "n0123456789ab", "name": "thief", "role": "super", "cert_serial": "1",
            "machine_id": "x", "point": next_point(doc),
            "key_sha256": key_fingerprint(thief_key.public_key()),
        }  # fmt: skip

    return {"printer": move_printer, "user key": swap_key, "member": add_member}


def _what_members_hold(site: Site, index: int) -> tuple[int, str, str, bool]:
    directory = open_site(DataDir(site.mesh.nodes[index].data))[1].directory()
    user = directory.user("alice")
    assert user is not None
    uri = directory.doc["printers"]["office"]["uri"]
    return directory.version, uri, user.public_key, "n0123456789ab" in directory.nodes


def test_a_copied_controller_directory_signs_no_directory_version(
    site: Site, tmp_path: Path
) -> None:
    mesh = site.mesh
    site.add_printer("office", PRINTER_URI, "--no-check")  # no printer is there
    copy = _copy_of_the_controller(site, tmp_path / "stolen")
    before = [_what_members_hold(site, i) for i in (1, 2)]

    # The disk holds no CA key in the clear: no file, and no file with its bytes in it.
    assert not copy.ca_key.exists()
    thief = open_site(copy)[1]
    assert thief.ca.key is None
    real = recovery.open_authority(
        thief.directory().doc["recovery"], thief.ca, thief.site_id, mesh.recovery_key
    )
    assert real.key is not None
    pem_line = key_pem(real.key).split(b"\n")[2]  # a line of the PEM that is the key's own
    scalar = real.key.private_numbers().private_value.to_bytes(32, "big")
    for path in copy.root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert pem_line not in content and scalar not in content, path

    for what, change in _changes(site).items():
        # The controller's own code path: refused at once, nothing written.
        with pytest.raises(Forbidden, match="locked"):
            thief.edit(change)
        # A version signed with what the disk has (the appliance's node key) and offered
        # to every member as the appliance itself: refused by each.
        node_key = SiteCA(thief.ca.cert, load_key(copy.node_key))
        forged = thief.directory().edited(node_key, change)
        for member in (1, 2):
            with pytest.raises(RemoteError) as refused:
                _as_appliance(site, copy, member).offer_directory(forged.signed())
            assert isinstance(refused.value, Forbidden), what
        # Nor do the join grants in its database open anything: every one is spent.
        grants = thief.db.query("SELECT join_grant FROM join_tokens")
        assert all(row["join_grant"] is None for row in grants)
    assert [_what_members_hold(site, i) for i in (1, 2)] == before
    assert open_site(copy)[1].directory().version == before[0][0]


def test_the_same_copy_with_an_administrators_password_signs(site: Site, tmp_path: Path) -> None:
    mesh = site.mesh
    site.add_printer("office", PRINTER_URI, "--no-check")  # no printer is there
    secret = tmp_path / "ops.password"
    secret.write_text(ADMIN_PASSWORD + "\n")
    data = str(mesh.nodes[0].data)
    mesh.cli("admin", "add", ADMIN, "--data", data, "--password-file", str(secret))
    copy = _copy_of_the_controller(site, tmp_path / "stolen")
    thief = open_site(copy)[1]
    with pytest.raises(Unauthorized):  # a wrong password opens nothing
        authority.unlock(copy, thief, AdminPassword(ADMIN, ADMIN_PASSWORD + "x"))
    assert thief.ca.key is None
    authority.unlock(copy, thief, AdminPassword(ADMIN, ADMIN_PASSWORD))
    signed = thief.edit(_changes(site)["printer"])
    assert _as_appliance(site, copy, 1).offer_directory(signed.signed())
    uri = lambda: _what_members_hold(site, 1)[1]  # noqa: E731
    assert uri() == ELSEWHERE
    wait_for(lambda: _what_members_hold(site, 2)[1] == ELSEWHERE)  # and it spreads
    authority.lock(thief)
    with pytest.raises(Forbidden, match="locked"):
        thief.edit(_changes(site)["member"])


def test_the_cli_wants_the_credential_and_the_node_works_locked(site: Site) -> None:
    """An administrator command without a credential changes nothing; a wrong one
    neither; the running controller keeps its routine work (addresses, joins by grant,
    sign-ins) with the authority locked, as `make_site` above already showed."""
    mesh = site.mesh
    data = str(mesh.nodes[0].data)
    version = mesh.status(0)["directory_version"]
    bare = {"MESHPRINT_KEY_FILE": ""}
    done = mesh.cli("settings", "retention", "2h", "--data", data, check=False, env=bare)
    assert done.returncode != 0 and "administrator's credential" in done.stderr
    wrong = mesh.root / "wrong.password"
    wrong.write_text("not-the-password-1\n")
    done = mesh.cli(
        "settings", "retention", "2h", "--data", data, "--admin", ADMIN,
        "--admin-password-file", str(wrong), check=False, env=bare,
    )  # fmt: skip
    assert done.returncode != 0 and "wrong administrator name or password" in done.stderr
    assert mesh.status(0)["directory_version"] == version
    assert not (mesh.nodes[0].data / "tls" / "ca.key").exists()
    assert site.jobs(1) == []  # sign-ins work
    # an administrator made with the recovery key, then acting with their own password
    right = mesh.root / "ops.password"
    right.write_text(ADMIN_PASSWORD + "\n")
    mesh.cli("admin", "add", ADMIN, "--data", data, "--password-file", str(right))
    done = mesh.cli(
        "settings", "retention", "2h", "--data", data, "--admin", ADMIN,
        "--admin-password-file", str(right), env=bare,
    )  # fmt: skip
    assert "retention = 2h" in done.stdout
    mesh.wait_directory()
    assert mesh.status(1)["settings"]["retention"] == "2h"
