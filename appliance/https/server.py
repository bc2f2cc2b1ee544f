"""A small threaded HTTPS server with streaming bodies, a router and JSON errors.

Each connection gets a thread; the TLS handshake runs there, so a slow or hostile
client never blocks the listener. Request bodies are read as streams (Content-Length
or chunked), responses may be iterators (sent with Content-Length when known, else
chunked). Every MeshprintError becomes a JSON error with its status; anything else is
logged and answered "internal error" without a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any
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

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
JSON_LIMIT = 4 * 1024 * 1024
IDLE_TIMEOUT = 60.0
DISCARD_LIMIT = 64 * 1024 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class Body:
    """The request body as a stream: read(n) returns b"" at its end."""

    def __init__(self, rfile: BufferedIOBase, length: int | None, chunked: bool) -> None:
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
            line = self._rfile.readline(1024)
            if not line:
                raise BadRequest("upload was cut off in the middle of a chunk")
            size = line.split(b";")[0].strip()
            if not _HEX.fullmatch(size):
                raise BadRequest("malformed chunked upload")
            self._chunk_left = int(size, 16)
            if self._chunk_left == 0:
                while self._rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise BadRequest("upload was cut off in the middle of a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._rfile.readline(1024) not in (b"\r\n", b"\n"):
            raise BadRequest("malformed chunked upload")
        return data

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
    peer_cert: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    raw_query: str = ""

    def json(self, limit: int = JSON_LIMIT) -> dict[str, Any]:
        try:
            data = json.loads(self.body.read_all(limit) or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        return data


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meshprint"
    sys_version = ""
    rbufsize = READ_SIZE
    server: Server

    def setup(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (OSError, ssl.SSLError) as err:
                log.info(
                    "%s: TLS handshake from %s failed: %s",
                    self.server.name,
                    self.client_address[0],
                    err,
                )
                self.close_connection = True
                self._failed = True
                super().setup()
                return
        self._failed = False
        super().setup()

    def handle(self) -> None:
        if not self._failed:
            try:
                super().handle()
            except (ConnectionError, TimeoutError, ssl.SSLError) as err:
                log.debug(
                    "%s: connection from %s ended: %s",
                    self.server.name,
                    self.client_address[0],
                    err,
                )

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: %s " + format, self.server.name, self.client_address[0], *args)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length_header = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            length = int(length_header) if length_header and not chunked else None
            if length is not None and length < 0:
                raise ValueError
        except ValueError:
            self._send(error_response(BadRequest("bad Content-Length")), None)
            self.close_connection = True
            return
        body = Body(self.rfile, length, chunked)
        request = Request(
            method=self.command,
            path=url.path,
            query={k: v[-1] for k, v in parse_qs(url.query).items()},
            headers=self.headers,
            body=body,
            client=self.client_address,
            raw_query=url.query,
        )
        if isinstance(self.connection, ssl.SSLSocket):
            request.peer_cert = self.connection.getpeercert() or None
        try:
            response = self.server.app(request)
        except MeshprintError as err:
            response = error_response(err)
        except Exception:
            log.exception("%s: %s %s failed", self.server.name, self.command, url.path)
            response = error_response(InternalError("internal error"))
        if not body.complete:
            # The handler stopped reading early (an error): answer, then close. Reading on a
            # little first lets a client that is still sending see the answer, not a reset.
            self.close_connection = True
            self._send(response, request)
            self._discard(body)
            return
        self._send(response, request)

    def _discard(self, body: Body) -> None:
        self.request.settimeout(2.0)
        try:
            while body.received < DISCARD_LIMIT and body.read(READ_SIZE):
                pass
        except (MeshprintError, OSError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def _send(self, response: Response, request: Request | None) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Cache-Control", "no-store")
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        body = response.body
        if isinstance(body, bytes | bytearray):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self._complete(response)
            return
        chunked = response.length is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(response.length))
        self.end_headers()
        sent = 0
        try:
            for piece in body:
                if not piece:
                    continue
                sent += len(piece)
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except MeshprintError as err:
            # Headers are gone: cut the stream so the client sees it is incomplete.
            log.warning("%s: streaming %s failed: %s", self.server.name, self.path, err)
            self.close_connection = True
            return
        finally:
            if isinstance(body, Iterator) and hasattr(body, "close"):
                body.close()
        if not chunked and sent != response.length:
            self.close_connection = True
            return
        self._complete(response)

    def _complete(self, response: Response) -> None:
        if response.on_complete is not None:
            try:
                response.on_complete()
            except Exception:
                log.exception("%s: after-response step failed", self.server.name)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        name: str,
        address: tuple[str, int],
        app: Callable[[Request], Response],
        context: ssl.SSLContext,
    ) -> None:
        self.name = name
        self.app = app
        self.context = context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.name, daemon=True)
        thread.start()
        return thread
