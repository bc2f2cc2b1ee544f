"""Encode IPP messages (RFC 8010 section 3).

encode(message)                  the whole message, ending with end-of-attributes
attr(name, value_or_values)      an Attribute with the value tag IPP gives that name
new_request(operation, ...)      a request with the operation attributes every request
                                 starts with (charset, language, printer-uri …)
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from appliance.printers.ipp.enums import STRING_TAGS, DelimiterTag, ValueTag
from appliance.printers.ipp.exceptions import IppEncodeError
from appliance.printers.ipp.message import (
    Attribute,
    IntRange,
    IppMessage,
    LanguageString,
    OutOfBand,
    Resolution,
    Value,
)

MAX_LENGTH = 0xFFFF  # every name and value length is a 16-bit field

# Value tags of the attributes this package sends (RFC 8011, PWG 5100.x).
ATTRIBUTE_TAGS: dict[str, ValueTag] = {
    "attributes-charset": ValueTag.CHARSET,
    "attributes-natural-language": ValueTag.NATURAL_LANGUAGE,
    "printer-uri": ValueTag.URI,
    "job-uri": ValueTag.URI,
    "job-id": ValueTag.INTEGER,
    "requesting-user-name": ValueTag.NAME_WITHOUT_LANGUAGE,
    "job-name": ValueTag.NAME_WITHOUT_LANGUAGE,
    "document-name": ValueTag.NAME_WITHOUT_LANGUAGE,
    "document-format": ValueTag.MIME_MEDIA_TYPE,
    "compression": ValueTag.KEYWORD,
    "requested-attributes": ValueTag.KEYWORD,
    "which-jobs": ValueTag.KEYWORD,
    "my-jobs": ValueTag.BOOLEAN,
    "limit": ValueTag.INTEGER,
    "last-document": ValueTag.BOOLEAN,
    "ipp-attribute-fidelity": ValueTag.BOOLEAN,
    "job-k-octets": ValueTag.INTEGER,
    "copies": ValueTag.INTEGER,
    "sides": ValueTag.KEYWORD,
    "print-color-mode": ValueTag.KEYWORD,
    "media": ValueTag.KEYWORD,
    "media-col": ValueTag.BEG_COLLECTION,
    "media-size": ValueTag.BEG_COLLECTION,
    "x-dimension": ValueTag.INTEGER,
    "y-dimension": ValueTag.INTEGER,
    "media-source": ValueTag.KEYWORD,
    "media-type": ValueTag.KEYWORD,
    "orientation-requested": ValueTag.ENUM,
    "print-quality": ValueTag.ENUM,
    "finishings": ValueTag.ENUM,
    "page-ranges": ValueTag.RANGE_OF_INTEGER,
    "printer-resolution": ValueTag.RESOLUTION,
    "output-bin": ValueTag.KEYWORD,
    "multiple-document-handling": ValueTag.KEYWORD,
    "job-priority": ValueTag.INTEGER,
    "job-hold-until": ValueTag.KEYWORD,
    "message": ValueTag.TEXT_WITHOUT_LANGUAGE,
    "status-message": ValueTag.TEXT_WITHOUT_LANGUAGE,
    "detailed-status-message": ValueTag.TEXT_WITHOUT_LANGUAGE,
}


def _default_tag(name: str, value: Value) -> int:
    """The tag for a name we do not know, guessed from the Python value."""
    if isinstance(value, OutOfBand):
        return int(value)
    if isinstance(value, bool):
        return ValueTag.BOOLEAN
    if isinstance(value, int):
        return ValueTag.INTEGER
    if isinstance(value, LanguageString):
        return ValueTag.TEXT_WITH_LANGUAGE
    if isinstance(value, str):
        return ValueTag.KEYWORD
    if isinstance(value, bytes):
        return ValueTag.OCTET_STRING
    if isinstance(value, datetime):
        return ValueTag.DATE_TIME
    if isinstance(value, IntRange):
        return ValueTag.RANGE_OF_INTEGER
    if isinstance(value, Resolution):
        return ValueTag.RESOLUTION
    if isinstance(value, dict):
        return ValueTag.BEG_COLLECTION
    raise IppEncodeError(f"{name}: no IPP type for {type(value).__name__} values")


def attr(name: str, value: object, tag: int | None = None) -> Attribute:
    """An attribute with one value, or a 1setOf from a list/tuple of values.

    The tag comes from `tag`, else from ATTRIBUTE_TAGS, else from the Python type (str →
    keyword, int → integer …). A dict value is a collection of member name → value (or
    Attribute); its members get their tags the same way.
    """
    raw = list(value) if isinstance(value, list | tuple) else [value]
    if not raw:
        raise IppEncodeError(f"{name}: an attribute needs at least one value")
    values = [_as_value(name, v) for v in raw]
    if tag is not None:
        return Attribute(name, tag, values)
    known = ATTRIBUTE_TAGS.get(name)
    tags = tuple(
        _default_tag(name, v) if known is None or isinstance(v, OutOfBand) else int(known)
        for v in values
    )
    return Attribute(name, tags[0], values, tags)


def _as_value(name: str, value: object) -> Value:
    if isinstance(value, Mapping):
        return {
            str(key): member if isinstance(member, Attribute) else attr(str(key), member)
            for key, member in value.items()
        }
    if isinstance(value, int | str | bytes | datetime | IntRange | Resolution):
        return value
    raise IppEncodeError(f"{name}: no IPP type for {type(value).__name__} values")


def new_request(
    operation: int,
    printer_uri: str,
    request_id: int = 1,
    version: tuple[int, int] = (2, 0),
    user: str | None = None,
) -> IppMessage:
    """A request with the operation attributes every request starts with, in order."""
    message = IppMessage(code=operation, request_id=request_id, version=version)
    group = message.group(DelimiterTag.OPERATION_ATTRIBUTES)
    group.add(attr("attributes-charset", "utf-8"))
    group.add(attr("attributes-natural-language", "en"))
    group.add(attr("printer-uri", printer_uri))
    if user:
        group.add(attr("requesting-user-name", user))
    return message


# --- encoding


def encode(message: IppMessage) -> bytes:
    """The message's bytes, up to and including the end-of-attributes tag."""
    major, minor = message.version
    if not (0 <= major <= 0xFF and 0 <= minor <= 0xFF):
        raise IppEncodeError(f"bad IPP version {message.version}")
    if not 0 <= message.code <= 0xFFFF:
        raise IppEncodeError(f"operation/status code {message.code} does not fit in 16 bits")
    if not 1 <= message.request_id <= 0x7FFFFFFF:
        raise IppEncodeError(f"request id {message.request_id} is not 1..2^31-1")
    out = bytearray(struct.pack(">BBHI", major, minor, message.code, message.request_id))
    for group in message.groups:
        if not 0 <= group.tag <= 0x0F or group.tag == DelimiterTag.END_OF_ATTRIBUTES:
            raise IppEncodeError(f"0x{group.tag:02x} is not an attribute group tag")
        out.append(group.tag)
        for attribute in group.attributes.values():
            _encode_attribute(out, attribute.name, attribute)
    out.append(DelimiterTag.END_OF_ATTRIBUTES)
    return bytes(out)


