"""Calling other members over mutual TLS, and who is alive.

A peer is called by its node id: the TLS layer checks that its certificate carries that
id and comes from the site CA, then we check it is a current, unrevoked member.

Who is alive, three kinds of evidence (issue 15: an idle mesh must not contact every peer):

- *direct*: any successful call, in either direction, is a sign of life (`heard`); a call
  that could not reach the peer is a failed direct check (`missed`).
- *the site broker*, where there is one: a member's retained presence "online" (its
  last will turns it "offline" when its connection is lost) counts as a standing rumour;
  "offline" makes a direct check of it due at once (`presence`).
- *gossip*: every node stamps its own heartbeat (its clock, in ms) on each sync it sends
  or answers, with the newest heartbeat it knows of every other member (`beats`); a
  heartbeat newer than ours is a rumour that the member was alive (`merge_beats`).

A member is live while the broker says it is online, or it was heard from, directly or
by rumour, within `LIVE_WINDOW`, unless this node's own latest direct check of it failed
(its own observation beats anyone's word). Rumours and the broker only ever make a node
look alive to the status page and to placement (or ask for a direct check); what decides
a holder change (`gone_for`, used by repair) rests on this node's own direct checks
alone (docs/security.md): a member lying in gossip can neither get a holder replaced nor
keep a dead one from being replaced.

Every call to a peer (sync, directory exchange, replica uploads, release calls) takes a
kept-alive connection from that peer's pool (`Peers.client`, `https.client.ConnectionPool`),
so an idle mesh does not pay a mutual-TLS handshake per call; before each reuse the
answering member's certificate, as the handshake proved it, is checked again against the
current directory (a member revoked since is refused).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.clients.peer import PeerClient
from appliance.errors import Forbidden, MeshprintError, RemoteError, Unavailable
from appliance.https.client import Client, ConnectionPool, TLSSessions
from appliance.site.directory import Directory, NodeRecord
from appliance.site.tls import CertIdentity, cert_identity

SYNC_INTERVAL = 1.0  # the maintenance loop's tick, and a co-holder's sync interval after a change
MAX_SYNC_INTERVAL = 3.0  # co-holders' back-off while nothing changes (under a 5 s keep-alive)
IDLE_TICK = 2.0  # the maintenance loop's tick on a node that holds no job
GOSSIP_INTERVAL = 3.0  # a gossip round: this node syncs with FANOUT peers in turn
FANOUT = 1  # push-pull: each round this node calls one peer and is called by ~one
# A member's kept connection to our peer port may sit idle this long (a member is called
# about every (N - 1) x GOSSIP_INTERVAL / FANOUT s by each other one: 87 s at 30 members,
# so up to ~100 members every gossip call finds its connection open); after that a call
# resumes the TLS session (`tls_sessions`) instead of a full handshake. The caller's pool
# lets a connection go a little earlier (POOL_IDLE), so it never sends on one the peer is
# closing.
PEER_IDLE_TIMEOUT = 300.0
POOL_IDLE = PEER_IDLE_TIMEOUT - 10.0
LIVE_WINDOW = 30.0  # heard from (directly or by rumour) within this long: live
MAX_SKEW = 60.0  # a rumoured heartbeat further ahead of our clock than this is ignored


class Peers:
    def __init__(
        self, self_id: str, context: ssl.SSLContext, directory: Callable[[], Directory]
    ) -> None:
        self.self_id = self_id
        self.context = context
        self.directory = directory
        self.started = time.time()
        self._seen: dict[str, float] = {}  # last direct sign of life
        self._missed: dict[str, float] = {}  # last failed direct check
        self._rumour: dict[str, float] = {}  # when gossip last brought a newer heartbeat
        self._beats: dict[str, int] = {}  # the newest heartbeat known per member (its ms)
        self._beat = 0
        self._online: set[str] = set()  # retained presence "online" at the site broker
        self._suspect: dict[str, float] = {}  # reported offline by the broker: check them
        self._lock = threading.Lock()
        # Idle kept-alive connections to each member, for every thread's calls; replaced
        # when the member's record (address, certificate) changes.
        self._pools: dict[str, tuple[NodeRecord, ConnectionPool]] = {}
        # TLS sessions to resume with each peer: a call after a quiet spell (the server
        # closed the idle connection) costs no certificate signatures on either side.
        self.tls_sessions: TLSSessions = {}

    # Liveness

    def saw(self, node_id: str) -> None:
        """A direct sign of life: `node_id` answered us, or called us."""
        with self._lock:
            self._seen[node_id] = time.time()
            self._suspect.pop(node_id, None)

    def missed(self, node_id: str) -> None:
        """A failed direct check: `node_id` could not be reached."""
        with self._lock:
            self._missed[node_id] = time.time()
            self._suspect.pop(node_id, None)

    def presence(self, node_id: str, online: bool) -> None:
        """The site broker's retained presence of `node_id` (its last will says offline
        when its connection is lost): online counts as a rumour of life for as long as it
        stands; offline makes a direct check due (`suspects`)."""
        if node_id == self.self_id:
            return
        with self._lock:
            if online:
                self._online.add(node_id)
                self._suspect.pop(node_id, None)
            else:
                self._online.discard(node_id)
                self._suspect[node_id] = time.time()

    def broker_lost(self) -> None:
        """No broker connection: its presence no longer says anything."""
        with self._lock:
            self._online.clear()

    def suspects(self) -> set[str]:
        """Members the broker reported offline that this node has not checked since."""
        with self._lock:
            return set(self._suspect)

    def heard(self, node_id: str) -> float | None:
        """When this node itself last had a sign of life from `node_id` (no rumours)."""
        return self._seen.get(node_id)

    def failing(self, node_id: str) -> bool:
        """Whether this node's own latest direct check of `node_id` failed."""
        missed = self._missed.get(node_id)
        return missed is not None and missed > self._seen.get(node_id, 0.0)

    def last_seen(self, node_id: str) -> float | None:
        """When `node_id` was last known alive, directly or by rumour."""
        seen = [t for t in (self._seen.get(node_id), self._rumour.get(node_id)) if t]
        return max(seen) if seen else None

    def rumoured_since_missed(self, node_id: str) -> bool:
        """Gossip says `node_id` was alive after our direct check failed: check again."""
        return self.failing(node_id) and self._rumour.get(node_id, 0.0) > self._missed[node_id]

    def is_live(self, node_id: str) -> bool:
        if node_id == self.self_id:
            return True
        if self.failing(node_id):
            return False
        if node_id in self._online:
            return True
        seen = self.last_seen(node_id)
        return seen is not None and time.time() - seen < LIVE_WINDOW

    def gone_for(self, node_id: str) -> float:
        """Seconds this node's own direct checks have found `node_id` away: since it was
        last heard from directly (or since this node started, if never), 0 unless the
        latest direct check failed. Rumours play no part: this decides holder changes."""
        if not self.failing(node_id):
            return 0.0
        return time.time() - max(self._seen.get(node_id, 0.0), self.started)

    def others(self) -> list[NodeRecord]:
        return [n for n in self.directory().nodes.values() if n.id != self.self_id]

    def live(self) -> list[NodeRecord]:
        return [n for n in self.directory().nodes.values() if self.is_live(n.id)]

    # Gossip

    def beats(self) -> dict[str, int]:
        """Our own heartbeat (now) and the newest known of every other member, to send."""
        members = self.directory().nodes
        with self._lock:
            self._beat = max(self._beat + 1, int(time.time() * 1000))
            known = {n: b for n, b in self._beats.items() if n in members}  # not the removed
            return {**known, self.self_id: self._beat}

    def merge_beats(self, beats: object) -> None:
        """Heartbeats a peer sent: each newer than ours (of a current member, not from
        further ahead than MAX_SKEW) is a rumour that its member was alive."""
        if not isinstance(beats, dict):
            return
        now = time.time()
        limit = int((now + MAX_SKEW) * 1000)
        members = self.directory().nodes
        with self._lock:
            for node_id, beat in beats.items():
                if (
                    node_id == self.self_id
                    or node_id not in members
                    or not isinstance(beat, int)
                    or isinstance(beat, bool)
                    or beat > limit
                    or beat <= self._beats.get(node_id, 0)
                ):
                    continue
                self._beats[node_id] = beat
                self._rumour[node_id] = now

    # Calls

    def client(self, node_id: str, timeout: float = 10.0) -> PeerClient:
        """The peer API of member `node_id` (streaming calls want a longer `timeout`)."""
        record = self.directory().node(node_id)
        if record is None:
            raise Unavailable(f"node {node_id} is not a site member")
        if not record.reachable:
            raise Unavailable(f"node {node_id} has not announced an address yet")
        assert record.host and record.peer_port
        return PeerClient(_MemberConnection(self, record, timeout, self._pool(record)))

    def _pool(self, record: NodeRecord) -> ConnectionPool:
        with self._lock:
            entry = self._pools.get(record.id)
            if entry is not None and entry[0] == record:
                return entry[1]
            pool = ConnectionPool(idle_for=POOL_IDLE)
            self._pools[record.id] = (record, pool)
        if entry is not None:
            entry[1].close()  # a new address or certificate: connect afresh
        return pool

    def forget(self, node_id: str) -> None:
        """Close the idle connections to `node_id` (after a failed call)."""
        with self._lock:
            entry = self._pools.pop(node_id, None)
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
        self, peers: Peers, record: NodeRecord, timeout: float, pool: ConnectionPool
    ) -> None:
        assert record.host and record.peer_port
        super().__init__(
            record.host,
            record.peer_port,
            peers.context,
            record.id,
            timeout,
            sessions=peers.tls_sessions,
            pool=pool,
        )
        self.peers = peers
        self.node_id = record.id

    def open(self) -> Any:
        conn = super().open()
        connect = conn.connect

        def checked_connect() -> None:
            connect()
            assert isinstance(conn.sock, ssl.SSLSocket)
            identity = cert_identity(conn.sock.getpeercert(binary_form=True))
            if identity.node_id != self.node_id or not self.peers.directory().is_member(identity):
                conn.close()
                self.peers.tls_sessions.pop((self.host, self.port, self.node_id), None)
                raise Forbidden(
                    f"node {self.node_id} presented a certificate that is not its own "
                    "(revoked, or another key)"
                )
            conn.peer = identity

        conn.connect = checked_connect  # type: ignore[method-assign]
        return conn

    def _reusable(self, conn: Any) -> bool:
        """A kept connection serves only while the member met on it still is one (not
        revoked since the handshake: a fresh handshake refuses it)."""
        return isinstance(conn.peer, CertIdentity) and self.peers.directory().is_member(conn.peer)

    def request(self, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        try:
            response = super().request(*args, **kwargs)
        except RemoteError:
            self.peers.saw(self.node_id)  # it answered
            raise
        except MeshprintError:
            self.peers.missed(self.node_id)  # not reached (or not the member it should be)
            raise
        self.peers.saw(self.node_id)
        return response
