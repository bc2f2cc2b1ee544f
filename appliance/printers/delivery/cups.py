"""CUPS delivery through pycups.

The document is streamed into a CUPS job (Create-Job, then Send-Document with chunked
HTTP: `createJob`, `startDocument`, `writeRequestData`, `finishDocument`), so the appliance
never writes it to disk; CUPS spools it in its own spool directory, as for any job.

Every request goes to CUPS as this process's own Unix account (`service_account()`: the
node's `meshprint` account on the appliance, the person's own on a PC), never as the
meshprint user the job belongs to. Site users have no Unix account, and since Debian's
cups 2.4.2-3+deb12u10 (the fix for CVE-2026-27447, upstream OpenPrinting/cups#1555)
cupsd dereferences a missing account in its owner checks and crashes: on Send-Document
from such a user, and on Get-Job-Attributes or Cancel-Job of a job such a user owns. The
meshprint user stays visible in the job's name (`alice: report.pdf`), which CUPS and
printers show. The same cupsd also crashes when it starts a job whose Send-Document or
Print-Job carried a `document-name` with a space in it (any user, any queue; seen here,
not found upstream yet), so the document goes without one: the job's name carries the
title.

pycups keeps the server, the user name and the password callback in libcups' per-thread
globals (`cups.setServer`, `cups.setUser`), read when a connection is opened and when a
request is built. Every use here sets them under `CUPS_LOCK` immediately before opening a
fresh connection, so concurrent drivers for different servers or users cannot mix them up.
"""

from __future__ import annotations

import os
import pwd
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import cups

from appliance.printers.delivery import PrintOptions, Progress, Stage, Submitted
from appliance.printers.errors import (
    PrinterError,
    PrinterNotReady,
    PrinterRejected,
    PrinterUnreachable,
)
from appliance.printoptions import SIDES

# Held while pycups' process/thread state (server, user, password callback) is set and
# used to open a connection and send the requests that read it.
CUPS_LOCK = threading.RLock()

_WRITE_SLICE = 256 * 1024  # writeRequestData takes a C int length; keep slices small

# IPP job-state → Stage (RFC 8011 §5.3.7)
_STAGES = {
    3: Stage.QUEUED,  # pending
    4: Stage.QUEUED,  # pending-held
    5: Stage.PRINTING,  # processing
    6: Stage.PRINTING,  # processing-stopped: not lost, waiting for the printer
    7: Stage.FAILED,  # canceled
    8: Stage.FAILED,  # aborted
    9: Stage.PRINTED,  # completed
}
_JOB_ATTRIBUTES = [
    "job-state",
    "job-state-reasons",
    "job-printer-state-message",
    "job-impressions-completed",
]
_QUEUE_ATTRIBUTES = [
    "printer-name",
    "printer-make-and-model",
    "printer-is-accepting-jobs",
    "printer-state",
    "printer-state-message",
    "sides-supported",
    "copies-supported",
]
EVERYWHERE_SUFFIX = "IPP Everywhere"

T = TypeVar("T")


def _no_password(*_args: object) -> None:
    """Never prompt for a password (libcups' default reads the terminal): fail instead."""
    return None


def service_account() -> str:
    """The account this process runs as, which exists on this machine: every job is
    submitted, asked about and cancelled as it (over CUPS' Unix socket it authenticates as
    that account; root, or a member of SystemGroup, is an administrator)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "root"


def job_name(user: str, title: str) -> str:
    """The CUPS job name: the meshprint user first (CUPS' own job owner is the service
    account), within IPP's 255 octets for a name."""
    name = f"{user}: {title}" if user else title
    return name.encode()[:255].decode(errors="ignore")


def _where(server: str | None) -> str:
    if server:
        return server
    return os.environ.get("CUPS_SERVER") or "the local CUPS socket"


def _connect(server: str | None, user: str | None = None) -> Any:
    """Open a connection to CUPS as `user` (the service account by default). The caller
    holds CUPS_LOCK."""
    cups.setServer(server or "")  # "" = the default: $CUPS_SERVER, client.conf, the socket
    cups.setUser(user or service_account())
    cups.setPasswordCB(_no_password)
    try:
        return cups.Connection()
    except RuntimeError as err:
        raise PrinterUnreachable(f"CUPS is not running ({_where(server)}: {err})") from err


def _alive(server: str | None) -> bool:
    """Whether CUPS answers a new connection."""
    with CUPS_LOCK:
        try:
            conn = _connect(server)
            conn.getPrinters()
        except (PrinterError, cups.IPPError, cups.HTTPError):
            return False
        return True


def _status(err: Exception) -> tuple[int, str]:
    """(IPP status, message) from a pycups IPPError or HTTPError."""
    args = err.args
    status = args[0] if args and isinstance(args[0], int) else -1
    message = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
    return status, message


