"""The release authority (`appliance.site.release_authority`): sealed under the recovery
key, the only signer of release commands, and pinned: the CA key alone cannot replace it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.errors import Forbidden, Unauthorized
from appliance.jobs.release import make_command
from appliance.site import admin, recovery, release_authority
from appliance.site.directory import Directory
from appliance.site.state import SiteState
from appliance.store.db import Database
from tests.unit.conftest import new_controller


@pytest.fixture
def made(tmp_path: Path) -> tuple[SiteState, str]:
    """A new site's state on the controller, and the recovery key it showed."""
    data = DataDir(tmp_path / "ctl")
    _, site, key = new_controller(data.root)
    return site, key


def test_the_recovery_key_unlocks_the_signer_of_commands(made: tuple[SiteState, str]) -> None:
    site, key = made
    doc = site.directory().doc
    signer = release_authority.unlock(doc, site.site_id, key)
    signed = make_command(signer, "j" + "0" * 24, "n000000000001")
    raw, signature = recovery.unb64(signed["command"]), recovery.unb64(signed["signature"])
    release_authority.verify(doc, site.ca, raw, signature)
    with pytest.raises(Unauthorized):
        release_authority.unlock(doc, site.site_id, recovery.new_recovery_key())


def test_the_ca_key_on_the_controllers_disk_signs_no_command(made: tuple[SiteState, str]) -> None:
    site, _ = made
    assert site.ca.key is not None  # what a stolen appliance holds
    signed = make_command(site.ca, "j" + "0" * 24, "n000000000001")
    raw, signature = recovery.unb64(signed["command"]), recovery.unb64(signed["signature"])
    with pytest.raises(Forbidden, match="release authority"):
        release_authority.verify(site.directory().doc, site.ca, raw, signature)


def test_no_directory_signed_by_the_ca_alone_replaces_or_drops_it(
    made: tuple[SiteState, str], tmp_path: Path
) -> None:
    site, _ = made
    member = SiteState(Database(tmp_path / "member.db"), site.ca, site.site_id)
    member.initialise(site.directory())
    theirs = release_authority.entry_for(
        release_authority.ReleaseAuthority.create(), site.site_id, recovery.new_recovery_key()
    )
    for change in (
        lambda doc: doc.__setitem__(release_authority.FIELD, theirs),
        lambda doc: doc.pop(release_authority.FIELD),
    ):
        forged: Directory = site.directory().edited(site.ca, change)  # the CA key signs it
        with pytest.raises(Forbidden, match="release authority"):
            member.adopt(forged.raw, forged.signature)
        assert member.directory().version == site.directory().version
    # An ordinary change is adopted.
    admin.change_settings(site, {"retention": "4h"})
    assert member.adopt(site.directory().raw, site.directory().signature)


def test_a_new_recovery_key_keeps_the_authority_and_wants_the_old_key(
    made: tuple[SiteState, str],
) -> None:
    site, key = made
    public = site.directory().doc[release_authority.FIELD]["public"]
    with pytest.raises(Unauthorized):
        admin.new_recovery_key(site, recovery.new_recovery_key())
    new = admin.new_recovery_key(site, key)
    doc = site.directory().doc
    assert doc[release_authority.FIELD]["public"] == public  # members keep trusting it
    release_authority.unlock(doc, site.site_id, new)
    with pytest.raises(Unauthorized):
        release_authority.unlock(doc, site.site_id, key)  # the old key no longer opens it


def test_a_vouch_holds_for_the_record_it_was_made_for(made: tuple[SiteState, str]) -> None:
    site, key = made
    doc = site.directory().doc
    authority = release_authority.unlock(doc, site.site_id, key)
    record = {"id": "n1", "cert_serial": "ab", "key_sha256": "cd", "point": 4}
    record["vouched"] = release_authority.vouch(authority, record)
    assert release_authority.is_vouched(doc, record)
    for field, other in (("point", 5), ("key_sha256", "ce"), ("id", "n2")):
        assert not release_authority.is_vouched(doc, {**record, field: other})
    assert not release_authority.is_vouched({}, record)  # a site without the authority
    minted = {**record, "vouched": base64.b64encode(site.ca.sign(b"x")).decode()}
    assert not release_authority.is_vouched(doc, minted)  # the CA key cannot vouch
