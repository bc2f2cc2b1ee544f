"""The DNS-SD record that makes phones and computers find the node's own printer
(`ipp(s)://HOST:P/ipp/print`, appliance/intake/ipp): `_ipp._tcp` and `_ipps._tcp`, each
with the `_universal` subtype AirPrint clients browse for and `_print`, the TXT keys they
read (Bonjour Printing Specification 1.2.1, PWG 5100.14 section 4.2; Mopria and Windows
read the same record, then ask the printer over IPP), and the `_printer._tcp` port-0
placeholder (no LPD here: clients must not try it).

One source: the TXT values are computed from the very attribute list the printer answers
Get-Printer-Attributes with (`attributes.printer_attributes`), so the record and the
printer cannot disagree: formats (pdl), Apple raster capabilities (URF), colour, duplex,
UUID (printer-uuid), kind (printer-kind), PaperMax (the largest media-size-supported),
adminurl (printer-more-info: the page that explains how to add the printer). Sign-in is
`air=username,password` (the printer asks HTTP Basic over IPPS). No certification key is
claimed (meshprint is not Mopria or AirPrint certified).

Two ways out:
- `service_xml`: the avahi service file (avahi.service(5)) for the appliance's
  /etc/avahi/services (multicast DNS on the appliance's own subnet);
- `zone_records`: the same services as unicast DNS-SD records (RFC 6763) in zone-file
  syntax, for the office DNS server when devices sit on other subnets (multicast does
  not cross routers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from appliance.datadir import Identity
from appliance.errors import ConfigError
from appliance.intake.ipp import attributes
from appliance.printers.ipp import Attribute

SERVICE_FILE = "/etc/avahi/services/meshprint-printer.service"
OLD_SERVICE_FILE = "/etc/avahi/services/meshprint-secure-print.service"  # the CUPS queue's
SERVICE_TYPES = ("_ipp._tcp", "_ipps._tcp")
SUBTYPES = ("_universal", "_print")
PLACEHOLDER = "_printer._tcp"  # port 0: "no LPD", as the Bonjour printing spec asks
PATH = "/ipp/print"
NAME = "Secure Print"
TXT_LIMIT = 255  # bytes in one TXT string (RFC 6763 6.1)
# PWG 5100.14 / Bonjour printing: PaperMax by the largest height a printer takes, in
# hundredths of a millimetre (legal is 355.6 mm, A3 420 mm, C = 17x22 in, A2 594 mm).
PAPER_MAX = (
    (35560, "<legal-A4"),
    (35560, "legal-A4"),
    (43180, "tabloid-A3"),
    (59400, "isoC-A2"),
)


@dataclass(frozen=True)
class PrinterSite:
    """What the record needs of the node: who it is and where its printer and page are."""

    site_id: str
    node_id: str
    host: str  # the host name clients reach the printer at (meshprint.local, an FQDN)
    port: int = 631
    release_url: str = ""  # the release page: printer-more-info and adminurl
    name: str = NAME
    location: str = ""


def printer_site(
    node: Identity, host: str, port: int, release_port: int, name: str, location: str
) -> PrinterSite:
    """The record's view of this node (`node`: its data directory's identity), its printer
    reached at `host:port` and its release page on `release_port`."""
    return PrinterSite(
        site_id=node.site_id,
        node_id=node.node_id,
        host=host,
        port=port,
        release_url=f"https://{host}:{release_port}/",
        name=name,
        location=location,
    )


def identity(printer: PrinterSite) -> attributes.Identity:
    """The printer's Identity, as the printer itself builds it for a request to `host`."""
    host = f"{printer.host}:{printer.port}"
    release = printer.release_url or f"https://{printer.host}/"
    return attributes.Identity(
        uris=(f"ipps://{host}{PATH}", f"ipp://{host}{PATH}"),
        uuid=attributes.printer_uuid(printer.site_id, printer.node_id),
        name=printer.name,
        location=printer.location,
        more_info=release,
        icon=f"{release.rstrip('/')}/static/icon-128.png",
    )


def _values(attrs: list[Attribute]) -> dict[str, list[Any]]:
    return {a.name: list(a.values) for a in attrs}


def _paper_max(sizes: list[Any]) -> str:
    def side(size: Any, name: str) -> int:
        value: Any = size[name]
        if isinstance(value, Attribute):
            value = value.values[0]
        return int(value)

    tallest = max((max(side(s, "x-dimension"), side(s, "y-dimension")) for s in sizes), default=0)
    if tallest < PAPER_MAX[0][0]:
        return PAPER_MAX[0][1]
    for limit, label in PAPER_MAX[1:]:
        if tallest <= limit:
            return label
    return ">isoC-A2"