def _translate(err: Exception, server: str | None, what: str) -> PrinterError:
    """A PrinterError with a message for someone who does not know IPP status codes."""
    status, message = _status(err)
    detail = f"{message} (IPP status 0x{status:04x})" if status >= 0 else str(err)
    if (
        isinstance(err, cups.HTTPError)
        or status
        in (
            cups.IPP_STATUS_ERROR_SERVICE_UNAVAILABLE,
            cups.IPP_STATUS_ERROR_INTERNAL,
        )
    ) and not _alive(server):
        # libcups reports a lost connection as an internal error with the errno text
        return PrinterUnreachable(f"CUPS is not running ({_where(server)}: {detail}): {what}")
    if status == cups.IPP_STATUS_ERROR_NOT_ACCEPTING_JOBS:
        return PrinterNotReady(f"{what}: the CUPS queue is not accepting jobs ({detail})")
    if status in (
        cups.IPP_STATUS_ERROR_BUSY,
        cups.IPP_STATUS_ERROR_TEMPORARY,
        cups.IPP_STATUS_ERROR_PRINTER_IS_DEACTIVATED,
    ):
        return PrinterNotReady(f"{what}: CUPS cannot take it now ({detail})")
    if status in (
        cups.IPP_STATUS_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
        cups.IPP_STATUS_ERROR_ATTRIBUTES_OR_VALUES,
        cups.IPP_STATUS_ERROR_CONFLICTING,
        cups.IPP_STATUS_ERROR_DOCUMENT_FORMAT_ERROR,
        cups.IPP_STATUS_ERROR_REQUEST_ENTITY,
    ):
        return PrinterRejected(f"{what}: CUPS refused the document or its options ({detail})")
    if status in (
        cups.IPP_STATUS_ERROR_FORBIDDEN,
        cups.IPP_STATUS_ERROR_NOT_AUTHENTICATED,
        cups.IPP_STATUS_ERROR_NOT_AUTHORIZED,
    ):
        return PrinterError(f"{what}: CUPS does not allow it to this appliance ({detail})")
    return PrinterError(f"{what}: CUPS answered {detail}")


def _call(server: str | None, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    try:
        return fn(*args, **kw)
    except (cups.IPPError, cups.HTTPError) as err:
        raise _translate(err, server, what) from err


def _ok(err: Exception) -> bool:
    """pycups raises on any status but successful-ok; successful-ok-* is success too."""
    status, _ = _status(err)
    return isinstance(err, cups.IPPError) and 0 <= status < 0x0100


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value if v and v != "none")
    return "" if value == "none" else str(value)


def _reasons(state: int, value: object) -> str:
    """job-state-reasons as text, without the uninformative ones; a canceled or aborted
    job always says so (CUPS may still show "processing-to-stop-point" at first)."""
    values: list[object] = []
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, list | tuple):
        values = list(value)
    keywords = [str(v) for v in values if v and v not in ("none", "processing-to-stop-point")]
    if state == 7 and not any("canceled" in k for k in keywords):
        keywords.insert(0, "job-canceled")
    if state == 8 and not any("abort" in k for k in keywords):
        keywords.insert(0, "aborted-by-system")
    return ", ".join(keywords)


def _job_id(submitted: Submitted) -> int:
    try:
        return int(submitted.printer_job)
    except ValueError as err:
        raise PrinterError(f"not a CUPS job id: {submitted.printer_job!r}") from err


# Final states of jobs purged from CUPS, so that progress() can still answer for them.
_FINISHED: OrderedDict[tuple[str, int], Progress] = OrderedDict()
_FINISHED_MAX = 4096


