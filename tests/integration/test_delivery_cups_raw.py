"""RAW and CUPS delivery against real components: a socket sink (tests/fixtures/rawsink.py),
a private cupsd (tests/fixtures/cups.py) and a real IPP Everywhere printer, ippeveprinter
with its own D-Bus and avahi (tests/fixtures/ippeve.py), all on loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import cups
import pytest

from appliance.devtools import virtual_printer as ippeve_fixture
from appliance.devtools.processes import free_port, processes_mentioning, session_members
from appliance.printers.delivery import PrintOptions, Progress, Stage, Submitted
from appliance.printers.delivery.cups import (
    CUPS_LOCK,
    CupsDriver,
    _connect,
    create_everywhere_queue,
    service_account,
)
from appliance.printers.delivery.raw import RawDriver, RawReceipt, RawSubmitted
from appliance.printers.errors import (
    PrinterError,
    PrinterNotReady,
    PrinterRejected,
    PrinterUnreachable,
)
from tests.fixtures.cups import PrivateCups
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.fixtures.rawsink import RawSink

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def wait_for(predicate, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------- RAW


def test_raw_delivers_5mb_byte_exact() -> None:
    document = os.urandom(5 * MB)
    verified: list[RawReceipt] = []

    class Counter:  # stands in for the SNMP page counter, which is not what this is about
        def baseline(self) -> int:
            return 7

        def progress(self, receipt: RawReceipt) -> Progress:
            verified.append(receipt)
            return Progress(Stage.PRINTED, "pages counted")

    with RawSink() as sink:
        driver = RawDriver("127.0.0.1", sink.port, timeout=10, check=Counter())
        started = time.time()
        submitted = driver.submit(chunks(document), len(document), PrintOptions())
        assert sink.wait(1) == [document]

    assert isinstance(submitted, RawSubmitted)
    receipt = submitted.receipt
    assert receipt is not None
    assert receipt.bytes_sent == len(document)
    assert receipt.peer_closed
    assert started - 1 <= receipt.started_at <= receipt.finished_at <= time.time()
    # The receipt survives being stored as text.
    assert RawReceipt.parse(submitted.printer_job) == receipt
    assert receipt.pages_before == 7 and receipt.pages is None  # sent as is: not counted
    # The page-counter check is consulted; without it RAW can only say "sent".
    assert driver.progress(Submitted(submitted.printer_job)) == Progress(
        Stage.PRINTED, "pages counted"
    )
    assert verified == [receipt]
    driver.check = None
    assert driver.progress(submitted) == Progress(Stage.PRINTED)


def test_raw_closed_port_is_unreachable() -> None:
    port = free_port()
    with pytest.raises(PrinterUnreachable, match=f"127.0.0.1:{port} refused the connection"):
        RawDriver("127.0.0.1", port, timeout=2).submit(iter([b"never sent"]), None, PrintOptions())


def test_raw_connection_broken_mid_document() -> None:
    document = os.urandom(12 * MB)  # more than loopback socket buffers hold
    with RawSink(close_after=256 * 1024) as sink:
        with pytest.raises(PrinterError, match="broke after") as info:
            RawDriver("127.0.0.1", sink.port, timeout=5).submit(
                chunks(document), len(document), PrintOptions()
            )
        assert not isinstance(info.value, PrinterUnreachable)
        assert sink.wait(1, include_broken=True)[0] == document[: 256 * 1024]
        assert sink.received() == []  # nothing that looks like a complete document


def test_raw_stalled_printer_is_not_ready() -> None:
    # A printer that accepts the TCP connection but never reads (busy, out of paper).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(PrinterNotReady, match="stopped taking data"):
            RawDriver("127.0.0.1", port, timeout=1).submit(
                chunks(os.urandom(16 * MB)), None, PrintOptions()
            )
        assert time.monotonic() - started < 10


def test_raw_source_failure_propagates() -> None:
    def failing() -> Iterator[bytes]:
        yield b"x" * 1000
        raise ValueError("decryption failed")

    with RawSink() as sink:
        with pytest.raises(ValueError, match="decryption failed"):
            RawDriver("127.0.0.1", sink.port, timeout=5).submit(failing(), None, PrintOptions())
        sink.wait(1, include_broken=True, timeout=3)
        assert sink.received() == []  # reset, not a clean end of document


def test_raw_printer_that_never_closes() -> None:
    # Reads everything but keeps the connection open: accepted once every byte is
    # acknowledged and nothing moves for `timeout`.
    document = os.urandom(MB)
    got = bytearray()
    released = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while data := conn.recv(65536):
                    got.extend(data)
                released.wait(10)  # after the sender's FIN: still no close

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        driver = RawDriver("127.0.0.1", listener.getsockname()[1], timeout=1)
        submitted = driver.submit(chunks(document), len(document), PrintOptions())
        released.set()
        thread.join(5)
    assert bytes(got) == document
    assert submitted.receipt is not None
    assert not submitted.receipt.peer_closed
    assert submitted.receipt.bytes_sent == len(document)
    assert driver.progress(submitted) == Progress(Stage.PRINTED)


def test_raw_receipt_text() -> None:
    with pytest.raises(PrinterError, match="not a RAW delivery receipt"):
        RawReceipt.parse("42")
    with pytest.raises(PrinterError, match="damaged RAW delivery receipt"):
        RawReceipt.parse("raw host=h port=x")


# --------------------------------------------------------------------------- CUPS


def printer_jobs(printer: VirtualPrinter) -> list[dict[str, str]]:
    """The printer's own record of the jobs it got (Get-Jobs, which-jobs all, by ipptool)."""
    test = printer.root / "jobs.test"
    test.write_text(
        '{\n NAME "Get-Jobs"\n OPERATION Get-Jobs\n GROUP operation-attributes-tag\n'
        " ATTR charset attributes-charset utf-8\n"
        " ATTR naturalLanguage attributes-natural-language en\n"
        " ATTR uri printer-uri $uri\n ATTR name requesting-user-name test\n"
        " ATTR keyword which-jobs all\n"
        " ATTR keyword requested-attributes"
        " job-id,job-name,job-state,copies,print-color-mode,job-originating-user-name\n"
        " STATUS successful-ok\n DISPLAY job-id\n DISPLAY job-name\n DISPLAY job-state\n"
        " DISPLAY copies\n DISPLAY print-color-mode\n DISPLAY job-originating-user-name\n}\n"
    )
    out = subprocess.run(
        ["ipptool", "-c", "-T", "5", printer.uri, str(test)],
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    ).stdout.splitlines()
    header = out[0].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in out[1:] if line]


