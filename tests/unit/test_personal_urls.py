"""Personal printer URLs and aliases (appliance/site/printer_urls.py, admin.py), and what
the node's printer makes of them (appliance/intake/ipp/printer.py): the secret is kept
only as a hash and sealed to the user's key, replaced by --rotate and by a new password,
refused when replaced; aliases match regardless of case and never name two users."""

from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.crypto.userkeys import WrappedKey, unwrap_private_key
from appliance.errors import BadRequest, NotFound
from appliance.https.server import Request
from appliance.intake.ipp.printer import (
    HttpRefusal,
    IppRefusal,
    Printer,
    PrinterConfig,
    SignInCache,
    _personal,
)
from appliance.printers.ipp.parser import parse
from appliance.site import admin, printer_urls
from appliance.site.directory import UserRecord
from appliance.site.state import SiteState
from tests.unit.conftest import new_controller

PASSWORD = "saffron-tide-44"


@pytest.fixture
def site(tmp_path: Path) -> SiteState:
    site = new_controller(tmp_path / "ctl")[1]
    admin.add_user(site, "maria", PASSWORD)
    admin.add_user(site, "tom", "juniper-kettle-9")
    return site


def _secret(site: SiteState, name: str = "maria", password: str = PASSWORD) -> str:
    user = site.directory().user(name)
    assert user is not None
    key = unwrap_private_key(WrappedKey.from_dict(user.wrapped_key), password)
    return printer_urls.open_secret(site.directory(), name, key)


def test_a_new_user_has_a_personal_url_kept_only_as_a_hash(site: SiteState) -> None:
    secret = _secret(site)
    assert len(secret) == printer_urls.SECRET_LENGTH and printer_urls.looks_like_secret(secret)
    assert len(secret) * 6 >= 128
    assert secret not in site.directory().raw.decode()  # only its hash and a sealed copy
    assert printer_urls.owner_of(site.directory(), secret) == "maria"
    assert printer_urls.owner_of(site.directory(), _secret(site, "tom", "juniper-kettle-9")) == (
        "tom"
    )
    assert printer_urls.owner_of(site.directory(), secret[:-1] + "x") is None
    assert printer_urls.owner_of(site.directory(), "") is None


def test_rotate_replaces_it_and_without_rotate_nothing_changes(site: SiteState) -> None:
    old, version = _secret(site), site.directory().version
    assert admin.printer_url(site, "maria", rotate=False) is None
    assert site.directory().version == version
    new = admin.printer_url(site, "maria", rotate=True)
    assert new is not None and new != old
    assert printer_urls.owner_of(site.directory(), old) is None
    assert printer_urls.owner_of(site.directory(), new) == "maria"
    assert _secret(site) == new  # what the release page shows her
    with pytest.raises(NotFound):
        admin.printer_url(site, "nobody", rotate=True)


def test_revoke_and_a_new_password_end_it(site: SiteState) -> None:
    old = _secret(site)
    admin.revoke_printer_url(site, "maria")
    assert printer_urls.owner_of(site.directory(), old) is None
    with pytest.raises(NotFound, match="no personal printer URL"):
        _secret(site)
    admin.printer_url(site, "maria", rotate=True)
    before = _secret(site)
    admin.reset_password(site, "maria", "new-password-22")
    assert printer_urls.owner_of(site.directory(), before) is None
    after = _secret(site, password="new-password-22")
    assert after != before and printer_urls.owner_of(site.directory(), after) == "maria"


def test_aliases_match_regardless_of_case_and_never_name_two_users(site: SiteState) -> None:
    assert admin.set_alias(site, "maria", "OFFICE-PC\\Maria") == ["office-pc\\maria"]
    directory = site.directory()
    for name in ("office-pc\\maria", "Office-PC\\MARIA ", "MARIA", "maria"):
        found = directory.find_user(name)
        assert found is not None and found.name == "maria", name
    assert directory.find_user("office-pc\\tom") is None and directory.find_user(" ") is None
    version = directory.version
    for name, taken in (("tom", "office-pc\\MARIA"), ("tom", "Maria"), ("maria", "TOM")):
        with pytest.raises(BadRequest, match="already"):
            admin.set_alias(site, name, taken)
    with pytest.raises(BadRequest, match="not a valid alias"):
        admin.set_alias(site, "tom", "bad\nname")
    with pytest.raises(BadRequest, match="not a valid alias"):
        admin.set_alias(site, "tom", "x" * 65)
    with pytest.raises(NotFound):
        admin.set_alias(site, "nobody", "someone")
    assert site.directory().version == version


def test_add_user_cannot_take_an_alias_and_reset_keeps_aliases(site: SiteState) -> None:
    admin.set_alias(site, "maria", "mjones")
    version = site.directory().version
    with pytest.raises(BadRequest, match="maria's name or alias"):
        admin.add_user(site, "mjones", "long-enough-1x")
    assert site.directory().version == version
    admin.reset_password(site, "maria", "new-password-22")
    user = site.directory().user("maria")
    assert user is not None and user.aliases == ("mjones",)
    assert admin.set_alias(site, "maria", "MJones", remove=True) == []
    with pytest.raises(NotFound):
        admin.set_alias(site, "maria", "mjones", remove=True)


def test_a_user_record_from_a_newer_version_still_reads() -> None:
    record = UserRecord.from_dict(
        "maria",
        {"public_key": "k", "wrapped_key": {}, "token_hash": "h", "something_new": 1},
    )
    assert record.name == "maria" and record.aliases == () and record.printer_url is None


# The printer


