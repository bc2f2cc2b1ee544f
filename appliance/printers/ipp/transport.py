"""IPP over HTTP/1.1 (RFC 8010 section 4): one POST per request, over TCP or TLS.

A document is sent with chunked transfer encoding straight from its iterator, so memory
does not grow with its size. A printer may answer before it has read the whole request
(to refuse it); between chunks the sender looks for such an early answer and stops.
"""

from __future__ import annotations

import hashlib
import hmac
import select
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from appliance.printers.ipp.exceptions import (
    IppConnectionError,
    IppError,
    IppHttpError,
    IppTimeoutError,
    IppTlsError,
)

DEFAULT_PORT = 631
MAX_HEADER_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
USER_AGENT = "meshprint-ipp/1.0"


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # ipp or ipps
    host: str
    port: int
    path: str

    @property
    def tls(self) -> bool:
        return self.scheme == "ipps"

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def parse_uri(uri: str) -> Endpoint:
    """ipp://HOST[:PORT]/PATH or ipps://…; the port defaults to 631 for both."""
    try:
        parts = urlsplit(uri.strip())
        port = parts.port or DEFAULT_PORT
    except ValueError as err:
        raise IppError(f"{uri!r} is not a valid printer URI ({err})") from None
    if parts.scheme not in ("ipp", "ipps") or not parts.hostname:
        raise IppError(f"{uri!r} is not an ipp:// or ipps:// URI")
    return Endpoint(parts.scheme, parts.hostname, port, parts.path or "/ipp/print")


@dataclass(frozen=True)
class TlsPolicy:
    """How an ipps:// printer's certificate is checked.

    verify           check the chain against the system CAs and the host name (default)
    pin_sha256       accept exactly the certificate with this SHA-256 (hex, of its DER)
    allow_self_signed / verify=False   accept any certificate (explicitly unverified)
    """

    verify: bool = True
    pin_sha256: str | None = None
    allow_self_signed: bool = False
    cafile: str | None = None  # extra trust anchors for verify (a private CA)

    @property
    def pin(self) -> str | None:
        return self.pin_sha256.replace(":", "").lower() if self.pin_sha256 else None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.pin or self.allow_self_signed or not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the pin (if any) is checked after the handshake
        return context


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


