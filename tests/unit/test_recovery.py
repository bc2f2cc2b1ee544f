"""The recovery key and the sealed site authority (`appliance.site.recovery`)."""

from __future__ import annotations

import pytest

from appliance.errors import BadRequest, Forbidden, Unauthorized
from appliance.site import recovery
from appliance.site.ca import SiteCA


def test_the_key_opens_the_authority_it_sealed_typed_any_way() -> None:
    ca = SiteCA.create("Office")
    key = recovery.new_recovery_key()
    entry = recovery.seal_authority(ca, "s1", key)
    public = SiteCA(ca.cert, None)
    typed = key.lower().replace("-", " ").replace("o", "0")
    opened = recovery.open_authority(entry, public, "s1", typed)
    assert opened.key is not None
    opened.verify(b"x", opened.sign(b"x"))
    ca.verify(b"x", opened.sign(b"x"))


def test_a_wrong_key_another_site_or_ca_opens_nothing() -> None:
    ca = SiteCA.create("Office")
    key = recovery.new_recovery_key()
    entry = recovery.seal_authority(ca, "s1", key)
    public = SiteCA(ca.cert, None)
    with pytest.raises(Unauthorized):
        recovery.open_authority(entry, public, "s1", recovery.new_recovery_key())
    with pytest.raises(Unauthorized):
        recovery.open_authority(entry, public, "s2", key)
    with pytest.raises(Forbidden):
        recovery.open_authority(entry, SiteCA(SiteCA.create("Other").cert, None), "s1", key)
    with pytest.raises(Forbidden):
        recovery.open_authority(None, public, "s1", key)


def test_the_proof_shows_the_key_without_opening_the_copy() -> None:
    ca = SiteCA.create("Office")
    key = recovery.new_recovery_key()
    entry = recovery.seal_authority(ca, "s1", key)
    recovery.check_proof(entry, recovery.proof(key))
    with pytest.raises(Unauthorized):
        recovery.check_proof(entry, recovery.proof(recovery.new_recovery_key()))
    with pytest.raises(Unauthorized):
        recovery.check_proof({}, recovery.proof(key))
    # The proof is not a key: it does not open the sealed authority.
    with pytest.raises(BadRequest):
        recovery.open_authority(entry, SiteCA(ca.cert, None), "s1", recovery.proof(key))


@pytest.mark.parametrize("text", ["", "ABCDE-ABCDE", "ABCDE-ABCDE-ABCDE-ABCDE-ABCD9", "!" * 25])
def test_malformed_keys_are_refused_with_the_expected_shape(text: str) -> None:
    with pytest.raises(BadRequest, match="XXXXX-XXXXX"):
        recovery.normalise(text)


def test_keys_are_fresh_and_125_bits() -> None:
    keys = {recovery.new_recovery_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(recovery.normalise(k)) == 25 for k in keys)
