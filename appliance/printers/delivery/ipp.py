"""Direct IPP delivery: Print-Job to an ipp:// or ipps:// printer, Get-Job-Attributes
to follow it.

Before sending, the driver asks for the printer's state: a stopped printer (jam, no
paper, door open …) or one not accepting jobs is reported as not ready, with the
printer's reasons, and the job stays held. A printer that is printing another job is
given up to `busy_wait` seconds to finish it, because many printers print one job at a
time and answer server-error-busy meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from appliance.printers.delivery import PrintOptions, Progress, Stage, Submitted
from appliance.printers.errors import (
    NotAPrinter,
    PrinterError,
    PrinterNotReady,
    PrinterRejected,
    PrinterUnreachable,
)
from appliance.printers.ipp.client import IppClient
from appliance.printers.ipp.enums import DelimiterTag, JobState, PrinterState, Status
from appliance.printers.ipp.exceptions import (
    IppConnectionError,
    IppError,
    IppHttpError,
    IppParseError,
    IppStatusError,
    IppTlsError,
)
from appliance.printers.ipp.models import PrinterInfo

if TYPE_CHECKING:
    from appliance.printers.registry import PrinterRecord

REJECTING = {
    Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
    Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
    Status.CLIENT_ERROR_CONFLICTING_ATTRIBUTES,
    Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
    Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR,
    Status.CLIENT_ERROR_DOCUMENT_UNPRINTABLE_ERROR,
    Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
    Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
    Status.CLIENT_ERROR_FORBIDDEN,
    Status.CLIENT_ERROR_NOT_AUTHENTICATED,
    Status.CLIENT_ERROR_NOT_AUTHORIZED,
}
NOT_READY = {
    Status.SERVER_ERROR_SERVICE_UNAVAILABLE,
    Status.SERVER_ERROR_DEVICE_ERROR,
    Status.SERVER_ERROR_TEMPORARY_ERROR,
    Status.SERVER_ERROR_NOT_ACCEPTING_JOBS,
}
STAGES: dict[int, Stage] = {
    JobState.PENDING: Stage.QUEUED,
    JobState.PENDING_HELD: Stage.QUEUED,
    JobState.PROCESSING: Stage.PRINTING,
    JobState.PROCESSING_STOPPED: Stage.PRINTING,
    JobState.COMPLETED: Stage.PRINTED,
    JobState.CANCELED: Stage.FAILED,
    JobState.ABORTED: Stage.FAILED,
}


class IppDriver:
    def __init__(
        self,
        uri: str,
        *,
        verify: bool = True,
        pin_sha256: str | None = None,
        allow_self_signed: bool = False,
        timeout: float = 30.0,
        busy_wait: float = 10.0,
        cafile: str | None = None,
    ) -> None:
        with _translated(uri):
            self.client = IppClient(
                uri,
                verify=verify,
                pin_sha256=pin_sha256,
                allow_self_signed=allow_self_signed,
                timeout=timeout,
                busy_timeout=busy_wait,
                cafile=cafile,
            )
        self.uri = self.client.uri
        self.busy_wait = busy_wait

    @classmethod
    def for_record(cls, record: PrinterRecord, **kwargs: Any) -> IppDriver:
        """A driver for a registry PrinterRecord (its URI, pin and self-signed choice)."""
        return cls(
            record.uri,
            pin_sha256=record.pin_sha256,
            allow_self_signed=record.allow_self_signed,
            **kwargs,
        )

    # --- Driver

    def submit(
        self, document: Iterator[bytes], size: int | None, options: PrintOptions
    ) -> Submitted:
        self.ready()
        with _translated(self.uri):
            job_id = self.client.print_job(document, options)
        return Submitted(str(job_id))

    def progress(self, submitted: Submitted) -> Progress:
        try:
            job_id = int(submitted.printer_job)
        except ValueError:
            raise PrinterError(f"{submitted.printer_job!r} is not an IPP job id") from None
        with _translated(self.uri):
            status = self.client.get_job_attributes(
                job_id,
                (
                    "job-id",
                    "job-state",
                    "job-state-reasons",
                    "job-state-message",
                    "job-impressions-completed",
                ),
            )
            stage = STAGES.get(status.state, Stage.QUEUED)
            reasons = status.state_reasons
            if status.state == JobState.PROCESSING_STOPPED or "printer-stopped" in reasons:
                reasons = self.client.get_printer_attributes().state_reasons or reasons
            elif stage is Stage.FAILED and not reasons and status.state_message:
                reasons = [status.state_message]
        return Progress(stage, ", ".join(reasons), _impressions(status.attributes))

    # --- checks

    def info(self) -> PrinterInfo:
        with _translated(self.uri):
            return self.client.get_printer_attributes()

    def ready(self) -> PrinterInfo:
        """The printer's description once it can take a job; PrinterNotReady if it cannot."""
        deadline = time.monotonic() + self.busy_wait
        while True:
            info = self.info()
            if info.state == PrinterState.STOPPED:
                reasons = ", ".join(info.state_reasons) or info.state_message or "no reason given"
                raise PrinterNotReady(f"the printer at {self.uri} is stopped ({reasons})")
            if not info.accepting_jobs:
                raise PrinterNotReady(f"the printer at {self.uri} is not accepting jobs")
            if info.state != PrinterState.PROCESSING or time.monotonic() >= deadline:
                return info
            time.sleep(0.25)


