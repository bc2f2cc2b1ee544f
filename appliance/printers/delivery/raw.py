"""RAW (AppSocket / JetDirect, TCP port 9100) delivery.

The document goes from the decrypting iterator into one TCP connection; nothing is
written to disk. RAW carries no options and no format: a printer that speaks `pdl`
(PDF, PostScript or PCL) gets the document converted through CUPS's filters when it is
in another format or when copies, sides or black-and-white must be written into it
(`appliance.printers.convert`, in memory). Without a `pdl` the bytes go as they are.

RAW has no job state either: the driver knows that the printer's TCP stack took every
byte and that the connection ended cleanly. Whether the paper came out is told by a
`CompletionCheck` (the SNMP page counter, `appliance.printers.pagecount`): its baseline
is read before sending and kept in the receipt with the number of impressions expected.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from appliance.printers.convert import Conversion, needs_conversion
from appliance.printers.delivery import PrintOptions, Progress, Stage, Submitted
from appliance.printers.errors import PrinterError, PrinterNotReady, PrinterUnreachable

DEFAULT_PORT = 9100
DEFAULT_TIMEOUT = 30.0
_SLICE = 256 * 1024
_PREFIX = "raw"


@dataclass(frozen=True)
class RawReceipt:
    """What a RAW delivery leaves behind: where it went, how much, when, and how it ended.

    `str(receipt)` is what `Submitted.printer_job` holds, and `RawReceipt.parse` reads it
    back, so a receipt survives being stored as text.
    """

    host: str
    port: int
    bytes_sent: int
    started_at: float  # time.time() when the connection opened
    finished_at: float  # time.time() when the printer had taken everything
    peer_closed: bool  # the printer closed its side (True), or only acknowledged all data
    pages_before: int | None = None  # the printer's page counter before sending
    pages: int | None = None  # how far the page counter should advance, when known

    def __str__(self) -> str:
        text = (
            f"{_PREFIX} host={self.host} port={self.port} bytes={self.bytes_sent}"
            f" started={self.started_at:.3f} finished={self.finished_at:.3f}"
            f" closed={'peer' if self.peer_closed else 'acked'}"
        )
        if self.pages_before is not None:
            text += f" before={self.pages_before}"
        if self.pages is not None:
            text += f" pages={self.pages}"
        return text

    @classmethod
    def parse(cls, text: str) -> RawReceipt:
        words = text.split()
        if not words or words[0] != _PREFIX:
            raise PrinterError(f"not a RAW delivery receipt: {text!r}")
        try:
            fields = dict(word.split("=", 1) for word in words[1:])
            return cls(
                host=fields["host"],
                port=int(fields["port"]),
                bytes_sent=int(fields["bytes"]),
                started_at=float(fields["started"]),
                finished_at=float(fields["finished"]),
                peer_closed=fields["closed"] == "peer",
                pages_before=int(fields["before"]) if "before" in fields else None,
                pages=int(fields["pages"]) if "pages" in fields else None,
            )
        except (KeyError, ValueError) as err:
            raise PrinterError(f"damaged RAW delivery receipt: {text!r}") from err


@dataclass(frozen=True)
class RawSubmitted(Submitted):
    """`Submitted` with the receipt as an object (`printer_job` is its text form)."""

    receipt: RawReceipt | None = None


class CompletionCheck(Protocol):
    """Tells whether a RAW job really printed (the SNMP page counter)."""

    def baseline(self) -> int | None:
        """The printer's page counter now, before sending; None if it has none."""
        ...

    def progress(self, receipt: RawReceipt) -> Progress:
        """Where the job is, from the counter's advance since `receipt.pages_before`. May
        raise a PrinterError when the printer does not answer."""
        ...


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes still in the kernel's send queue (sent but not acknowledged, or not yet
    sent), or None where the platform cannot say (SIOCOUTQ is Linux)."""
    try:  # POSIX-only modules, imported where they exist (not on Windows)
        import fcntl
        import termios

        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except (ImportError, OSError, AttributeError):
        return None
    value: int = struct.unpack("i", raw)[0]
    return value


def _pages_to_count(conversion: Conversion | None, options: PrintOptions) -> int | None:
    """The page-counter advance to expect: the impressions the filters counted, halved for
    two-sided printing (printers differ in counting sheets or sides)."""
    if conversion is None or not conversion.pages:
        return None
    if options.sides == "one-sided":
        return conversion.pages
    return max(1, (conversion.pages + 1) // 2)


class RawDriver:
    """Send documents to `host:port` over a plain TCP connection.

    `timeout` bounds connecting and every stall afterwards: a send that cannot make
    progress, or a printer that neither takes more data nor closes the connection, for
    that many seconds. `pdl` is the printer's language (None: send the bytes as they
    are); `check` confirms the job came out.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        timeout: float = DEFAULT_TIMEOUT,
        pdl: str | None = None,
        check: CompletionCheck | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.pdl = pdl
        self.check = check

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def submit(
        self, document: Iterator[bytes], size: int | None, options: PrintOptions
    ) -> RawSubmitted:
        conversion = None
        if self.pdl is not None and needs_conversion(self.pdl, options.document_format, options):
            conversion = Conversion(document, options.document_format, self.pdl, options)
            document, size = iter(conversion), None
        pages_before = self.check.baseline() if self.check is not None else None
        sock = self._connect()
        started = time.time()
        sent = 0
        try:
            for chunk in document:
                view = memoryview(chunk).cast("B")
                # Slices, so that `timeout` bounds a stall rather than a whole large chunk.
                for offset in range(0, len(view), _SLICE):
                    piece = view[offset : offset + _SLICE]
                    try:
                        sock.sendall(piece)
                    except TimeoutError as err:
                        raise PrinterNotReady(
                            f"the printer at {self.address} stopped taking data after"
                            f" {sent} bytes (nothing moved for {self.timeout:g} s); it may be"
                            " out of paper, jammed or busy"
                        ) from err
                    except OSError as err:
                        raise self._broken(sent, err) from err
                    sent += len(piece)
            if size is not None and sent != size:
                raise PrinterError(
                    f"the document was {sent} bytes, not the {size} announced; the printer at"
                    f" {self.address} got an incomplete document"
                )
            peer_closed = self._finish(sock, sent)
        except BaseException:
            # Reset rather than close cleanly: a printer that cares can tell the document
            # is incomplete. (Most print what they got; RAW cannot take it back.)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise
        finally:
            sock.close()
        # Milliseconds: what the text form keeps, so a parsed receipt equals this one.
        receipt = RawReceipt(
            self.host,
            self.port,
            sent,
            round(started, 3),
            round(time.time(), 3),
            peer_closed,
            pages_before,
            _pages_to_count(conversion, options),
        )
        return RawSubmitted(printer_job=str(receipt), receipt=receipt)

    def progress(self, submitted: Submitted) -> Progress:
        receipt = (
            submitted.receipt
            if isinstance(submitted, RawSubmitted) and submitted.receipt is not None
            else RawReceipt.parse(submitted.printer_job)
        )
        if self.check is not None and receipt.pages_before is not None:
            return self.check.progress(receipt)
        # submit() only returns once the printer took every byte: as far as RAW can tell
        # without a page counter, the job is done.
        return Progress(Stage.PRINTED)

    # -- internals --

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except ConnectionRefusedError as err:
            raise PrinterUnreachable(
                f"the printer at {self.address} refused the connection: it is on the network"
                " but nothing accepts RAW print jobs on that port (wrong port, RAW printing"
                " disabled, or it is still starting)"
            ) from err
        except TimeoutError as err:
            raise PrinterUnreachable(
                f"no answer from the printer at {self.address} within {self.timeout:g} s:"
                " is it switched on and connected?"
            ) from err
        except OSError as err:  # no route, unknown host name …
            raise PrinterUnreachable(
                f"cannot reach the printer at {self.address}: {err.strerror or err}"
            ) from err
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock

    def _broken(self, sent: int, err: OSError) -> PrinterError:
        return PrinterError(
            f"the connection to the printer at {self.address} broke after {sent} bytes"
            f" ({err.strerror or err}); the job was not printed completely"
        )

    def _finish(self, sock: socket.socket, sent: int) -> bool:
        """Half-close, then wait until the printer has taken everything: it closes its side
        (True), or every byte is acknowledged and it stays quiet (False)."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError as err:
            raise self._broken(sent, err) from err
        pending = _unacknowledged(sock)
        last_move = time.monotonic()
        poller = select.poll()  # not select(): descriptors above 1023 are fine
        poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            if poller.poll(50):
                try:
                    data = sock.recv(65536)  # a back channel (PJL status …) is discarded
                except OSError as err:
                    raise self._broken(sent, err) from err
                if not data:
                    return True
                last_move = time.monotonic()
            now_pending = _unacknowledged(sock)
            if now_pending != pending:
                pending, last_move = now_pending, time.monotonic()
            if time.monotonic() - last_move > self.timeout:
                if pending == 0:
                    return False
                if pending is None:  # cannot tell: the printer never closed
                    return False
                raise PrinterNotReady(
                    f"the printer at {self.address} stopped taking data: {pending} of"
                    f" {sent} bytes not accepted after {self.timeout:g} s; it may be out of"
                    " paper, jammed or busy"
                )