def txt_record(attrs: list[Attribute]) -> dict[str, str]:
    """The TXT keys for the printer whose Get-Printer-Attributes answer is `attrs`."""
    v = _values(attrs)

    def one(name: str) -> Any:
        return v[name][0] if v.get(name) else None

    formats = [f for f in v.get("document-format-supported", []) if f in attributes.FORMATS]
    sides = [str(s) for s in v.get("sides-supported", [])]
    copies = one("copies-supported")
    model = str(one("printer-make-and-model") or NAME)
    txt = {
        "txtvers": "1",
        "qtotal": "1",
        "rp": PATH.lstrip("/"),
        "ty": model,
        "product": f"({model})",
        "adminurl": str(one("printer-more-info") or ""),
        "note": str(one("printer-location") or ""),
        "priority": "0",
        "pdl": ",".join(formats),
        "URF": ",".join(str(u) for u in v.get("urf-supported", [])) or "none",
        "UUID": str(one("printer-uuid") or "").removeprefix("urn:uuid:"),
        "TLS": "1.2",
        "air": "username,password",
        "kind": ",".join(str(k) for k in v.get("printer-kind", ["document"])),
        "PaperMax": _paper_max(v.get("media-size-supported", [])),
        "Color": "T" if one("color-supported") else "F",
        "Duplex": "T" if any(s.startswith("two-sided") for s in sides) else "F",
        "Copies": "T" if copies is not None and getattr(copies, "upper", 1) > 1 else "F",
        "printer-state": str(one("printer-state") or 3),
    }
    for key, value in txt.items():
        if len(f"{key}={value}".encode()) > TXT_LIMIT:
            raise ConfigError(
                f"the DNS-SD TXT key {key} would be longer than {TXT_LIMIT} bytes: "
                "shorten the printer's location or host name"
            )
    return txt


def printer_txt(printer: PrinterSite) -> dict[str, str]:
    """The TXT keys of `printer`, from the attributes the printer answers with."""
    return txt_record(attributes.printer_attributes(identity(printer), 0))


def service_xml(name: str, port: int, txt: Mapping[str, str]) -> str:
    """The avahi service file (avahi.service(5)): both IPP types and the placeholder."""
    records = "".join(
        f"    <txt-record>{escape(f'{key}={value}')}</txt-record>\n" for key, value in txt.items()
    )
    services = ""
    for kind in SERVICE_TYPES:
        subtypes = "".join(f"    <subtype>{s}._sub.{kind}</subtype>\n" for s in SUBTYPES)
        services += (
            "  <service>\n"
            f"    <type>{kind}</type>\n"
            f"{subtypes}"
            f"    <port>{port}</port>\n"
            f"{records}"
            "  </service>\n"
        )
    services += f"  <service>\n    <type>{PLACEHOLDER}</type>\n    <port>0</port>\n  </service>\n"
    return (
        '<?xml version="1.0" standalone="no"?>\n'
        '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
        "<!-- Written by 'meshprint intake install'; changes are overwritten. -->\n"
        "<service-group>\n"
        f"  <name>{escape(name)}</name>\n"
        f"{services}"
        "</service-group>\n"
    )


# Unicast DNS-SD (RFC 6763) in zone-file syntax (RFC 1035 5.1)


def _label(text: str) -> str:
    """One DNS label as a zone file writes it: '.', '\\', '"', ';', '(' ')' and spaces
    and other non-printing bytes escaped."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '.\\";()$@':
            out.append("\\" + char)
        elif byte <= 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    return "".join(out)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fqdn(name: str) -> str:
    name = name.strip()
    if not name or any(not part for part in name.rstrip(".").split(".")):
        raise ConfigError(f"{name!r} is not a DNS name (like office.example.com)")
    if not all(c.isalnum() or c in "-._" for c in name):
        raise ConfigError(f"{name!r} is not a DNS name: letters, digits, '-' and '.' only")
    return name.rstrip(".") + "."


def zone_records(printer: PrinterSite, domain: str, ttl: int = 3600) -> str:
    """The unicast DNS-SD records of `printer` for zone `domain`: the browse-domain
    pointers, for each IPP type its PTR, the subtype PTRs, SRV and TXT, and the
    `_printer._tcp` placeholder (SRV to port 0)."""
    zone = _fqdn(domain)
    host = _fqdn(printer.host)
    if not 0 < printer.port < 65536:
        raise ConfigError(f"--port must be 1 to 65535, not {printer.port}")
    txt = " ".join(_quoted(f"{k}={v}") for k, v in printer_txt(printer).items())
    instance = _label(printer.name)
    lines = [
        f"; DNS-SD for meshprint's printer {printer.name!r} (RFC 6763), zone {zone}",
        "; written by 'meshprint dnssd records': add to the office DNS server's zone",
        f"b._dns-sd._udp.{zone}\t{ttl}\tIN\tPTR\t{zone}",
        f"lb._dns-sd._udp.{zone}\t{ttl}\tIN\tPTR\t{zone}",
    ]
    for kind in SERVICE_TYPES:
        name = f"{instance}.{kind}.{zone}"
        lines += [
            f"{kind}.{zone}\t{ttl}\tIN\tPTR\t{name}",
            *(f"{sub}._sub.{kind}.{zone}\t{ttl}\tIN\tPTR\t{name}" for sub in SUBTYPES),
            f"{name}\t{ttl}\tIN\tSRV\t0 0 {printer.port} {host}",
            f"{name}\t{ttl}\tIN\tTXT\t{txt}",
        ]
    name = f"{instance}.{PLACEHOLDER}.{zone}"
    lines += [
        f"{PLACEHOLDER}.{zone}\t{ttl}\tIN\tPTR\t{name}",
        f"{name}\t{ttl}\tIN\tSRV\t0 0 0 {host}",
        f'{name}\t{ttl}\tIN\tTXT\t""',
    ]
    return "\n".join(lines) + "\n"
