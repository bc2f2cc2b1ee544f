"""HTTPS client for node-to-node calls and the command line, with streaming both ways."""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from appliance.errors import RemoteError, Unavailable, from_wire

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0

# Called with the server's certificate (DER) after each handshake, before anything is
# sent; raising refuses the server.
PeerCheck = Callable[[bytes], None]
# TLS sessions to resume, by (host, port, server name).
TLSSessions = dict[tuple[str, int, str | None], ssl.SSLSession]


class _Connection(http.client.HTTPSConnection):
    """Connects to host:port but checks the certificate against `server_name` (and with
    `check_peer`, whatever else the caller asks of it before the request goes out)."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        server_name: str | None,
        timeout: float,
        check_peer: PeerCheck | None = None,
        sessions: TLSSessions | None = None,
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._server_name = server_name
        self._ctx = context
        self._check_peer = check_peer
        self._sessions = sessions
        self._key = (host, port, server_name)
        self.peer: Any = None  # what check_peer's caller learnt of the server, for reuse

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        # Resume the last TLS session with this server when we have one (a ticket: no
        # certificate signatures to make or check again); the server may decline.
        session = self._sessions.get(self._key) if self._sessions is not None else None
        try:
            tls = self._ctx.wrap_socket(
                sock, server_hostname=self._server_name or self.host, session=session
            )
        except ssl.SSLError:
            if session is None:
                raise
            assert self._sessions is not None
            self._sessions.pop(self._key, None)
            sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout)
            tls = self._ctx.wrap_socket(sock, server_hostname=self._server_name or self.host)
        self.sock = tls
        if self._check_peer is not None:
            try:
                self._check_peer(tls.getpeercert(binary_form=True) or b"")
            except BaseException:
                if self._sessions is not None:
                    self._sessions.pop(self._key, None)  # never resume with a refused server
                super().close()
                raise

    def close(self) -> None:
        """Close; keep the TLS session (its ticket arrived after the handshake) to resume."""
        sock = self.sock
        if self._sessions is not None and isinstance(sock, ssl.SSLSocket):
            try:
                session = sock.session
            except (OSError, ValueError):
                session = None
            if session is not None and session.has_ticket:
                self._sessions[self._key] = session
        super().close()


class ConnectionPool:
    """Idle kept-alive connections to one server, for any thread: each serves one
    request at a time and comes back once its answer was read whole. One idle past
    `idle_for` seconds (the server closes its side after a while) or that the server
    closed meanwhile is not used again."""

    # idle_for: under the server's idle keep-alive (5 s on the node's client ports)
    def __init__(self, size: int = 4, idle_for: float = 4.0) -> None:
        self.size, self.idle_for = size, idle_for
        self._lock = threading.Lock()
        self._idle: list[tuple[_Connection, float]] = []

    def take(self) -> _Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn, since = self._idle.pop()
            if time.monotonic() - since < self.idle_for and not _dropped(conn):
                return conn
            conn.close()

    def give(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


def _dropped(conn: _Connection) -> bool:
    """Whether the server closed an idle connection (or said something unasked on it)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class Client:
    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        server_name: str | None = None,
        timeout: float = READ_TIMEOUT,
        keep_alive: bool = False,
        check_peer: PeerCheck | None = None,
        sessions: TLSSessions | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.host, self.port = host, port
        # sessions: where TLS sessions are kept for resumption (shared by the clients of
        # one caller, e.g. a node's calls to its peers); None: a full handshake each time.
        self.sessions = sessions
        self.context = context
        self.server_name = server_name
        self.timeout = timeout
        # check_peer: called on every connection's server certificate before sending.
        self.check_peer = check_peer
        # Connections answered calls leave for the next: `pool`, shared (e.g. by the
        # threads of a node calling one peer); keep_alive, one of this client's own (for
        # one thread at a time); neither, a connection per call.
        self._own_pool = pool is None and keep_alive
        self.pool = ConnectionPool(size=1) if self._own_pool else pool
        self._last: _Connection | None = None

    @property
    def where(self) -> str:
        return f"{self.server_name or self.host} ({self.host}:{self.port})"

    def open(self) -> _Connection:
        return _Connection(
            self.host,
            self.port,
            self.context,
            self.server_name,
            self.timeout,
            self.check_peer,
            self.sessions,
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> http.client.HTTPResponse:
        """Send a request; return the response (status < 400) for the caller to read.

        An iterable body is streamed: with `length` as Content-Length, else chunked.
        Raises the server's own error (a RemoteError of its class), or Unavailable when
        it can't be reached.
        """
        reused = self.pool.take() if self.pool is not None else None
        if reused is not None and not self._reusable(reused):
            reused.close()
            reused = None
        if reused is not None and reused.sock is not None:
            reused.timeout = self.timeout
            reused.sock.settimeout(self.timeout)
        conn = reused or self.open()
        try:
            try:
                self._send(conn, method, path, body, dict(headers or {}), length)
            except (OSError, http.client.HTTPException) as err:
                # The server may have refused the upload early (401, 413, 507) and closed:
                # its answer is more useful than the broken pipe.
                response = _early_response(conn)
                if response is None:
                    raise Unavailable(f"cannot reach {self.where}: {describe(err)}") from None
            else:
                response = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            if reused is not None and (body is None or isinstance(body, bytes)):
                return self.request(method, path, body, headers, length)  # it had timed out
            raise Unavailable(f"cannot reach {self.where}: {describe(err)}") from None
        except BaseException:  # ours, or the body's own failure: the request is cut off
            conn.close()
            raise
        if response.status >= 400:
            error = _error_from(response, self.where)
            conn.close()
            raise error
        if self.pool is not None:
            self._last = conn  # `exchange` hands it back once the answer is read
        return response

    def _reusable(self, conn: _Connection) -> bool:
        """Whether a connection from the pool may serve this call (subclasses check the
        server they met on it)."""
        return True

    @staticmethod
    def _send(
        conn: _Connection,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None,
        headers: dict[str, str],
        length: int | None,
    ) -> None:
        if body is None or isinstance(body, bytes):
            conn.request(method, path, body=body, headers=headers)
            return
        conn.putrequest(method, path)
        for name, value in headers.items():
            conn.putheader(name, value)
        if length is not None:
            conn.putheader("Content-Length", str(length))
        else:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for piece in body:
            if piece:
                conn.send(piece if length is not None else b"%x\r\n%s\r\n" % (len(piece), piece))
        if length is None:
            conn.send(b"0\r\n\r\n")

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> bytes:
        """`request`, with the whole answer read here; the connection goes back to the
        pool for the next call."""
        response = self.request(method, path, body, headers, length)
        conn, self._last = self._last, None
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            raise Unavailable(f"{self.where} stopped answering: {describe(err)}") from None
        finally:
            response.close()
        if conn is not None and self.pool is not None and not response.will_close:
            self.pool.give(conn)
        return data

    def json(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        body = None if data is None else json.dumps(data).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        answer = self.exchange(method, path, body, hdrs)
        try:
            return json.loads(answer or b"null")
        except ValueError:
            raise Unavailable(f"{self.where} answered something that is not JSON") from None

    def close(self) -> None:
        """Close the connections kept open for this client's own reuse, if any."""
        if self._own_pool and self.pool is not None:
            self.pool.close()


def _early_response(conn: _Connection) -> http.client.HTTPResponse | None:
    """An error answer the server sent before it stopped reading our upload, if any."""
    if conn.sock is None:
        return None
    try:
        response = http.client.HTTPResponse(conn.sock, method="POST")
        response.begin()
    except (OSError, http.client.HTTPException):
        return None
    return response if response.status >= 400 else None


def _error_from(response: http.client.HTTPResponse, where: str) -> RemoteError:
    body: object
    try:
        raw = response.read(64 * 1024)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": raw.decode(errors="replace").strip() or response.reason}
    except (OSError, http.client.HTTPException):
        body = {"error": response.reason}
    finally:
        response.close()
    return from_wire(response.status, body, where)


def describe(err: BaseException) -> str:
    """A short, human reason for a network or TLS failure."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({err.verify_message})"
    if isinstance(err, ssl.SSLError):
        reason = err.reason or str(err)
        if "CERTIFICATE_REQUIRED" in reason:
            return "it requires a site member certificate"
        return f"TLS failed ({reason})"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the node running?)"
    if isinstance(err, TimeoutError | socket.timeout):
        return "timed out"
    return str(err) or type(err).__name__
