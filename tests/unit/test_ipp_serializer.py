"""IPP encoding: exact bytes of a request, every value type, and encode → parse round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.printers.ipp.enums import DelimiterTag, Operation, ValueTag
from appliance.printers.ipp.exceptions import IppEncodeError
from appliance.printers.ipp.message import (
    Attribute,
    IntRange,
    IppMessage,
    LanguageString,
    OutOfBand,
    Resolution,
)
from appliance.printers.ipp.parser import parse, parse_with_data
from appliance.printers.ipp.serializer import attr, encode, encode_value, new_request

URI = "ipp://127.0.0.1:631/ipp/print"


def field(text: str) -> bytes:
    """A length-prefixed name or value."""
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def test_get_printer_attributes_request_bytes() -> None:
    request = new_request(Operation.GET_PRINTER_ATTRIBUTES, URI, request_id=7, user="alice")
    request.group(DelimiterTag.OPERATION_ATTRIBUTES).add(
        attr("requested-attributes", ["printer-state", "sides-supported"])
    )
    expected = (
        b"\x02\x00"  # version 2.0
        b"\x00\x0b"  # Get-Printer-Attributes
        b"\x00\x00\x00\x07"  # request-id
        b"\x01"  # operation-attributes-tag
        + b"\x47" + field("attributes-charset") + field("utf-8")
        + b"\x48" + field("attributes-natural-language") + field("en")
        + b"\x45" + field("printer-uri") + field(URI)
        + b"\x42" + field("requesting-user-name") + field("alice")
        + b"\x44" + field("requested-attributes") + field("printer-state")
        + b"\x44" + field("") + field("sides-supported")  # 1setOf: additional value, no name
        + b"\x03"  # end-of-attributes-tag
    )  # fmt: skip
    assert encode(request) == expected


def test_print_job_request_with_job_group_and_document_data() -> None:
    request = new_request(Operation.PRINT_JOB, URI, request_id=2, version=(1, 1))
    operation = request.group(DelimiterTag.OPERATION_ATTRIBUTES)
    operation.add(attr("job-name", "report"))
    operation.add(attr("document-format", "application/pdf"))
    job = request.group(DelimiterTag.JOB_ATTRIBUTES)
    job.add(attr("copies", 2))
    job.add(attr("sides", "two-sided-long-edge"))
    data = encode(request)
    assert data[:8] == b"\x01\x01\x00\x02\x00\x00\x00\x02"
    assert b"\x49" + field("document-format") + field("application/pdf") in data
    assert b"\x02\x21" + field("copies") + b"\x00\x04\x00\x00\x00\x02" in data
    assert data.endswith(b"\x44" + field("sides") + field("two-sided-long-edge") + b"\x03")
    message, document = parse_with_data(data + b"%PDF-1.7 ...")
    assert document == b"%PDF-1.7 ..."
    assert message.operation == Operation.PRINT_JOB
    assert message.version == (1, 1)
    assert message.job_attributes()["copies"].values == [2]


@pytest.mark.parametrize(
    ("tag", "value", "encoded"),
    [
        (ValueTag.INTEGER, 1, b"\x00\x00\x00\x01"),
        (ValueTag.INTEGER, -2, b"\xff\xff\xff\xfe"),
        (ValueTag.ENUM, 5, b"\x00\x00\x00\x05"),
        (ValueTag.BOOLEAN, True, b"\x01"),
        (ValueTag.BOOLEAN, False, b"\x00"),
        (ValueTag.KEYWORD, "one-sided", b"one-sided"),
        (ValueTag.URI, URI, URI.encode()),
        (ValueTag.CHARSET, "utf-8", b"utf-8"),
        (ValueTag.NATURAL_LANGUAGE, "en", b"en"),
        (ValueTag.MIME_MEDIA_TYPE, "application/pdf", b"application/pdf"),
        (ValueTag.NAME_WITHOUT_LANGUAGE, "Zoë", "Zoë".encode()),
        (ValueTag.TEXT_WITHOUT_LANGUAGE, "Idle.", b"Idle."),
        (ValueTag.RANGE_OF_INTEGER, IntRange(1, 999), b"\x00\x00\x00\x01\x00\x00\x03\xe7"),
        (ValueTag.RESOLUTION, Resolution(600, 300, 3), b"\x00\x00\x02\x58\x00\x00\x01\x2c\x03"),
        (ValueTag.OCTET_STRING, b"\x00\xff", b"\x00\xff"),
        (ValueTag.UNKNOWN, OutOfBand.UNKNOWN, b""),
        (
            ValueTag.TEXT_WITH_LANGUAGE,
            LanguageString("Bonjour", "fr"),
            b"\x00\x02fr\x00\x07Bonjour",
        ),
        (
            ValueTag.DATE_TIME,
            datetime(2026, 3, 4, 5, 6, 7, 800000, tzinfo=timezone(timedelta(hours=-5))),
            bytes([0x07, 0xEA, 3, 4, 5, 6, 7, 8]) + b"-" + bytes([5, 0]),
        ),
    ],
)
def test_value_encoding(tag: ValueTag, value: object, encoded: bytes) -> None:
    assert encode_value(tag, value, "test") == encoded  # type: ignore[arg-type]


def test_attr_picks_the_tag_ipp_gives_the_name() -> None:
    assert attr("printer-uri", URI).tag == ValueTag.URI
    assert attr("document-format", "text/plain").tag == ValueTag.MIME_MEDIA_TYPE
    assert attr("requesting-user-name", "bob").tag == ValueTag.NAME_WITHOUT_LANGUAGE
    assert attr("orientation-requested", 3).tag == ValueTag.ENUM
    assert attr("some-flag", True).tag == ValueTag.BOOLEAN
    assert attr("some-number", 3).tag == ValueTag.INTEGER
    assert attr("some-word", "x").tag == ValueTag.KEYWORD
    assert attr("job-name", "x", tag=ValueTag.NAME_WITH_LANGUAGE).tag == ValueTag.NAME_WITH_LANGUAGE
    assert attr("media", OutOfBand.NO_VALUE).tags == (ValueTag.NO_VALUE,)


def test_collection_encoding_bytes() -> None:
    request = IppMessage(code=Operation.PRINT_JOB, request_id=1)
    request.group(DelimiterTag.JOB_ATTRIBUTES).add(
        attr("media-col", {"media-size": {"x-dimension": 21000, "y-dimension": 29700}})
    )
    int_value = b"\x00\x04"
    expected = (
        b"\x02\x00\x00\x02\x00\x00\x00\x01\x02"
        + b"\x34" + field("media-col") + field("")  # begCollection
        + b"\x4a" + field("") + field("media-size")  # memberAttrName
        + b"\x34" + field("") + field("")  # nested begCollection
        + b"\x4a" + field("") + field("x-dimension")
        + b"\x21" + field("") + int_value + (21000).to_bytes(4, "big")
        + b"\x4a" + field("") + field("y-dimension")
        + b"\x21" + field("") + int_value + (29700).to_bytes(4, "big")
        + b"\x37" + field("") + field("")  # endCollection (inner)
        + b"\x37" + field("") + field("")  # endCollection (outer)
        + b"\x03"
    )  # fmt: skip
    assert encode(request) == expected


def test_round_trip_of_every_value_type() -> None:
    message = IppMessage(code=0, request_id=42)
    group = message.group(DelimiterTag.PRINTER_ATTRIBUTES)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    group.add(attr("copies-supported", IntRange(1, 999)))
    group.add(attr("printer-resolution-supported", [Resolution(300, 300), Resolution(600, 600)]))
    group.add(attr("color-supported", False))
    group.add(attr("printer-state", 3, tag=ValueTag.ENUM))
    group.add(attr("operations-supported", [2, 4, 11], tag=ValueTag.ENUM))
    group.add(attr("printer-current-time", when))
    group.add(attr("printer-geo-location", OutOfBand.UNKNOWN))
    group.add(attr("printer-info", LanguageString("Imprimante", "fr")))
    group.add(
        attr("printer-name", LanguageString("Salle 2", "fr"), tag=ValueTag.NAME_WITH_LANGUAGE)
    )
    group.add(attr("printer-input-tray", [b"type=other;", b"\x00\x01"]))
    group.add(Attribute("media-ready", ValueTag.KEYWORD, ["iso_a4", "Custom paper"],
                        (ValueTag.KEYWORD, ValueTag.NAME_WITHOUT_LANGUAGE)))  # fmt: skip
    group.add(
        attr(
            "media-col-database",
            [
                {"media-key": "a4", "media-size": {"x-dimension": 21000, "y-dimension": 29700}},
                {"media-key": "letter", "media-source": ["main", "manual"]},
            ],
        )
    )
    unsupported = message.group(DelimiterTag.UNSUPPORTED_ATTRIBUTES)
    unsupported.add(attr("sides", "two-sided-long-edge"))
    decoded = parse(encode(message))
    assert decoded == message
    assert encode(decoded) == encode(message)
    attrs = decoded.printer_attributes()
    assert attrs["printer-info"].value == "Imprimante"
    assert isinstance(attrs["printer-info"].value, LanguageString)
    assert attrs["printer-info"].value.language == "fr"
    db = attrs["media-col-database"].values
    assert isinstance(db[0], dict) and isinstance(db[1], dict)
    size = db[0]["media-size"].value
    assert isinstance(size, dict) and size["y-dimension"].value == 29700
    assert db[1]["media-source"].values == ["main", "manual"]
    assert decoded.unsupported_names == ["sides"]


def test_encode_refuses_what_ipp_cannot_carry() -> None:
    with pytest.raises(IppEncodeError, match="32-bit"):
        encode_value(ValueTag.INTEGER, 2**31)
    with pytest.raises(IppEncodeError, match="integer value expected"):
        encode_value(ValueTag.INTEGER, True)
    with pytest.raises(IppEncodeError, match="boolean"):
        encode_value(ValueTag.BOOLEAN, 1)
    with pytest.raises(IppEncodeError, match="needs a str"):
        encode_value(ValueTag.KEYWORD, 5)
    with pytest.raises(IppEncodeError, match="units"):
        encode_value(ValueTag.RESOLUTION, Resolution(1, 1, 9))
    long_name = IppMessage(code=Operation.PRINT_JOB)
    long_name.group(DelimiterTag.OPERATION_ATTRIBUTES).add(attr("job-name", "x" * 70000))
    with pytest.raises(IppEncodeError, match="longer than 65535"):
        encode(long_name)
    with pytest.raises(IppEncodeError, match="request id"):
        encode(IppMessage(code=Operation.PRINT_JOB, request_id=0))
    with pytest.raises(IppEncodeError, match="at least one value"):
        attr("copies", [])
    with pytest.raises(IppEncodeError, match="no IPP type"):
        attr("x-ratio", 1.5)
    wrong_type = IppMessage(code=Operation.PRINT_JOB)
    wrong_type.group(DelimiterTag.JOB_ATTRIBUTES).add(attr("copies", "two"))
    with pytest.raises(IppEncodeError, match="copies: integer value expected"):
        encode(wrong_type)


# "x-" names: not in ATTRIBUTE_TAGS, so the tag comes from the Python type.
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=30).map("x-".__add__)
simple_values = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.booleans(),
    st.text(st.characters(codec="utf-8"), max_size=60),
    st.binary(max_size=60),
    st.builds(IntRange, st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1)),
    st.builds(
        Resolution, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.sampled_from([3, 4])
    ),
    st.sampled_from(list(OutOfBand)),
)
values = st.recursive(
    simple_values, lambda inner: st.dictionaries(names, inner, min_size=1, max_size=4), max_leaves=8
)


@given(st.lists(st.tuples(names, st.lists(values, min_size=1, max_size=4)), max_size=8))
def test_round_trip_property(attributes: list[tuple[str, list[object]]]) -> None:
    message = IppMessage(code=0x0400, request_id=9)
    group = message.group(DelimiterTag.PRINTER_ATTRIBUTES)
    for name, vals in attributes:
        group.add(attr(name, vals))
    assert parse(encode(message)) == message
