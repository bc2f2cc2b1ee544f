"""The DNS-SD record that makes phones and computers find Secure Print: an avahi service
file with `_ipp._tcp` and `_ipps._tcp`, each with the `_universal` subtype AirPrint
clients browse for (and `_print`), and the TXT keys they read (Bonjour Printing
Specification 1.2.1; Mopria and Windows read the same record, then ask the queue over IPP).

The TXT values come from what the queue itself reports over IPP (`txt_record`), so the
record and the queue cannot disagree: formats (pdl), Apple raster capabilities (URF),
colour, duplex, UUID, printer-type. avahi-daemon picks the file up by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from appliance.intake.ppd import PASS_THROUGH

SERVICE_FILE = "/etc/avahi/services/meshprint-secure-print.service"
SERVICE_TYPES = ("_ipp._tcp", "_ipps._tcp")


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _list(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)] if value not in (None, "") else []


def txt_record(queue: str, attrs: Mapping[str, Any]) -> dict[str, str]:
    """AirPrint TXT keys for CUPS queue `queue` from its Get-Printer-Attributes answer."""
    formats = _list(attrs.get("document-format-supported"))
    pdl = [f for f in PASS_THROUGH if f in formats]
    sides = _list(attrs.get("sides-supported"))
    uuid = _text(attrs.get("printer-uuid")).removeprefix("urn:uuid:")
    model = _text(attrs.get("printer-make-and-model")) or "meshprint Secure Print"
    return {
        "txtvers": "1",
        "qtotal": "1",
        "rp": f"printers/{queue}",
        "ty": model,
        "product": f"({model})",
        "note": _text(attrs.get("printer-location")),
        "pdl": ",".join(pdl),
        "URF": _text(attrs.get("urf-supported")) or "none",
        "Color": "T" if attrs.get("color-supported") else "F",
        "Duplex": "T" if any(s.startswith("two-sided") for s in sides) else "F",
        "Copies": "T",
        "kind": "document",
        "PaperMax": "legal-A4",
        "printer-state": "3",
        "printer-type": f"0x{int(attrs.get('printer-type') or 0):X}",
        "UUID": uuid,
        "TLS": "1.2",
        "air": "none",
        "mopria-certified": _text(attrs.get("mopria-certified")) or "1.3",
        "priority": "0",
    }


def service_xml(name: str, port: int, txt: Mapping[str, str]) -> str:
    """The avahi service file (avahi.service(5))."""
    records = "".join(
        f"    <txt-record>{escape(f'{key}={value}')}</txt-record>\n" for key, value in txt.items()
    )
    services = ""
    for kind in SERVICE_TYPES:
        services += (
            "  <service>\n"
            f"    <type>{kind}</type>\n"
            f"    <subtype>_universal._sub.{kind}</subtype>\n"
            f"    <subtype>_print._sub.{kind}</subtype>\n"
            f"    <port>{port}</port>\n"
            f"{records}"
            "  </service>\n"
        )
    return (
        '<?xml version="1.0" standalone="no"?>\n'
        '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
        "<!-- Written by 'meshprint intake install'; changes are overwritten. -->\n"
        "<service-group>\n"
        f"  <name>{escape(name)}</name>\n"
        f"{services}"
        "</service-group>\n"
    )
