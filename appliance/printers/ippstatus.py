"""A printer's state from IPP itself, for printers with no SNMP (and IPP printers in
general): `printer-state`, `printer-state-reasons`, `printer-is-accepting-jobs` and the
marker levels (`marker-names`, `marker-levels`, `marker-high-levels`).

The monitor keeps what this finds beside the SNMP polls (same shape: ready, reason and
details), so the dashboard and `meshprint printer list` know an IPP-only printer's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from appliance.humanize import plain
from appliance.printers.delivery.ipp import IppDriver, printer_error
from appliance.printers.ipp.enums import PrinterState
from appliance.printers.ipp.exceptions import IppError
from appliance.printers.ipp.models import PrinterInfo
from appliance.printers.registry import PrinterRecord

STATUS_ATTRIBUTES = (
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
    "printer-make-and-model",
    "printer-name",
    "marker-names",
    "marker-levels",
    "marker-high-levels",
)
STATE_WORDS: dict[int, str] = {
    PrinterState.IDLE: "idle",
    PrinterState.PROCESSING: "printing",
    PrinterState.STOPPED: "stopped",
}


@dataclass(frozen=True)
class IppStatus:
    """What one Get-Printer-Attributes said, as the monitor records it."""

    ready: bool
    reason: str  # why not ready, in plain words ("" when ready)
    details: dict[str, Any] = field(default_factory=dict)


def uses_ipp(record: PrinterRecord) -> bool:
    return record.endpoint.scheme in ("ipp", "ipps")


def read_ipp_status(record: PrinterRecord, timeout: float = 5.0) -> IppStatus:
    """Ask an ipp:// or ipps:// printer how it is (PrinterUnreachable and friends when
    it does not answer)."""
    driver = IppDriver.for_record(record, timeout=timeout, busy_wait=0)
    try:
        info = driver.client.get_printer_attributes(STATUS_ATTRIBUTES)
    except IppError as err:  # in the words (and types) of the printer errors
        raise printer_error(err, record.uri) from err
    return status_of(info)


def status_of(info: PrinterInfo) -> IppStatus:
    """Ready unless stopped, not accepting jobs or reporting an error reason; warnings
    (toner low, …) are alerts of a ready printer."""
    errors = [r for r in info.state_reasons if not r.endswith(("-warning", "-report"))]
    warnings = [r for r in info.state_reasons if r.endswith("-warning")]
    if info.state == PrinterState.STOPPED:
        reason = plain(", ".join(errors) or info.state_message or "the printer is stopped")
    elif not info.accepting_jobs:
        reason = "the printer is not accepting jobs"
    elif any(r.endswith("-error") for r in errors):
        reason = plain(", ".join(r for r in errors if r.endswith("-error")))
    else:
        reason = ""
    state_word = STATE_WORDS.get(int(info.state), str(int(info.state)))
    return IppStatus(
        not reason,
        reason,
        {
            "source": "ipp",
            "printer": state_word,
            "reasons": info.state_reasons,
            "supplies": _supplies(info),
            "alerts": [plain(w) for w in warnings],
            "pages": None,
        },
    )


def _supplies(info: PrinterInfo) -> list[dict[str, Any]]:
    """Marker levels as percentages (IPP says -1 unavailable, -2 unknown, -3 some left)."""
    names = _values(info, "marker-names")
    levels = _values(info, "marker-levels")
    highs = _values(info, "marker-high-levels")
    out = []
    for index, name in enumerate(names):
        level = levels[index] if index < len(levels) else -2
        high = highs[index] if index < len(highs) else 100
        percent = None
        if isinstance(level, int) and level >= 0 and isinstance(high, int) and high > 0:
            percent = max(0, min(100, round(100 * level / high)))
        out.append({"name": str(name), "percent": percent})
    return out


def _values(info: PrinterInfo, name: str) -> list[Any]:
    attribute = info.attributes.get(name)
    return list(attribute.values) if attribute else []