def printer_job(printer: VirtualPrinter, name: str) -> dict[str, str] | None:
    return next((job for job in printer_jobs(printer) if job.get("job-name") == name), None)


@pytest.fixture(scope="module")
def ippeve() -> Iterator[VirtualPrinter]:
    """One simplex ippeveprinter, with its own D-Bus and avahi, for the module."""
    with MdnsBus() as bus, VirtualPrinter(bus, duplex=False) as printer:
        yield printer
    assert processes_mentioning(str(printer.root)) == []
    assert processes_mentioning(str(bus.root)) == []


@pytest.fixture(scope="module")
def cupsd() -> Iterator[PrivateCups]:
    server = PrivateCups()
    try:
        server.start()
        yield server
    finally:
        sid = server.process.pid if server.process else None
        server.stop()
        assert processes_mentioning(str(server.root)) == []
        assert sid is None or session_members(sid) == []


@pytest.fixture(scope="module")
def queue(cupsd: PrivateCups, ippeve: VirtualPrinter) -> str:
    create_everywhere_queue("office", ippeve.uri, server=cupsd.server, timeout=30)
    return "office"


def job_state(cupsd: PrivateCups, job_id: int) -> dict[str, object]:
    with CUPS_LOCK:
        conn = _connect(cupsd.server, "root")
        attrs: dict[str, object] = conn.getJobAttributes(job_id)
        return attrs


