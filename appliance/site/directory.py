"""The site directory: nodes, users, revocations and settings in one signed, versioned document.

Only the controller (holder of the CA key) makes new versions. Every node keeps the
newest version it has verified and passes it on, so a node that was off catches up
from any peer.

Each version also carries its member list signed on its own (`Membership`: nodes and
revocations, no users), which any node gives to anyone (`GET /v1/members`), so a user's
client can check that the node it is about to send a password to is a current member
without ever seeing the users' wrapped keys.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from appliance.clients.models import SignedDirectory
from appliance.config import SiteSettings
from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Conflict, Forbidden
from appliance.site import addresses
from appliance.site.addresses import Announcement
from appliance.site.ca import SiteCA
from appliance.site.tls import CertIdentity

NAME_RE = re.compile(r"[a-z][a-z0-9._-]{0,31}")
ROLES = ("super", "edge")


MAX_POINT = 254  # 255 is the owner's share (USER_X)


def next_point(doc: dict[str, Any]) -> int:
    """The member point for a member added to `doc` now: above every point a member ever
    had (`doc["next_point"]` remembers removed ones), so none is ever given twice."""
    used = [n.get("point") or 0 for n in doc["nodes"].values()]
    point = max([int(doc.get("next_point", 1)), *(p + 1 for p in used)])
    if point > MAX_POINT:
        raise Conflict(f"this site has given out all {MAX_POINT} member points")
    return point


def give_point(doc: dict[str, Any], record: dict[str, Any]) -> None:
    """Give the member `record` (in `doc["nodes"]`) the next point."""
    record["point"] = next_point(doc)
    doc["next_point"] = record["point"] + 1


def check_user_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise BadRequest(
            f"{name!r} is not a valid user name: use 1-32 lower-case letters, digits, '.', '_' "
            "or '-', starting with a letter"
        )
    return name


@dataclass(frozen=True)
class NodeRecord:
    id: str
    name: str
    role: str
    cert_serial: str
    machine_id: str
    host: str | None = None
    peer_port: int | None = None
    submit_port: int | None = None
    release_port: int | None = None
    # This member's Shamir point: every share it ever holds of any job is at this point,
    # so no repair can give it a second share of one job. Fixed for life (never reused);
    # None on records made before there were member points (until the controller starts).
    point: int | None = None
    # SHA-256 of its public key (`ca.key_fingerprint`): a certificate with the member's
    # name and serial but another key (minted with the CA key) is not this member.
    # None on records made before keys were pinned.
    key_sha256: str | None = None
    # The release authority's signature that this member may take copies of jobs held
    # before it joined (`release_authority.vouch`: a restored controller).
    vouched: str | None = None
    # Most this member (an edge node) holds, in bytes, instead of the site's edge_budget
    # (`meshprint member budget`); None: the site's.
    budget: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeRecord:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @property
    def reachable(self) -> bool:
        return bool(self.host and self.peer_port)


ALIAS_MAX = 64


def check_alias(alias: str) -> str:
    """An extra name for a user (a Windows `HOST\\user`, a macOS short name), as stored:
    trimmed and in lower case (aliases match without regard to case)."""
    text = alias.strip()
    if not text or len(text) > ALIAS_MAX or not text.isprintable():
        raise BadRequest(
            f"{alias[:ALIAS_MAX]!r} is not a valid alias: use 1-{ALIAS_MAX} printable "
            "characters (e.g. OFFICE-PC\\alice or ajones)"
        )
    return text.casefold()


@dataclass(frozen=True)
class UserRecord:
    name: str
    public_key: str
    wrapped_key: dict[str, Any]
    token_hash: str
    # The personal printer URL (`appliance.site.printer_urls`): its secret's hash and the
    # secret sealed to the user's key; None: none.
    printer_url: dict[str, str] | None = None
    # Extra names matched (case-insensitively) for jobs from a personal URL or the local
    # Secure Print queue, in lower case.
    aliases: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> UserRecord:
        """The record; keys a newer version added are left out."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "name"}
        known["aliases"] = tuple(known.get("aliases") or ())
        return cls(name=name, **known)


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class MemberView:
    """What a directory and its member list share: version, site, nodes, revocations.

    `announced` holds the members' own address announcements (`appliance.site.addresses`,
    verified where they came in): `nodes` and `node` give each member's announced
    address over the one the signed document may still carry."""

    def __init__(
        self, raw: bytes, signature: bytes, announced: dict[str, Announcement] | None = None
    ) -> None:
        self.raw = raw
        self.signature = signature
        self.doc: dict[str, Any] = json.loads(raw)
        nodes, revoked = self.doc["nodes"], self.doc["revoked"]
        self.announced: dict[str, Announcement] = {  # only those that speak for a member
            node_id: one
            for node_id, one in (announced or {}).items()
            if node_id in nodes and one.applies_to(nodes[node_id], revoked)
        }

    @functools.cached_property
    def addresses_digest(self) -> str:
        """A short summary of the address announcements (`addresses.digest`): two nodes
        with the same have the same."""
        return addresses.digest(self.announced)

    def signed(self) -> SignedDirectory:
        """The document as it travels: the signed bytes and the signature, base64, and
        the members' address announcements."""
        out: SignedDirectory = {"raw": b64(self.raw), "signature": b64(self.signature)}
        if self.announced:
            out["addresses"] = [a.to_wire() for _, a in sorted(self.announced.items())]
        return out

    @property
    def version(self) -> int:
        return int(self.doc["version"])

    @property
    def site_id(self) -> str:
        return str(self.doc["site_id"])

    @functools.cached_property
    def nodes(self) -> Mapping[str, NodeRecord]:
        """The members' records (made once per directory version: the mesh asks for them
        on every call it makes or answers)."""
        entries = addresses.overlay(self.doc["nodes"], self.announced, self.revoked)
        return MappingProxyType({k: NodeRecord.from_dict(v) for k, v in entries.items()})

    def node(self, node_id: str) -> NodeRecord | None:
        return self.nodes.get(node_id)

    def verified_addresses(self, wire: Any, ca: SiteCA) -> dict[str, Announcement]:
        """The announcements in `wire` (a `signed()` form's "addresses") that verify as
        current members' own; the others are left out."""
        found: dict[str, Announcement] = {}
        for item in wire if isinstance(wire, list) else []:
            try:
                one = addresses.verify(item, ca, self.site_id, self.doc["nodes"], self.revoked)
            except Forbidden:
                continue
            if one.node_id not in found or found[one.node_id].at < one.at:
                found[one.node_id] = one
        return found

    @property
    def revoked(self) -> set[str]:
        return set(self.doc["revoked"])

    def is_member(self, identity: CertIdentity) -> bool:
        """Whether a certificate belongs to a current, unrevoked member: its name, serial
        and (where the record pins one) its key."""
        record = self.node(identity.node_id)
        return (
            record is not None
            and record.cert_serial == identity.serial
            and identity.serial not in self.revoked
            and record.key_sha256 in (None, identity.key)
        )


