"""Site operations shared by the command line and the web UI (appliance/site/admin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.errors import BadRequest, ConfigError, MeshprintError, NotFound
from appliance.printers.registry import add_printer, new_printer, remove_printer
from appliance.site import admin
from appliance.site.state import SiteState
from tests.unit.conftest import new_controller


@pytest.fixture
def site(tmp_path: Path) -> SiteState:
    data = DataDir(tmp_path / "ctl")
    return new_controller(data.root)[1]


def test_add_and_remove_user(site: SiteState) -> None:
    token = admin.add_user(site, "maria", "saffron-tide-44")
    assert len(token) > 20 and site.directory().users == ["maria"]
    with pytest.raises(BadRequest, match="already exists"):
        admin.add_user(site, "maria", "other-password")
    admin.remove_user(site, "maria")
    assert site.directory().users == []
    with pytest.raises(NotFound):
        admin.remove_user(site, "maria")


def test_bad_user_input_changes_nothing(site: SiteState) -> None:
    version = site.directory().version
    for name, password in (("Bad Name", "long-enough-1"), ("ok", "short")):
        with pytest.raises(MeshprintError):
            admin.add_user(site, name, password)
    assert site.directory().version == version


def test_reset_password_changes_the_key(site: SiteState) -> None:
    admin.add_user(site, "maria", "saffron-tide-44")
    before = site.directory().user("maria")
    admin.reset_password(site, "maria", "new-password-2")
    after = site.directory().user("maria")
    assert before is not None and after is not None
    assert before.public_key != after.public_key
    with pytest.raises(NotFound):
        admin.reset_password(site, "nobody", "new-password-2")


def test_change_settings_all_or_nothing(site: SiteState) -> None:
    with pytest.raises(ConfigError):
        admin.change_settings(site, {"retention": "2h", "repair_grace": "0s"})
    assert site.directory().settings.describe()["retention"] == "8h"
    admin.change_settings(site, {"retention": "2h", "repair_grace": "20m"})
    assert site.directory().settings.describe()["retention"] == "2h"


def test_printers(site: SiteState) -> None:
    add_printer(site, new_printer("front", "ipp://10.0.0.9/ipp/print"))
    with pytest.raises(BadRequest):
        add_printer(site, new_printer("front", "ipp://10.0.0.9/ipp/print"))
    remove_printer(site, "front")
    with pytest.raises(NotFound):
        remove_printer(site, "front")


def test_member_removal_refuses_the_controller(site: SiteState) -> None:
    with pytest.raises(BadRequest):
        admin.remove_member(site, site.directory().controller_id)
    with pytest.raises(NotFound):
        admin.remove_member(site, "n000000000000")


def test_invite_needs_a_running_controller(tmp_path: Path, site: SiteState) -> None:
    with pytest.raises(ConfigError, match="start the node first"):
        admin.invite(DataDir(tmp_path / "ctl"), site, 600)


def test_an_older_directory_is_brought_up_to_date_at_start(site: SiteState) -> None:
    import json

    from appliance.site.directory import Directory

    doc = dict(site.directory().doc)
    del doc["membership"], doc["recovery"]  # as a version before member lists and recovery
    me = site.directory().controller_id
    doc["nodes"] = {me: {k: v for k, v in doc["nodes"][me].items() if k != "point"}}
    doc.pop("next_point")
    doc["version"] += 1
    raw = json.dumps(doc, sort_keys=True).encode()
    site.initialise(Directory(raw, site.ca.sign(raw)))
    assert site.directory().membership() is None

    warnings = admin.bring_up_to_date(site)
    directory = site.directory()
    assert directory.version == doc["version"] + 1
    membership = directory.membership()
    assert membership is not None and set(membership.nodes) == set(directory.nodes)
    assert [n.point for n in directory.nodes.values()] == [1]  # members get their points
    assert len(warnings) == 1 and "site recovery-key" in warnings[0]
    admin.bring_up_to_date(site)
    assert site.directory().version == directory.version  # signed again only once


def test_a_current_directory_is_left_as_it_is(site: SiteState) -> None:
    version = site.directory().version
    assert admin.bring_up_to_date(site) == []
    assert site.directory().version == version


def test_member_budget_override_and_back(site: SiteState) -> None:
    node_id = site.directory().controller_id
    assert admin.set_budget(site, node_id, "5G").budget == 5 * 1024**3
    version = site.directory().version
    for bad in ("lots", "0", "100T"):
        with pytest.raises(ConfigError):
            admin.set_budget(site, node_id, bad)
    with pytest.raises(NotFound):
        admin.set_budget(site, "nobody", "5G")
    assert site.directory().version == version  # bad input changed nothing
    assert admin.set_budget(site, node_id, "site").budget is None