def wait_stage(driver: CupsDriver, submitted: Submitted, timeout: float) -> Progress:
    deadline = time.monotonic() + timeout
    while True:
        progress = driver.progress(submitted)
        if progress.stage in (Stage.PRINTED, Stage.FAILED) or time.monotonic() > deadline:
            return progress
        time.sleep(0.2)


TEXT = b"meshprint delivery test\n" * 40


def test_cups_prints_two_copies_and_it_arrives(
    cupsd: PrivateCups, ippeve: VirtualPrinter, queue: str
) -> None:
    title = f"two-copies-{uuid.uuid4().hex[:6]}"
    driver = CupsDriver(queue, server=cupsd.server, purge=False)
    options = PrintOptions(
        copies=2, color=False, title=title, user="alice", document_format="text/plain"
    )
    # bytearray and memoryview chunks are fine too
    document = iter([TEXT[:100], bytearray(TEXT[100:500]), memoryview(TEXT[500:])])
    submitted = driver.submit(document, len(TEXT), options)

    assert wait_stage(driver, submitted, 30) == Progress(
        Stage.PRINTED, impressions=2
    )  # CUPS counted both copies
    attrs = job_state(cupsd, int(submitted.printer_job))
    assert attrs["job-state"] == 9  # completed
    assert attrs["copies"] == 2

    # CUPS got it from this process's own account (alice has none: cupsd 2.4.2-3+deb12u10
    # crashes on jobs owned by such a name), with her name in the job's name.
    arrived = wait_for(lambda: printer_job(ippeve, f"alice: {title}"), 10)
    assert arrived, printer_jobs(ippeve)
    assert arrived["copies"] == "2"
    assert arrived["print-color-mode"] == "monochrome"
    assert arrived["job-originating-user-name"] == service_account()
    assert arrived["job-state"] == "completed"
    files = list(ippeve.spool.glob(f"*{title}.*"))
    assert any(f.stat().st_size > 0 for f in files), files


def test_cups_purges_finished_job_from_spool(cupsd: PrivateCups, queue: str) -> None:
    driver = CupsDriver(queue, server=cupsd.server)  # purge=True
    options = PrintOptions(title="purged", document_format="text/plain")
    submitted = driver.submit(iter([TEXT]), len(TEXT), options)
    job_id = int(submitted.printer_job)
    assert wait_stage(driver, submitted, 30) == Progress(Stage.PRINTED, impressions=1)
    # The spooled plaintext is gone; CUPS no longer knows the job; progress still answers.
    assert not list((cupsd.root / "spool").glob(f"d{job_id:05d}-*"))
    with pytest.raises(cups.IPPError):
        job_state(cupsd, job_id)
    assert driver.progress(submitted) == Progress(Stage.PRINTED, impressions=1)


def test_cups_job_waits_while_printer_is_down(
    cupsd: PrivateCups, ippeve: VirtualPrinter, queue: str
) -> None:
    title = f"while-down-{uuid.uuid4().hex[:6]}"
    driver = CupsDriver(queue, server=cupsd.server, purge=False)
    port = ippeve.port
    ippeve.stop()
    try:
        submitted = driver.submit(
            iter([TEXT]), len(TEXT), PrintOptions(title=title, document_format="text/plain")
        )
        job_id = int(submitted.printer_job)

        def waiting_for_printer() -> Progress | None:
            progress = driver.progress(submitted)
            return progress if "unavailable" in progress.reason else None

        waiting = wait_for(waiting_for_printer, 20)
        assert waiting, driver.progress(submitted)
        assert waiting.stage is Stage.PRINTING
        assert "The printer may not exist or is unavailable at this time." in waiting.reason
        time.sleep(1)
        assert job_state(cupsd, job_id)["job-state"] == 5  # still processing, not lost
    finally:
        # Back on the same address (VirtualPrinter.start picks a free port: give it ours).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ippeve_fixture, "free_port", lambda: port)
            ippeve.start()
    assert wait_stage(driver, submitted, 45) == Progress(Stage.PRINTED, impressions=1)
    assert job_state(cupsd, job_id)["job-state"] == 9
    assert wait_for(lambda: printer_job(ippeve, f"{PrintOptions().user}: {title}"), 10)


