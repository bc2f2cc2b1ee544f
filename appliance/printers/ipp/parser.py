"""Decode IPP messages (RFC 8010 section 3).

`parse(data)` decodes a whole response (or request) and returns an IppMessage; the bytes
after end-of-attributes (a request's document) are returned by `parse_with_data`. Any
malformed input — truncated, a bad tag, a wrong value length, a collection that never
ends — raises IppParseError saying what and at which offset, never IndexError.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

from appliance.printers.ipp.enums import STRING_TAGS, ValueTag
from appliance.printers.ipp.exceptions import IppParseError
from appliance.printers.ipp.message import (
    Attribute,
    AttributeGroup,
    IntRange,
    IppMessage,
    LanguageString,
    OutOfBand,
    Resolution,
    Value,
)

MAX_COLLECTION_DEPTH = 16
FIXED_LENGTHS: dict[int, int] = {
    ValueTag.INTEGER: 4,
    ValueTag.ENUM: 4,
    ValueTag.BOOLEAN: 1,
    ValueTag.DATE_TIME: 11,
    ValueTag.RESOLUTION: 9,
    ValueTag.RANGE_OF_INTEGER: 8,
}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise IppParseError(
                f"truncated IPP message: {what} needs {size} bytes at offset {self.pos}, "
                f"only {len(self.data) - self.pos} left"
            )
        chunk = bytes(self.data[self.pos : end])
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def short(self, what: str) -> int:
        value: int = struct.unpack(">H", self.take(2, what))[0]
        return value


def parse(data: bytes) -> IppMessage:
    """Decode one IPP message; bytes after end-of-attributes are ignored."""
    return parse_with_data(data)[0]


def parse_with_data(data: bytes) -> tuple[IppMessage, bytes]:
    """Decode one IPP message; also return the bytes after end-of-attributes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise IppParseError(f"IPP data must be bytes, not {type(data).__name__}")
    reader = _Reader(bytes(data))
    if len(reader.data) < 9:
        raise IppParseError(f"not an IPP message: only {len(reader.data)} bytes")
    major, minor, code, request_id = struct.unpack(">BBHI", reader.take(8, "header"))
    if major not in (1, 2):
        raise IppParseError(f"not an IPP message: version {major}.{minor}")
    message = IppMessage(code=code, request_id=request_id, version=(major, minor))
    group: AttributeGroup | None = None
    last: Attribute | None = None
    while True:
        offset = reader.pos
        tag = reader.byte("a tag (the message has no end-of-attributes tag)")
        if tag == 0x03:  # end-of-attributes
            return message, bytes(reader.data[reader.pos :])
        if tag <= 0x0F:  # a new group (a tag may repeat: one group per job in Get-Jobs)
            group = AttributeGroup(tag)
            message.groups.append(group)
            last = None
            continue
        if group is None:
            raise IppParseError(f"attribute at offset {offset} comes before any group tag")
        name, tag, value = _read_value(reader, tag)
        if tag in (ValueTag.END_COLLECTION, ValueTag.MEMBER_ATTR_NAME):
            raise IppParseError(f"{ValueTag.describe(tag)} at offset {offset} outside a collection")
        if name:
            last = Attribute(name, tag, [value])
            group.add(last)
        elif last is None:
            raise IppParseError(f"additional value at offset {offset} follows no attribute")
        else:
            last.values.append(value)
            last.tags = (*last.tags, tag)
        if tag == ValueTag.BEG_COLLECTION:
            assert isinstance(value, dict)
            _read_collection(reader, value, 1)


def _read_value(reader: _Reader, tag: int) -> tuple[str, int, Value]:
    """One value header and its value (a collection's members are read by the caller)."""
    start = reader.pos - 1
    if tag == ValueTag.EXTENSION:
        raise IppParseError(f"extension tag 0x7f at offset {start} is not supported")
    name = _decode_text(reader.take(reader.short("a name length"), "an attribute name"))
    data = reader.take(reader.short("a value length"), f"the value of {name or 'a value'}")
    return name, tag, _decode_value(tag, data, name, start)


