"""jobs.release.authenticate: a wrong password or an unknown user is the same
WrongPassword, and an old (scrypt-era) or weaker key is wrapped again with the current
KDF cost at the next sign-in on the controller, and only there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto import userkeys
from appliance.crypto.userkeys import KdfBusy, WrappedKey, WrongPassword, public_bytes
from appliance.datadir import DataDir
from appliance.jobs import release
from appliance.site import admin
from appliance.site.ca import SiteCA
from appliance.site.directory import Directory
from appliance.site.state import SiteState
from tests.fixtures.legacy_keys import scrypt_wrapped
from tests.unit.conftest import new_controller

PASSWORD = "saffron-tide-44"


@dataclass
class FakeNode:
    """What authenticate uses of a node: the site and its directory, and its id (by
    default the controller's)."""

    site: SiteState
    member: str | None = None

    @property
    def id(self) -> str:
        return self.member or self.site.directory().controller_id

    def directory(self) -> Directory:
        return self.site.directory()


@pytest.fixture
def site(tmp_path: Path) -> SiteState:
    data = DataDir(tmp_path / "ctl")
    _, site, _ = new_controller(data.root)
    admin.add_user(site, "maria", PASSWORD)
    return site


def put_scrypt_key(site: SiteState, private: X25519PrivateKey) -> dict[str, object]:
    """Give maria a scrypt-era record (as a directory from before Argon2id has)."""
    old = scrypt_wrapped(private, PASSWORD, n=2**12)

    def change(doc: dict[str, object]) -> None:
        users = doc["users"]
        assert isinstance(users, dict)
        users["maria"]["public_key"] = userkeys.b64(public_bytes(private))
        users["maria"]["wrapped_key"] = old

    site.edit(change)
    return old


def record(site: SiteState) -> dict[str, object]:
    user = site.directory().user("maria")
    assert user is not None
    return user.wrapped_key


def test_a_scrypt_key_is_upgraded_at_sign_in_on_the_controller(site: SiteState) -> None:
    private = X25519PrivateKey.generate()
    put_scrypt_key(site, private)
    version = site.directory().version
    opened = release.authenticate(FakeNode(site), "maria", PASSWORD)
    assert public_bytes(opened) == public_bytes(private)
    upgraded = record(site)
    assert upgraded["kdf"] == "argon2id" and upgraded["m"] == userkeys.ARGON2_COST["m"]
    assert site.directory().version == version + 1
    assert not userkeys.needs_rewrap(WrappedKey.from_dict(upgraded))
    # the same key pair under the new wrapping: jobs sealed to it still open
    again = release.authenticate(FakeNode(site), "maria", PASSWORD)
    assert public_bytes(again) == public_bytes(private)
    assert site.directory().version == version + 1  # upgraded once, not at every sign-in


def test_a_wrong_password_upgrades_nothing(site: SiteState) -> None:
    old = put_scrypt_key(site, X25519PrivateKey.generate())
    with pytest.raises(WrongPassword):
        release.authenticate(FakeNode(site), "maria", PASSWORD + "x")
    assert record(site) == old


def test_an_unknown_user_gets_the_same_error(site: SiteState) -> None:
    with pytest.raises(WrongPassword, match="wrong user name or password"):
        release.authenticate(FakeNode(site), "nobody", PASSWORD)


def test_on_a_node_that_cannot_sign_the_key_stays_until_a_sign_in_at_the_controller(
    site: SiteState,
) -> None:
    private = X25519PrivateKey.generate()
    old = put_scrypt_key(site, private)
    member = SiteState(site.db, SiteCA(site.ca.cert, None), site.site_id)
    assert public_bytes(
        release.authenticate(FakeNode(member, "n0000000000ff"), "maria", PASSWORD)
    ) == (public_bytes(private))
    assert record(site) == old
    release.authenticate(FakeNode(site), "maria", PASSWORD)
    assert record(site)["kdf"] == "argon2id"


def test_a_password_reset_meanwhile_is_not_undone(site: SiteState) -> None:
    private = X25519PrivateKey.generate()
    old = put_scrypt_key(site, private)
    admin.reset_password(site, "maria", "amber-lagoon-22")
    reset = record(site)
    assert not release.rewrap_user_key(site, "maria", old, private, PASSWORD)
    assert record(site) == reset


def test_a_busy_node_signs_in_and_upgrades_later(
    site: SiteState, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = X25519PrivateKey.generate()
    old = put_scrypt_key(site, private)

    def busy(*args: object) -> WrappedKey:
        raise KdfBusy("busy")

    monkeypatch.setattr(release, "wrap_private_key", busy)
    assert public_bytes(release.authenticate(FakeNode(site), "maria", PASSWORD)) == (
        public_bytes(private)
    )
    assert record(site) == old
    monkeypatch.undo()
    release.authenticate(FakeNode(site), "maria", PASSWORD)
    assert record(site)["kdf"] == "argon2id"


def test_an_upgrade_queued_while_the_ca_is_out_of_reach_rides_on_the_next_version(
    site: SiteState,
) -> None:
    private = X25519PrivateKey.generate()
    old = put_scrypt_key(site, private)
    locked = SiteState(site.db, SiteCA(site.ca.cert, None), site.site_id)
    version = site.directory().version
    assert not release.rewrap_user_key(locked, "maria", old, private, PASSWORD)
    assert record(site) == old and site.directory().version == version  # nothing signed
    assert site.queued_rewrap("maria") == old
    admin.add_user(site, "tomas", "copper-heron-71")  # any later signed version
    upgraded = record(site)
    assert upgraded["kdf"] == "argon2id" and site.queued_rewrap("maria") is None
    assert public_bytes(release.authenticate(FakeNode(site), "maria", PASSWORD)) == (
        public_bytes(private)
    )


def test_a_queued_upgrade_never_undoes_a_reset(site: SiteState) -> None:
    private = X25519PrivateKey.generate()
    old = put_scrypt_key(site, private)
    locked = SiteState(site.db, SiteCA(site.ca.cert, None), site.site_id)
    release.rewrap_user_key(locked, "maria", old, private, PASSWORD)
    admin.reset_password(site, "maria", "amber-lagoon-22")
    reset = record(site)
    assert reset != old and site.queued_rewrap("maria") is None
    admin.add_user(site, "tomas", "copper-heron-71")
    assert record(site) == reset
