"""Accepting TLS connections without giving each one a thread: one selector thread per
port does the TLS handshakes and collects request heads (non-blocking); a connection
goes to a small pool of worker threads only once a whole head has arrived. So idle,
slow or half-open connections cost a file descriptor and a few kilobytes, never a
thread, and a normal client is served while thousands of them sit there.

Bounds (`Limits`): open connections per port (at the cap the longest-idle connection,
preferably of the busiest address, is closed to make room), per client address (beyond
it a new connection is closed at once), the workers one address may keep busy (its
further requests wait for one of them), the time a new connection has for its TLS
handshake and first head, the time a kept-alive connection may sit idle, and the time
one body read or write may take (in the workers). `fit_to_fd_limit` checks at start that
the process may open enough files for these caps and lowers them if it may not.

A port may also take plain connections (`plain=True`, the IPP printer's `ipp://` and
`ipps://` on one port, as CUPS does): the first byte a client sends tells which it is
(0x16, a TLS record of type handshake, starts a ClientHello; an HTTP request starts
with a letter). `Connection.secure` says which it was. A plain connection may also turn
into TLS with `OPTIONS * ` and `Upgrade: TLS/1.2` (RFC 2817, what libcups does after a 426):
the server answers 101 and `Connection.upgrade_to_tls` makes the next byte a handshake.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from appliance.errors import BadRequest, RequestTimeout
from appliance.https.head import MAX_HEAD, head_end, is_http09

log = logging.getLogger(__name__)

RECV_SIZE = 64 * 1024
FDS_PER_WORKER = 8  # its database connections (db, WAL, SHM; two databases), a file, a call out
FD_RESERVE = 256  # the rest of the process: logs, the maintenance loop's calls, MQTT, CUPS
SWEEP_INTERVAL = 0.25
# The machine itself (the Secure Print backend, the release page calling its own API, the
# command line) is not held to the per-address share of the workers.
LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1"})


@dataclass(frozen=True)
class Limits:
    max_connections: int = 512  # open connections on one port
    per_address: int = 64  # open connections from one client address on one port
    workers: int = 32  # threads that run requests, per port
    per_address_workers: int = 8  # of them busy for one client address (the machine: any)
    head_timeout: float = 10.0  # a new connection: TLS handshake and its first head
    idle_timeout: float = 5.0  # a kept-alive connection waiting for its next request
    io_timeout: float = 60.0  # one read of a body or one write of an answer (as the client)

    def file_descriptors(self) -> int:
        """What one port may hold open at most: its connections, the listener, and what
        its busy workers open."""
        return self.max_connections + 1 + self.workers * FDS_PER_WORKER


DEFAULT_LIMITS = Limits()


def fit_to_fd_limit(servers: int, limits: Limits = DEFAULT_LIMITS) -> Limits:
    """Limits that `servers` ports can hold without running out of file descriptors.

    Raises the soft RLIMIT_NOFILE towards the hard one if that is needed; if the hard
    limit is still too low, lowers the connection caps to fit (and says so)."""
    try:
        import resource  # POSIX; Windows has no open-file limit of this kind
    except ImportError:
        return limits
    needed = servers * limits.file_descriptors() + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as err:
            log.warning("cannot raise the open-file limit to %d: %s", raised, err)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return limits
    per_port = max(0, soft - FD_RESERVE) // servers  # a quarter of it for the workers
    workers = max(2, min(limits.workers, per_port // 4 // FDS_PER_WORKER))
    cap = max(16, per_port - 1 - workers * FDS_PER_WORKER)
    fitted = replace(
        limits,
        max_connections=cap,
        per_address=min(limits.per_address, cap // 4),
        workers=workers,
        per_address_workers=min(limits.per_address_workers, max(1, workers // 4)),
    )
    log.warning(
        "open-file limit %d is below the %d the HTTPS servers need: at most %d connections "
        "per port (%d per address), %d workers; raise LimitNOFILE",
        soft,
        needed,
        fitted.max_connections,
        fitted.per_address,
        fitted.workers,
    )
    return fitted


class Connection:
    """One client connection. Between requests it belongs to the selector thread (the
    socket non-blocking); while a request runs, to one worker (blocking, with a timeout
    per read and write). `buffer` holds what was received and not yet consumed."""

    def __init__(
        self, sock: socket.socket, address: tuple[str, int], deadline: float, sniff: bool = False
    ) -> None:
        self.sock = sock
        self.address = address
        self.host = address[0]
        self.buffer = bytearray()
        self.sniff = sniff  # TLS or plain not known yet (its first byte tells)
        self.secure = not sniff
        self.tls_only = False  # upgraded (RFC 2817): the next byte must start TLS
        self.after_handshake = b""  # sent once TLS is up (the upgraded request's answer)
        self.handshaken = False
        self.busy = False
        self.waiting = True  # no byte of the next head yet (idle)
        self.deadline = deadline
        self.since = time.monotonic()

    def upgrade_to_tls(self, answer: bytes) -> None:
        """After `101 Switching Protocols` (RFC 2817, on a port that takes both): the
        selector wraps the connection in TLS when the client's handshake begins, and
        sends `answer` (the answer to the request that asked, RFC 2817 3.3) over it."""
        self.sniff, self.tls_only, self.handshaken = True, True, False
        self.after_handshake = answer

    # The blocking side, for the worker: a file-like reader over buffer + socket.

    def read(self, n: int) -> bytes:
        """n bytes, fewer only where the stream ends (b"" at its end). The caller asks
        only for what the request says is coming (its Content-Length, the current chunk),
        so waiting for all of it never stalls; a TLS record holds at most 16 KiB, and a
        body read a record at a time would cost a trip through every layer above each."""
        if self.buffer:
            data = bytes(self.buffer[:n])
            del self.buffer[:n]
        else:
            data = self._recv(n)
        if len(data) == n or not data:
            return data
        parts, got = [data], len(data)
        while got < n and (data := self._recv(n - got)):
            parts.append(data)
            got += len(data)
        return b"".join(parts)

    def readline(self, limit: int) -> bytes:
        """One line with its newline, or `limit` bytes, or what came before the end."""
        while b"\n" not in self.buffer and len(self.buffer) < limit:
            data = self._recv(RECV_SIZE)
            if not data:
                break
            self.buffer += data
        end = self.buffer.find(b"\n", 0, limit)
        size = min(limit, len(self.buffer)) if end < 0 else end + 1
        line = bytes(self.buffer[:size])
        del self.buffer[:size]
        return line

    def _recv(self, n: int) -> bytes:
        try:
            return self.sock.recv(n)
        except TimeoutError:
            raise RequestTimeout("the request stopped arriving (timed out)") from None
        except (OSError, ssl.SSLError) as err:
            raise BadRequest(f"the connection broke while reading the request: {err}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


Worker = Callable[[Connection], bool]


class ConnectionServer:
    """Listens on one port; calls `work(conn)` in a worker thread for every complete
    request head. `work` answers one request and returns whether to keep the connection
    open for another."""

    def __init__(
        self,
        name: str,
        address: tuple[str, int],
        context: ssl.SSLContext,
        work: Worker,
        limits: Limits = DEFAULT_LIMITS,
        plain: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        """`sock`: a listening socket to serve (one systemd bound), instead of binding
        `address`."""
        self.name = name
        self.context = context
        self.limits = limits
        self.plain = plain  # also plain HTTP on this port (told apart by the first byte)
        self._work = work
        if sock is None:
            sock = socket.create_server(address, backlog=128, reuse_port=False)
        self.socket = sock
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._open: set[Connection] = set()
        self._per_host: Counter[str] = Counter()
        self._working: Counter[str] = Counter()  # requests running or queued, per address
        self._deferred: dict[str, deque[Connection]] = {}  # heads waiting for that share
        self._jobs: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self._returned: queue.SimpleQueue[tuple[Connection, bool]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._threads: list[threading.Thread] = []
        self._idle_workers = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()
        self._swept = 0.0
        self._noted: dict[str, tuple[float, int]] = {}

    # Life cycle

    def serve_forever(self) -> None:
        self._selector.register(self.socket, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stopping:
                for key, _ in self._selector.select(self._until_sweep()):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._take_back()
                    else:
                        self._advance(key.data)
                self._sweep()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop the selector loop and wait until it has stopped."""
        self._stopping = True
        self._wake()
        if self._threads or self._selector.get_map():
            self._stopped.wait(5)

    def server_close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for conn in list(self._open):
            if not conn.busy:
                self._close(conn)
        self.socket.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def connections(self) -> int:
        return len(self._open)

    # The selector thread

    def _accept(self) -> None:
        for _ in range(64):  # a batch per wake-up, so a flood cannot starve the rest
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and friends: make room, try again later
                log.warning("%s: cannot accept: %s", self.name, err)
                self._evict()
                return
            host = address[0]
            if self._per_host[host] >= self.limits.per_address:
                limit = self.limits.per_address
                self._note("address", "%s has %d connections open: refused", host, limit)
                sock.close()
                continue
            if len(self._open) >= self.limits.max_connections and not self._evict():
                count = len(self._open)
                self._note("full", "%d connections open, none idle: refused %s", count, host)
                sock.close()
                continue
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if not self.plain:
                    sock = self.context.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
            except OSError:  # gone again already
                sock.close()
                continue
            deadline = time.monotonic() + self.limits.head_timeout
            conn = Connection(sock, address, deadline, sniff=self.plain)
            self._open.add(conn)
            self._per_host[host] += 1
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _evict(self) -> bool:
        """Close the longest-idle connection of the address that holds the most."""
        idle = [c for c in self._open if not c.busy]
        if not idle:
            return False
        victim = max(idle, key=lambda c: (self._per_host[c.host], -c.since))
        self._note("cap", "at the connection cap: closed an idle one from %s", victim.host)
        self._close(victim)
        return True

    def _advance(self, conn: Connection) -> None:
        """The socket is ready: go on with the handshake, or read what came of a head."""
        if conn.sniff and not self._sniff(conn):
            return
        if not conn.handshaken:
            assert isinstance(conn.sock, ssl.SSLSocket)
            try:
                conn.sock.do_handshake()
            except ssl.SSLWantReadError:
                return self._watch(conn, selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                return self._watch(conn, selectors.EVENT_WRITE)
            except (OSError, ssl.SSLError) as err:
                self._note("handshake", "TLS handshake from %s failed: %s", conn.host, err)
                return self._close(conn)
            conn.handshaken = True
            if conn.after_handshake and not self._send_small(conn):
                return self._close(conn)
            self._watch(conn, selectors.EVENT_READ)
        while len(conn.buffer) <= MAX_HEAD:
            try:
                data = conn.sock.recv(RECV_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except (OSError, ssl.SSLError) as err:
                log.debug("%s: connection from %s ended: %s", self.name, conn.host, err)
                return self._close(conn)
            if not data:
                return self._close(conn)
            conn.buffer += data
        if conn.buffer and conn.waiting:
            conn.waiting = False  # a head has begun: it has head_timeout to complete
            conn.deadline = time.monotonic() + self.limits.head_timeout
        if is_http09(conn.buffer):
            self._note("http09", "request without an HTTP version from %s: closed", conn.host)
            return self._close(conn)
        if len(conn.buffer) > MAX_HEAD or head_end(conn.buffer) is not None:
            self._dispatch(conn)

    def _send_small(self, conn: Connection) -> bool:
        """Send a short answer from the selector thread (a few hundred bytes: a fresh TLS
        connection takes them at once); False if it did not go."""
        data, conn.after_handshake = conn.after_handshake, b""
        try:
            return conn.sock.send(data) == len(data)
        except (OSError, ssl.SSLError) as err:
            log.debug("%s: answer after the upgrade to %s failed: %s", self.name, conn.host, err)
            return False

    def _sniff(self, conn: Connection) -> bool:
        """On a port that takes both: TLS (wrapped here) or plain HTTP, by the first byte.
        False while nothing has arrived (or the connection was closed)."""
        try:
            first = conn.sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._close(conn)
            return False
        if not first:
            self._close(conn)
            return False
        conn.sniff = False
        if first != b"\x16" and conn.tls_only:  # upgraded to TLS, then no handshake
            self._note("upgrade", "%s asked for TLS, then sent no handshake: closed", conn.host)
            self._close(conn)
            return False
        if first != b"\x16":  # not a TLS handshake record: plain HTTP
            conn.handshaken = True
            return True
        self._selector.unregister(conn.sock)
        try:
            conn.sock = self.context.wrap_socket(
                conn.sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError:
            self._close(conn, registered=False)
            return False
        conn.secure = True
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)
        return True

    def _watch(self, conn: Connection, events: int) -> None:
        if self._selector.get_key(conn.sock).events != events:
            self._selector.modify(conn.sock, events, conn)

    def _dispatch(self, conn: Connection) -> None:
        """Hand a connection with a complete head to a worker, or, while its address has
        its share of the workers busy, keep it waiting until one of them is done (so one
        address sending slow bodies cannot hold every worker)."""
        self._selector.unregister(conn.sock)
        conn.busy = True
        host = conn.host
        if host not in LOCAL_ADDRESSES and self._working[host] >= self.limits.per_address_workers:
            self._deferred.setdefault(host, deque()).append(conn)
            return
        self._submit(conn)

    def _submit(self, conn: Connection) -> None:
        self._working[conn.host] += 1
        with self._lock:
            self._pending += 1
            start = self._pending > self._idle_workers and len(self._threads) < self.limits.workers
        if start:
            thread = threading.Thread(target=self._worker, name=f"{self.name}-worker", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._jobs.put(conn)

    def _take_back(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                conn, keep = self._returned.get_nowait()
            except queue.Empty:
                return
            conn.busy = False
            self._working[conn.host] -= 1
            if self._working[conn.host] <= 0:
                del self._working[conn.host]
            waiting = self._deferred.get(conn.host)
            if waiting:
                self._submit(waiting.popleft())
                if not waiting:
                    del self._deferred[conn.host]
            if not keep or self._stopping:
                self._close(conn, registered=False)
                continue
            try:
                conn.sock.setblocking(False)
            except OSError:
                self._close(conn, registered=False)
                continue
            now = time.monotonic()
            conn.since, conn.waiting = now, not conn.buffer
            conn.deadline = now + (
                self.limits.idle_timeout if conn.waiting else self.limits.head_timeout
            )
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            self._advance(conn)  # a pipelined request may already be here (or in TLS)

    def _until_sweep(self) -> float | None:
        """How long the selector may sleep: until the next deadline of a connection it
        watches (not sooner than the sweep interval allows), or, with none, until woken."""
        deadlines = [c.deadline for c in self._open if not c.busy]
        if not deadlines:
            return None  # a new connection or a worker handing one back wakes it
        now = time.monotonic()
        return max(min(deadlines) - now, self._swept + SWEEP_INTERVAL - now, 0.0) + 0.001

    def _sweep(self) -> None:
        """Close connections whose handshake, head or idle time ran out."""
        now = time.monotonic()
        if now - self._swept < SWEEP_INTERVAL:
            return
        self._swept = now
        for conn in [c for c in self._open if not c.busy and c.deadline < now]:
            if not conn.waiting or not conn.handshaken:
                self._note("deadline", "%s sent no complete request in time: closed", conn.host)
            self._close(conn)

    def _close(self, conn: Connection, registered: bool = True) -> None:
        if registered:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.close()
        if conn in self._open:
            self._open.discard(conn)
            self._per_host[conn.host] -= 1
            if self._per_host[conn.host] <= 0:
                del self._per_host[conn.host]

    def _note(self, kind: str, message: str, *args: object) -> None:
        """Log a refusal, at most once a second of each kind (a flood is one line a
        second, with how many it stands for)."""
        now = time.monotonic()
        since, count = self._noted.get(kind, (0.0, 0))
        if now - since < 1.0:
            self._noted[kind] = (since, count + 1)
            return
        more = f" (and {count} more like it)" if count else ""
        log.info("%s: " + message + more, self.name, *args)
        self._noted[kind] = (now, 0)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # The workers

    def _worker(self) -> None:
        while True:
            with self._lock:
                self._idle_workers += 1
            conn = self._jobs.get()
            with self._lock:
                self._idle_workers -= 1
                self._pending -= 1
            if conn is None:
                return
            keep = False
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(self.limits.io_timeout)
                keep = self._work(conn)
            except Exception:
                log.exception("%s: a request from %s failed", self.name, conn.host)
            self._returned.put((conn, keep))
            self._wake()
