"""What the client reports: a printer's description and state, a job's status."""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.printers.ipp.enums import JobState, PrinterState
from appliance.printers.ipp.message import Attribute, IntRange

Attributes = dict[str, Attribute]


def _strings(attrs: Attributes, name: str) -> list[str]:
    attribute = attrs.get(name)
    return [str(v) for v in attribute.values if isinstance(v, str)] if attribute else []


def _string(attrs: Attributes, name: str, default: str = "") -> str:
    values = _strings(attrs, name)
    return values[0] if values else default


def _int(attrs: Attributes, name: str) -> int | None:
    attribute = attrs.get(name)
    if attribute is None:
        return None
    value = attribute.values[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ints(attrs: Attributes, name: str) -> list[int]:
    attribute = attrs.get(name)
    values = attribute.values if attribute else []
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _bool(attrs: Attributes, name: str, default: bool) -> bool:
    attribute = attrs.get(name)
    value = attribute.values[0] if attribute else None
    return value if isinstance(value, bool) else default


def _reasons(attrs: Attributes, name: str) -> list[str]:
    return [r for r in _strings(attrs, name) if r != "none"]


@dataclass(frozen=True)
class PrinterInfo:
    make_and_model: str
    name: str
    state: PrinterState | int
    state_reasons: list[str]  # without "none"
    state_message: str
    accepting_jobs: bool
    document_formats: list[str]
    sides_supported: list[str]
    copies_supported: IntRange | None
    color_supported: bool
    color_modes: list[str]
    uris: list[str]  # printer-uri-supported
    ipp_versions: list[str]
    operations: list[int]
    attributes: Attributes = field(repr=False, default_factory=dict)

    @classmethod
    def from_attributes(cls, attrs: Attributes) -> PrinterInfo:
        state = _int(attrs, "printer-state") or PrinterState.IDLE
        copies = attrs.get("copies-supported")
        copies_range = copies.values[0] if copies else None
        if isinstance(copies_range, int) and not isinstance(copies_range, bool):
            copies_range = IntRange(1, copies_range)  # some printers send a plain integer
        return cls(
            make_and_model=_string(attrs, "printer-make-and-model"),
            name=_string(attrs, "printer-name"),
            state=_printer_state(state),
            state_reasons=_reasons(attrs, "printer-state-reasons"),
            state_message=_string(attrs, "printer-state-message"),
            accepting_jobs=_bool(attrs, "printer-is-accepting-jobs", True),
            document_formats=_strings(attrs, "document-format-supported"),
            sides_supported=_strings(attrs, "sides-supported") or ["one-sided"],
            copies_supported=copies_range if isinstance(copies_range, IntRange) else None,
            color_supported=_bool(attrs, "color-supported", False),
            color_modes=_strings(attrs, "print-color-mode-supported"),
            uris=_strings(attrs, "printer-uri-supported"),
            ipp_versions=_strings(attrs, "ipp-versions-supported"),
            operations=_ints(attrs, "operations-supported"),
            attributes=attrs,
        )

    @property
    def stopped(self) -> bool:
        return self.state == PrinterState.STOPPED


@dataclass(frozen=True)
class JobStatus:
    job_id: int
    state: JobState | int
    state_reasons: list[str]  # without "none"
    state_message: str
    name: str
    user: str  # job-originating-user-name
    copies: int | None
    sides: str | None
    print_color_mode: str | None
    document_format: str | None
    attributes: Attributes = field(repr=False, default_factory=dict)

    @classmethod
    def from_attributes(cls, attrs: Attributes, job_id: int | None = None) -> JobStatus:
        state = _int(attrs, "job-state") or JobState.PENDING
        return cls(
            job_id=_int(attrs, "job-id") or job_id or 0,
            state=_job_state(state),
            state_reasons=_reasons(attrs, "job-state-reasons"),
            state_message=_string(attrs, "job-state-message"),
            name=_string(attrs, "job-name"),
            user=_string(attrs, "job-originating-user-name"),
            copies=_int(attrs, "copies"),
            sides=_string(attrs, "sides") or None,
            print_color_mode=_string(attrs, "print-color-mode") or None,
            document_format=_string(attrs, "document-format")
            or _string(attrs, "document-format-supplied")
            or None,
            attributes=attrs,
        )

    @property
    def finished(self) -> bool:
        return self.state >= JobState.CANCELED


def _printer_state(value: int) -> PrinterState | int:
    try:
        return PrinterState(value)
    except ValueError:
        return value


def _job_state(value: int) -> JobState | int:
    try:
        return JobState(value)
    except ValueError:
        return value
