"""From the objects an agent answered (dotted OID -> plain value) to a `PrinterStatus`.
Pure: no pysnmp needed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from appliance.printers.snmp.mib import (
    ALERT_DESCR,
    DEVICE_STATUS,
    ERROR_BITS,
    HR_DEVICE_DESCR,
    HR_DEVICE_STATUS,
    HR_PRINTER_ERROR_STATE,
    HR_PRINTER_STATUS,
    PRINTER_STATUS,
    PRT_MARKER_LIFE_COUNT,
    SUPPLY_CLASS,
    SUPPLY_DESCR,
    SUPPLY_LEVEL,
    SUPPLY_MAX,
    SYS_DESCR,
)
from appliance.printers.snmp.models import PrinterStatus, Supply, Value


def decode_error_state(octets: bytes) -> tuple[str, ...]:
    """Names of the bits set in hrPrinterDetectedErrorState, in bit order."""
    names = []
    for bit, name in enumerate(ERROR_BITS):
        byte = bit // 8
        if byte < len(octets) and octets[byte] & (0x80 >> (bit % 8)):
            names.append(name)
    return tuple(names)


def encode_error_state(names: Iterable[str]) -> bytes:
    """The two octets of hrPrinterDetectedErrorState with these bits set."""
    octets = bytearray(2)
    for name in names:
        if name not in ERROR_BITS:
            raise ValueError(f"unknown hrPrinterDetectedErrorState bit {name!r}")
        bit = ERROR_BITS.index(name)
        octets[bit // 8] |= 0x80 >> (bit % 8)
    return bytes(octets)


def text(value: Value | None) -> str | None:
    """A DisplayString as text (UTF-8, else Latin-1), without NULs and outer spaces."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            decoded = value.decode("latin-1")
    else:
        decoded = str(value)
    return decoded.replace("\x00", "").strip()


def _int(value: Value | None) -> int | None:
    return value if isinstance(value, int) else None


def _column(values: Mapping[str, Value], column: str) -> dict[str, Value]:
    prefix = column + "."
    return {oid[len(prefix) :]: v for oid, v in values.items() if oid.startswith(prefix)}


def index_key(index: str) -> tuple[int, ...]:
    """A dotted OID or row index as numbers, to sort and compare in OID order."""
    return tuple(int(part) for part in index.split(".") if part.isdigit())


def decode_status(values: Mapping[str, Value], host: str = "", port: int = 161) -> PrinterStatus:
    """A PrinterStatus from the objects read (dotted OID -> value; missing objects absent)."""
    device = _int(values.get(HR_DEVICE_STATUS))
    printer = _int(values.get(HR_PRINTER_STATUS))
    state = values.get(HR_PRINTER_ERROR_STATE)
    descriptions = _column(values, SUPPLY_DESCR)
    maxima = _column(values, SUPPLY_MAX)
    levels = _column(values, SUPPLY_LEVEL)
    classes = _column(values, SUPPLY_CLASS)
    indexes = sorted(set(descriptions) | set(levels), key=index_key)
    supplies = tuple(
        Supply(
            index=index,
            description=text(descriptions.get(index)) or "",
            max_capacity=_int(maxima.get(index)),
            level=_int(levels.get(index)),
            supply_class=_int(classes.get(index)),
        )
        for index in indexes
    )
    alert_rows = _column(values, ALERT_DESCR)
    alerts = tuple(
        said for index in sorted(alert_rows, key=index_key) if (said := text(alert_rows[index]))
    )
    return PrinterStatus(
        host=host,
        port=port,
        device_status=None if device is None else DEVICE_STATUS.get(device, f"other({device})"),
        printer_status=None
        if printer is None
        else PRINTER_STATUS.get(printer, f"other({printer})"),
        errors=decode_error_state(state) if isinstance(state, bytes) else (),
        page_count=_int(values.get(PRT_MARKER_LIFE_COUNT)),
        supplies=supplies,
        alerts=alerts,
        description=text(values.get(SYS_DESCR)) or None,
        model=text(values.get(HR_DEVICE_DESCR)) or None,
        raw=dict(values),
    )