# Signed with this prefix, so a member list never verifies as a directory or a release
# command (signed by the same key) and no other signature verifies as a member list.
MEMBERSHIP_CONTEXT = b"meshprint member list v1\n"
MEMBERSHIP_KEYS = ("site_id", "version", "issued_at", "controller", "nodes", "revoked")


class Membership(MemberView):
    """One directory version's member list (nodes and revocations, no users), signed by
    the controller on its own. Use `Membership.verify` for anything that came in."""

    @classmethod
    def sign(cls, doc: dict[str, Any], ca: SiteCA) -> Membership:
        raw = _encode({key: doc[key] for key in MEMBERSHIP_KEYS})
        return cls(raw, ca.sign(MEMBERSHIP_CONTEXT + raw))

    @classmethod
    def verify(cls, raw: bytes, signature: bytes, ca: SiteCA) -> Membership:
        """The member list, once its signature is the site controller's (else Forbidden)."""
        ca.verify(MEMBERSHIP_CONTEXT + raw, signature)
        try:
            found = cls(raw, signature)
            if set(found.doc) != set(MEMBERSHIP_KEYS):
                raise ValueError
            _ = (found.version, found.site_id, found.nodes, found.revoked)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise Forbidden("the signed member list is malformed") from None
        return found

    @classmethod
    def from_wire(cls, signed: Any, ca: SiteCA) -> Membership:
        """A member list as `signed()` sent it (base64 fields), verified, with the
        address announcements beside it that verify."""
        try:
            raw, signature = unb64(signed["raw"]), unb64(signed["signature"])
        except (TypeError, KeyError, ValueError):
            raise Forbidden("the signed member list is malformed") from None
        found = cls.verify(raw, signature, ca)
        return cls(raw, signature, found.verified_addresses(signed.get("addresses"), ca))


