"""site/authority.py: the CA key kept only sealed (under the recovery key and each
administrator's Argon2id-wrapped admin key), opened for one action; an older
controller's clear key sealed and removed at the first unlock, never before it is
sealed somewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.datadir import DataDir
from appliance.errors import Conflict, Forbidden, NotFound, Unauthorized
from appliance.site import admin, authority, recovery
from appliance.site.authority import AdminPassword, RecoveryKey
from appliance.site.ca import key_pem, write_private
from appliance.site.enroll import create_site
from appliance.site.state import SiteState, open_site

NAME, PASSWORD = "ops", "amber-lantern-58"


@pytest.fixture
def made(tmp_path: Path) -> tuple[DataDir, str]:
    data = DataDir(tmp_path / "ctl")
    return data, create_site(data, "Office").recovery_key


def opened(data: DataDir) -> SiteState:
    return open_site(data)[1]


def test_a_new_site_keeps_its_ca_key_only_sealed(made: tuple[DataDir, str]) -> None:
    data, key = made
    assert not data.ca_key.exists() and data.ca_sealed.exists() and data.is_controller
    site = opened(data)
    assert site.ca.key is None
    with pytest.raises(Forbidden, match="locked"):
        admin.change_settings(site, {"retention": "2h"})
    authority.unlock(data, site, RecoveryKey(key))
    admin.change_settings(site, {"retention": "2h"})
    authority.lock(site)
    with pytest.raises(Forbidden, match="locked"):
        admin.change_settings(site, {"retention": "3h"})
    assert opened(data).directory().settings.describe()["retention"] == "2h"


def test_an_administrators_password_unlocks_and_a_wrong_one_does_not(
    made: tuple[DataDir, str],
) -> None:
    data, key = made
    site = opened(data)
    authority.unlock(data, site, RecoveryKey(key))
    authority.add_admin(data, NAME, PASSWORD, site.ca, site.site_id)
    with pytest.raises(Conflict):
        authority.add_admin(data, NAME, PASSWORD, site.ca, site.site_id)
    assert authority.admins(data) == [NAME]
    assert PASSWORD.encode() not in data.ca_sealed.read_bytes()
    fresh = opened(data)
    for wrong in (AdminPassword(NAME, PASSWORD + "x"), AdminPassword("nobody", PASSWORD)):
        with pytest.raises(Unauthorized, match="wrong administrator name or password"):
            authority.unlock(data, fresh, wrong)
        assert fresh.ca.key is None
    with pytest.raises(Unauthorized):
        authority.unlock(data, fresh, RecoveryKey("AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"))
    authority.unlock(data, fresh, AdminPassword(NAME, PASSWORD))
    assert fresh.ca.key is not None and fresh.ca.key.public_key() == fresh.ca.public_key


def test_a_password_change_rewraps_and_removal_ends_it(made: tuple[DataDir, str]) -> None:
    data, key = made
    site = opened(data)
    authority.unlock(data, site, RecoveryKey(key))
    authority.add_admin(data, NAME, PASSWORD, site.ca, site.site_id)
    with pytest.raises(Unauthorized):
        authority.change_password(data, NAME, "not-it-at-all", "brand-new-pass-9")
    authority.change_password(data, NAME, PASSWORD, "brand-new-pass-9")
    with pytest.raises(Unauthorized):
        authority.unlock(data, opened(data), AdminPassword(NAME, PASSWORD))
    authority.unlock(data, opened(data), AdminPassword(NAME, "brand-new-pass-9"))
    authority.remove_admin(data, NAME)
    with pytest.raises(NotFound):
        authority.remove_admin(data, NAME)
    with pytest.raises(Unauthorized):
        authority.unlock(data, opened(data), AdminPassword(NAME, "brand-new-pass-9"))


def test_an_admin_without_a_key_to_the_authority_is_told_so(made: tuple[DataDir, str]) -> None:
    data, _ = made
    authority.add_admin(data, NAME, PASSWORD)  # as the wizard's admin step, before a site
    with pytest.raises(Forbidden, match="no key to the site authority"):
        authority.unlock(data, opened(data), AdminPassword(NAME, PASSWORD))


def _as_older_version(data: DataDir, key: str) -> None:
    """The CA key in the clear, as versions before `ca.sealed` kept it."""
    site = opened(data)
    ca = recovery.open_authority(site.directory().doc["recovery"], site.ca, site.site_id, key)
    assert ca.key is not None
    write_private(data.ca_key, key_pem(ca.key))
    data.ca_sealed.unlink()


def test_a_clear_key_is_sealed_under_the_first_admin_and_removed(
    made: tuple[DataDir, str],
) -> None:
    data, key = made
    _as_older_version(data, key)
    assert data.is_controller
    site = opened(data)
    assert site.ca.key is not None  # until the first unlock
    authority.unlock(data, site, AdminPassword(NAME, PASSWORD))
    assert not data.ca_key.exists() and authority.admins(data) == [NAME]
    again = opened(data)
    assert again.ca.key is None
    authority.unlock(data, again, AdminPassword(NAME, PASSWORD))
    admin.change_settings(again, {"retention": "2h"})


def test_a_clear_key_sealed_nowhere_else_is_kept(made: tuple[DataDir, str]) -> None:
    """A site from before recovery keys, and no administrator: removing the clear file
    would lose the authority, so it stays until something seals it."""
    data, key = made
    _as_older_version(data, key)
    site = opened(data)
    ca = site.ca
    site.edit(lambda doc: doc.pop("recovery"))
    assert not authority.retire_clear(data, site)
    assert data.ca_key.exists()
    authority.add_admin(data, NAME, PASSWORD, ca, site.site_id)
    assert authority.retire_clear(data, site)
    assert not data.ca_key.exists()


def test_shred_overwrites_before_unlinking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"S" * 300)
    seen: list[bytes] = []
    real_unlink = authority.os.unlink

    def spy(target: str) -> None:
        seen.append(Path(target).read_bytes())
        real_unlink(target)

    monkeypatch.setattr(authority.os, "unlink", spy)
    authority.shred(path)
    assert not path.exists()
    assert len(seen[0]) == 300 and b"S" * 16 not in seen[0]


def test_administrators_added_at_the_same_moment_are_all_kept(
    made: tuple[DataDir, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI and the console's workers may change `ca.sealed` at once: each change is
    made on what the one before it wrote (a slow read makes a lost update certain without
    the lock)."""
    import threading
    import time

    data, _ = made
    real = authority._read

    def slow(data: DataDir) -> dict[str, object]:
        found = real(data)
        time.sleep(0.05)
        return found

    monkeypatch.setattr(authority, "_read", slow)
    names = [f"admin{i}" for i in range(4)]
    threads = [
        threading.Thread(target=authority.add_admin, args=(data, n, PASSWORD)) for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(authority.admins(data)) == names  # in whichever order they got the lock