def test_cups_unknown_queue_and_job(cupsd: PrivateCups) -> None:
    driver = CupsDriver("no-such-queue", server=cupsd.server)
    with pytest.raises(PrinterError, match=r"^no CUPS queue no-such-queue$"):
        driver.submit(iter([TEXT]), None, PrintOptions())
    with pytest.raises(PrinterError, match="CUPS has no job 99999"):
        driver.progress(Submitted("99999"))


def test_cups_not_running(tmp_path: Path) -> None:
    driver = CupsDriver("office", server=str(tmp_path / "cups.sock"))
    with pytest.raises(PrinterUnreachable, match=r"^CUPS is not running \("):
        driver.submit(iter([TEXT]), None, PrintOptions())
    with pytest.raises(PrinterUnreachable, match=r"^CUPS is not running \("):
        driver.progress(Submitted("1"))


def test_cups_rejects_sides_the_printer_cannot_do(cupsd: PrivateCups, queue: str) -> None:
    # ippeveprinter without -2 prints one-sided only.
    driver = CupsDriver(queue, server=cupsd.server)
    with pytest.raises(PrinterRejected, match="cannot print two-sided-long-edge"):
        driver.submit(iter([TEXT]), None, PrintOptions(sides="two-sided-long-edge"))


def test_cups_source_failure_cancels_the_job(cupsd: PrivateCups, queue: str) -> None:
    def failing() -> Iterator[bytes]:
        yield TEXT
        raise ValueError("decryption failed")

    def spooled() -> set[str]:
        return {p.name for p in (cupsd.root / "spool").glob("d*")}

    jobs, files = set(_all_jobs(cupsd)), spooled()
    driver = CupsDriver(queue, server=cupsd.server)
    with pytest.raises(ValueError, match="decryption failed"):
        driver.submit(failing(), None, PrintOptions(document_format="text/plain"))
    # Cancelled and purged: no job to print half a document, no partial plaintext left.
    assert set(_all_jobs(cupsd)) == jobs
    assert spooled() == files


def _all_jobs(cupsd: PrivateCups) -> list[int]:
    with CUPS_LOCK:
        conn = _connect(cupsd.server, "root")
        return list(conn.getJobs(which_jobs="all"))


def test_create_everywhere_queue_waits_for_the_driver(
    cupsd: PrivateCups, ippeve: VirtualPrinter
) -> None:
    create_everywhere_queue("fresh", ippeve.uri, server=cupsd.server, timeout=30)
    with CUPS_LOCK:
        conn = _connect(cupsd.server, "root")
        attrs = conn.getPrinterAttributes("fresh")
    assert attrs["printer-make-and-model"].endswith("IPP Everywhere")
    assert attrs["printer-is-accepting-jobs"] is True
    assert attrs["printer-state"] == 3  # idle, enabled
    # A job sent at once goes through (no "Unable to convert file" race).
    driver = CupsDriver("fresh", server=cupsd.server)
    submitted = driver.submit(
        iter([TEXT]), None, PrintOptions(title="right-away", document_format="text/plain")
    )
    assert wait_stage(driver, submitted, 30) == Progress(Stage.PRINTED, impressions=1)


def test_create_everywhere_queue_for_an_absent_printer(cupsd: PrivateCups) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(PrinterUnreachable, match="does not answer"):
        create_everywhere_queue(
            "absent", f"ipp://127.0.0.1:{port}/ipp/print", server=cupsd.server, timeout=5
        )
    assert time.monotonic() - started < 3


