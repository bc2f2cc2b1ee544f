"""Host names and IP addresses as people type them (RFC 1123 names, IPv4, IPv6)."""

from __future__ import annotations

import ipaddress
import re

from appliance.errors import BadRequest

HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")


def check_host(host: str) -> str:
    """`host` if it is an IP address or a well-formed host name; BadRequest if not."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not HOST_RE.fullmatch(host):
        raise BadRequest(f"{host!r} is not a host name or IP address")
    return host
