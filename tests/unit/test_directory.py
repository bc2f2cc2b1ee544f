"""appliance.site.directory: the signed, versioned site directory."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from appliance.config import SiteSettings
from appliance.errors import BadRequest, ConfigError, Forbidden
from appliance.site.ca import SiteCA
from appliance.site.directory import Directory, NodeRecord, check_user_name
from appliance.site.tls import CertIdentity

from .conftest import SITE_ID

EDGE = {
    "id": "n-edge",
    "name": "edge",
    "role": "edge",
    "cert_serial": "abc123",
    "machine_id": "machine-b",
}


def add_edge(doc: dict[str, Any]) -> None:
    doc["nodes"]["n-edge"] = dict(EDGE)


def test_create_makes_version_one(directory: Directory, controller: NodeRecord) -> None:
    assert directory.version == 1
    assert directory.site_id == SITE_ID
    assert directory.name == "Test office"
    assert directory.controller_id == controller.id
    first = dataclasses.replace(controller, point=1)  # the first member point is its own
    assert directory.nodes == {controller.id: first}
    assert directory.node(controller.id) == first
    assert directory.node("n-missing") is None
    assert directory.users == []
    assert directory.revoked == set()
    assert directory.settings == SiteSettings()


def test_created_directory_verifies(ca: SiteCA, directory: Directory) -> None:
    verified = Directory.verify(directory.raw, directory.signature, ca, SITE_ID)
    assert verified.doc == directory.doc
    assert Directory.verify(directory.raw, directory.signature, ca, None).version == 1


def test_edited_bumps_version_and_verifies(ca: SiteCA, directory: Directory) -> None:
    edited = directory.edited(ca, add_edge)
    assert edited.version == 2
    assert edited.doc["issued_at"] >= directory.doc["issued_at"]
    assert edited.node("n-edge") == NodeRecord(
        id="n-edge", name="edge", role="edge", cert_serial="abc123", machine_id="machine-b"
    )
    assert directory.node("n-edge") is None  # the old version is untouched
    verified = Directory.verify(edited.raw, edited.signature, ca, SITE_ID)
    assert verified.version == 2
    third = edited.edited(ca, lambda doc: doc["revoked"].append("abc123"))
    assert third.version == 3
    Directory.verify(third.raw, third.signature, ca, SITE_ID)


def test_edit_cannot_choose_the_version(ca: SiteCA, directory: Directory) -> None:
    def cheat(doc: dict[str, Any]) -> None:
        doc["version"] = 1000

    assert directory.edited(ca, cheat).version == 2


def test_edited_refuses_invalid_settings(ca: SiteCA, directory: Directory) -> None:
    def bad(doc: dict[str, Any]) -> None:
        doc["settings"]["retention"] = 60

    with pytest.raises(ConfigError, match="retention"):
        directory.edited(ca, bad)


def test_edited_settings_are_read_back(ca: SiteCA, directory: Directory) -> None:
    def longer(doc: dict[str, Any]) -> None:
        doc["settings"]["retention"] = 86400

    assert directory.edited(ca, longer).settings.retention == 86400


def test_tampered_raw_fails_verify(ca: SiteCA, directory: Directory) -> None:
    doc = json.loads(directory.raw)
    doc["revoked"] = [doc["nodes"][doc["controller"]]["cert_serial"]]
    tampered = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(Forbidden):
        Directory.verify(tampered, directory.signature, ca, SITE_ID)
    flipped = directory.raw.replace(b'"version":1', b'"version":9')
    assert flipped != directory.raw
    with pytest.raises(Forbidden):
        Directory.verify(flipped, directory.signature, ca, SITE_ID)


def test_signature_of_another_version_fails_verify(ca: SiteCA, directory: Directory) -> None:
    edited = directory.edited(ca, add_edge)
    with pytest.raises(Forbidden):
        Directory.verify(edited.raw, directory.signature, ca, SITE_ID)


def test_directory_signed_by_another_ca_fails_verify(
    ca: SiteCA, other_ca: SiteCA, controller: NodeRecord
) -> None:
    foreign = Directory.create(other_ca, SITE_ID, "Impostor", controller)
    with pytest.raises(Forbidden):
        Directory.verify(foreign.raw, foreign.signature, ca, SITE_ID)


def test_directory_of_another_site_fails_verify(ca: SiteCA, controller: NodeRecord) -> None:
    other_site = Directory.create(ca, "site-other", "Other office", controller)
    with pytest.raises(Forbidden, match="another site"):
        Directory.verify(other_site.raw, other_site.signature, ca, SITE_ID)


def test_is_member(ca: SiteCA, directory: Directory, controller: NodeRecord) -> None:
    serial = controller.cert_serial
    assert directory.is_member(CertIdentity(controller.id, serial, ""))
    assert not directory.is_member(CertIdentity(controller.id, "ffff", ""))
    assert not directory.is_member(CertIdentity("n-unknown", serial, ""))
    revoked = directory.edited(ca, lambda doc: doc["revoked"].append(serial))
    assert serial in revoked.revoked
    assert not revoked.is_member(CertIdentity(controller.id, serial, ""))


def test_a_pinned_key_is_part_of_the_identity(ca: SiteCA, directory: Directory) -> None:
    pinned = directory.edited(
        ca, lambda doc: doc["nodes"].__setitem__("n-p", {**EDGE, "id": "n-p", "key_sha256": "aa"})
    )
    assert pinned.is_member(CertIdentity("n-p", "abc123", "aa"))
    # The same name and serial on another key (a certificate minted with the CA key): no.
    assert not pinned.is_member(CertIdentity("n-p", "abc123", "bb"))
    with pytest.raises(Forbidden, match="certificate or point"):
        pinned.edited(
            ca, lambda doc: doc["nodes"]["n-p"].__setitem__("key_sha256", "bb")
        ).check_follows(pinned)


def test_users(ca: SiteCA, directory: Directory) -> None:
    def add_user(doc: dict[str, Any]) -> None:
        doc["users"]["bob"] = {"public_key": "pk", "wrapped_key": {"n": 1}, "token_hash": "th"}
        doc["users"]["alice"] = {"public_key": "pk2", "wrapped_key": {}, "token_hash": "th2"}

    edited = directory.edited(ca, add_user)
    assert edited.users == ["alice", "bob"]
    bob = edited.user("bob")
    assert bob is not None
    assert (bob.name, bob.public_key, bob.token_hash) == ("bob", "pk", "th")
    assert edited.user("carol") is None


def test_node_record_reachable() -> None:
    base = {"id": "n", "name": "n", "role": "edge", "cert_serial": "1", "machine_id": "m"}
    assert not NodeRecord.from_dict(base).reachable
    assert not NodeRecord.from_dict({**base, "host": "10.0.0.2"}).reachable
    assert NodeRecord.from_dict({**base, "host": "10.0.0.2", "peer_port": 7001}).reachable
    assert NodeRecord.from_dict({**base, "unexpected": 1}).id == "n"


@pytest.mark.parametrize("name", ["alice", "a", "bob.smith", "x_1-2", "a" * 32])
def test_check_user_name_accepts(name: str) -> None:
    assert check_user_name(name) == name


@pytest.mark.parametrize("name", ["", "Alice", "1bob", "-x", "a" * 33, "al ice", "al/ice", "../x"])
def test_check_user_name_refuses(name: str) -> None:
    with pytest.raises(BadRequest, match="not a valid user name"):
        check_user_name(name)


def test_check_user_name_refuses_a_trailing_newline() -> None:
    with pytest.raises(BadRequest):
        check_user_name("alice\n")


def test_member_points_are_never_given_twice(ca: SiteCA, directory: Directory) -> None:
    from appliance.site.directory import give_point

    def add(node_id: str) -> Callable[[dict[str, Any]], None]:
        def change(doc: dict[str, Any]) -> None:
            doc["nodes"][node_id] = {**EDGE, "id": node_id}
            give_point(doc, doc["nodes"][node_id])

        return change

    v2 = directory.edited(ca, add("n-a"))
    v3 = v2.edited(ca, lambda doc: doc["nodes"].pop("n-a"))  # removed: its point stays used
    v4 = v3.edited(ca, add("n-b"))
    points = {n.id: n.point for n in v4.nodes.values()}
    assert points == {directory.controller_id: 1, "n-b": 3}
    assert v2.node("n-a") is not None and v2.node("n-a").point == 2  # type: ignore[union-attr]


def test_no_version_changes_a_members_point_or_certificate(
    ca: SiteCA, directory: Directory
) -> None:
    me = directory.controller_id
    for change in (
        lambda doc: doc["nodes"][me].__setitem__("point", 7),
        lambda doc: doc["nodes"][me].__setitem__("cert_serial", "f00"),
        lambda doc: doc["nodes"].__setitem__("n-x", {**EDGE, "id": "n-x", "point": 1}),
    ):
        with pytest.raises(Forbidden):
            directory.edited(ca, change).check_follows(directory)
    directory.edited(ca, lambda doc: doc.__setitem__("name", "New name")).check_follows(directory)
