"""The site directory: nodes, users, revocations and settings in one signed, versioned document.

Only the controller (holder of the CA key) makes new versions. Every node keeps the
newest version it has verified and passes it on, so a node that was off catches up
from any peer.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.clients.models import SignedDirectory
from appliance.config import SiteSettings
from appliance.crypto.userkeys import b64
from appliance.errors import BadRequest, Forbidden
from appliance.site.ca import SiteCA

NAME_RE = re.compile(r"[a-z][a-z0-9._-]{0,31}")
ROLES = ("super", "edge")


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeRecord:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @property
    def reachable(self) -> bool:
        return bool(self.host and self.peer_port)


@dataclass(frozen=True)
class UserRecord:
    name: str
    public_key: str
    wrapped_key: dict[str, Any]
    token_hash: str


class Directory:
    """A verified directory version. Use `Directory.verify` for anything that came in."""

    def __init__(self, raw: bytes, signature: bytes) -> None:
        self.raw = raw
        self.signature = signature
        self.doc: dict[str, Any] = json.loads(raw)

    @staticmethod
    def _encode(doc: dict[str, Any]) -> bytes:
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

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
        recovery: dict[str, str] | None = None,
    ) -> Directory:
        """Version 1, with `recovery` (the authority sealed under the recovery key,
        `appliance.site.recovery`) when given."""
        doc: dict[str, Any] = {
            "site_id": site_id,
            "name": name,
            "version": 1,
            "issued_at": time.time(),
            "controller": controller.id,
            "nodes": {controller.id: controller.__dict__},
            "users": {},
            "printers": {},
            "revoked": [],
            "settings": SiteSettings().to_dict(),
        }
        if recovery is not None:
            doc["recovery"] = recovery
        raw = cls._encode(doc)
        return cls(raw, ca.sign(raw))

    def edited(self, ca: SiteCA, change: Callable[[dict[str, Any]], None]) -> Directory:
        """The next version: `change` edits a copy of the document, the controller signs it."""
        doc = copy.deepcopy(self.doc)
        change(doc)
        SiteSettings.from_dict(doc["settings"])  # never sign invalid settings
        doc["version"] = self.version + 1
        doc["issued_at"] = time.time()
        raw = self._encode(doc)
        return Directory(raw, ca.sign(raw))

    def signed(self) -> SignedDirectory:
        """The directory as it travels between nodes: the signed document, base64."""
        return {"raw": b64(self.raw), "signature": b64(self.signature)}

    @property
    def version(self) -> int:
        return int(self.doc["version"])

    @property
    def site_id(self) -> str:
        return str(self.doc["site_id"])

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def controller_id(self) -> str:
        return str(self.doc["controller"])

    @property
    def settings(self) -> SiteSettings:
        return SiteSettings.from_dict(self.doc["settings"])

    @property
    def nodes(self) -> dict[str, NodeRecord]:
        return {k: NodeRecord.from_dict(v) for k, v in self.doc["nodes"].items()}

    def node(self, node_id: str) -> NodeRecord | None:
        data = self.doc["nodes"].get(node_id)
        return NodeRecord.from_dict(data) if data else None

    def user(self, name: str) -> UserRecord | None:
        data = self.doc["users"].get(name)
        return UserRecord(name=name, **data) if data else None

    @property
    def users(self) -> list[str]:
        return sorted(self.doc["users"])

    @property
    def revoked(self) -> set[str]:
        return set(self.doc["revoked"])

    def is_member(self, node_id: str, cert_serial: str) -> bool:
        """Whether a certificate belongs to a current, unrevoked member."""
        record = self.node(node_id)
        return (
            record is not None
            and record.cert_serial == cert_serial
            and cert_serial not in self.revoked
        )