class Connection:
    """One HTTP connection to the printer, used for one request."""

    def __init__(self, endpoint: Endpoint, tls: TlsPolicy, timeout: float) -> None:
        self.endpoint = endpoint
        self.tls = tls
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.peer_closed = False

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def open(self) -> None:
        where = self.endpoint.netloc
        try:
            raw = socket.create_connection((self.endpoint.host, self.endpoint.port), self.timeout)
        except TimeoutError:
            raise IppTimeoutError(f"no answer from {where} within {self.timeout:g}s") from None
        except ConnectionRefusedError:
            raise IppConnectionError(f"connection to {where} refused") from None
        except socket.gaierror as err:
            raise IppConnectionError(f"cannot resolve {self.endpoint.host}: {err}") from None
        except OSError as err:
            raise IppConnectionError(f"cannot connect to {where}: {err.strerror or err}") from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.endpoint.tls:
            self.sock = raw
            return
        try:
            self.sock = self._handshake(raw)
        except BaseException:
            raw.close()
            raise

    def _handshake(self, raw: socket.socket) -> ssl.SSLSocket:
        where = self.endpoint.netloc
        try:
            sock = self.tls.context().wrap_socket(raw, server_hostname=self.endpoint.host)
        except ssl.SSLCertVerificationError as err:
            seen = self._peek_fingerprint()
            hint = (
                f"; if this is the printer's own self-signed certificate, compare its SHA-256 "
                f"{seen} with the printer's status page and pin it, or allow self-signed"
                if seen
                else ""
            )
            raise IppTlsError(
                f"the certificate of {where} is not trusted ({err.verify_message}){hint}", seen
            ) from None
        except ssl.SSLError as err:
            raise IppTlsError(
                f"TLS handshake with {where} failed ({err.reason or err}): "
                "is this an ipps:// printer port?"
            ) from None
        except TimeoutError:
            raise IppTimeoutError(f"TLS handshake with {where} timed out") from None
        except OSError as err:
            raise IppConnectionError(f"TLS handshake with {where} failed: {err}") from None
        pin = self.tls.pin
        if pin is not None:
            der = sock.getpeercert(binary_form=True) or b""
            seen = fingerprint(der)
            if not hmac.compare_digest(seen, pin):
                sock.close()
                raise IppTlsError(
                    f"the certificate of {where} does not match the pinned fingerprint "
                    f"(pinned {pin}, presented {seen})",
                    seen,
                )
        return sock

    def _peek_fingerprint(self) -> str | None:
        """The SHA-256 of the certificate the printer presents, read without trusting it."""
        context = TlsPolicy(allow_self_signed=True).context()
        try:
            with (
                socket.create_connection(
                    (self.endpoint.host, self.endpoint.port), self.timeout
                ) as raw,
                context.wrap_socket(raw, server_hostname=self.endpoint.host) as sock,
            ):
                der = sock.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError):
            return None
        return fingerprint(der) if der else None

    # --- request

    def post(self, path: str, head: bytes, document: Iterable[bytes] | None = None) -> HttpResponse:
        """POST an IPP request: `head` (the encoded attributes), then the document if any."""
        assert self.sock is not None, "connection not open"
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.endpoint.netloc}",
            f"User-Agent: {USER_AGENT}",
            "Content-Type: application/ipp",
            "Connection: close",
        ]
        try:
            if document is None:
                lines.append(f"Content-Length: {len(head)}")
                self._send(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + head)
            else:
                lines.append("Transfer-Encoding: chunked")
                self._send(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + _chunk(head))
                if self._send_document(document):
                    self._send(b"0\r\n\r\n")
                elif self.peer_closed and not self.buffer:
                    raise _SendFailed()
        except _SendFailed:
            # The printer closed the connection while we were sending: it may have said why.
            if not self.buffer and not self._read_some():
                raise IppConnectionError(
                    f"{self.endpoint.netloc} closed the connection while the request was sent"
                ) from None
        return self._response()

    def _send_document(self, document: Iterable[bytes]) -> bool:
        """Send the document as chunks; False if the printer answered before the end."""
        for piece in document:
            if not piece:
                continue  # an empty chunk would end the body
            if self._answered_early():
                return False
            if len(piece) <= 16384:
                self._send(_chunk(piece))
            else:  # large: send it in place rather than copy it into a chunk
                self._send(f"{len(piece):X}\r\n".encode("ascii"))
                self._send(piece)
                self._send(b"\r\n")
        return True

    def _send(self, data: bytes) -> None:
        assert self.sock is not None
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            raise _SendFailed() from None
        except TimeoutError:
            raise IppTimeoutError(
                f"{self.endpoint.netloc} stopped reading for {self.timeout:g}s"
            ) from None

    def _answered_early(self) -> bool:
        """True when the printer has sent response bytes (or closed) mid-request."""
        assert self.sock is not None
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
        if not pending and not select.select([self.sock], [], [], 0)[0]:
            return False
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False  # TLS records without data (e.g. a session ticket)
        except (ConnectionResetError, BrokenPipeError):
            self.peer_closed = True
            return True
        finally:
            self.sock.settimeout(self.timeout)
        self.buffer += data
        self.peer_closed = not data
        return True

    # --- response

    def _read_some(self) -> bool:
        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise IppTimeoutError(
                f"no answer from {self.endpoint.netloc} within {self.timeout:g}s"
            ) from None
        except ssl.SSLError as err:
            raise IppTlsError(
                f"TLS error from {self.endpoint.netloc}: {err.reason or err}"
            ) from None
        except (ConnectionResetError, BrokenPipeError):
            return False
        if not data:
            return False
        self.buffer += data
        return True

    def _line(self, limit: int = MAX_HEADER_BYTES) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line.rstrip(b"\r\n")
            if len(self.buffer) > limit:
                raise IppHttpError(f"{self.endpoint.netloc} does not answer with HTTP")
            if not self._read_some():
                raise _closed(self.endpoint, bool(self.buffer))

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._read_some():
                raise IppHttpError(
                    f"{self.endpoint.netloc} closed the connection in the middle of its answer"
                )
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def _response(self) -> HttpResponse:
        while True:
            status_line = self._line()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise IppHttpError(
                    f"{self.endpoint.netloc} does not answer with HTTP "
                    f"(it said {status_line[:40]!r}): not an IPP printer port"
                )
            status = int(parts[1])
            reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
            headers = self._headers()
            if status != 100:
                break
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._chunked_body()
        elif "content-length" in headers:
            length = headers["content-length"].strip()
            if not length.isdigit():
                raise IppHttpError(f"{self.endpoint.netloc} sent a bad Content-Length {length!r}")
            if int(length) > MAX_RESPONSE_BYTES:
                raise IppHttpError(f"{self.endpoint.netloc} sent an oversized answer ({length} B)")
            body = self._exact(int(length))
        else:
            body = self._until_close()
        return HttpResponse(status, reason, headers, body)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        total = 0
        while True:
            line = self._line()
            total += len(line)
            if total > MAX_HEADER_BYTES:
                raise IppHttpError(f"{self.endpoint.netloc} sent oversized HTTP headers")
            if not line:
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise IppHttpError(f"{self.endpoint.netloc} sent a malformed HTTP header")
            headers[name.strip().lower()] = value.strip()

    def _chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            size_text = self._line().split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise IppHttpError(
                    f"{self.endpoint.netloc} sent a bad chunk size {size_text[:20]!r}"
                ) from None
            if size == 0:
                while self._line():  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_RESPONSE_BYTES:
                raise IppHttpError(f"{self.endpoint.netloc} sent an oversized answer")
            body += self._exact(size)
            if self._exact(2) != b"\r\n":
                raise IppHttpError(f"{self.endpoint.netloc} sent a malformed chunk")

    def _until_close(self) -> bytes:
        while self._read_some():
            if len(self.buffer) > MAX_RESPONSE_BYTES:
                raise IppHttpError(f"{self.endpoint.netloc} sent an oversized answer")
        body = bytes(self.buffer)
        self.buffer.clear()
        return body


class _SendFailed(Exception):
    """The printer closed the connection while we were sending."""


def _chunk(data: bytes) -> bytes:
    return f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n"


def _closed(endpoint: Endpoint, partial: bool) -> IppError:
    if partial:
        return IppHttpError(f"{endpoint.netloc} closed the connection in the middle of its answer")
    return IppHttpError(
        f"{endpoint.netloc} closed the connection without answering: not an IPP printer port?"
    )
