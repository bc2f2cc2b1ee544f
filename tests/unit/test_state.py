"""appliance.site.state: the node's stored directory and the controller's join tokens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from appliance.errors import Forbidden, Gone, Unauthorized
from appliance.site.ca import SiteCA
from appliance.site.directory import Directory, NodeRecord
from appliance.site.state import SiteState
from appliance.site.tls import CertIdentity
from appliance.store.db import Database

from .conftest import SITE_ID


def rename(name: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["name"] = name

    return change


@pytest.fixture
def state(db: Database, ca: SiteCA) -> SiteState:
    return SiteState(db, ca, SITE_ID)


def test_no_directory_yet_is_forbidden(state: SiteState) -> None:
    with pytest.raises(Forbidden, match="no site directory"):
        state.directory()


def test_adopt_into_an_empty_node(state: SiteState, directory: Directory) -> None:
    assert state.adopt(directory.raw, directory.signature)
    assert state.directory().version == 1
    assert state.directory().raw == directory.raw


def test_adopt_takes_only_newer_versions(
    state: SiteState, ca: SiteCA, directory: Directory
) -> None:
    v2 = directory.edited(ca, rename("v2"))
    v3 = v2.edited(ca, rename("v3"))
    assert state.adopt(v2.raw, v2.signature)
    assert not state.adopt(directory.raw, directory.signature)  # older
    assert not state.adopt(v2.raw, v2.signature)  # same
    assert state.directory().name == "v2"
    assert state.adopt(v3.raw, v3.signature)
    assert state.directory().version == 3
    assert state.directory().name == "v3"
    assert not state.adopt(v2.raw, v2.signature)
    assert state.directory().name == "v3"


def test_adopt_same_version_with_other_content_is_refused(
    state: SiteState, ca: SiteCA, directory: Directory
) -> None:
    a = directory.edited(ca, rename("a"))
    b = directory.edited(ca, rename("b"))
    assert a.version == b.version == 2
    assert state.adopt(a.raw, a.signature)
    assert not state.adopt(b.raw, b.signature)
    assert state.directory().name == "a"


def test_adopt_refuses_unverified_directories(
    state: SiteState, ca: SiteCA, other_ca: SiteCA, directory: Directory, controller: NodeRecord
) -> None:
    state.initialise(directory)
    newer = directory.edited(ca, rename("newer"))
    tampered = newer.raw.replace(b'"newer"', b'"evil!"')
    with pytest.raises(Forbidden):
        state.adopt(tampered, newer.signature)
    forged = directory.edited(other_ca, rename("forged"))
    with pytest.raises(Forbidden):
        state.adopt(forged.raw, forged.signature)
    other_site = Directory.create(ca, "site-other", "x", controller).edited(ca, rename("y"))
    with pytest.raises(Forbidden, match="another site"):
        state.adopt(other_site.raw, other_site.signature)
    assert state.directory().version == 1


def test_state_is_shared_through_the_database(
    db: Database, ca: SiteCA, directory: Directory
) -> None:
    node, cli = SiteState(db, ca, SITE_ID), SiteState(db, ca, SITE_ID)
    node.initialise(directory)
    assert node.directory().version == 1
    cli.edit(rename("edited by the command line"))
    assert node.directory().version == 2
    assert node.directory().name == "edited by the command line"


def test_edit_signs_and_stores_the_next_version(
    state: SiteState, ca: SiteCA, directory: Directory
) -> None:
    state.initialise(directory)
    new = state.edit(rename("renamed"))
    assert new.version == 2
    stored = state.directory()
    assert stored.version == 2
    assert stored.name == "renamed"
    Directory.verify(stored.raw, stored.signature, ca, SITE_ID)


def test_is_member_false_for_a_revoked_serial(
    state: SiteState, directory: Directory, controller: NodeRecord
) -> None:
    state.initialise(directory)
    assert state.directory().is_member(CertIdentity(controller.id, controller.cert_serial, ""))
    state.edit(lambda doc: doc["revoked"].append(controller.cert_serial))
    assert not state.directory().is_member(CertIdentity(controller.id, controller.cert_serial, ""))


# Join tokens


def test_token_redeems_once(state: SiteState, db: Database) -> None:
    state.add_token("secret-1", time.time() + 3600)
    state.redeem_token("secret-1", "n-new")
    row = db.query("SELECT used_at, used_by FROM join_tokens")[0]
    assert row["used_by"] == "n-new"
    assert row["used_at"] is not None
    with pytest.raises(Gone, match="already used"):
        state.redeem_token("secret-1", "n-other")
    assert db.query("SELECT used_by FROM join_tokens")[0]["used_by"] == "n-new"


def test_unknown_token_is_unauthorized(state: SiteState) -> None:
    state.add_token("secret-1", time.time() + 3600)
    with pytest.raises(Unauthorized):
        state.redeem_token("secret-2", "n-new")
    state.redeem_token("secret-1", "n-new")  # the real one still works


def test_expired_token_is_gone(state: SiteState, db: Database) -> None:
    state.add_token("old", time.time() - 1)
    with pytest.raises(Gone, match="expired"):
        state.redeem_token("old", "n-new")
    assert db.query("SELECT used_at FROM join_tokens")[0]["used_at"] is None


def test_tokens_are_stored_hashed(state: SiteState, db: Database) -> None:
    state.add_token("plain-secret", time.time() + 60)
    stored = db.query("SELECT secret_hash FROM join_tokens")[0]["secret_hash"]
    assert "plain-secret" not in stored
    assert len(stored) == 64


def test_members_count_from_when_this_node_first_saw_them(
    state: SiteState, ca: SiteCA, directory: Directory, controller: NodeRecord
) -> None:
    state.initialise(directory)
    assert state.member_since(controller.id) == 0.0  # there when this node started

    def add(doc: dict[str, Any]) -> None:
        doc["nodes"]["n-late"] = {**controller.__dict__, "id": "n-late", "point": 9}

    before = time.time()
    v2 = directory.edited(ca, add)
    assert state.adopt(v2.raw, v2.signature)
    assert state.member_since("n-late") >= before  # whatever the directory claims
    v3 = v2.edited(ca, lambda doc: doc["nodes"].pop("n-late"))
    assert state.adopt(v3.raw, v3.signature)
    v4 = v3.edited(ca, add)
    time.sleep(0.01)
    again = time.time()
    assert state.adopt(v4.raw, v4.signature)
    assert state.member_since("n-late") >= again  # back after leaving: new again
