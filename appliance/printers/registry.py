"""The site's printers, kept in the signed directory so every node knows them.

A printer is a name (its id: lower-case, in URLs, QR posters and commands), an optional
display name people read ("Front desk"), a URI saying how to reach it, and optionally an
SNMP address and credentials for status checks:

    ipp://HOST[:PORT]/PATH     direct IPP Print-Job (port 631 by default)
    ipps://HOST[:PORT]/PATH    the same over TLS; certificate checked unless pinned or allowed
    socket://HOST[:PORT]       RAW, port 9100 by default; `pdl` is the language it speaks
    cups:QUEUE                 a queue on one node's CUPS (`node`): releases are delivered there
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from appliance.errors import BadRequest, NotFound
from appliance.hostname import check_host

if TYPE_CHECKING:
    from appliance.site.state import SiteState

PRINTER_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
QUEUE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,126}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
DEFAULT_PORTS = {"ipp": 631, "ipps": 631, "socket": 9100}
# What a RAW printer speaks: documents in other formats are converted through CUPS's
# filters; "as-is" sends the bytes unchanged (clients that print with its own driver).
PDL_CHOICES = ("postscript", "pcl", "pdf", "as-is")
DEFAULT_PDL = "postscript"
URI_HELP = "use ipp://HOST[:PORT]/PATH, ipps://HOST[:PORT]/PATH, socket://HOST[:9100] or cups:QUEUE"


def check_printer_name(name: str) -> str:
    if not PRINTER_NAME_RE.fullmatch(name):
        raise BadRequest(
            f"{name!r} is not a valid printer name: use 1-40 lower-case letters, digits, "
            "'.', '_' or '-'"
        )
    return name


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # ipp, ipps, socket, cups
    host: str = ""
    port: int = 0
    path: str = ""  # IPP resource path, or the CUPS queue name

    @property
    def uri(self) -> str:
        if self.scheme == "cups":
            return f"cups:{self.path}"
        if self.scheme == "socket":
            return f"socket://{self.host}:{self.port}"
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def parse_uri(uri: str) -> Endpoint:
    """Validate a printer URI; BadRequest with the accepted forms otherwise."""
    uri = uri.strip()
    if uri.startswith("cups:"):
        queue = uri[len("cups:") :].lstrip("/")
        if not QUEUE_RE.fullmatch(queue):
            raise BadRequest(f"{uri!r}: a CUPS queue name is letters, digits, '_', '.', '-'")
        return Endpoint("cups", path=queue)
    parts = urlsplit(uri)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise BadRequest(f"{uri!r} is not a printer URI: {URI_HELP}")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise BadRequest(f"{uri!r} has an invalid port") from None
    if parts.username or parts.password or parts.query or parts.fragment:
        raise BadRequest(f"{uri!r}: printer URIs carry no user, password, query or fragment")
    host = check_host(parts.hostname)
    if parts.scheme == "socket":
        if parts.path not in ("", "/"):
            raise BadRequest(f"{uri!r}: a socket:// URI has no path")
        return Endpoint("socket", host, port)
    return Endpoint(parts.scheme, host, port, parts.path or "/ipp/print")


@dataclass(frozen=True)
class SnmpConfig:
    host: str
    port: int = 161
    community: str | None = None
    v3_user: str | None = None
    v3_auth_key: str | None = None
    v3_priv_key: str | None = None

    @classmethod
    def parse(cls, address: str, community: str | None, v3: str | None) -> SnmpConfig:
        host, _, port_text = (
            address.rpartition(":") if address.count(":") == 1 else (address, "", "")
        )
        try:
            port = int(port_text) if port_text else 161
        except ValueError:
            raise BadRequest(f"{address!r}: the SNMP port must be a number") from None
        if not 0 < port < 65536:
            raise BadRequest(f"{address!r}: the SNMP port must be 1-65535")
        if community and v3:
            raise BadRequest("give either --community (SNMP v2c) or --snmp-v3, not both")
        if v3:
            user, _, keys = v3.partition(":")
            auth, _, priv = keys.partition(":")
            if not user or (auth and len(auth) < 8) or (priv and len(priv) < 8):
                raise BadRequest("--snmp-v3 is USER[:AUTHKEY[:PRIVKEY]], keys of 8+ characters")
            return cls(check_host(host), port, None, user, auth or None, priv or None)
        return cls(check_host(host), port, community or "public")


@dataclass(frozen=True)
class PrinterRecord:
    name: str
    uri: str
    location: str = ""
    snmp: SnmpConfig | None = None
    pin_sha256: str | None = None
    allow_self_signed: bool = False
    pdl: str | None = None  # socket:// printers only: one of PDL_CHOICES
    node: str | None = None  # cups: printers only: the node whose CUPS has the queue
    label: str = ""  # the display name ("Front desk"); empty: the name is shown

    @property
    def display_name(self) -> str:
        return self.label or self.name

    @property
    def endpoint(self) -> Endpoint:
        return parse_uri(self.uri)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("name")
        if not data["label"]:
            data.pop("label")  # records without one read as they always did
        return data

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> PrinterRecord:
        snmp = data.get("snmp")
        return cls(
            name=name,
            uri=data["uri"],
            location=data.get("location", ""),
            snmp=SnmpConfig(**snmp) if snmp else None,
            pin_sha256=data.get("pin_sha256"),
            allow_self_signed=bool(data.get("allow_self_signed", False)),
            pdl=data.get("pdl"),
            node=data.get("node"),
            label=str(data.get("label") or ""),
        )

    def public(self) -> dict[str, Any]:
        """What users and status may see: no SNMP credentials."""
        return {
            "name": self.name,
            "display_name": self.display_name,
            "uri": self.uri,
            "location": self.location,
            "snmp": f"{self.snmp.host}:{self.snmp.port}" if self.snmp else None,
            "pdl": self.pdl,
            "node": self.node,
        }


def new_printer(
    name: str,
    uri: str,
    location: str = "",
    snmp: SnmpConfig | None = None,
    pin_sha256: str | None = None,
    allow_self_signed: bool = False,
    pdl: str | None = None,
    node: str | None = None,
    label: str = "",
) -> PrinterRecord:
    """A validated printer record (it is not added anywhere yet)."""
    endpoint = parse_uri(uri)
    if endpoint.scheme == "socket":
        pdl = pdl or DEFAULT_PDL
        if pdl not in PDL_CHOICES:
            raise BadRequest(f"--pdl {pdl!r}: a RAW printer speaks one of {', '.join(PDL_CHOICES)}")
    elif pdl is not None:
        raise BadRequest(
            "--pdl applies to socket:// (RAW) printers only: IPP and CUPS printers say "
            "themselves which formats they take"
        )
    if node is not None and endpoint.scheme != "cups":
        raise BadRequest("--on-node applies to cups: printers only (a queue on one machine)")
    if pin_sha256 is not None:
        pin_sha256 = pin_sha256.replace(":", "").lower()
        if not SHA256_RE.fullmatch(pin_sha256):
            raise BadRequest("--pin is the printer certificate's SHA-256 fingerprint (64 hex)")
    if (pin_sha256 or allow_self_signed) and endpoint.scheme != "ipps":
        raise BadRequest("--pin and --allow-self-signed only apply to ipps:// printers")
    if len(location) > 120:
        raise BadRequest("the location is at most 120 characters")
    return PrinterRecord(
        check_printer_name(name),
        endpoint.uri,
        location.strip(),
        snmp,
        pin_sha256,
        allow_self_signed,
        pdl,
        node,
        check_label(label),
    )


def check_label(label: str) -> str:
    """A display name: up to 60 printable characters ("Front desk", "2nd floor, colour")."""
    label = " ".join(label.split())
    if len(label) > 60 or not label.isprintable():
        raise BadRequest("a display name is at most 60 printable characters")
    return label


def printers(doc: dict[str, Any]) -> dict[str, PrinterRecord]:
    return {
        name: PrinterRecord.from_dict(name, data) for name, data in doc.get("printers", {}).items()
    }


def check_new(doc: dict[str, Any], name: str) -> None:
    if name in doc.get("printers", {}):
        raise BadRequest(f"printer {name} already exists (remove it first)")


def find(doc: dict[str, Any], name: str) -> PrinterRecord:
    record = printers(doc).get(name)
    if record is None:
        known = ", ".join(sorted(doc.get("printers", {}))) or "none yet"
        raise NotFound(f"no printer {name!r} (printers: {known})")
    return record


# Changing the site's printers: on the controller, one directory transaction each (the
# command line and the web UI both call these).


def add_printer(site: SiteState, record: PrinterRecord) -> None:
    check_new(site.directory().doc, record.name)

    def add(doc: dict[str, Any]) -> None:
        check_new(doc, record.name)
        doc.setdefault("printers", {})[record.name] = record.to_dict()

    site.edit(add)


def set_printer(
    site: SiteState, name: str, label: str | None = None, location: str | None = None
) -> PrinterRecord:
    """Change a printer's display name and/or location (its id and address stay)."""
    label = None if label is None else check_label(label)
    if location is not None:
        location = location.strip()
        if len(location) > 120:
            raise BadRequest("the location is at most 120 characters")

    def change(doc: dict[str, Any]) -> None:
        entry = find(doc, name).to_dict()
        if label is not None:
            entry["label"] = label
        if location is not None:
            entry["location"] = location
        doc["printers"][name] = PrinterRecord.from_dict(name, entry).to_dict()

    site.edit(change)
    return find(site.directory().doc, name)


def remove_printer(site: SiteState, name: str) -> None:
    def remove(doc: dict[str, Any]) -> None:
        find(doc, name)
        del doc["printers"][name]

    site.edit(remove)