def _encode_attribute(out: bytearray, name: str, attribute: Attribute) -> None:
    for index, (tag, value) in enumerate(zip(attribute.tags, attribute.values, strict=True)):
        _encode_value(out, name if index == 0 else "", tag, value, attribute.name)


def _encode_value(out: bytearray, name: str, tag: int, value: Value, context: str) -> None:
    if not 0x10 <= tag <= 0xFF or tag in (ValueTag.END_COLLECTION, ValueTag.MEMBER_ATTR_NAME):
        raise IppEncodeError(f"{context}: 0x{tag:02x} is not a value tag")
    if tag == ValueTag.BEG_COLLECTION:
        if not isinstance(value, dict):
            raise IppEncodeError(f"{context}: a collection value must be a dict")
        _header(out, tag, name, b"")
        for member_name, member in value.items():
            _header(out, ValueTag.MEMBER_ATTR_NAME, "", _text(member_name, context))
            _encode_attribute(out, "", member)
        _header(out, ValueTag.END_COLLECTION, "", b"")
        return
    _header(out, tag, name, encode_value(tag, value, context))


def _header(out: bytearray, tag: int, name: str, data: bytes) -> None:
    raw_name = _text(name, name) if name else b""
    if len(raw_name) > MAX_LENGTH or len(data) > MAX_LENGTH:
        raise IppEncodeError(f"{name or 'value'}: longer than {MAX_LENGTH} bytes")
    out.append(tag)
    out += struct.pack(">H", len(raw_name))
    out += raw_name
    out += struct.pack(">H", len(data))
    out += data