def _read_collection(reader: _Reader, members: dict[str, Attribute], depth: int) -> None:
    """Read member attributes into `members` up to and including endCollection."""
    if depth > MAX_COLLECTION_DEPTH:
        raise IppParseError(f"collections nested deeper than {MAX_COLLECTION_DEPTH}")
    current: Attribute | None = None
    member_name: str | None = None
    while True:
        offset = reader.pos
        tag = reader.byte("a tag (a collection is not closed)")
        if tag <= 0x0F:
            raise IppParseError(f"group tag 0x{tag:02x} at offset {offset} inside a collection")
        name, tag, value = _read_value(reader, tag)
        if name:
            raise IppParseError(
                f"member value at offset {offset} has a name ({name!r}): "
                "collection members are named by memberAttrName"
            )
        if tag == ValueTag.END_COLLECTION:
            if member_name is not None:
                raise IppParseError(f"member {member_name!r} has no value (offset {offset})")
            return
        if tag == ValueTag.MEMBER_ATTR_NAME:
            if member_name is not None:
                raise IppParseError(f"member {member_name!r} has no value (offset {offset})")
            if not isinstance(value, str) or not value:
                raise IppParseError(f"empty memberAttrName at offset {offset}")
            member_name = value
            continue
        if member_name is not None:
            current = Attribute(member_name, tag, [value])
            members[member_name] = current
            member_name = None
        elif current is None:
            raise IppParseError(f"collection value at offset {offset} has no memberAttrName")
        else:
            current.values.append(value)
            current.tags = (*current.tags, tag)
        if tag == ValueTag.BEG_COLLECTION:
            assert isinstance(value, dict)
            _read_collection(reader, value, depth + 1)


def _decode_value(tag: int, data: bytes, name: str, offset: int) -> Value:
    where = f"{name or 'value'} at offset {offset}"
    expected = FIXED_LENGTHS.get(tag)
    if expected is not None and len(data) != expected:
        raise IppParseError(
            f"{where}: {ValueTag.describe(tag)} must be {expected} bytes, not {len(data)}"
        )
    if ValueTag.is_out_of_band(tag):
        try:
            return OutOfBand(tag)
        except ValueError:
            return data
    if tag in (ValueTag.INTEGER, ValueTag.ENUM):
        number: int = struct.unpack(">i", data)[0]
        return number
    if tag == ValueTag.BOOLEAN:
        return data != b"\x00"
    if tag == ValueTag.RANGE_OF_INTEGER:
        lower, upper = struct.unpack(">ii", data)
        return IntRange(lower, upper)
    if tag == ValueTag.RESOLUTION:
        x, y, units = struct.unpack(">iiB", data)
        return Resolution(x, y, units)
    if tag == ValueTag.DATE_TIME:
        return _decode_date_time(data)
    if tag == ValueTag.BEG_COLLECTION:
        return {}
    if tag == ValueTag.END_COLLECTION:
        return b""
    if tag in (ValueTag.TEXT_WITH_LANGUAGE, ValueTag.NAME_WITH_LANGUAGE):
        inner = _Reader(data)
        language = _decode_text(inner.take(inner.short(f"{where} language length"), where))
        text = _decode_text(inner.take(inner.short(f"{where} text length"), where))
        if inner.pos != len(data):
            raise IppParseError(f"{where}: {len(data) - inner.pos} stray bytes after the text")
        return LanguageString(text, language)
    if tag in STRING_TAGS:
        return _decode_text(data)
    return data  # octetString and tags without a known type: the raw bytes


def _decode_text(data: bytes) -> str:
    # Printers do send broken UTF-8 in names and messages; keep what can be read.
    return data.decode("utf-8", errors="replace")


def _decode_date_time(data: bytes) -> datetime | bytes:
    year, month, day, hour, minute, second, decis, sign, off_h, off_m = struct.unpack(
        ">HBBBBBBcBB", data
    )
    try:
        offset = timedelta(hours=off_h, minutes=off_m)
        if sign == b"-":
            offset = -offset
        elif sign != b"+":
            raise ValueError("bad UTC offset sign")
        return datetime(
            year, month, day, hour, minute, second, decis * 100000, tzinfo=timezone(offset)
        )
    except ValueError:
        return data  # an impossible date (some printers send zeros): keep the raw bytes
