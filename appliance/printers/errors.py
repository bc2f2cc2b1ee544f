"""Printer errors, each with a message an office user can act on. A printer error never
loses a job: the caller keeps it held."""

from __future__ import annotations

from appliance.errors import MeshprintError


class PrinterError(MeshprintError):
    """The printer refused or failed the job."""

    status = 502


class PrinterUnreachable(PrinterError):
    """No answer at the printer's address (off, unplugged, wrong address or port)."""

    status = 503


class PrinterNotReady(PrinterError):
    """The printer answers but cannot print now: down, jammed, out of paper, door open …"""

    status = 503


class PrinterRejected(PrinterError):
    """The printer refused the document or an option (format, copies, sides …)."""

    status = 422


class NotAPrinter(PrinterError):
    """The address answers, but not as a printer of the kind its URI says."""

    status = 502
