"""IppClient and IppDriver against a real IPP Everywhere printer (ippeveprinter) over
ipp:// and ipps://, and against things that are not printers."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import random
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.devtools.processes import free_port
from appliance.printers.delivery import PrintOptions, Stage, Submitted
from appliance.printers.delivery.ipp import IppDriver
from appliance.printers.errors import (
    NotAPrinter,
    PrinterError,
    PrinterNotReady,
    PrinterRejected,
    PrinterUnreachable,
)
from appliance.printers.ipp.client import IppClient
from appliance.printers.ipp.enums import JobState, PrinterState
from appliance.printers.ipp.exceptions import IppTlsError
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter, mdns_bus, virtual_printer

pytestmark = pytest.mark.integration
__all__ = ["mdns_bus", "virtual_printer"]  # pytest fixtures used by name below

OPTIONS = PrintOptions(
    copies=2,
    sides="two-sided-long-edge",
    color=False,
    title="Quarterly report",
    user="alice",
    document_format="application/pdf",
)


def document(size: int, chunk: int = 65536, seed: int = 7) -> Iterator[bytes]:
    """`size` pseudo-random bytes, made chunk by chunk (never held whole); the same bytes
    for the same size and seed, whatever the chunk size."""
    rng = random.Random(seed)
    block = b""
    while size > 0:
        if not block:
            block = rng.randbytes(65536)
        piece, block = block[: min(chunk, size)], block[min(chunk, size) :]
        size -= len(piece)
        yield piece


def wait_printed(driver: IppDriver, job: Submitted, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (progress := driver.progress(job)).stage is not Stage.PRINTED:
        assert progress.stage is not Stage.FAILED, progress
        assert time.monotonic() < deadline, f"job {job} still {progress}"
        time.sleep(0.1)


# --- printing


def test_printer_attributes(virtual_printer: VirtualPrinter) -> None:
    info = virtual_printer.client().get_printer_attributes()
    assert info.make_and_model == "Example Printer"
    assert info.name == virtual_printer.name
    assert info.state == PrinterState.IDLE
    assert "two-sided-long-edge" in info.sides_supported
    assert "application/pdf" in info.document_formats
    assert info.copies_supported is not None and 2 in info.copies_supported
    assert not info.color_supported
    assert f"ipps://127.0.0.1:{virtual_printer.port}/ipp/print" in info.uris


@pytest.mark.parametrize("security", ["ipp", "ipps-pinned", "ipps-self-signed"])
def test_print_copies_and_sides_arrive_and_the_document_is_identical(
    virtual_printer: VirtualPrinter, security: str
) -> None:
    if security == "ipp":
        driver = IppDriver(virtual_printer.uri)
    elif security == "ipps-pinned":
        driver = IppDriver(virtual_printer.ipps_uri, pin_sha256=virtual_printer.fingerprint())
    else:
        driver = IppDriver(virtual_printer.ipps_uri, allow_self_signed=True)
    size = 300_001
    job = driver.submit(document(size, chunk=7000), size, OPTIONS)
    assert job == Submitted("1")
    wait_printed(driver, job)

    status = driver.client.get_job_attributes(1)
    assert status.state == JobState.COMPLETED
    assert status.copies == 2
    assert status.sides == "two-sided-long-edge"
    assert status.print_color_mode == "monochrome"
    assert status.user == "alice"
    assert status.name == "Quarterly report"
    assert status.document_format == "application/pdf"
    spooled = virtual_printer.document(1).read_bytes()
    assert spooled == b"".join(document(size, chunk=7000))


def test_default_verification_refuses_the_self_signed_printer(
    virtual_printer: VirtualPrinter,
) -> None:
    fingerprint = virtual_printer.fingerprint()
    with pytest.raises(IppTlsError, match="self-signed certificate") as info:
        IppClient(virtual_printer.ipps_uri).get_printer_attributes()
    assert info.value.fingerprint == fingerprint
    assert fingerprint in str(info.value)  # so an administrator can pin it after checking
    with pytest.raises(NotAPrinter, match="cannot trust the printer"):
        IppDriver(virtual_printer.ipps_uri).submit(document(1000), 1000, OPTIONS)
    assert virtual_printer.spool_files(1) == []


def test_a_wrong_pin_is_refused_before_anything_is_sent(virtual_printer: VirtualPrinter) -> None:
    driver = IppDriver(virtual_printer.ipps_uri, pin_sha256="00" * 32)
    with pytest.raises(NotAPrinter, match="does not match the pinned fingerprint"):
        driver.submit(document(1000), 1000, OPTIONS)
    assert virtual_printer.spool_files(1) == []


def test_verification_with_the_printer_certificate_as_trust_anchor(
    virtual_printer: VirtualPrinter, tmp_path: Path
) -> None:
    """Full verification (chain and host name) passes when the certificate is trusted."""
    anchor = tmp_path / "printer.pem"
    anchor.write_text(ssl.DER_cert_to_PEM_cert(virtual_printer.certificate()))
    uri = f"ipps://localhost:{virtual_printer.port}/ipp/print"  # the name in its certificate
    assert IppClient(uri, cafile=str(anchor)).get_printer_attributes().name
    with pytest.raises(IppTlsError, match=r"not valid for '127\.0\.0\.1'"):
        IppClient(virtual_printer.ipps_uri, cafile=str(anchor)).get_printer_attributes()


def test_unsupported_format_is_rejected(virtual_printer: VirtualPrinter) -> None:
    driver = IppDriver(virtual_printer.uri)
    postscript = PrintOptions(document_format="application/postscript")
    with pytest.raises(
        PrinterRejected, match="does not support document-format 'application/postscript'"
    ):
        driver.submit(iter([b"%!PS-Adobe-3.0\n"]), None, postscript)
    with pytest.raises(PrinterRejected, match="does not support sides"):
        sideways = PrintOptions(sides="two-sided-sideways", document_format="text/plain")
        driver.submit(iter([b"x"]), None, sideways)


def test_simplex_printer_refuses_duplex(mdns_bus: MdnsBus) -> None:
    with (
        VirtualPrinter(mdns_bus, duplex=False) as simplex,
        pytest.raises(PrinterRejected, match="sides 'two-sided-long-edge'"),
    ):
        IppDriver(simplex.uri).submit(document(100), 100, OPTIONS)


def test_cancel(mdns_bus: MdnsBus, tmp_path: Path) -> None:
    slow = tmp_path / "slow.sh"
    slow.write_text("#!/bin/sh\nsleep 3\n")
    slow.chmod(0o755)
    with VirtualPrinter(mdns_bus, command=str(slow)) as printer:
        driver = IppDriver(printer.uri)
        job = driver.submit(document(5000), 5000, OPTIONS)
        driver.client.cancel_job(int(job.printer_job))
        deadline = time.monotonic() + 5
        while (progress := driver.progress(job)).stage is not Stage.FAILED:
            assert time.monotonic() < deadline, progress
            time.sleep(0.1)
        assert "canceled" in progress.reason


def test_a_document_that_fails_midway_is_canceled_at_the_printer(
    virtual_printer: VirtualPrinter,
) -> None:
    """The end of a chunked upload looks like the end of the document to many printers, so
    the client cancels the job before it lets the connection go. (ippeveprinter marks the
    job canceled but still runs its -c command on what it received: a quirk of the
    simulator; the job state is what a printer acts on.)"""

    def failing() -> Iterator[bytes]:
        yield from document(200_000)
        raise ValueError("chunk 4 failed authentication")

    client = virtual_printer.client()
    with pytest.raises(ValueError, match="authentication"):
        client.print_job(failing(), OPTIONS)
    deadline = time.monotonic() + 5
    while not (status := client.get_job_attributes(1)).finished:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status.state == JobState.CANCELED
    assert status.state_reasons == ["job-canceled-by-user"]


# --- busy: ippeveprinter prints one job at a time


def test_busy_printer(mdns_bus: MdnsBus, tmp_path: Path) -> None:
    slow = tmp_path / "slow.sh"
    slow.write_text("#!/bin/sh\nsleep 2\n")
    slow.chmod(0o755)
    with VirtualPrinter(mdns_bus, command=str(slow)) as printer:
        first = IppDriver(printer.uri).submit(document(1000), 1000, OPTIONS)
        assert first == Submitted("1")
        deadline = time.monotonic() + 2
        while printer.info().state != PrinterState.PROCESSING:
            assert time.monotonic() < deadline, "the printer never started the first job"
            time.sleep(0.05)

        # Asked at once, with a document too big to send twice: busy, the job stays held.
        impatient = IppDriver(printer.uri, busy_wait=0)
        with pytest.raises(PrinterNotReady, match="printer busy, try again"):
            impatient.submit(document(3_000_000), None, OPTIONS)

        # A small document is sent again while the printer says busy, until it takes it.
        started = time.monotonic()
        second = IppClient(printer.uri, busy_timeout=10).print_job(document(2000), OPTIONS)
        assert second == 2
        assert time.monotonic() - started > 0.5

        # The driver waits for the printer to finish the job it is printing.
        third = IppDriver(printer.uri, busy_wait=10).submit(document(500_000), None, OPTIONS)
        assert third == Submitted("3")
        assert printer.document(3).read_bytes() == b"".join(document(500_000))


# --- not printers


def test_closed_port_is_unreachable() -> None:
    uri = f"ipp://127.0.0.1:{free_port()}/ipp/print"
    with pytest.raises(PrinterUnreachable, match="refused"):
        IppDriver(uri).submit(document(10), 10, OPTIONS)
    with pytest.raises(PrinterUnreachable):
        IppDriver(uri).progress(Submitted("1"))


@pytest.fixture
def web_server() -> Iterator[int]:
    """A plain HTTP server (Python's http.server): answers, but is no printer."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_http_server_that_is_not_ipp(web_server: int) -> None:
    with pytest.raises(NotAPrinter, match="HTTP 501"):
        IppDriver(f"ipp://127.0.0.1:{web_server}/ipp/print").submit(document(10), 10, OPTIONS)
    with pytest.raises(NotAPrinter, match=r"TLS handshake .* failed"):
        IppDriver(f"ipps://127.0.0.1:{web_server}/ipp/print").info()


def test_ipp_on_the_printer_web_path_that_is_not_a_printer(
    virtual_printer: VirtualPrinter,
) -> None:
    with pytest.raises(PrinterError, match="client-error-not-found"):
        IppDriver(f"ipp://127.0.0.1:{virtual_printer.port}/nothing/here").info()


# --- memory


CLIENT_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    from appliance.printers.delivery import PrintOptions
    from appliance.printers.delivery.ipp import IppDriver
    from tests.integration.test_ipp_printer import document

    def peak_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    uri, pin, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    driver = IppDriver(uri, pin_sha256=pin)
    options = PrintOptions(title="big", document_format="application/pdf")
    driver.submit(document(1000), 1000, options)  # warm up: imports, TLS, buffers
    before = peak_kib()
    digest = hashlib.sha256()

    def counted():
        for piece in document(size):
            digest.update(piece)
            yield piece

    job = driver.submit(counted(), size, options)
    print(json.dumps({"before": before, "after": peak_kib(), "sha256": digest.hexdigest(),
                      "job": job.printer_job}))
    """
)


def test_a_50_mb_document_streams_in_bounded_memory(virtual_printer: VirtualPrinter) -> None:
    size = 50 * 1024 * 1024
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT,
            virtual_printer.ipps_uri,
            virtual_printer.fingerprint(),
            str(size),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    growth_mib = (measured["after"] - measured["before"]) / 1024
    assert growth_mib < 10, f"peak RSS grew by {growth_mib:.1f} MiB streaming 50 MiB"
    spooled = virtual_printer.document(int(measured["job"]))
    assert spooled.stat().st_size == size
    digest = hashlib.sha256()
    with spooled.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == measured["sha256"]
