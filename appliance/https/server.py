"""The node's HTTPS server: streaming bodies, a router, JSON errors, bounded resources.

Connections are accepted by `connections.ConnectionServer` (one selector thread per
port for TLS handshakes and request heads, a bounded pool of workers for requests, caps
per port and per client address, deadlines); this module answers one request on a
connection whose head has arrived. Heads are parsed strictly (`head`). Request bodies
are read as streams (Content-Length or chunked), responses may be iterators (sent with
Content-Length when known, else chunked). Every error, the server's own included, is
JSON `{"error", "type"}` (`appliance.errors.to_wire`) with its status; an unexpected
exception is logged and answered "internal error" without a traceback to the client.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import sqlite3
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from appliance.errors import (
    BadRequest,
    InternalError,
    MeshprintError,
    MethodNotAllowed,
    NotFound,
    TooLarge,
    to_wire,
)
from appliance.https import head as heads
from appliance.https.connections import DEFAULT_LIMITS, Connection, ConnectionServer, Limits

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
JSON_LIMIT = 4 * 1024 * 1024
JSON_DEPTH = 32
DISCARD_LIMIT = 64 * 1024 * 1024
DISCARD_TIMEOUT = 2.0
CHUNK_LINE = 1024
TRAILER_LINES = 32
TRAILER_BYTES = 8 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Source(Protocol):
    """Where a body comes from: a connection (or, in tests, a BytesIO)."""

    def read(self, n: int, /) -> bytes: ...

    def readline(self, limit: int, /) -> bytes: ...


class Body:
    """The request body as a stream: read(n) returns b"" at its end."""

    def __init__(self, rfile: Source, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._remaining = length
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not length
        self.received = 0

    @property
    def length(self) -> int | None:
        return None if self._chunked else (self._remaining or 0) + self.received

    @property
    def remaining(self) -> int | None:
        """The bytes still to come (None: chunked, so not known)."""
        return None if self._chunked else (self._remaining or 0)

    @property
    def complete(self) -> bool:
        return self._done

    def read(self, n: int = READ_SIZE) -> bytes:
        if self._done:
            return b""
        data = self._read_chunked(n) if self._chunked else self._read_plain(n)
        self.received += len(data)
        return data

    def _read_plain(self, n: int) -> bytes:
        assert self._remaining is not None
        data = self._rfile.read(min(n, self._remaining))
        if not data:
            raise BadRequest(f"upload was cut off: {self._remaining} bytes never arrived")
        self._remaining -= len(data)
        if self._remaining == 0:
            self._done = True
        return data

    def _read_chunked(self, n: int) -> bytes:
        if self._chunk_left == 0:
            line = self._rfile.readline(CHUNK_LINE)
            if not line:
                raise BadRequest("upload was cut off in the middle of a chunk")
            if not line.endswith(b"\n"):
                raise BadRequest("malformed chunked upload (chunk size line too long)")
            size = line.split(b";")[0].strip()
            if not _HEX.fullmatch(size):
                raise BadRequest("malformed chunked upload")
            self._chunk_left = int(size, 16)
            if self._chunk_left == 0:
                self._skip_trailers()
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise BadRequest("upload was cut off in the middle of a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._rfile.readline(CHUNK_LINE) not in (b"\r\n", b"\n"):
            raise BadRequest("malformed chunked upload")
        return data

    def _skip_trailers(self) -> None:
        """Trailer fields are read and ignored, but only so many of them."""
        size = 0
        for _ in range(TRAILER_LINES + 1):
            line = self._rfile.readline(CHUNK_LINE)
            if line in (b"\r\n", b"\n", b""):
                return
            size += len(line)
            if not line.endswith(b"\n") or size > TRAILER_BYTES:
                break
        raise BadRequest(
            f"chunked upload trailers exceed {TRAILER_LINES} lines or {TRAILER_BYTES} bytes"
        )

    def read_all(self, limit: int) -> bytes:
        parts, size = [], 0
        while chunk := self.read(READ_SIZE):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"request body is larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def drain(self) -> None:
        while self.read(READ_SIZE):
            pass


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: Body
    client: tuple[str, int]
    peer_cert: bytes | None = None  # the client's certificate (DER), on mutual TLS
    secure: bool = True  # over TLS (False only on a port that also takes plain HTTP)
    params: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    raw_query: str = ""
    json_read: bool = False  # the handler parsed the body as JSON (`json`)

    def json(self, limit: int = JSON_LIMIT) -> dict[str, Any]:
        """The body as a JSON object (an empty body is `{}`). Anything else, or nesting
        deeper than JSON_DEPTH, is a BadRequest. From here on, a handler that meets a
        field of the wrong type answers 400, not 500 (see `_answer`)."""
        try:
            data = json.loads(self.body.read_all(limit) or b"{}")
        except RecursionError:
            raise BadRequest(f"request body is nested deeper than {JSON_DEPTH} levels") from None
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        if json_depth(data) > JSON_DEPTH:
            raise BadRequest(f"request body is nested deeper than {JSON_DEPTH} levels")
        self.json_read = True
        return data


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (iteratively)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    length: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    on_complete: Callable[[], None] | None = None


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, indent=1).encode() + b"\n")


def error_response(err: MeshprintError) -> Response:
    resp = json_response(to_wire(err), err.status)
    if err.status == 401:
        resp.headers["WWW-Authenticate"] = 'Basic realm="meshprint"'
    if err.retry_after is not None:
        resp.headers["Retry-After"] = str(err.retry_after)
    return resp


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method, regex, handler))
            return handler

        return register

    def dispatch(self, request: Request) -> Response:
        allowed = False
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if match:
                allowed = True
                if method == request.method:
                    request.params = {k: unquote(v) for k, v in match.groupdict().items()}
                    return handler(request)
        if allowed:
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        raise NotFound(f"no such endpoint: {request.path}")


# Answering one request on a connection


# What a handler raises when a field of a parsed JSON body is missing or of another type
# than it assumed (binding a list as an SQL parameter included).
_WRONG_SHAPE = (
    TypeError,
    KeyError,
    AttributeError,
    ValueError,
    IndexError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)


class _Exchange:
    """One request and its answer, in a worker thread; `run` says whether the
    connection may carry another request."""

    def __init__(self, server: Server, conn: Connection) -> None:
        self.server = server
        self.conn = conn
        self.close = True
        self.head: heads.Head | None = None

    def run(self) -> bool:
        end = heads.head_end(self.conn.buffer)
        if end is None or end > heads.MAX_HEAD:
            self._send(
                error_response(TooLarge(f"request head is larger than {heads.MAX_HEAD} bytes"))
            )
            return False
        raw = bytes(self.conn.buffer[:end])
        del self.conn.buffer[:end]
        try:
            self.head = head = heads.parse(raw)
        except MeshprintError as err:
            self._send(error_response(err))
            return False
        self.close = not head.keep_alive
        if self._wants_tls(head):
            return self._upgrade()
        if head.expect_continue and not self._continue():
            return False
        url = urlsplit(head.target)
        body = Body(self.conn, head.length, head.chunked)
        request = Request(
            method=head.method,
            path=url.path,
            query={k: v[-1] for k, v in parse_qs(url.query).items()},
            headers=head.headers,
            body=body,
            client=self.conn.address,
            raw_query=url.query,
        )
        if isinstance(self.conn.sock, ssl.SSLSocket):
            request.peer_cert = self.conn.sock.getpeercert(binary_form=True) or None
        request.secure = self.conn.secure
        response = self._answer(request)
        log.debug(
            "%s: %s %s %s -> %d",
            self.server.name,
            self.conn.host,
            head.method,
            url.path,
            response.status,
        )
        if not body.complete:
            # The handler stopped reading early (an error): answer, then close. Reading on a
            # little first lets a client that is still sending see the answer, not a reset.
            self.close = True
            self._send(response)
            self._discard(body)
            return False
        self._send(response)
        return not self.close

    def _wants_tls(self, head: heads.Head) -> bool:
        """`OPTIONS *` with `Upgrade: TLS/1.x` and no body, on a plain connection of a port
        that takes both (RFC 2817 3.2: libcups sends it after a 426)."""
        offered = str(head.headers.get("Upgrade", "")).split(",")
        return (
            head.method == "OPTIONS"
            and head.target == "*"
            and not self.conn.secure
            and not self.conn.sniff
            and not head.length
            and not head.chunked
            and any(token.strip().upper().startswith("TLS/1.") for token in offered)
        )

    def _upgrade(self) -> bool:
        """101 Switching Protocols; the connection goes on in TLS, where the OPTIONS is
        answered once the handshake is done (RFC 2817 3.3), then the next request."""
        if self.conn.buffer:  # something came after the OPTIONS in the clear: no upgrade
            self._send(error_response(BadRequest("send nothing before the TLS handshake")))
            return False
        try:
            self.conn.sock.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.2, HTTP/1.1\r\n"
                b"Connection: Upgrade\r\n\r\n"
            )
        except (OSError, ssl.SSLError):
            return False
        self.conn.upgrade_to_tls(
            b"HTTP/1.1 200 OK\r\nServer: meshprint\r\nAllow: GET, POST, OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        log.debug("%s: %s upgraded to TLS (RFC 2817)", self.server.name, self.conn.host)
        return True

    def _continue(self) -> bool:
        """Tell a client that waits for it (`Expect: 100-continue`) to send the body."""
        try:
            self.conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        except (OSError, ssl.SSLError):
            return False
        return True

    def _answer(self, request: Request) -> Response:
        try:
            return self.server.app(request)
        except MeshprintError as err:
            return error_response(err)
        except _WRONG_SHAPE as err:
            if not request.json_read:
                return self._internal(request)
            # The body was a JSON object, but a field in it was missing or of another
            # type than the handler expects: the client's mistake, told as one. Where it
            # was noticed goes to the log (one line), in case it was ours after all.
            where = traceback.extract_tb(err.__traceback__)[-1]
            log.warning(
                "%s: %s %s: malformed field in the request body (%s: %s, at %s:%s)",
                self.server.name,
                request.method,
                request.path,
                type(err).__name__,
                str(err)[:200],
                where.filename,
                where.lineno,
            )
            return error_response(
                BadRequest("malformed request: a field is missing or of the wrong type")
            )
        except Exception:
            return self._internal(request)

    def _internal(self, request: Request) -> Response:
        log.exception("%s: %s %s failed", self.server.name, request.method, request.path)
        return error_response(InternalError("internal error"))

    def _discard(self, body: Body) -> None:
        try:
            self.conn.sock.settimeout(DISCARD_TIMEOUT)
            while body.received < DISCARD_LIMIT and body.read(READ_SIZE):
                pass
        except (MeshprintError, OSError):
            pass

    def _status_head(self, response: Response, extra: dict[str, str]) -> bytes:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            "Server: meshprint",
            f"Date: {formatdate(time.time(), usegmt=True)}",
            f"Content-Type: {response.content_type}",
            "Cache-Control: no-store",
        ]
        lines += [f"{name}: {value}" for name, value in {**response.headers, **extra}.items()]
        if self.close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, response: Response) -> None:
        """Send the answer. A broken connection ends the exchange (and the connection)."""
        try:
            self._write(response)
        except (OSError, ssl.SSLError) as err:
            log.debug("%s: answering %s failed: %s", self.server.name, self.conn.host, err)
            self.close = True

    def _write(self, response: Response) -> None:
        sock = self.conn.sock
        body = response.body
        if isinstance(body, bytes | bytearray):
            sock.sendall(self._status_head(response, {"Content-Length": str(len(body))}) + body)
            self._complete(response)
            return
        chunked = response.length is None
        # HTTP/1.0 knows no chunks: there the end of the stream ends the answer.
        wire_chunks = chunked and (self.head is None or self.head.version >= (1, 1))
        if chunked and not wire_chunks:
            self.close = True
        framing = (
            {"Content-Length": str(response.length)}
            if not chunked
            else {"Transfer-Encoding": "chunked"}
            if wire_chunks
            else {}
        )
        sent = 0
        try:
            sock.sendall(self._status_head(response, framing))
            for piece in body:
                if not piece:
                    continue
                sent += len(piece)
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if wire_chunks else piece)
            if wire_chunks:
                sock.sendall(b"0\r\n\r\n")
        except MeshprintError as err:
            # Headers are gone: cut the stream so the client sees it is incomplete.
            log.warning("%s: streaming %s failed: %s", self.server.name, self.conn.host, err)
            self.close = True
            return
        finally:
            if isinstance(body, Iterator) and hasattr(body, "close"):
                body.close()
        if not chunked and sent != response.length:
            self.close = True
            return
        self._complete(response)

    def _complete(self, response: Response) -> None:
        if response.on_complete is not None:
            try:
                response.on_complete()
            except Exception:
                log.exception("%s: after-response step failed", self.server.name)


class Server:
    """One HTTPS port: `app` answers each request (a Router's dispatch, usually)."""

    def __init__(
        self,
        name: str,
        address: tuple[str, int],
        app: Callable[[Request], Response],
        context: ssl.SSLContext,
        limits: Limits = DEFAULT_LIMITS,
        plain: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        """`plain`: the port also takes plain HTTP (`Request.secure` tells which);
        `sock`: an already listening socket (systemd's) instead of binding `address`."""
        self.name = name
        self.app = app
        self.context = context
        self._connections = ConnectionServer(
            name, address, context, lambda conn: _Exchange(self, conn).run(), limits, plain, sock
        )
        self.server_address = self._connections.server_address

    @property
    def connections(self) -> ConnectionServer:
        return self._connections

    def serve_forever(self) -> None:
        self._connections.serve_forever()

    def shutdown(self) -> None:
        self._connections.shutdown()

    def server_close(self) -> None:
        self._connections.server_close()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.name, daemon=True)
        thread.start()
        return thread