def _text(value: str, context: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise IppEncodeError(f"{context}: not encodable as UTF-8 ({err})") from None


def encode_value(tag: int, value: Value, context: str = "value") -> bytes:
    """The bytes of one (non-collection) value with the given tag."""
    if ValueTag.is_out_of_band(tag):
        return b""
    if tag in (ValueTag.INTEGER, ValueTag.ENUM):
        return _int32(value, context)
    if tag == ValueTag.BOOLEAN:
        if not isinstance(value, bool):
            raise IppEncodeError(f"{context}: boolean value expected, got {value!r}")
        return b"\x01" if value else b"\x00"
    if tag == ValueTag.RANGE_OF_INTEGER:
        if not isinstance(value, IntRange):
            raise IppEncodeError(f"{context}: rangeOfInteger needs an IntRange, got {value!r}")
        return _int32(value.lower, context) + _int32(value.upper, context)
    if tag == ValueTag.RESOLUTION:
        if not isinstance(value, Resolution):
            raise IppEncodeError(f"{context}: resolution needs a Resolution, got {value!r}")
        if value.units not in (3, 4):
            raise IppEncodeError(f"{context}: resolution units are 3 (dpi) or 4 (dpcm)")
        return _int32(value.x, context) + _int32(value.y, context) + bytes([value.units])
    if tag == ValueTag.DATE_TIME:
        if not isinstance(value, datetime):
            raise IppEncodeError(f"{context}: dateTime needs a datetime, got {value!r}")
        return _date_time(value)
    if tag in (ValueTag.TEXT_WITH_LANGUAGE, ValueTag.NAME_WITH_LANGUAGE):
        if not isinstance(value, str):
            raise IppEncodeError(f"{context}: text value expected, got {value!r}")
        language = value.language if isinstance(value, LanguageString) else "en"
        lang, text = _text(language, context), _text(str(value), context)
        return struct.pack(">H", len(lang)) + lang + struct.pack(">H", len(text)) + text
    if tag in STRING_TAGS:
        if not isinstance(value, str):
            raise IppEncodeError(f"{context}: {ValueTag.describe(tag)} needs a str, got {value!r}")
        return _text(value, context)
    if isinstance(value, bytes):  # octetString and tags we have no type for
        return value
    raise IppEncodeError(f"{context}: cannot encode {value!r} as {ValueTag.describe(tag)}")


def _int32(value: object, context: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise IppEncodeError(f"{context}: integer value expected, got {value!r}")
    if not -(2**31) <= value < 2**31:
        raise IppEncodeError(f"{context}: {value} does not fit in a signed 32-bit integer")
    return struct.pack(">i", value)


def _date_time(value: datetime) -> bytes:
    """RFC 2579 DateAndTime, 11 octets (UTC when the datetime is naive)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    offset = value.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = b"+" if minutes >= 0 else b"-"
    minutes = abs(minutes)
    return (
        struct.pack(
            ">HBBBBBB",
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond // 100000,
        )
        + sign
        + bytes([minutes // 60, minutes % 60])
    )
