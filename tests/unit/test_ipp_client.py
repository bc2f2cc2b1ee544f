"""IppClient and IppDriver against small in-process servers: what goes on the wire
(chunked upload, attributes), busy retry, early answers, non-IPP servers, error mapping,
printer state and job progress."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import pytest

from appliance.printers.delivery import PrintOptions, Stage, Submitted
from appliance.printers.delivery.ipp import IppDriver
from appliance.printers.errors import (
    NotAPrinter,
    PrinterError,
    PrinterNotReady,
    PrinterRejected,
    PrinterUnreachable,
)
from appliance.printers.ipp import client as client_module
from appliance.printers.ipp.client import IppClient, Replayable
from appliance.printers.ipp.enums import DelimiterTag, JobState, Operation, PrinterState, Status
from appliance.printers.ipp.exceptions import (
    IppConnectionError,
    IppError,
    IppHttpError,
    IppStatusError,
    IppTimeoutError,
)
from appliance.printers.ipp.message import AttributeGroup, IppMessage
from appliance.printers.ipp.parser import parse_with_data
from appliance.printers.ipp.serializer import attr, encode

# --- a scriptable IPP server


@dataclass
class Received:
    request: IppMessage
    document: bytes
    headers: dict[str, str]
    chunks: int  # HTTP chunks in the body (0: Content-Length)


Handler = Callable[[IppMessage, bytes], IppMessage]


@dataclass
class FakePrinter:
    """Answers each IPP request with `handler(request, document)`. With `early`, it answers
    after the first chunk (the IPP attributes) and closes without reading the document."""

    handler: Handler
    early: bool = False
    received: list[Received] = field(default_factory=list)

    def serve(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        rfile.readline()  # request line
        headers = read_headers(rfile)
        chunks, body = 0, bytearray()
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(rfile.readline().split(b";")[0], 16)
                if size == 0:
                    rfile.readline()
                    break
                body += rfile.read(size)
                rfile.readline()
                chunks += 1
                if self.early:
                    break
        else:
            body += rfile.read(int(headers["content-length"]))
        request, document = parse_with_data(bytes(body))
        self.received.append(Received(request, document, headers, chunks))
        answer = encode(self.handler(request, document))
        wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\n"
            + f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
            + answer
        )


def read_headers(rfile: BinaryIO) -> dict[str, str]:
    headers = {}
    while (line := rfile.readline().strip()) != b"":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[BinaryIO, BinaryIO], None]], str]]:
    """Start a loopback server running `serve(rfile, wfile)` per connection; its URI."""
    servers: list[Server] = []

    def start(serve_one: Callable[[BinaryIO, BinaryIO], None]) -> str:
        class Handle(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(ConnectionError, ValueError):
                    serve_one(self.rfile, self.wfile)  # type: ignore[arg-type]

        server = Server(("127.0.0.1", 0), Handle)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return f"ipp://127.0.0.1:{server.server_address[1]}/ipp/print"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def respond(
    request: IppMessage, status: int = Status.SUCCESSFUL_OK, message: str = ""
) -> IppMessage:
    response = IppMessage(code=status, request_id=request.request_id, version=request.version)
    operation = response.group(DelimiterTag.OPERATION_ATTRIBUTES)
    operation.add(attr("attributes-charset", "utf-8"))
    operation.add(attr("attributes-natural-language", "en"))
    if message:
        operation.add(attr("status-message", message, tag=0x41))
    return response


def job_created(request: IppMessage, job_id: int = 5) -> IppMessage:
    response = respond(request)
    job = response.group(DelimiterTag.JOB_ATTRIBUTES)
    job.add(attr("job-id", job_id))
    job.add(attr("job-state", JobState.PENDING, tag=0x23))
    return response


def printer(
    request: IppMessage, state: int = PrinterState.IDLE, reasons: tuple[str, ...] = ("none",)
) -> IppMessage:
    response = respond(request)
    group = response.group(DelimiterTag.PRINTER_ATTRIBUTES)
    group.add(attr("printer-state", state, tag=0x23))
    group.add(attr("printer-state-reasons", list(reasons)))
    group.add(attr("printer-is-accepting-jobs", True))
    return response


def chunks(count: int, size: int = 1000) -> Iterator[bytes]:
    for index in range(count):
        yield bytes([index % 256]) * size


OPTIONS = PrintOptions(
    copies=2,
    sides="two-sided-long-edge",
    color=False,
    title="Quarterly report",
    user="alice",
    document_format="application/pdf",
)

# --- what goes on the wire


def test_print_job_streams_chunked_with_the_options(serve: Callable[..., str]) -> None:
    fake = FakePrinter(lambda request, _: job_created(request, 17))
    client = IppClient(serve(fake.serve))
    document = list(chunks(50))
    assert client.print_job(iter(document), OPTIONS) == 17
    [got] = fake.received
    assert got.headers["transfer-encoding"] == "chunked"
    assert got.headers["content-type"] == "application/ipp"
    assert "content-length" not in got.headers
    assert got.chunks == 51  # the IPP attributes, then one HTTP chunk per document chunk
    assert got.document == b"".join(document)
    request = got.request
    assert request.operation == Operation.PRINT_JOB
    operation = request.groups[0]
    assert list(operation.attributes)[:3] == [
        "attributes-charset",
        "attributes-natural-language",
        "printer-uri",
    ]
    assert operation.attributes["printer-uri"].value == client.uri
    assert operation.attributes["requesting-user-name"].value == "alice"
    assert operation.attributes["job-name"].value == "Quarterly report"
    assert operation.attributes["document-format"].value == "application/pdf"
    job = request.job_attributes()
    assert job["copies"].values == [2]
    assert job["sides"].values == ["two-sided-long-edge"]
    assert job["print-color-mode"].values == ["monochrome"]


def test_color_jobs_leave_the_color_mode_to_the_printer(serve: Callable[..., str]) -> None:
    fake = FakePrinter(lambda request, _: job_created(request))
    IppClient(serve(fake.serve)).print_job(iter([b"x"]), PrintOptions(color=True))
    assert "print-color-mode" not in fake.received[0].request.job_attributes()


def test_empty_chunks_are_skipped_not_sent_as_the_end(serve: Callable[..., str]) -> None:
    fake = FakePrinter(lambda request, _: job_created(request))
    IppClient(serve(fake.serve)).print_job(iter([b"ab", b"", b"cd", b""]), OPTIONS)
    assert fake.received[0].document == b"abcd"


def test_other_operations(serve: Callable[..., str]) -> None:
    def handler(request: IppMessage, _: bytes) -> IppMessage:
        if request.operation == Operation.GET_JOB_ATTRIBUTES:
            response = respond(request)
            job = response.group(DelimiterTag.JOB_ATTRIBUTES)
            job.add(attr("job-id", request.first("job-id")))
            job.add(attr("job-state", JobState.PROCESSING, tag=0x23))
            job.add(attr("job-state-reasons", ["job-printing"]))
            job.add(attr("copies", 3))
            return response
        return respond(request)

    fake = FakePrinter(handler)
    client = IppClient(serve(fake.serve))
    status = client.get_job_attributes(9)
    assert (status.job_id, status.state, status.state_reasons, status.copies) == (
        9,
        JobState.PROCESSING,
        ["job-printing"],
        3,
    )
    client.cancel_job(9)
    assert client.validate_job(OPTIONS).ok
    ops = [r.request.operation for r in fake.received]
    assert ops == [Operation.GET_JOB_ATTRIBUTES, Operation.CANCEL_JOB, Operation.VALIDATE_JOB]
    assert [r.chunks for r in fake.received] == [0, 0, 0]  # no document: Content-Length
    assert fake.received[1].request.first("job-id") == 9
    ids = [r.request.request_id for r in fake.received]
    assert ids == sorted(set(ids))


# --- busy, early answers, version


def test_busy_printer_is_asked_again_with_the_whole_document(serve: Callable[..., str]) -> None:
    answers = iter([Status.SERVER_ERROR_BUSY, Status.SERVER_ERROR_BUSY, None])

    def handler(request: IppMessage, _: bytes) -> IppMessage:
        status = next(answers)
        return respond(request, status) if status else job_created(request, 3)

    fake = FakePrinter(handler)
    document = list(chunks(20))
    client = IppClient(serve(fake.serve), busy_timeout=5)
    assert client.print_job(iter(document), OPTIONS) == 3
    assert len(fake.received) == 3
    assert all(r.document == b"".join(document) for r in fake.received)


def test_busy_after_a_large_document_is_not_retried(
    serve: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "REPLAY_LIMIT", 10_000)
    fake = FakePrinter(lambda request, _: respond(request, Status.SERVER_ERROR_BUSY, "Busy."))
    client = IppClient(serve(fake.serve), busy_timeout=5)
    with pytest.raises(IppStatusError) as info:
        client.print_job(chunks(20), OPTIONS)  # 20 kB: more than it may keep
    assert info.value.busy
    assert len(fake.received) == 1


def test_busy_gives_up_after_busy_timeout(serve: Callable[..., str]) -> None:
    fake = FakePrinter(lambda request, _: respond(request, Status.SERVER_ERROR_BUSY))
    client = IppClient(serve(fake.serve), busy_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(IppStatusError, match="server-error-busy"):
        client.get_printer_attributes()
    assert time.monotonic() - started < 2
    assert 2 <= len(fake.received) <= 4


def test_an_early_refusal_stops_the_upload(serve: Callable[..., str]) -> None:
    fake = FakePrinter(
        lambda request, _: respond(
            request, Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "No PostScript."
        ),
        early=True,
    )
    pulled = 0

    def huge() -> Iterator[bytes]:  # 64 GB if it were all read
        nonlocal pulled
        chunk = bytes(65536)
        for _ in range(1_000_000):
            pulled += 1
            yield chunk

    client = IppClient(serve(fake.serve), busy_timeout=0)
    with pytest.raises(IppStatusError) as info:
        client.print_job(huge(), OPTIONS)
    assert info.value.status == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
    assert info.value.status_message == "No PostScript."
    assert pulled < 200


def test_printer_hanging_up_mid_upload_is_a_connection_error(serve: Callable[..., str]) -> None:
    def hang_up(rfile: BinaryIO, wfile: BinaryIO) -> None:
        rfile.readline()
        read_headers(rfile)
        rfile.read(int(rfile.readline(), 16))  # the IPP attributes, then goodbye

    uri = serve(hang_up)
    with pytest.raises(IppConnectionError, match="closed the connection while"):
        IppClient(uri).print_job(chunks(2000, 65536), OPTIONS)


def test_version_2_refused_falls_back_to_1_1(serve: Callable[..., str]) -> None:
    def handler(request: IppMessage, _: bytes) -> IppMessage:
        if request.version != (1, 1):
            return respond(request, Status.SERVER_ERROR_VERSION_NOT_SUPPORTED)
        return job_created(request, 8)

    fake = FakePrinter(handler)
    client = IppClient(serve(fake.serve))
    assert client.print_job(chunks(3), OPTIONS) == 8
    assert [r.request.version for r in fake.received] == [(2, 0), (1, 1)]
    assert fake.received[1].document == b"".join(chunks(3))
    client.cancel_job(8)
    assert fake.received[-1].request.version == (1, 1)


def test_a_document_that_fails_midway_cancels_its_job(serve: Callable[..., str]) -> None:
    canceled: list[int] = []

    def handler(request: IppMessage, _: bytes) -> IppMessage:
        response = respond(request)
        if request.operation == Operation.GET_JOBS:
            jobs = [(3, "Quarterly report", "alice"), (4, "other", "alice"), (5, "report", "bob")]
            for job_id, name, user in jobs:
                group = AttributeGroup(DelimiterTag.JOB_ATTRIBUTES)
                group.add(attr("job-id", job_id))
                group.add(attr("job-name", name))
                group.add(attr("job-originating-user-name", user))
                response.groups.append(group)
        elif request.operation == Operation.CANCEL_JOB:
            cancel = request.first("job-id")
            assert isinstance(cancel, int)
            canceled.append(cancel)
        return response

    def failing() -> Iterator[bytes]:
        yield b"%PDF-1.7 authentic part"
        raise ValueError("chunk 2 failed authentication")

    client = IppClient(serve(FakePrinter(handler).serve))
    with pytest.raises(ValueError, match="authentication"):
        client.print_job(failing(), OPTIONS)
    assert canceled == [3]


def test_replayable() -> None:
    replay = Replayable(iter([b"ab", b"cd", b"ef"]), limit=4)
    assert next(replay) == b"ab"
    assert next(replay) == b"cd"
    assert replay.rewind()
    assert list(replay) == [b"ab", b"cd", b"ef"]  # past the limit now
    assert not replay.rewind()


# --- servers that are not IPP printers


def raw_server(serve: Callable[..., str], answer: bytes, read_request: bool = True) -> str:
    def serve_one(rfile: BinaryIO, wfile: BinaryIO) -> None:
        if read_request:
            rfile.readline()
            read_headers(rfile)
        wfile.write(answer)

    return serve(serve_one)


@pytest.mark.parametrize(
    ("answer", "read_request", "error"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n<html",
            True,
            "text/html, not an IPP response",
        ),
        (
            b"HTTP/1.0 404 Not Found\r\nContent-Type: text/html\r\n\r\nnope",
            True,
            "HTTP 404 Not Found",
        ),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", False, "does not answer with HTTP"),
        (b"", True, "closed the connection without answering"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: 3\r\n\r\nabc",
            True,
            "not an IPP message",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: 30\r\n\r\nabc",
            True,
            "closed the connection in the middle",
        ),
    ],
)
def test_not_a_printer(
    serve: Callable[..., str], answer: bytes, read_request: bool, error: str
) -> None:
    uri = raw_server(serve, answer, read_request)
    with pytest.raises(IppError, match=error):
        IppClient(uri, busy_timeout=0).get_printer_attributes()
    with pytest.raises(NotAPrinter, match=error):
        IppDriver(uri, busy_wait=0).submit(chunks(2), None, OPTIONS)


def test_chunked_answer_and_100_continue(serve: Callable[..., str]) -> None:
    request = IppClient("ipp://127.0.0.1/").build(Operation.GET_PRINTER_ATTRIBUTES)
    body = encode(printer(request))
    half = len(body) // 2
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp; charset=x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + f"{half:x};ext=1\r\n".encode() + body[:half] + b"\r\n"
        + f"{len(body) - half:X}\r\n".encode() + body[half:] + b"\r\n"
        + b"0\r\nTrailer: x\r\n\r\n"
    )  # fmt: skip
    uri = raw_server(serve, answer)
    client = IppClient(uri)
    client._ids = iter([request.request_id])  # type: ignore[assignment]
    assert client.get_printer_attributes().state == PrinterState.IDLE


def test_wrong_request_id_is_an_error(serve: Callable[..., str]) -> None:
    def handler(request: IppMessage, _: bytes) -> IppMessage:
        response = respond(request)
        response.request_id += 1
        return response

    with pytest.raises(IppError, match="answered request"):
        IppClient(serve(FakePrinter(handler).serve)).get_printer_attributes()


def test_closed_port_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        uri = f"ipp://127.0.0.1:{port}/ipp/print"
        with pytest.raises(IppConnectionError, match="refused"):
            IppClient(uri).get_printer_attributes()
        with pytest.raises(PrinterUnreachable, match="no answer from the printer"):
            IppDriver(uri).submit(chunks(1), None, OPTIONS)


def test_silent_printer_times_out(serve: Callable[..., str]) -> None:
    def never_answer(rfile: BinaryIO, wfile: BinaryIO) -> None:
        time.sleep(2)

    uri = serve(never_answer)
    with pytest.raises(IppTimeoutError, match=r"within 0\.3s"):
        IppClient(uri, timeout=0.3).get_printer_attributes()
    with pytest.raises(PrinterUnreachable):
        IppDriver(uri, timeout=0.3).progress(Submitted("1"))


def test_uri_must_be_ipp() -> None:
    with pytest.raises(IppError, match="not an ipp:// or ipps:// URI"):
        IppClient("http://printer/ipp/print")
    with pytest.raises(PrinterError, match="not an ipp:// or ipps:// URI"):
        IppDriver("socket://printer:9100")
    assert IppClient("ipps://printer.example").uri == "ipps://printer.example:631/ipp/print"
    with pytest.raises(IppError, match="only applies to ipps://"):
        IppClient("ipp://printer.example", pin_sha256="ab" * 32)
    with pytest.raises(IppError, match="64 hex"):
        IppClient("ipps://printer.example", pin_sha256="abc")
    assert IppClient("ipp://[fd00::7]:8631/p").endpoint.netloc == "[fd00::7]:8631"


# --- the driver: printer state, error mapping, progress


class Scripted:
    """A fake printer whose state, Print-Job answer and job state a test sets."""

    def __init__(self) -> None:
        self.state = PrinterState.IDLE
        self.reasons: tuple[str, ...] = ("none",)
        self.accepting = True
        self.print_status: int = Status.SUCCESSFUL_OK
        self.print_message = ""
        self.unsupported: dict[str, str] = {}
        self.job_state = JobState.PENDING
        self.job_reasons: tuple[str, ...] = ("none",)
        self.job_message = ""
        self.states: list[int] = []  # printer states to report before `state`

    def __call__(self, request: IppMessage, document: bytes) -> IppMessage:
        if request.operation == Operation.GET_PRINTER_ATTRIBUTES:
            state = self.states.pop(0) if self.states else self.state
            response = printer(request, state, self.reasons)
            response.printer_attributes()["printer-is-accepting-jobs"].values = [self.accepting]
            return response
        if request.operation == Operation.PRINT_JOB:
            if self.print_status != Status.SUCCESSFUL_OK:
                response = respond(request, self.print_status, self.print_message)
                group = response.group(DelimiterTag.UNSUPPORTED_ATTRIBUTES)
                for name, value in self.unsupported.items():
                    group.add(attr(name, value))
                return response
            return job_created(request, 11)
        if request.operation == Operation.GET_JOB_ATTRIBUTES:
            response = respond(request)
            job = response.group(DelimiterTag.JOB_ATTRIBUTES)
            job.add(attr("job-id", 11))
            job.add(attr("job-state", self.job_state, tag=0x23))
            job.add(attr("job-state-reasons", list(self.job_reasons)))
            if self.job_message:
                job.add(attr("job-state-message", self.job_message, tag=0x41))
            return response
        return respond(request, Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED)


@pytest.fixture
def scripted(serve: Callable[..., str]) -> tuple[Scripted, IppDriver]:
    script = Scripted()
    return script, IppDriver(serve(FakePrinter(script).serve), busy_wait=2)


def test_driver_submits(scripted: tuple[Scripted, IppDriver]) -> None:
    _, driver = scripted
    assert driver.submit(chunks(3), 3000, OPTIONS) == Submitted("11")


def test_stopped_printer_is_not_ready_with_its_reasons(
    scripted: tuple[Scripted, IppDriver],
) -> None:
    script, driver = scripted
    script.state = PrinterState.STOPPED
    script.reasons = ("media-jam-error", "cover-open-error")
    pulled = 0

    def watched() -> Iterator[bytes]:
        nonlocal pulled
        pulled += 1
        yield b"x"

    with pytest.raises(PrinterNotReady, match=r"stopped \(media-jam-error, cover-open-error\)"):
        driver.submit(watched(), None, OPTIONS)
    assert pulled == 0  # the document was not touched: the job stays held as it is


def test_printer_not_accepting_jobs(scripted: tuple[Scripted, IppDriver]) -> None:
    script, driver = scripted
    script.accepting = False
    with pytest.raises(PrinterNotReady, match="not accepting jobs"):
        driver.submit(chunks(1), None, OPTIONS)


def test_driver_waits_while_the_printer_prints_another_job(
    scripted: tuple[Scripted, IppDriver],
) -> None:
    script, driver = scripted
    script.states = [PrinterState.PROCESSING] * 3
    started = time.monotonic()
    assert driver.submit(chunks(1), None, OPTIONS) == Submitted("11")
    assert 0.5 <= time.monotonic() - started < 2


def test_busy_is_not_ready(scripted: tuple[Scripted, IppDriver]) -> None:
    script, driver = scripted
    script.print_status = Status.SERVER_ERROR_BUSY
    driver.client.busy_timeout = 0
    with pytest.raises(PrinterNotReady, match="printer busy, try again"):
        driver.submit(chunks(1), None, OPTIONS)


@pytest.mark.parametrize(
    ("status", "unsupported", "expected"),
    [
        (
            Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
            {"document-format": "application/postscript"},
            "does not support document-format 'application/postscript'",
        ),
        (Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, {}, "does not support document-format"),
        (
            Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
            {"sides": "two-sided-long-edge"},
            "does not support sides 'two-sided-long-edge'",
        ),
        (Status.CLIENT_ERROR_NOT_AUTHORIZED, {}, "refused the job: client-error-not-authorized"),
    ],
)
def test_refusals_name_the_attribute(
    scripted: tuple[Scripted, IppDriver], status: int, unsupported: dict[str, str], expected: str
) -> None:
    script, driver = scripted
    script.print_status = status
    script.unsupported = unsupported
    with pytest.raises(PrinterRejected, match=expected):
        driver.submit(chunks(1), None, OPTIONS)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (Status.SERVER_ERROR_NOT_ACCEPTING_JOBS, PrinterNotReady),
        (Status.SERVER_ERROR_DEVICE_ERROR, PrinterNotReady),
        (Status.SERVER_ERROR_INTERNAL_ERROR, PrinterError),
    ],
)
def test_other_statuses(
    scripted: tuple[Scripted, IppDriver], status: int, error: type[PrinterError]
) -> None:
    script, driver = scripted
    script.print_status = status
    script.print_message = "said the printer"
    with pytest.raises(error, match="said the printer"):
        driver.submit(chunks(1), None, OPTIONS)


@pytest.mark.parametrize(
    ("state", "reasons", "message", "stage", "reason"),
    [
        (JobState.PENDING, ("none",), "", Stage.QUEUED, ""),
        (JobState.PENDING_HELD, ("job-hold-until-specified",), "", Stage.QUEUED,
         "job-hold-until-specified"),
        (JobState.PROCESSING, ("job-printing",), "", Stage.PRINTING, "job-printing"),
        (JobState.COMPLETED, ("job-completed-successfully",), "", Stage.PRINTED,
         "job-completed-successfully"),
        (JobState.ABORTED, ("aborted-by-system",), "", Stage.FAILED, "aborted-by-system"),
        (JobState.CANCELED, ("none",), "Canceled at the panel.", Stage.FAILED,
         "Canceled at the panel."),
    ],
)  # fmt: skip
def test_progress(
    scripted: tuple[Scripted, IppDriver],
    state: JobState,
    reasons: tuple[str, ...],
    message: str,
    stage: Stage,
    reason: str,
) -> None:
    script, driver = scripted
    script.job_state, script.job_reasons, script.job_message = state, reasons, message
    progress = driver.progress(Submitted("11"))
    assert (progress.stage, progress.reason) == (stage, reason)


def test_progress_of_a_stopped_job_gives_the_printer_reason(
    scripted: tuple[Scripted, IppDriver],
) -> None:
    script, driver = scripted
    script.job_state, script.job_reasons = JobState.PROCESSING_STOPPED, ("printer-stopped",)
    script.state, script.reasons = PrinterState.STOPPED, ("media-empty-error",)
    progress = driver.progress(Submitted("11"))
    assert (progress.stage, progress.reason) == (Stage.PRINTING, "media-empty-error")


def test_progress_of_a_bad_job_id(scripted: tuple[Scripted, IppDriver]) -> None:
    with pytest.raises(PrinterError, match="not an IPP job id"):
        scripted[1].progress(Submitted("cups-7"))


def test_for_record_takes_pin_and_self_signed() -> None:
    @dataclass
    class Record:
        uri: str = "ipps://10.0.0.7:631/ipp/print"
        pin_sha256: str | None = "AB:" + "cd" * 31
        allow_self_signed: bool = False

    driver = IppDriver.for_record(Record())  # type: ignore[arg-type]
    assert driver.client.tls.pin == "ab" + "cd" * 31
    assert driver.uri == "ipps://10.0.0.7:631/ipp/print"


def test_http_status_mapping(serve: Callable[..., str]) -> None:
    for status, error in ((401, PrinterRejected), (503, PrinterNotReady), (426, NotAPrinter)):
        uri = raw_server(serve, f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        with pytest.raises(error, match=f"HTTP {status}"):
            IppDriver(uri).info()
    with pytest.raises(IppHttpError):
        IppClient(uri).get_printer_attributes()