class CupsDriver:
    """Print through the CUPS queue `queue` on `server` (a Unix socket path or host[:port];
    None for the system default).

    With `purge` (the default), once `progress` sees a job finished (completed, canceled
    or aborted) it purges the job from CUPS: CUPS otherwise keeps the spooled document,
    i.e. the plaintext, for a day (`PreserveJobFiles`). The final state is remembered in
    this process, so asking again gives the same answer.
    """

    def __init__(self, queue: str, server: str | None = None, purge: bool = True) -> None:
        self.queue = queue
        self.server = server
        self.purge = purge

    def submit(
        self, document: Iterator[bytes], size: int | None, options: PrintOptions
    ) -> Submitted:
        if options.copies < 1:
            raise PrinterRejected(f"copies must be 1 or more, not {options.copies}")
        if options.sides not in SIDES:
            raise PrinterRejected(f"unknown sides {options.sides!r}: one of {', '.join(SIDES)}")
        cups_options = {"copies": str(options.copies), "sides": options.sides}
        if not options.color:
            cups_options["print-color-mode"] = "monochrome"
        if options.media:
            cups_options["media"] = options.media
        title = job_name(options.user, options.title or "meshprint job")
        what = f"printing on CUPS queue {self.queue}"
        with CUPS_LOCK:
            conn = _connect(self.server)
            self._check_queue(conn, options)
            job_id = _call(self.server, what, conn.createJob, self.queue, title, cups_options)
            try:
                _call(
                    self.server,
                    what,
                    conn.startDocument,
                    self.queue,
                    job_id,
                    "",  # no document-name: see the module's docstring
                    options.document_format,
                    1,
                )
            except BaseException:
                self._cancel(job_id)
                raise
        # The connection carries its own server and user from here on: stream without the
        # lock so that a slow document does not hold up other CUPS calls.
        try:
            sent = 0
            for chunk in document:
                view = memoryview(chunk).cast("B")
                for offset in range(0, len(view), _WRITE_SLICE):
                    # pycups reads the buffer with PyBytes_AsString: it must be bytes
                    piece = bytes(view[offset : offset + _WRITE_SLICE])
                    _call(self.server, what, conn.writeRequestData, piece, len(piece))
                    sent += len(piece)
            if size is not None and sent != size:
                raise PrinterError(
                    f"the document was {sent} bytes, not the {size} announced; the job was"
                    " cancelled"
                )
            try:
                conn.finishDocument(self.queue)
            except cups.IPPError as err:
                if not _ok(err):
                    raise _translate(err, self.server, what) from err
        except BaseException:
            del conn
            self._cancel(job_id)
            raise
        return Submitted(printer_job=str(job_id))

    def progress(self, submitted: Submitted) -> Progress:
        job_id = _job_id(submitted)
        key = (self.server or "", job_id)
        with CUPS_LOCK:
            if key in _FINISHED:
                return _FINISHED[key]
            conn = _connect(self.server)
            try:
                attrs = conn.getJobAttributes(job_id, requested_attributes=_JOB_ATTRIBUTES)
            except cups.IPPError as err:
                status, _ = _status(err)
                if status == cups.IPP_STATUS_ERROR_NOT_FOUND:
                    raise PrinterError(
                        f"CUPS has no job {job_id} any more (queue {self.queue});"
                        " its history may have been purged"
                    ) from err
                raise _translate(err, self.server, f"asking CUPS about job {job_id}") from err
            except cups.HTTPError as err:
                raise _translate(err, self.server, f"asking CUPS about job {job_id}") from err
        state = attrs.get("job-state")
        stage = _STAGES.get(state) if isinstance(state, int) else None
        if stage is None:
            raise PrinterError(f"CUPS reported an unknown state {state!r} for job {job_id}")
        if stage is Stage.PRINTED:
            done = attrs.get("job-impressions-completed")
            counted = done if isinstance(done, int) and done > 0 else None
            progress = Progress(stage, impressions=counted)
        else:
            reasons = _reasons(state, attrs.get("job-state-reasons"))
            message = _text(attrs.get("job-printer-state-message"))
            progress = Progress(stage, ": ".join(part for part in (reasons, message) if part))
        if self.purge and stage in (Stage.PRINTED, Stage.FAILED):
            with CUPS_LOCK:
                _FINISHED[key] = progress
                while len(_FINISHED) > _FINISHED_MAX:
                    _FINISHED.popitem(last=False)
            self._cancel(job_id)  # purge: removes the spooled document and the job
        return progress

    def cancel(self, submitted: Submitted) -> None:
        """Cancel the job at CUPS and purge its spooled document; `progress` then says
        FAILED (if the job had already finished, it says what it was)."""
        job_id = _job_id(submitted)
        try:
            final = self.progress(submitted)
        except PrinterUnreachable:
            raise
        except PrinterError:  # unknown to CUPS: nothing to cancel
            return
        if final.stage in (Stage.PRINTED, Stage.FAILED) and self.purge:
            return  # progress() has purged it
        self._cancel(job_id, quiet=False)
        if final.stage not in (Stage.PRINTED, Stage.FAILED):
            final = Progress(Stage.FAILED, "job-canceled-by-user: cancelled by meshprint")
        with CUPS_LOCK:
            _FINISHED[(self.server or "", job_id)] = final

    def info(self) -> dict[str, Any]:
        """The queue's state as CUPS reports it; PrinterError if there is no such queue."""
        with CUPS_LOCK:
            conn = _connect(self.server)
            return self._check_queue(conn, PrintOptions())

    # -- internals --

    def _check_queue(self, conn: Any, options: PrintOptions) -> dict[str, Any]:
        """The queue's attributes; PrinterError if there is no such queue, PrinterRejected
        for options it cannot do, PrinterNotReady if it takes no jobs."""
        try:
            attrs: dict[str, Any] = conn.getPrinterAttributes(
                self.queue, requested_attributes=_QUEUE_ATTRIBUTES
            )
        except (cups.IPPError, cups.HTTPError) as err:
            status, _ = _status(err)
            if status == cups.IPP_STATUS_ERROR_NOT_FOUND:
                raise PrinterError(f"no CUPS queue {self.queue}") from err
            raise _translate(err, self.server, f"looking up CUPS queue {self.queue}") from err
        if attrs.get("printer-is-accepting-jobs") is False:
            why = _text(attrs.get("printer-state-message"))
            raise PrinterNotReady(
                f"CUPS queue {self.queue} is not accepting jobs" + (f" ({why})" if why else "")
            )
        supported = attrs.get("sides-supported")
        if supported is not None:
            supported = [supported] if isinstance(supported, str) else list(supported)
            if options.sides not in supported:
                raise PrinterRejected(
                    f"the printer behind CUPS queue {self.queue} cannot print {options.sides}"
                    f" (it can: {', '.join(supported)})"
                )
        copies = attrs.get("copies-supported")
        if isinstance(copies, tuple | list) and len(copies) == 2:
            _low, high = copies
            if isinstance(high, int) and options.copies > high:
                raise PrinterRejected(
                    f"CUPS queue {self.queue} prints at most {high} copies, not {options.copies}"
                )
        return attrs

    def _cancel(self, job_id: int, quiet: bool = True) -> None:
        """Cancel and purge a job (best effort when `quiet`: used on the error path)."""
        try:
            with CUPS_LOCK:
                conn = _connect(self.server)
                conn.cancelJob(job_id, purge_job=True)
        except (cups.IPPError, cups.HTTPError, PrinterError) as err:
            if quiet:
                return
            if isinstance(err, PrinterError):
                raise
            raise _translate(err, self.server, f"cancelling CUPS job {job_id}") from err


