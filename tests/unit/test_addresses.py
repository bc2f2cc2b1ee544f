"""site/addresses.py: each member signs its own address; the controller records it
without the CA key, and no one (the CA key included) can move another member's."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.errors import Forbidden
from appliance.site import addresses, admin
from appliance.site.ca import SiteCA, key_fingerprint, load_cert, load_key, new_key, serial_hex
from appliance.site.state import SiteState, open_site
from tests.unit.conftest import new_controller

HOME = {"host": "10.0.0.5", "peer_port": 7001, "submit_port": 7002, "release_port": 7003}
ELSEWHERE = {**HOME, "host": "10.6.6.6"}


@pytest.fixture
def controller(tmp_path: Path) -> tuple[DataDir, SiteState]:
    data, site, _ = new_controller(tmp_path / "ctl")
    return data, site


def locked(site: SiteState) -> SiteState:
    return SiteState(site.db, SiteCA(site.ca.cert, None), site.site_id)


def test_a_node_announces_its_own_address_with_the_ca_locked(
    controller: tuple[DataDir, SiteState],
) -> None:
    data, site = controller
    state = locked(site)
    node_id = state.directory().controller_id
    version = state.directory().version
    cert, key = load_cert(data.node_cert), load_key(data.node_key)
    assert state.announce(node_id, cert, key, HOME)
    record = state.directory().node(node_id)
    assert record is not None and (record.host, record.peer_port) == ("10.0.0.5", 7001)
    assert state.directory().version == version  # no directory version signed
    assert not state.announce(node_id, cert, key, HOME)  # the same: nothing new
    # it travels beside the directory and verifies on another node
    wire = state.directory().signed()["addresses"]
    other = open_site(data)[1]
    assert other.directory().verified_addresses(wire, site.ca).keys() == {node_id}


def test_a_newer_announcement_wins_and_an_older_one_is_ignored(
    controller: tuple[DataDir, SiteState],
) -> None:
    data, site = controller
    node_id = site.directory().controller_id
    cert, key = load_cert(data.node_cert), load_key(data.node_key)
    old = addresses.sign(site.site_id, node_id, cert, key, HOME, 100.0)
    new = addresses.sign(site.site_id, node_id, cert, key, ELSEWHERE, 200.0)
    assert site.record_addresses([new.to_wire()]) == 1
    assert site.record_addresses([old.to_wire()]) == 0
    record = site.directory().node(node_id)
    assert record is not None and record.host == "10.6.6.6"


def test_no_one_else_can_move_a_members_address(controller: tuple[DataDir, SiteState]) -> None:
    """Signed with another key, or with a certificate the CA key minted for the member's
    name and serial (what a stolen controller could make): refused, nothing changes."""
    data, site = controller
    node_id = site.directory().controller_id
    cert = load_cert(data.node_cert)
    nodes = site.directory().doc["nodes"]
    forged = addresses.sign(site.site_id, node_id, cert, new_key(), ELSEWHERE, 300.0)
    with pytest.raises(Forbidden, match="not signed by member"):
        addresses.verify(forged.to_wire(), site.ca, site.site_id, nodes, [])
    stranger_key = new_key()
    minted = site.ca.issue(stranger_key.public_key(), node_id, [])
    posing = addresses.sign(site.site_id, node_id, minted, stranger_key, ELSEWHERE, 300.0)
    with pytest.raises(Forbidden):
        addresses.verify(posing.to_wire(), site.ca, site.site_id, nodes, [])
    other_site = SiteCA.create("Elsewhere")
    foreign_key = new_key()
    foreign = other_site.issue(foreign_key.public_key(), node_id, [])
    wrong_ca = addresses.sign(site.site_id, node_id, foreign, foreign_key, ELSEWHERE, 300.0)
    with pytest.raises(Forbidden):
        addresses.verify(wrong_ca.to_wire(), site.ca, site.site_id, nodes, [])
    assert site.record_addresses([forged.to_wire(), posing.to_wire(), wrong_ca.to_wire()]) == 0
    assert site.directory().node(node_id).host != "10.6.6.6"  # type: ignore[union-attr]


def test_a_removed_members_announcement_no_longer_applies(
    controller: tuple[DataDir, SiteState],
) -> None:
    _, site = controller
    key = new_key()
    cert = site.ca.issue(key.public_key(), "n0123456789ab", [])
    site.edit(
        lambda doc: doc["nodes"].__setitem__(
            "n0123456789ab",
            {
                "id": "n0123456789ab",
                "name": "pc",
                "role": "edge",
                "cert_serial": serial_hex(cert),
                "machine_id": "",
                "key_sha256": key_fingerprint(key.public_key()),
            },
        )
    )
    one = addresses.sign(site.site_id, "n0123456789ab", cert, key, HOME, 100.0)
    assert site.record_addresses([one.to_wire()]) == 1
    assert site.directory().node("n0123456789ab").reachable  # type: ignore[union-attr]
    admin.remove_member(site, "n0123456789ab")
    assert "n0123456789ab" not in site.directory().announced
    assert site.record_addresses([one.to_wire()]) == 0


def test_malformed_announcements_are_refused() -> None:
    ca = SiteCA.create("Office")
    for wire in (None, {}, {"raw": "!", "signature": "", "cert": ""}, [1]):
        with pytest.raises(Forbidden):
            addresses.verify(wire, ca, "s1", {}, [])
