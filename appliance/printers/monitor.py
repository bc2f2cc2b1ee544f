"""Printer status, polled by super nodes over SNMP where the printer has it, else over
IPP itself (ipp:// and ipps:// printers, `appliance.printers.ippstatus`), and kept in the
node's database (`appliance.store.printer_status`), so the status API and `meshprint
printer list` on the same machine show state, toner, pages and alerts."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from appliance.errors import MeshprintError
from appliance.humanize import plain
from appliance.printers import registry
from appliance.printers.drivers import snmp_target
from appliance.site.directory import Directory
from appliance.store import printer_status
from appliance.store.db import Database

log = logging.getLogger(__name__)
POLL_INTERVAL = 15.0


class MonitorContext(Protocol):
    """What the status poll uses of the running node."""

    @property
    def role(self) -> str: ...

    @property
    def db(self) -> Database: ...

    def directory(self) -> Directory: ...


def poll_once(node: MonitorContext) -> None:
    from appliance.printers.ippstatus import read_ipp_status, uses_ipp

    for printer in registry.printers(node.directory().doc).values():
        try:
            _poll(node, printer, read_ipp_status if uses_ipp(printer) else None)
        except Exception:  # one printer's surprise never stops the others' polls
            log.exception("printer %s: status poll failed", printer.name)


def _poll(node: MonitorContext, printer: registry.PrinterRecord, over_ipp: Any) -> None:
    from appliance.printers.check import snmp_summary
    from appliance.printers.snmp.status import read_status

    target = snmp_target(printer)
    if target is None:
        if over_ipp is not None:
            try:
                found = over_ipp(printer)
                printer_status.record(
                    node.db, printer.name, found.ready, found.reason, found.details
                )
            except MeshprintError as err:
                printer_status.record(node.db, printer.name, False, plain(str(err)), {})
        return
    try:
        status = read_status(target)
        reason = status.blocking_reason() or ""
        printer_status.record(node.db, printer.name, not reason, reason, snmp_summary(status))
    except MeshprintError as err:
        printer_status.record(node.db, printer.name, False, str(err), {})


def start(node: MonitorContext, stop: threading.Event) -> None:
    """Poll in a thread of its own: a printer that does not answer never slows the node."""
    if node.role != "super":
        return

    def run() -> None:
        polled_at, polled_for = 0.0, None
        while not stop.is_set():
            printers = node.directory().doc.get("printers", {})
            # Poll every interval, and at once when a printer is added or changed.
            if printers != polled_for or time.time() - polled_at >= POLL_INTERVAL:
                try:
                    poll_once(node)
                except Exception:
                    log.exception("printer status poll failed")
                polled_at, polled_for = time.time(), printers
            stop.wait(1.0)

    threading.Thread(target=run, name="printer-monitor", daemon=True).start()
