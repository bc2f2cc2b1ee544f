"""A synchronous IPP client for ipp:// and ipps:// printers (stdlib only).

    client = IppClient("ipps://10.0.0.7/ipp/print", pin_sha256="ab12…")
    info = client.get_printer_attributes()
    job_id = client.print_job(chunks, options)   # any JobOptions: copies, sides, title, …
    status = client.get_job_attributes(job_id)

Errors are `appliance.printers.ipp.exceptions` classes. A printer that is busy
(server-error-busy: many print one job at a time) is asked again for up to
`busy_timeout` seconds; a Print-Job is sent again only if the printer refused it before
reading more of the document than the client keeps for that (`REPLAY_LIMIT`).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from appliance.printers.ipp.enums import DelimiterTag, Operation, Status
from appliance.printers.ipp.exceptions import IppError, IppHttpError, IppStatusError
from appliance.printers.ipp.message import Attribute, IppMessage, Value
from appliance.printers.ipp.models import JobStatus, PrinterInfo
from appliance.printers.ipp.parser import parse
from appliance.printers.ipp.serializer import attr, encode, new_request
from appliance.printers.ipp.transport import Connection, TlsPolicy, parse_uri

REPLAY_LIMIT = 1024 * 1024
CANCEL_SEARCH = 2.0  # seconds to look for the job of a failed upload, to cancel it
PRINTER_ATTRIBUTES = (
    "printer-make-and-model",
    "printer-name",
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
    "document-format-supported",
    "sides-supported",
    "copies-supported",
    "color-supported",
    "print-color-mode-supported",
    "printer-uri-supported",
    "ipp-versions-supported",
    "operations-supported",
)


class JobOptions(Protocol):
    """What a job asks of the printer (Print-Job, Validate-Job). The package's own
    parameter type: the delivery drivers' PrintOptions is one, without this package
    knowing of it."""

    @property
    def copies(self) -> int: ...
    @property
    def sides(self) -> str: ...  # an IPP `sides` keyword
    @property
    def color(self) -> bool: ...  # False asks for print-color-mode monochrome
    @property
    def media(self) -> str | None: ...  # a PWG media name; None leaves the printer's default
    @property
    def title(self) -> str: ...  # job-name
    @property
    def user(self) -> str: ...  # requesting-user-name
    @property
    def document_format(self) -> str: ...  # a MIME type


class IppClient:
    def __init__(
        self,
        uri: str,
        *,
        verify: bool = True,
        pin_sha256: str | None = None,
        allow_self_signed: bool = False,
        timeout: float = 30.0,
        busy_timeout: float = 10.0,
        user: str = "meshprint",
        cafile: str | None = None,
    ) -> None:
        self.endpoint = parse_uri(uri)
        self.uri = self.endpoint.uri
        self.tls = TlsPolicy(verify, pin_sha256, allow_self_signed, cafile)
        if self.tls.pin is not None:
            if not self.endpoint.tls:
                raise IppError(f"{uri}: a certificate pin only applies to ipps:// printers")
            if not re.fullmatch(r"[0-9a-f]{64}", self.tls.pin):
                raise IppError("pin_sha256 is the SHA-256 of the printer's certificate: 64 hex")
        self.timeout = timeout
        self.busy_timeout = busy_timeout
        self.user = user
        self.version: tuple[int, int] = (2, 0)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # --- operations

    def get_printer_attributes(self, requested: Sequence[str] = PRINTER_ATTRIBUTES) -> PrinterInfo:
        response = self.call(
            Operation.GET_PRINTER_ATTRIBUTES, {"requested-attributes": list(requested)}
        )
        return PrinterInfo.from_attributes(response.printer_attributes())

    def print_job(self, document: Iterable[bytes], options: JobOptions) -> int:
        """Send the document (streamed, chunked) with the options; return the job-id."""
        replay = Replayable(document, REPLAY_LIMIT)
        response = self.call(
            Operation.PRINT_JOB,
            self._job_operation_attributes(options),
            job_attributes(options),
            document=replay,
        )
        job_id = response.first("job-id", DelimiterTag.JOB_ATTRIBUTES)
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise IppError(f"{self.endpoint.netloc} accepted the job but sent no job-id")
        return job_id

    def validate_job(self, options: JobOptions) -> IppMessage:
        """Ask the printer whether it would accept a job with these options."""
        return self.call(
            Operation.VALIDATE_JOB, self._job_operation_attributes(options), job_attributes(options)
        )

    def get_job_attributes(self, job_id: int, requested: Sequence[str] = ("all",)) -> JobStatus:
        response = self.call(
            Operation.GET_JOB_ATTRIBUTES,
            {"job-id": job_id, "requested-attributes": list(requested)},
        )
        return JobStatus.from_attributes(response.job_attributes(), job_id)

    def cancel_job(self, job_id: int) -> None:
        self.call(Operation.CANCEL_JOB, {"job-id": job_id})

    # --- requests

    def call(
        self,
        operation: Operation,
        operation_attributes: dict[str, object] | None = None,
        job_attrs: dict[str, object] | None = None,
        document: Replayable | None = None,
    ) -> IppMessage:
        """Send one request (again while the printer is busy); raise unless it succeeded."""
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.2
        while True:
            request = self.build(operation, operation_attributes, job_attrs)
            response = self.send(request, document)
            if response.ok:
                return response
            error = IppStatusError(response)
            downgrade = (
                error.status == Status.SERVER_ERROR_VERSION_NOT_SUPPORTED and self.version > (1, 1)
            )
            if not downgrade and not (error.busy and time.monotonic() + delay <= deadline):
                raise error
            if document is not None and not document.rewind():
                raise error  # the printer read too much of the document to send it again
            if downgrade:
                self.version = (1, 1)
            else:
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def build(
        self,
        operation: Operation,
        operation_attributes: dict[str, object] | None = None,
        job_attrs: dict[str, object] | None = None,
    ) -> IppMessage:
        with self._lock:
            request_id = next(self._ids)
        request = new_request(operation, self.uri, request_id, self.version, self.user)
        group = request.group(DelimiterTag.OPERATION_ATTRIBUTES)
        for name, value in (operation_attributes or {}).items():
            group.add(attr(name, value))
        if job_attrs:
            job_group = request.group(DelimiterTag.JOB_ATTRIBUTES)
            for name, value in job_attrs.items():
                job_group.add(attr(name, value))
        return request

    def send(
        self,
        request: IppMessage,
        document: Iterable[bytes] | None = None,
        timeout: float | None = None,
    ) -> IppMessage:
        """One HTTP exchange: the response, whatever its IPP status."""
        with Connection(self.endpoint, self.tls, timeout or self.timeout) as connection:
            try:
                http = connection.post(self.endpoint.path, encode(request), document)
            except BaseException:
                if document is not None:
                    # Many printers print whatever arrived when an upload stops short (the
                    # end of a chunked body looks like the end of the document): cancel the
                    # job while this connection still holds it open.
                    self._cancel_unfinished(request)
                raise
        where = self.endpoint.netloc
        if http.status != 200:
            raise IppHttpError(
                f"{where} answered HTTP {http.status} {http.reason} to an IPP request"
                f" for {self.endpoint.path}",
                http.status,
            )
        if http.content_type != "application/ipp":
            raise IppHttpError(
                f"{where} answered with {http.content_type or 'no content type'}, "
                "not an IPP response",
                http.status,
            )
        response = parse(http.body)
        if response.request_id != request.request_id:
            raise IppError(
                f"{where} answered request {response.request_id}, not {request.request_id}"
            )
        return response

    def _cancel_unfinished(self, request: IppMessage) -> None:
        """Best effort: cancel the newest unfinished job with this request's job-name and
        user, i.e. the one whose upload failed. The printer may not have read the request
        far enough to create the job yet: it is looked for again for up to
        CANCEL_SEARCH seconds, while the upload's connection stays open (so the printer
        cannot take the document as complete meanwhile)."""
        deadline = time.monotonic() + CANCEL_SEARCH
        while not self._cancel_newest(request) and time.monotonic() < deadline:
            time.sleep(0.1)

    def _cancel_newest(self, request: IppMessage) -> bool:
        """Cancel the newest unfinished job matching the request; False if there is none
        (or the printer does not say)."""
        name = request.first("job-name")
        user = request.first("requesting-user-name")
        timeout = min(self.timeout, 5.0)
        try:
            jobs = self.send(
                self.build(
                    Operation.GET_JOBS,
                    {
                        "which-jobs": "not-completed",
                        "requested-attributes": ["job-id", "job-name", "job-originating-user-name"],
                    },
                ),
                timeout=timeout,
            )
            ids = [
                job_id
                for group in jobs.groups_of(DelimiterTag.JOB_ATTRIBUTES)
                if (job_id := _int(group.attributes.get("job-id"))) is not None
                and _first(group.attributes.get("job-name")) == name
                and _first(group.attributes.get("job-originating-user-name")) == user
            ]
            if not ids:
                return False
            self.send(self.build(Operation.CANCEL_JOB, {"job-id": max(ids)}), timeout=timeout)
            return True
        except IppError:
            return True  # the printer is gone or does not say: nothing more can be done

    def _job_operation_attributes(self, options: JobOptions) -> dict[str, object]:
        return {
            "requesting-user-name": options.user,
            "job-name": options.title,
            "document-format": options.document_format,
        }


def job_attributes(options: JobOptions) -> dict[str, object]:
    """Job template attributes for the options: copies, sides, monochrome if not color,
    and the paper size if one is asked for."""
    attributes: dict[str, object] = {"copies": options.copies, "sides": options.sides}
    if not options.color:
        attributes["print-color-mode"] = "monochrome"
    if options.media:
        attributes["media"] = options.media
    return attributes


def _first(attribute: Attribute | None) -> Value | None:
    return attribute.values[0] if attribute and attribute.values else None


def _int(attribute: Attribute | None) -> int | None:
    value = _first(attribute)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Replayable:
    """A document iterator that remembers its first `limit` bytes, so a request the printer
    refused early (busy) can be sent again; after that it remembers nothing."""

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self._source: Iterator[bytes] = iter(chunks)
        self._kept: list[bytes] | None = []
        self._kept_size = 0
        self._limit = limit
        self._position = 0  # index into _kept while replaying

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._kept is not None and self._position < len(self._kept):
            self._position += 1
            return self._kept[self._position - 1]
        chunk = bytes(next(self._source))
        if self._kept is not None:
            self._kept_size += len(chunk)
            if self._kept_size > self._limit:
                self._kept = None  # too much to keep: this attempt is the last
            else:
                self._kept.append(chunk)
                self._position += 1
        return chunk

    def rewind(self) -> bool:
        """Start again from the first chunk; False if that is no longer possible."""
        if self._kept is None:
            return False
        self._position = 0
        return True
