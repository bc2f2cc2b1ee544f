"""Calling other members over mutual TLS, and who is alive.

A peer is called by its node id: the TLS layer checks that its certificate carries that
id and comes from the site CA, then we check it is a current, unrevoked member. Any
successful call, in either direction, counts as a sign of life.

The maintenance loop's calls (sync, directory exchange) go over one kept-alive
connection per peer (`Peers.kept`), so an idle mesh does not pay a mutual-TLS handshake
per call; before each reuse the answering member's certificate, as the handshake proved
it, is checked again against the current directory (a member revoked since is refused).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.clients.peer import PeerClient
from appliance.errors import Forbidden, RemoteError, Unavailable
from appliance.https.client import Client
from appliance.site.directory import Directory, NodeRecord
from appliance.site.tls import CertIdentity, cert_identity

SYNC_INTERVAL = 1.0  # the maintenance loop's tick, and a peer's sync interval after a change
MAX_SYNC_INTERVAL = 3.0  # back-off while nothing changes: under the server's 5 s keep-alive
LIVE_WINDOW = 8.0  # heard from within this long: live (> 2 x MAX_SYNC_INTERVAL)


class Peers:
    def __init__(
        self, self_id: str, context: ssl.SSLContext, directory: Callable[[], Directory]
    ) -> None:
        self.self_id = self_id
        self.context = context
        self.directory = directory
        self.started = time.time()
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[NodeRecord, _MemberConnection]] = {}

    # Liveness

    def saw(self, node_id: str) -> None:
        with self._lock:
            self._seen[node_id] = time.time()

    def last_seen(self, node_id: str) -> float | None:
        return self._seen.get(node_id)

    def is_live(self, node_id: str) -> bool:
        if node_id == self.self_id:
            return True
        seen = self._seen.get(node_id)
        return seen is not None and time.time() - seen < LIVE_WINDOW

    def gone_for(self, node_id: str) -> float:
        """Seconds since the node was last seen, or since this node started if never."""
        if self.is_live(node_id):
            return 0.0
        return time.time() - max(self._seen.get(node_id, 0.0), self.started)

    def others(self) -> list[NodeRecord]:
        return [n for n in self.directory().nodes.values() if n.id != self.self_id]

    def live(self) -> list[NodeRecord]:
        return [n for n in self.directory().nodes.values() if self.is_live(n.id)]

    # Calls

    def client(self, node_id: str, timeout: float = 10.0) -> PeerClient:
        """The peer API of member `node_id` (streaming calls want a longer `timeout`)."""
        record = self.directory().node(node_id)
        if record is None:
            raise Unavailable(f"node {node_id} is not a site member")
        if not record.reachable:
            raise Unavailable(f"node {node_id} has not announced an address yet")
        assert record.host and record.peer_port
        return PeerClient(_MemberConnection(self, record, timeout))

    def kept(self, node_id: str) -> PeerClient:
        """Member `node_id`'s peer API over a connection kept alive between calls, for
        the maintenance loop alone (one thread: a kept connection is not shared)."""
        record = self.directory().node(node_id)
        entry = self._kept.get(node_id)
        if entry is not None and entry[0] != record:
            entry[1].close()  # a new address or certificate: connect afresh
            entry = None
        if entry is None:
            self.client(node_id)  # the same refusals as a one-off call
            assert record is not None
            entry = (record, _MemberConnection(self, record, 3.0, keep_alive=True))
            self._kept[node_id] = entry
        return PeerClient(entry[1])

    def forget(self, node_id: str) -> None:
        """Close the kept connection to `node_id`, if any."""
        entry = self._kept.pop(node_id, None)
        if entry is not None:
            entry[1].close()

    def check_member(self, cert: bytes | None) -> str:
        """The node id of a calling member (its certificate, DER); Forbidden for anyone
        else."""
        identity = cert_identity(cert)
        node_id = identity.node_id
        if not self.directory().is_member(identity):
            raise Forbidden(f"node {node_id} is not a current member of this site (or was revoked)")
        self.saw(node_id)
        return node_id


class _MemberConnection(Client):
    """A Client that checks the answering member and records liveness."""

    def __init__(
        self, peers: Peers, record: NodeRecord, timeout: float, keep_alive: bool = False
    ) -> None:
        assert record.host and record.peer_port
        super().__init__(
            record.host, record.peer_port, peers.context, record.id, timeout, keep_alive
        )
        self.peers = peers
        self.node_id = record.id
        self._identity: CertIdentity | None = None  # of the connection kept for reuse

    def open(self) -> Any:
        conn = super().open()
        connect = conn.connect

        def checked_connect() -> None:
            connect()
            assert isinstance(conn.sock, ssl.SSLSocket)
            identity = cert_identity(conn.sock.getpeercert(binary_form=True))
            if identity.node_id != self.node_id or not self.peers.directory().is_member(identity):
                conn.close()
                raise Forbidden(
                    f"node {self.node_id} presented a certificate that is not its own "
                    "(revoked, or another key)"
                )
            self._identity = identity

        conn.connect = checked_connect  # type: ignore[method-assign]
        return conn

    def request(self, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        if self._idle is not None and (
            self._identity is None or not self.peers.directory().is_member(self._identity)
        ):
            self.close()  # revoked since the handshake: the fresh handshake refuses it
        try:
            response = super().request(*args, **kwargs)
        except RemoteError:
            self.peers.saw(self.node_id)  # it answered
            raise
        self.peers.saw(self.node_id)
        return response