def test_personal_paths() -> None:
    secret = "A" * 32
    assert _personal(f"/ipp/print/{secret}") == secret
    for other in ("/ipp/print", "/ipp/print/", f"/ipp/print/{secret}/x", f"/x/ipp/print/{secret}"):
        assert _personal(other) is None, other


def test_the_sign_in_cache_is_short_lived_bounded_and_ends_with_the_password(
    site: SiteState,
) -> None:
    now = [1000.0]
    cache = SignInCache(ttl=60, size=2, clock=lambda: now[0])
    directory = site.directory()
    assert not cache.check(directory, "maria", PASSWORD)
    cache.remember(directory, "maria", PASSWORD)
    assert cache.check(directory, "maria", PASSWORD)
    assert not cache.check(directory, "maria", PASSWORD + "x")
    assert not cache.check(directory, "tom", PASSWORD)
    now[0] += 61
    assert not cache.check(directory, "maria", PASSWORD)
    cache.remember(directory, "maria", PASSWORD)
    admin.reset_password(site, "maria", "new-password-22")
    assert not cache.check(site.directory(), "maria", PASSWORD)  # a new key: ends
    for name, password in (("maria", "a"), ("tom", "b"), ("maria", "c")):
        cache.remember(site.directory(), name, password)
    assert len(cache) == 2 and not cache.check(site.directory(), "maria", "a")


def _printer(site: SiteState) -> Printer:
    node = SimpleNamespace(directory=site.directory, id="n1")
    return Printer(node, PrinterConfig(631, "127.0.0.1", "https://127.0.0.1:9266/"))  # type: ignore[arg-type]


def _validate(name: str = "mobile") -> Any:
    head = b"\x02\x00" + struct.pack(">HI", 0x0004, 7) + b"\x01"
    head += b"\x47\x00\x12attributes-charset\x00\x05utf-8"
    head += b"\x48\x00\x1battributes-natural-language\x00\x02en"
    head += b"\x45\x00\x0bprinter-uri\x00\x1aipps://127.0.0.1/ipp/print"
    head += b"\x42\x00\x14requesting-user-name" + struct.pack(">H", len(name)) + name.encode()
    return parse(head + b"\x03")


def _request(path: str, secure: bool = True) -> Request:
    return Request("POST", path, {}, {}, None, ("127.0.0.1", 5000), secure=secure)  # type: ignore[arg-type]


def test_a_personal_url_signs_in_without_credentials(
    site: SiteState, caplog: pytest.LogCaptureFixture
) -> None:
    printer, secret = _printer(site), _secret(site)
    assert printer._sign_in(_request(f"/ipp/print/{secret}"), _validate("maria")) == "maria"
    admin.set_alias(site, "maria", "OFFICE-PC\\maria")
    caplog.clear()
    assert printer._sign_in(_request(f"/ipp/print/{secret}"), _validate("office-pc\\Maria")) == (
        "maria"
    )
    assert "personal URL names" not in caplog.text
    # Someone else's name through maria's URL: still maria's job, and the log says so.
    assert printer._sign_in(_request(f"/ipp/print/{secret}"), _validate("tom")) == "maria"
    assert "personal URL names 'tom'" in caplog.text


def test_a_replaced_personal_url_is_not_authorized_and_plain_ipp_is_refused(
    site: SiteState,
) -> None:
    printer, old = _printer(site), _secret(site)
    admin.printer_url(site, "maria", rotate=True)
    for path in (f"/ipp/print/{old}", "/ipp/print/made-up"):
        with pytest.raises(IppRefusal) as refused:
            printer._sign_in(_request(path), _validate())
        assert refused.value.status == 0x0403  # client-error-not-authorized
    new = _secret(site)
    with pytest.raises(HttpRefusal) as upgrade:  # the secret must not travel in the clear
        printer._sign_in(_request(f"/ipp/print/{new}", secure=False), _validate())
    assert upgrade.value.status == 426


def test_a_second_request_with_the_same_credentials_runs_no_second_kdf(
    site: SiteState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Create-Job, then Send-Document: the password is checked (one KDF run) once."""
    import base64

    from appliance.intake.ipp import printer as module

    runs: list[str] = []
    real = module.authenticate

    def counted(node: Any, name: str, password: str) -> Any:
        runs.append(name)
        return real(node, name, password)

    monkeypatch.setattr(module, "authenticate", counted)
    printer = _printer(site)

    def signed_in(password: str) -> Request:
        request = _request("/ipp/print")
        basic = base64.b64encode(f"Maria:{password}".encode()).decode()
        request.headers = {"Authorization": f"Basic {basic}"}
        return request

    assert printer._sign_in(signed_in(PASSWORD), _validate()) == "maria"
    assert printer._sign_in(signed_in(PASSWORD), _validate()) == "maria"
    assert runs == ["maria"]
    with pytest.raises(HttpRefusal) as wrong:  # a wrong one is never cached as right
        printer._sign_in(signed_in("wrong-guess-12"), _validate())
    assert wrong.value.status == 401 and runs == ["maria", "maria"]


def test_users_from_before_get_a_url_in_the_next_version_and_a_revoked_one_stays_revoked(
    site: SiteState,
) -> None:
    """The next signed version (`SiteState.edit`) gives users made before personal URLs
    one, sealed to their public key; a user whose URL was revoked keeps none."""
    admin.revoke_printer_url(site, "tom")

    def older(doc: dict[str, Any]) -> None:  # a record as an older version wrote it
        del doc["users"]["maria"][printer_urls.FIELD]

    site.edit(older)
    assert printer_urls.owner_of(site.directory(), _secret(site)) == "maria"
    assert site.directory().user("tom").printer_url is None  # type: ignore[union-attr]
    version = site.directory().version
    admin.bring_up_to_date(site)
    assert site.directory().version == version  # nothing more to do
