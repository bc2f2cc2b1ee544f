"""Finding printers: DNS-SD through avahi (`_ipp._tcp`, `_ipps._tcp`,
`_pdl-datastream._tcp`) and, for a subnet, an SNMP sweep. IPP printers are asked for
their make, model and formats (Get-Printer-Attributes)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance.errors import MeshprintError
from appliance.printers.ipp.client import IppClient
from appliance.printers.ipp.exceptions import IppError
from appliance.printers.snmp.scan import sweep

SERVICES = {"_ipp._tcp": "ipp", "_ipps._tcp": "ipps", "_pdl-datastream._tcp": "socket"}
BROWSE_TIMEOUT = 10.0
_ESCAPE = re.compile(r"\\(\d{3})")


@dataclass
class Found:
    name: str
    host: str
    uris: list[str] = field(default_factory=list)
    make_and_model: str = ""
    formats: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1))), text)


def _txt(fields: list[str]) -> dict[str, str]:
    out = {}
    for item in fields:
        key, _, value = item.strip('"').partition("=")
        out[key.lower()] = value
    return out


def parse_browse(output: str) -> list[Found]:
    """Resolved entries of `avahi-browse -rpkt` output, one per printer name and host."""
    found: dict[tuple[str, str], Found] = {}
    for line in output.splitlines():
        parts = line.split(";")
        if len(parts) < 10 or parts[0] != "=" or parts[4] not in SERVICES:
            continue
        name, service, address, port = _unescape(parts[3]), parts[4], parts[7], parts[8]
        txt = _txt(re.findall(r'"[^"]*"', ";".join(parts[9:])))
        host = f"[{address}]" if ":" in address else address
        scheme = SERVICES[service]
        uri = (
            f"socket://{host}:{port}"
            if scheme == "socket"
            else f"{scheme}://{host}:{port}/{txt.get('rp', 'ipp/print')}"
        )
        entry = found.setdefault((name, address), Found(name, address))
        if uri not in entry.uris:
            entry.uris.append(uri)
        entry.make_and_model = entry.make_and_model or txt.get("ty", "")
        if txt.get("pdl") and not entry.formats:
            entry.formats = txt["pdl"].split(",")
        if "dns-sd" not in entry.sources:
            entry.sources.append("dns-sd")
    return list(found.values())


def browse(timeout: float = BROWSE_TIMEOUT, env: dict[str, str] | None = None) -> list[Found]:
    if shutil.which("avahi-browse") is None:
        raise MeshprintError("DNS-SD discovery needs avahi-browse (Debian package avahi-utils)")
    found: list[Found] = []
    for service in SERVICES:
        try:
            result = subprocess.run(
                ["avahi-browse", "-rpkt", service],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired:
            continue
        if result.returncode != 0:
            raise MeshprintError(
                f"avahi-browse failed: {result.stderr.strip() or result.returncode} "
                "(is avahi-daemon running?)"
            )
        found += parse_browse(result.stdout)
    return _merge(found)


def _merge(items: list[Found]) -> list[Found]:
    merged: dict[str, Found] = {}
    for item in items:
        known = merged.setdefault(item.host + "/" + item.name, item)
        if known is not item:
            known.uris += [u for u in item.uris if u not in known.uris]
            known.sources += [s for s in item.sources if s not in known.sources]
            known.formats = known.formats or item.formats
    return list(merged.values())


def ask(found: Found) -> None:
    """Fill make, model and formats from the printer itself where it speaks plain IPP."""
    for uri in found.uris:
        if uri.startswith("ipp://"):
            try:
                info = IppClient(uri, timeout=5).get_printer_attributes()
            except (IppError, OSError):
                continue
            found.make_and_model = info.make_and_model or found.make_and_model
            found.formats = list(info.document_formats) or found.formats
            return


def discover(
    subnet: str | None = None,
    community: str = "public",
    env: dict[str, str] | None = None,
    snmp_port: int = 161,
) -> list[Found]:
    found = browse(env=env)
    if subnet:
        for hit in sweep(subnet, community, port=snmp_port):
            known = next((f for f in found if f.host == hit.host), None)
            if known is None:
                known = Found(
                    hit.model or hit.sys_descr,
                    hit.host,
                    [f"socket://{hit.host}:9100", f"ipp://{hit.host}:631/ipp/print"],
                )
                found.append(known)
            known.make_and_model = known.make_and_model or hit.model or hit.sys_descr
            known.sources.append("snmp")
    for item in found:
        ask(item)
    return found
