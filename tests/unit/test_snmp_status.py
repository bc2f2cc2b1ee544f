"""Decoding printer status from SNMP values: error-state bits, supplies, reasons, targets.

The recordings under tests/data/snmp/ are GETNEXT walks of the simulated printer of
tests/fixtures/snmpagent.py in three states (`python -m tests.fixtures.snmpagent capture
tests/data/snmp` writes them again).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadRequest
from appliance.printers import snmp
from appliance.printers.registry import SnmpConfig
from appliance.printers.snmp import (
    PrinterStatus,
    SnmpTarget,
    SnmpV3User,
    Supply,
    decode_error_state,
    decode_status,
    encode_error_state,
    scan,
)
from tests.fixtures.snmpagent import parse_snmprec

DATA = Path(__file__).parent.parent / "data" / "snmp"

# hrPrinterDetectedErrorState, RFC 3805 section 2.2.13.4 (bit 0 = most significant bit of
# the first octet), written out by hand rather than computed from the module's table.
RFC_BITS = [
    ("lowPaper", "8000"),
    ("noPaper", "4000"),
    ("lowToner", "2000"),
    ("noToner", "1000"),
    ("doorOpen", "0800"),
    ("jammed", "0400"),
    ("offline", "0200"),
    ("serviceRequested", "0100"),
    ("inputTrayMissing", "0080"),
    ("outputTrayMissing", "0040"),
    ("markerSupplyMissing", "0020"),
    ("outputNearFull", "0010"),
    ("outputFull", "0008"),
    ("inputTrayEmpty", "0004"),
    ("overduePreventMaint", "0002"),
]


def recorded(name: str) -> PrinterStatus:
    values = parse_snmprec((DATA / f"{name}.snmprec").read_text())
    return decode_status(values, "192.0.2.10", 161)


# -- the error-state bitmask -------------------------------------------------------------


@pytest.mark.parametrize(("name", "hexbits"), RFC_BITS)
def test_each_error_bit_decodes_and_encodes(name: str, hexbits: str) -> None:
    assert decode_error_state(bytes.fromhex(hexbits)) == (name,)
    assert encode_error_state([name]) == bytes.fromhex(hexbits)


def test_error_state_of_one_octet_more_octets_and_none() -> None:
    assert decode_error_state(b"\x04") == ("jammed",)  # many printers send one octet
    assert decode_error_state(b"\x00") == ()
    assert decode_error_state(b"") == ()
    assert decode_error_state(bytes.fromhex("0000ff")) == ()  # bits past 14 are not defined
    assert decode_error_state(bytes.fromhex("0001")) == ()  # bit 15 is not defined
    assert decode_error_state(bytes.fromhex("fffe")) == tuple(name for name, _ in RFC_BITS)
    assert decode_error_state(bytes.fromhex("2c04")) == (
        "lowToner",
        "doorOpen",
        "jammed",
        "inputTrayEmpty",
    )


def test_encode_refuses_unknown_bits() -> None:
    with pytest.raises(ValueError, match="paperOnFire"):
        encode_error_state(["paperOnFire"])


# -- recorded walks ----------------------------------------------------------------------


def test_recorded_idle_printer() -> None:
    status = recorded("simlaser-idle")
    assert status.device_status == "running"
    assert status.printer_status == "idle"
    assert status.errors == ()
    assert status.page_count == 12345
    assert status.model == "Meshprint SimLaser 4000"
    assert status.description and status.description.startswith("Meshprint SimLaser 4000")
    toner, drum = status.supplies
    assert (toner.index, toner.description, toner.percent, toner.remaining) == (
        "1.1",
        "Black Toner Cartridge",
        42,
        "42%",
    )
    assert (drum.description, drum.percent, drum.remaining) == (
        "Imaging Drum",
        None,
        "some remaining",
    )
    assert status.alerts == ()  # the recorded alert row has an empty description
    assert status.printable
    assert status.blocking_reason() is None
    assert status.warnings() == []
    assert status.to_dict()["supplies"][0]["percent"] == 42


def test_recorded_jammed_printer() -> None:
    status = recorded("simlaser-jammed")
    assert status.device_status == "down"
    assert status.printer_status == "other"
    assert status.errors == ("lowToner", "doorOpen", "jammed", "inputTrayEmpty")
    assert status.page_count == 12399
    assert status.alerts == ("Paper jam in tray 2",)
    reason = status.blocking_reason()
    assert reason is not None
    assert reason.startswith("the printer reports it is down")
    assert "paper jam" in reason and "door" in reason
    assert reason.endswith("(the printer says: Paper jam in tray 2)")
    assert "toner" not in reason.lower()  # low toner is a warning, not a reason
    assert status.warnings() == [
        "toner is low",
        "an input tray is empty",
        "Black Toner Cartridge is low (4%)",
    ]
    assert not status.printable


def test_recorded_printer_out_of_toner() -> None:
    status = recorded("simlaser-no-toner")
    assert status.device_status == "warning"
    assert status.errors == ("lowPaper", "noToner")
    assert status.supplies[0].level == 0 and status.supplies[0].empty
    # The empty cartridge says more than the generic noToner bit: one reason, not two.
    assert status.blocking_reason() == "Black Toner Cartridge is empty — replace it"
    assert status.warnings() == ["paper is low"]


# -- reasons and warnings ----------------------------------------------------------------

BLOCKING_BITS = [
    ("jammed", "paper jam"),
    ("noPaper", "out of paper"),
    ("doorOpen", "door or cover is open"),
    ("offline", "offline"),
    ("noToner", "out of toner"),
    ("markerSupplyMissing", "missing"),
    ("outputFull", "output tray is full"),
    ("outputTrayMissing", "output tray is missing"),
]
WARNING_BITS = [
    "lowPaper",
    "lowToner",
    "serviceRequested",
    "inputTrayMissing",
    "outputNearFull",
    "inputTrayEmpty",
    "overduePreventMaint",
]


@pytest.mark.parametrize(("bit", "words"), BLOCKING_BITS)
def test_blocking_bits(bit: str, words: str) -> None:
    status = PrinterStatus(device_status="running", printer_status="idle", errors=(bit,))
    reason = status.blocking_reason()
    assert reason is not None and words in reason


@pytest.mark.parametrize("bit", WARNING_BITS)
def test_warning_bits_do_not_block(bit: str) -> None:
    status = PrinterStatus(device_status="warning", printer_status="idle", errors=(bit,))
    assert status.blocking_reason() is None
    assert status.warnings()


def test_every_bit_is_either_blocking_or_a_warning() -> None:
    names = {name for name, _ in RFC_BITS}
    assert {bit for bit, _ in BLOCKING_BITS} | set(WARNING_BITS) == names
    assert set(snmp.BLOCKING_ERRORS) | set(snmp.WARNING_ERRORS) == names


@pytest.mark.parametrize(
    ("device", "printer", "blocked"),
    [
        ("running", "idle", False),
        ("running", "printing", False),
        ("running", "warmup", False),
        ("warning", "idle", False),
        ("unknown", "unknown", False),
        (None, None, False),  # no Host Resources MIB: nothing says no
        ("testing", "other", True),
        ("down", "other", True),
    ],
)
def test_device_status(device: str | None, printer: str | None, blocked: bool) -> None:
    status = PrinterStatus(device_status=device, printer_status=printer)
    assert (status.blocking_reason() is not None) is blocked


def test_unknown_enumerations_are_kept() -> None:
    status = decode_status({snmp.HR_DEVICE_STATUS: 9, snmp.HR_PRINTER_STATUS: 7})
    assert (status.device_status, status.printer_status) == ("other(9)", "other(7)")
    assert status.blocking_reason() is None


def test_nothing_known() -> None:
    status = decode_status({})
    assert status == PrinterStatus()
    assert status.printable and status.supplies == () and status.page_count is None


# -- supplies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_capacity", "level", "percent", "remaining"),
    [
        (100, 42, 42, "42%"),
        (200, 50, 25, "25%"),
        (3, 2, 67, "67%"),
        (100, 150, 100, "100%"),  # clamp a level above capacity
        (100, 0, 0, "0%"),
        (1000, 85, 9, "9%"),  # half up
        (1000, 1, 1, "1%"),  # a little left is not "0%"
        (-2, -3, None, "some remaining"),  # capacity unknown, at least one unit left
        (100, -3, None, "some remaining"),
        (100, -2, None, "unknown"),
        (-2, -2, None, "unknown"),
        (-1, -1, None, "no limit"),
        (-1, 37, None, "37"),  # no capacity limit: the level is all there is
        (0, 0, None, "unknown"),
        (None, None, None, "unknown"),
    ],
)
def test_supply_levels(
    max_capacity: int | None, level: int | None, percent: int | None, remaining: str
) -> None:
    supply = Supply("1.1", "Black Toner Cartridge", max_capacity, level, 3)
    assert supply.percent == percent
    assert supply.remaining == remaining


def test_supplies_from_values_in_index_order() -> None:
    values = {
        f"{snmp.SUPPLY_DESCR}.1.10": b"Waste Toner Box",
        f"{snmp.SUPPLY_DESCR}.1.2": b"Cyan Toner",
        f"{snmp.SUPPLY_DESCR}.1.1": b"Black Toner\x00",
        f"{snmp.SUPPLY_MAX}.1.1": 1000,
        f"{snmp.SUPPLY_LEVEL}.1.1": 85,
        f"{snmp.SUPPLY_MAX}.1.2": 100,
        f"{snmp.SUPPLY_LEVEL}.1.2": 0,
        f"{snmp.SUPPLY_CLASS}.1.10": 4,
        f"{snmp.SUPPLY_MAX}.1.10": 100,
        f"{snmp.SUPPLY_LEVEL}.1.10": 100,
        f"{snmp.ALERT_DESCR}.1.3": b"Cyan toner empty",
        f"{snmp.ALERT_DESCR}.1.1": b"Waste toner full",
    }
    status = decode_status(values)
    assert [s.index for s in status.supplies] == ["1.1", "1.2", "1.10"]
    black, cyan, waste = status.supplies
    assert (black.description, black.percent, black.low) == ("Black Toner", 9, True)
    assert cyan.empty and not cyan.low
    assert waste.receptacle and waste.full and not waste.empty
    assert status.alerts == ("Waste toner full", "Cyan toner empty")
    assert status.blocking_reasons() == [
        "Cyan Toner is empty — replace it",
        "Waste Toner Box is full — empty or replace it",
    ]
    assert status.warnings() == ["Black Toner is low (9%)"]


def test_receptacle_nearly_full_is_a_warning() -> None:
    waste = Supply("1.3", "Waste Toner Box", 100, 95, snmp.SUPPLY_RECEPTACLE)
    status = PrinterStatus(device_status="running", supplies=(waste,))
    assert status.blocking_reason() is None
    assert status.warnings() == ["Waste Toner Box is nearly full"]


def test_latin1_descriptions() -> None:
    status = decode_status({f"{snmp.SUPPLY_DESCR}.1.1": "Tóner negro".encode("latin-1")})
    assert status.supplies[0].description == "Tóner negro"


# -- targets -----------------------------------------------------------------------------


def test_target_defaults_and_address() -> None:
    target = SnmpTarget("192.0.2.10")
    assert (target.port, target.community, target.v3, target.timeout, target.retries) == (
        161,
        "public",
        None,
        1.0,
        1,
    )
    assert target.address == "192.0.2.10:161"
    assert SnmpTarget("[2001:db8::1]", 1161).address == "[2001:db8::1]:1161"
    assert SnmpTarget("printer-2.office.example").host == "printer-2.office.example"
    assert "s3cret" not in repr(SnmpTarget("192.0.2.10", community="s3cret"))
    user = SnmpV3User("ops", "auth-secret-1", "priv-secret-2")
    assert "secret" not in repr(SnmpTarget("192.0.2.10", v3=user))


def test_no_answer_message() -> None:
    error = SnmpTarget("192.0.2.10", 1161).no_answer()
    assert str(error) == (
        "no SNMP answer from 192.0.2.10:1161 within 1.0 s — is the printer on? "
        "(community/credentials right?)"
    )
    assert error.status == 503
    assert "within 0.25 s" in str(SnmpTarget("192.0.2.10", timeout=0.25).no_answer())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": ""},
        {"host": "bad host"},
        {"host": "printer!"},
        {"host": "-printer"},
        {"host": "192.0.2.10", "port": 0},
        {"host": "192.0.2.10", "port": 65536},
        {"host": "192.0.2.10", "port": "161"},
        {"host": "192.0.2.10", "port": True},
        {"host": "192.0.2.10", "community": ""},
        {"host": "192.0.2.10", "community": "x", "v3": SnmpV3User("ops")},
        {"host": "192.0.2.10", "timeout": 0},
        {"host": "192.0.2.10", "timeout": "1"},
        {"host": "192.0.2.10", "retries": -1},
        {"host": "192.0.2.10", "retries": 1.5},
    ],
)
def test_bad_targets(kwargs: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        SnmpTarget(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user": ""},
        {"user": "ops", "auth_key": "short"},
        {"user": "ops", "auth_key": "long-enough", "priv_key": "short"},
        {"user": "ops", "priv_key": "long-enough"},
        {"user": "ops", "auth_key": "long-enough", "auth_protocol": "sha3"},
        {"user": "ops", "auth_key": "long-enough", "priv_protocol": "rot13"},
    ],
)
def test_bad_v3_users(kwargs: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        SnmpV3User(**kwargs)


def test_target_from_registry_config() -> None:
    v2c = SnmpTarget.from_config(SnmpConfig.parse("192.0.2.10:1161", "office", None))
    assert (v2c.host, v2c.port, v2c.community, v2c.v3) == ("192.0.2.10", 1161, "office", None)
    v3 = SnmpTarget.from_config(
        SnmpConfig.parse("192.0.2.10", None, "ops:auth-secret-1:priv-secret-2"), timeout=0.5
    )
    assert v3.community is None and v3.timeout == 0.5
    assert v3.v3 == SnmpV3User("ops", "auth-secret-1", "priv-secret-2", "sha", "aes")


@pytest.mark.parametrize(
    ("cidr", "too_large"),
    [
        ("nonsense", False),
        ("192.0.2.0/33", False),
        ("10.0.0.0/21", True),
        ("10.0.0.0/8", True),
        ("2001:db8::/64", True),
    ],
)
def test_sweep_refuses_bad_or_large_networks(cidr: str, too_large: bool) -> None:
    with pytest.raises(BadRequest) as info:
        snmp.sweep(cidr, "public")
    assert ("at most a /22" in str(info.value)) is too_large


def test_sweep_accepts_a_22() -> None:
    assert scan._network("10.0.4.0/22").num_addresses == 1024
    assert (
        scan._network("10.0.5.7/22").network_address == scan._network("10.0.4.0/22").network_address
    )
