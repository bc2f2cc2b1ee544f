"""Printer URIs, names and SNMP settings are validated before they reach the directory."""

from __future__ import annotations

import pytest

from appliance.errors import BadRequest, NotFound
from appliance.printers.registry import SnmpConfig, find, new_printer, parse_uri, printers


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("ipp://printer.local/ipp/print", "ipp://printer.local:631/ipp/print"),
        ("ipps://10.0.0.9:8443/ipp/print", "ipps://10.0.0.9:8443/ipp/print"),
        ("ipp://10.0.0.9", "ipp://10.0.0.9:631/ipp/print"),
        ("socket://10.0.0.7", "socket://10.0.0.7:9100"),
        ("socket://10.0.0.7:9101/", "socket://10.0.0.7:9101"),
        ("cups:Office_Laser", "cups:Office_Laser"),
    ],
)
def test_uris_are_normalised(uri: str, normal: str) -> None:
    assert parse_uri(uri).uri == normal


@pytest.mark.parametrize(
    "uri",
    [
        "http://10.0.0.9/",
        "ipp://",
        "socket://h/path",
        "ipp://u:p@h/ipp",
        "ipp://h:99999/x",
        "cups:",
        "cups:../etc",
        "ipp://bad host/",
        "lpd://h/q",
        "ipp://h/x?y=1",
    ],
)
def test_bad_uris_are_refused_with_the_accepted_forms(uri: str) -> None:
    with pytest.raises(BadRequest):
        parse_uri(uri)


def test_names_pins_and_locations_are_checked() -> None:
    with pytest.raises(BadRequest, match="not a valid printer name"):
        new_printer("Front Desk", "ipp://h/ipp/print")
    with pytest.raises(BadRequest, match="64 hex"):
        new_printer("a", "ipps://h/ipp/print", pin_sha256="abc")
    with pytest.raises(BadRequest, match="only apply to ipps"):
        new_printer("a", "ipp://h/ipp/print", allow_self_signed=True)
    record = new_printer("a", "ipps://h/ipp/print", pin_sha256="AB:" * 31 + "AB")
    assert record.pin_sha256 == "ab" * 32


def test_snmp_settings() -> None:
    assert SnmpConfig.parse("10.0.0.7", None, None) == SnmpConfig("10.0.0.7", 161, "public")
    assert SnmpConfig.parse("h:1161", "printer", None).port == 1161
    v3 = SnmpConfig.parse("h", None, "admin:authpass1:privpass1")
    assert (v3.v3_user, v3.v3_auth_key, v3.v3_priv_key) == ("admin", "authpass1", "privpass1")
    for bad in (
        ("h:x", None, None),
        ("h:0", None, None),
        ("h", "c", "u:authpass1"),
        ("h", None, "u:short"),
    ):
        with pytest.raises(BadRequest):
            SnmpConfig.parse(*bad)


def test_records_round_trip_through_the_directory_document() -> None:
    record = new_printer(
        "front", "ipp://h/ipp/print", "Lobby", SnmpConfig.parse("h", "secret", None)
    )
    doc = {"printers": {record.name: record.to_dict()}}
    assert printers(doc) == {"front": record}
    assert "secret" not in str(record.public())
    with pytest.raises(NotFound, match="printers: front"):
        find(doc, "back")