def _impressions(attributes: dict[str, Any]) -> int | None:
    """job-impressions-completed, when the printer counts (0 is "not counted")."""
    attribute = attributes.get("job-impressions-completed")
    values = getattr(attribute, "values", None) or []
    value = values[0] if values else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


@contextmanager
def _translated(uri: str) -> Iterator[None]:
    """Turn IPP errors into the printer errors users see."""
    try:
        yield
    except IppError as err:
        raise printer_error(err, uri) from err


def printer_error(err: IppError, uri: str) -> PrinterError:
    if isinstance(err, IppConnectionError):
        return PrinterUnreachable(
            f"no answer from the printer at {uri} ({err}): is it on, connected, and is the "
            "address right?"
        )
    if isinstance(err, IppTlsError):
        return NotAPrinter(f"cannot trust the printer at {uri}: {err}")
    if isinstance(err, IppHttpError):
        if err.http_status in (401, 403):
            return PrinterRejected(f"the printer at {uri} refused access ({err})")
        if err.http_status == 503:
            return PrinterNotReady(f"the printer at {uri} is not ready ({err})")
        return NotAPrinter(f"{uri} is not an IPP printer: {err}")
    if isinstance(err, IppParseError):
        return NotAPrinter(f"{uri} sent a malformed IPP answer: {err}")
    if isinstance(err, IppStatusError):
        return _status_error(err, uri)
    return PrinterError(f"the printer at {uri}: {err}")


def _status_error(err: IppStatusError, uri: str) -> PrinterError:
    said = f" ({err.status_message})" if err.status_message else ""
    if err.busy:
        return PrinterNotReady(f"printer busy, try again (the printer at {uri} is printing)")
    if err.status in REJECTING:
        refused = _unsupported(err)
        if refused:
            return PrinterRejected(f"the printer at {uri} does not support {refused}{said}")
        return PrinterRejected(f"the printer at {uri} refused the job: {err.keyword}{said}")
    if err.status in NOT_READY:
        return PrinterNotReady(f"the printer at {uri} is not ready: {err.keyword}{said}")
    return PrinterError(f"the printer at {uri} answered {err.keyword}{said}")


def _unsupported(err: IppStatusError) -> str:
    """'document-format application/postscript, sides two-sided-long-edge' from the
    printer's unsupported-attributes group, or the format alone for a format error."""
    parts: list[str] = []
    for group in err.response.groups_of(DelimiterTag.UNSUPPORTED_ATTRIBUTES):
        for attribute in group.attributes.values():
            values = ", ".join(str(v) for v in attribute.values)
            parts.append(f"{attribute.name} {values!r}" if values else attribute.name)
    if not parts and err.status == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED:
        parts.append("document-format")
    return "; ".join(parts)