class Directory(MemberView):
    """A verified directory version. Use `Directory.verify` for anything that came in."""

    @staticmethod
    def _seal(doc: dict[str, Any], ca: SiteCA) -> Directory:
        """Sign `doc`, with its member list signed inside it first."""
        doc["membership"] = Membership.sign(doc, ca).signed()
        raw = _encode(doc)
        return Directory(raw, ca.sign(raw))

    @classmethod
    def verify(cls, raw: bytes, signature: bytes, ca: SiteCA, site_id: str | None) -> Directory:
        ca.verify(raw, signature)
        directory = cls(raw, signature)
        if site_id is not None and directory.site_id != site_id:
            raise Forbidden("directory belongs to another site")
        return directory

    @classmethod
    def create(
        cls,
        ca: SiteCA,
        site_id: str,
        name: str,
        controller: NodeRecord,
        extra: dict[str, Any] | None = None,
    ) -> Directory:
        """Version 1, with the `extra` top-level entries (what `site create` seals under
        the recovery key: `appliance.site.recovery`, `appliance.site.release_authority`)."""
        doc: dict[str, Any] = {
            "site_id": site_id,
            "name": name,
            "version": 1,
            "issued_at": time.time(),
            "controller": controller.id,
            "nodes": {controller.id: {**controller.__dict__, "point": 1}},
            "next_point": 2,
            "users": {},
            "printers": {},
            "revoked": [],
            "settings": SiteSettings().to_dict(),
        }
        doc.update(extra or {})
        return cls._seal(doc, ca)

    def edited(self, ca: SiteCA, change: Callable[[dict[str, Any]], None]) -> Directory:
        """The next version: `change` edits a copy of the document, the controller signs it."""
        doc = copy.deepcopy(self.doc)
        change(doc)
        SiteSettings.from_dict(doc["settings"])  # never sign invalid settings
        doc["version"] = self.version + 1
        doc["issued_at"] = time.time()
        return self._seal(doc, ca)

    def check_follows(self, previous: Directory) -> None:
        """Forbidden unless this version keeps what a member's record may never change
        (its certificate serial, pinned key and member point) and gives no point twice:
        so the CA key alone cannot hand a member a second share point or another key."""
        points = [n.point for n in self.nodes.values() if n.point is not None]
        if len(points) != len(set(points)):
            raise Forbidden("this directory version gives one member point to two members")
        for node_id, before in previous.nodes.items():
            after = self.node(node_id)
            if after is None:
                continue
            if (
                after.cert_serial != before.cert_serial
                or (before.point is not None and after.point != before.point)
                or (before.key_sha256 is not None and after.key_sha256 != before.key_sha256)
            ):
                raise Forbidden(
                    f"this directory version changes member {node_id}'s certificate or point"
                )

    def membership(self) -> Membership | None:
        """This version's signed member list (None in versions made before there was one;
        the next version has it). It came signed inside the verified directory."""
        signed = self.doc.get("membership")
        if signed is None:
            return None
        return Membership(unb64(signed["raw"]), unb64(signed["signature"]), self.announced)

    def with_addresses(self, announced: dict[str, Announcement]) -> Directory:
        """This version with these (verified) address announcements beside it."""
        return Directory(self.raw, self.signature, announced)

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def controller_id(self) -> str:
        return str(self.doc["controller"])

    @functools.cached_property
    def settings(self) -> SiteSettings:
        """The site's settings (parsed once per directory version: repair asks for them
        for every job it holds, every tick)."""
        return SiteSettings.from_dict(self.doc["settings"])

    def user(self, name: str) -> UserRecord | None:
        data = self.doc["users"].get(name)
        return UserRecord.from_dict(name, data) if data else None

    def find_user(self, name: str) -> UserRecord | None:
        """The user called `name` or with `name` as an alias, regardless of case (for jobs
        from a personal printer URL or the local Secure Print queue)."""
        wanted = name.strip().casefold()
        if not wanted:
            return None
        found = self.user(wanted)
        if found is not None:
            return found
        for user, data in sorted(self.doc["users"].items()):
            if wanted in (data.get("aliases") or ()):
                return self.user(user)
        return None

    def name_taken(self, name: str) -> str | None:
        """The user who has `name` (case-insensitively) as their name or an alias."""
        found = self.find_user(name)
        return found.name if found else None

    @property
    def users(self) -> list[str]:
        return sorted(self.doc["users"])