def test_create_everywhere_queue_for_something_that_is_not_ipp(cupsd: PrivateCups) -> None:
    # Something listens, but CUPS cannot build a driver from it: the wait times out.
    with RawSink() as sink:
        started = time.monotonic()
        with pytest.raises(PrinterUnreachable, match="not ready after 2 s"):
            create_everywhere_queue(
                "not-ipp", f"ipp://127.0.0.1:{sink.port}/ipp/print", server=cupsd.server, timeout=2
            )
        assert 2 <= time.monotonic() - started < 6


def test_cups_concurrent_users_keep_their_names(
    cupsd: PrivateCups, ippeve: VirtualPrinter, queue: str
) -> None:
    # Two users submitting at once from two threads: each job carries its own user in its
    # name, and goes to CUPS as the service account (pycups' user is set under CUPS_LOCK,
    # just before opening its connection).
    driver = CupsDriver(queue, server=cupsd.server)
    tag = uuid.uuid4().hex[:6]
    results: dict[str, Submitted] = {}

    def submit(user: str) -> None:
        options = PrintOptions(user=user, title=f"{user}-{tag}", document_format="text/plain")
        results[user] = driver.submit(chunks(TEXT, 100), None, options)

    threads = [threading.Thread(target=submit, args=(u,)) for u in ("carol", "dave")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(results) == {"carol", "dave"}
    for user, submitted in results.items():
        assert wait_stage(driver, submitted, 30) == Progress(Stage.PRINTED, impressions=1)
        arrived = wait_for(lambda u=user: printer_job(ippeve, f"{u}: {u}-{tag}"), 10)
        assert arrived, printer_jobs(ippeve)
        assert arrived["job-originating-user-name"] == service_account()
    assert cupsd.running


def test_cups_queue_not_accepting_jobs(cupsd: PrivateCups, ippeve: VirtualPrinter) -> None:
    create_everywhere_queue("paused", ippeve.uri, server=cupsd.server, timeout=30)
    with CUPS_LOCK:
        _connect(cupsd.server, "root").rejectJobs("paused", reason="toner being replaced")
    with pytest.raises(PrinterNotReady, match=r"not accepting jobs \(toner being replaced\)"):
        CupsDriver("paused", server=cupsd.server).submit(iter([TEXT]), None, PrintOptions())


def test_cups_dies_mid_document(ippeve: VirtualPrinter) -> None:
    with PrivateCups() as server:
        create_everywhere_queue("q", ippeve.uri, server=server.server, timeout=30)
        assert server.process is not None
        process = server.process

        def document() -> Iterator[bytes]:
            for index in range(64):
                if index == 8:
                    process.kill()
                    process.wait()
                yield os.urandom(64 * 1024)

        with pytest.raises(PrinterUnreachable, match=r"^CUPS is not running \("):
            CupsDriver("q", server=server.server).submit(document(), None, PrintOptions())


def test_cups_pending_job_then_cancelled(cupsd: PrivateCups, ippeve: VirtualPrinter) -> None:
    create_everywhere_queue("held", ippeve.uri, server=cupsd.server, timeout=30)
    with CUPS_LOCK:
        _connect(cupsd.server, "root").disablePrinter("held", reason="paused by the office")
    driver = CupsDriver("held", server=cupsd.server)
    options = PrintOptions(document_format="text/plain")

    first = driver.submit(iter([TEXT]), None, options)
    queued = driver.progress(first)
    assert queued.stage is Stage.QUEUED
    assert job_state(cupsd, int(first.printer_job))["job-state"] == 3  # pending
    # Cancelled at CUPS by someone else: job-state 7 → FAILED, with CUPS' reason.
    with CUPS_LOCK:
        _connect(cupsd.server, "root").cancelJob(int(first.printer_job))
    failed = driver.progress(first)
    assert failed.stage is Stage.FAILED
    assert "job-canceled" in failed.reason
    assert not list((cupsd.root / "spool").glob(f"d{int(first.printer_job):05d}-*"))

    # Cancelled by the appliance.
    second = driver.submit(iter([TEXT]), None, options)
    driver.cancel(second)
    assert driver.progress(second).stage is Stage.FAILED
    assert not list((cupsd.root / "spool").glob(f"d{int(second.printer_job):05d}-*"))
