"""Who answers a user's client: before a password or submit token goes out, the server's
certificate must belong to a current, unrevoked member in the newest member list the
client can trust.

The site CA's signature on a certificate is not enough: a removed office laptop keeps its
CA-signed certificate and key, and could answer at a member's old address. A client with
a node's data directory checks against that node's directory (the web UI, `--data`); a
client with only the CA certificate gathers signed member lists (`Membership`, served at
`GET /v1/members`) from the node it calls and every other member that list names,
takes the newest version, and keeps it in a per-user cache (`MemberCache`) so that a
list older than one it has seen is never used again (a removed node can only serve the
list from before its removal).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from appliance.clients.node import NodeClient
from appliance.errors import (
    ConfigError,
    Forbidden,
    MeshprintError,
    RemoteError,
    Unavailable,
    UntrustedNode,
)
from appliance.https.client import PeerCheck
from appliance.site.ca import SiteCA, common_name, key_fingerprint, load_cert, serial_hex
from appliance.site.directory import Membership, MemberView
from appliance.site.tls import CertIdentity, cert_identity

# How many other members are asked for their member list at once.
ASK_AT_ONCE = 8


def member_check(members: Callable[[], MemberView], where: str, sending: str) -> PeerCheck:
    """A `Client` check_peer: refuse (UntrustedNode) a server whose certificate is not a
    current member's in `members()`. `where` names the server and `sending` what is
    withheld ("your password") in the message."""

    def check(cert: bytes) -> None:
        try:
            identity = cert_identity(cert)
        except Forbidden:
            raise UntrustedNode(
                f"the node at {where} shows no site member certificate: not sending {sending}"
            ) from None
        if not members().is_member(identity):
            raise UntrustedNode(
                f"the node at {where} answering ({identity.node_id}) is not a current member "
                f"of the site (revoked?): not sending {sending}. Use another node's address, "
                "or ask the site's administrator"
            )

    return check


def own_node_check(node_cert: Path, where: str, sending: str) -> PeerCheck:
    """A check_peer that accepts only the certificate in `node_cert` (this machine's own
    node, for a caller on the same machine such as the Secure Print backend)."""
    try:
        mine = load_cert(node_cert)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read this node's certificate {node_cert} ({err})") from None
    public = mine.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    expected = CertIdentity(common_name(mine), serial_hex(mine), key_fingerprint(public))

    def check(cert: bytes) -> None:
        try:
            found = cert_identity(cert)
        except Forbidden:
            found = CertIdentity("", "", "")
        if found != expected:
            raise UntrustedNode(
                f"the server at {where} is not this machine's meshprint node: not sending {sending}"
            )

    return check


def newest(found: Iterable[Membership | None]) -> Membership | None:
    """The member list with the highest version (the first of equals), or None."""
    best: Membership | None = None
    for candidate in found:
        if candidate is not None and (best is None or candidate.version > best.version):
            best = candidate
    return best


class MemberCache:
    """The newest member list of one site (by CA) this user has seen, in a small file.

    It only ever moves forward: `remember` keeps the newer of the cached and the given
    list, so a rollback to an older version (a removed node serving the list from before
    its removal) is never used once a newer one was seen."""

    def __init__(self, root: Path, ca: SiteCA) -> None:
        self.path = root / f"members-{ca.fingerprint[:32]}.json"
        self.ca = ca

    def load(self) -> Membership | None:
        """The cached list, verified; None when there is none (or it does not verify)."""
        try:
            return Membership.from_wire(json.loads(self.path.read_text()), self.ca)
        except (OSError, ValueError, MeshprintError):
            return None

    def remember(self, found: Membership) -> Membership:
        """Keep `found` if it is newer than the cached list; the newer of the two."""
        cached = self.load()
        if cached is not None and cached.version >= found.version:
            return cached
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(found.signed()))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home: the check still uses the newest list found now
        return found


def _fetch(client: NodeClient, ca: SiteCA) -> Membership:
    return Membership.from_wire(client.members(), ca)


def _address(record_host: str | None, *ports: int | None) -> tuple[str, int] | None:
    port = next((p for p in ports if p), None)
    return (record_host, port) if record_host and port else None


def gather(
    ca: SiteCA,
    first: tuple[str, int],
    connect: Callable[[str, int], NodeClient],
    cache: MemberCache | None,
    sending: str,
) -> Membership:
    """The newest member list from the node at `first`, every other member the lists
    name (asked in parallel, the unreachable skipped) and `cache`; remembered there.

    Raises the first node's Unavailable when nothing at all could be had, or
    UntrustedNode when the node answered but with no list that verifies."""
    where = f"{first[0]}:{first[1]}"
    seen: list[Membership | None] = [cache.load() if cache is not None else None]
    asked = {first}
    first_error: MeshprintError | None = None
    try:
        seen.append(_fetch(connect(*first), ca))
    except MeshprintError as err:
        first_error = err

    def ask(address: tuple[str, int]) -> Membership | None:
        try:
            return _fetch(connect(*address), ca)
        except MeshprintError:
            return None

    while (best := newest(seen)) is not None:
        todo = {
            address
            for record in best.nodes.values()
            if record.cert_serial not in best.revoked
            and (address := _address(record.host, record.release_port, record.submit_port))
            and address not in asked
        }
        if not todo:
            break
        asked |= todo
        with ThreadPoolExecutor(min(ASK_AT_ONCE, len(todo))) as pool:
            seen += pool.map(ask, sorted(todo))
    if best is None:
        unreachable = isinstance(first_error, Unavailable) and not isinstance(
            first_error, RemoteError
        )
        if first_error is not None and unreachable:
            raise first_error  # not reachable at all: say so as any other call would
        raise UntrustedNode(
            f"cannot check that the node at {where} is a current member of the site "
            f"({first_error}): not sending {sending}"
        )
    return cache.remember(best) if cache is not None else best