def _probe(device_uri: str, timeout: float) -> None:
    """For network URIs, check something listens at the printer's address first: CUPS
    builds the IPP Everywhere PPD once, in the background, and gives up silently."""
    parts = urlsplit(device_uri)
    defaults = {"ipp": 631, "ipps": 631, "http": 80, "https": 443}
    if parts.scheme not in defaults or not parts.hostname:
        return
    try:
        port = parts.port or defaults[parts.scheme]
    except ValueError as err:
        raise PrinterError(f"bad printer address {device_uri}: {err}") from err
    try:
        with socket.create_connection((parts.hostname, port), timeout=min(timeout, 10.0)):
            pass
    except OSError as err:
        raise PrinterUnreachable(
            f"the printer at {device_uri} does not answer ({err.strerror or err}); CUPS needs"
            " it switched on to set up an IPP Everywhere queue"
        ) from err


def create_everywhere_queue(
    name: str, device_uri: str, server: str | None = None, timeout: float = 60.0
) -> None:
    """Create (or modify) CUPS queue `name` for the IPP Everywhere printer at
    `device_uri` — what `lpadmin -p NAME -E -v URI -m everywhere` does — and wait until
    CUPS has built its driver from the printer's attributes.

    CUPS answers the request at once and builds the PPD in the background; a job sent
    before then can abort ("Unable to convert file"). Ready means `printer-make-and-model`
    ends with "IPP Everywhere". If the queue already existed with such a driver the check
    passes at once on the old one while CUPS rebuilds it.
    """
    _probe(device_uri, timeout)
    what = f"setting up CUPS queue {name}"
    with CUPS_LOCK:
        conn = _connect(server)
        _call(server, what, conn.addPrinter, name, device=device_uri, ppdname="everywhere")
        _call(server, what, conn.enablePrinter, name)
        _call(server, what, conn.acceptJobs, name)
    deadline = time.monotonic() + timeout
    model = ""
    while True:
        with CUPS_LOCK:
            conn = _connect(server)
            attrs = _call(
                server,
                what,
                conn.getPrinterAttributes,
                name,
                requested_attributes=["printer-make-and-model", "printer-state-message"],
            )
        model = str(attrs.get("printer-make-and-model") or "")
        if model.endswith(EVERYWHERE_SUFFIX):
            return
        if time.monotonic() >= deadline:
            message = _text(attrs.get("printer-state-message"))
            raise PrinterUnreachable(
                f"CUPS queue {name} is not ready after {timeout:g} s: CUPS could not get the"
                f" IPP Everywhere description of the printer at {device_uri} (driver is still"
                f" {model!r}{'; ' + message if message else ''}). Is it on, and an IPP"
                " Everywhere printer?"
            )
        time.sleep(0.2)
