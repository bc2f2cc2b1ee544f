"""`meshprint printer test`: is a printer reachable, what does it say about itself, and
what does SNMP report (status, supplies, alerts)? Optionally a short test page."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import MeshprintError
from appliance.humanize import plain
from appliance.printers.delivery import PrintOptions, Stage
from appliance.printers.delivery.cups import CupsDriver
from appliance.printers.delivery.ipp import IppDriver
from appliance.printers.drivers import driver_for, snmp_target
from appliance.printers.errors import PrinterUnreachable
from appliance.printers.registry import PrinterRecord
from appliance.printers.snmp.models import PrinterStatus
from appliance.printers.snmp.status import read_status

PROBE_TIMEOUT = 8.0  # seconds: a printer that is on answers in well under one


@dataclass
class Report:
    printer: str
    uri: str
    reachable: bool = False
    description: str = ""
    formats: list[str] = field(default_factory=list)
    status: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    test_page: str | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def check(record: PrinterRecord, test_page: bool = False) -> Report:
    report = Report(record.name, record.uri)
    try:
        _probe(record, report)
        report.reachable = True
    except MeshprintError as err:
        report.problems.append(str(err))
    target = snmp_target(record)
    if target is not None:
        try:
            status = read_status(target)
            report.status = snmp_summary(status)
            if status.blocking_reason():
                report.problems.append(status.blocking_reason() or "")
        except MeshprintError as err:
            report.problems.append(f"SNMP: {err}")
    if test_page and report.ok:
        report.test_page = _print_test_page(record)
    return report


@dataclass(frozen=True)
class AddCheck:
    """What was found at a printer's address when it was added."""

    checked: bool  # False: not checked (a CUPS queue, checked where it is)
    reachable: bool
    said: str  # one line for the admin: what answered, or what did not

    @property
    def refused(self) -> bool:
        return self.checked and not self.reachable


def check_before_adding(record: PrinterRecord) -> AddCheck:
    """Is anything at the new printer's address (ipp, ipps, socket)? Said in one line:
    "found HP LaserJet (ready)" or "nothing answers at …"."""
    if record.endpoint.scheme == "cups":
        return AddCheck(False, True, "a CUPS queue: checked by its node when it prints")
    report = Report(record.name, record.uri)
    try:
        _probe(record, report)
    except MeshprintError as err:
        return AddCheck(True, False, plain(str(err)))
    what = report.description or "a printer"
    if report.problems:
        return AddCheck(True, True, f"found {what}, but: {plain('; '.join(report.problems))}")
    return AddCheck(True, True, f"found {what}")


def _probe(record: PrinterRecord, report: Report) -> None:
    endpoint = record.endpoint
    if endpoint.scheme in ("ipp", "ipps"):
        info = IppDriver.for_record(record, timeout=PROBE_TIMEOUT).info()
        report.description = info.make_and_model or info.name
        report.formats = list(info.document_formats)
        if not info.accepting_jobs:
            report.problems.append("the printer is not accepting jobs")
    elif endpoint.scheme == "cups":
        attrs = CupsDriver(endpoint.path).info()
        report.description = str(attrs.get("printer-make-and-model") or endpoint.path)
    else:
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=3):
                report.description = f"accepts RAW connections on port {endpoint.port}"
        except OSError as err:
            raise PrinterUnreachable(
                f"nothing answers at {endpoint.host}:{endpoint.port} ({err.strerror or err}): "
                "is the printer on and the address right?"
            ) from None


def snmp_summary(status: PrinterStatus) -> dict[str, Any]:
    return {
        "device": status.device_status,
        "printer": status.printer_status,
        "errors": list(status.errors),
        "pages": status.page_count,
        "supplies": [{"name": s.description, "percent": s.percent} for s in status.supplies],
        "alerts": list(status.alerts),
    }


def _print_test_page(record: PrinterRecord) -> str:
    text = (
        f"meshprint test page\n\nPrinter: {record.name}\nAddress: {record.uri}\n"
        f"Location: {record.location or '-'}\nTime: {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    ).encode()

    def page() -> Iterator[bytes]:
        yield text

    driver = driver_for(record)
    options = PrintOptions(
        title="meshprint test page", user="meshprint", document_format="text/plain"
    )
    submitted = driver.submit(page(), len(text), options)
    deadline = time.time() + 60
    while time.time() < deadline:
        progress = driver.progress(submitted)
        if progress.stage in (Stage.PRINTED, Stage.FAILED):
            return plain(
                progress.stage.value + (f" ({progress.reason})" if progress.reason else "")
            )
        time.sleep(0.5)
    return "sent; the printer has not reported it printed yet"
