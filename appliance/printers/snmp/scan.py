"""Find printers on a small network: ask every address for sysDescr and the Host
Resources MIB's printer objects, many at a time, on an engine of the sweep's own."""

from __future__ import annotations

import asyncio
import ipaddress
import math
from typing import TYPE_CHECKING, Any, NamedTuple

from appliance.errors import BadRequest
from appliance.printers.errors import PrinterUnreachable
from appliance.printers.snmp.decode import text
from appliance.printers.snmp.mib import (
    HR_DEVICE_DESCR,
    HR_DEVICE_PRINTER,
    HR_DEVICE_TYPE,
    HR_PRINTER_STATUS,
    SYS_DESCR,
)
from appliance.printers.snmp.target import SnmpTarget, SnmpV3User
from appliance.printers.snmp.transport import LOOP, Session

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

MAX_SWEEP_ADDRESSES = 1024  # a /22


class Discovered(NamedTuple):
    host: str
    sys_descr: str
    model: str | None  # hrDeviceDescr of the printer device, when there is one


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(str(cidr).strip(), strict=False)
    except ValueError:
        raise BadRequest(
            f"{cidr!r} is not a network: use ADDRESS/PREFIX, e.g. 192.168.1.0/24"
        ) from None
    if network.num_addresses > MAX_SWEEP_ADDRESSES:
        raise BadRequest(
            f"refusing to sweep {network} ({network.num_addresses} addresses): "
            f"sweep at most a /22 ({MAX_SWEEP_ADDRESSES} addresses) at a time"
        )
    return network


def sweep(
    cidr: str,
    community: str | None = "public",
    *,
    v3: SnmpV3User | None = None,
    port: int = 161,
    timeout: float = 1.0,
    retries: int = 0,
    concurrency: int = 64,
    printers_only: bool = True,
) -> list[Discovered]:
    """Ask every address of a small network (at most a /22) for sysDescr and model.

    Returns the hosts that answered, in address order; with `printers_only`, only those that
    have a printer in the Host Resources MIB (hrDeviceType printer or an hrPrinterStatus).
    Takes about ceil(addresses / concurrency) * timeout * (retries + 1) seconds.
    """
    network = _network(cidr)
    if v3 is not None:
        community = None
    hosts = [str(address) for address in network.hosts()]
    targets = [SnmpTarget(host, port, community, v3, timeout, retries) for host in hosts]
    if not 1 <= concurrency <= 256:
        raise BadRequest("sweep concurrency must be 1-256")
    if not targets:
        return []
    oids = (SYS_DESCR, HR_DEVICE_TYPE, HR_DEVICE_DESCR, HR_PRINTER_STATUS)

    async def probe(engine: SnmpEngine, gate: asyncio.Semaphore, target: SnmpTarget) -> Any:
        async with gate:
            try:
                values = await Session(engine, target).get(oids)
            except PrinterUnreachable:
                return None
        if SYS_DESCR not in values and HR_PRINTER_STATUS not in values:
            return None
        is_printer = values.get(HR_DEVICE_TYPE) == HR_DEVICE_PRINTER or HR_PRINTER_STATUS in values
        if printers_only and not is_printer:
            return None
        return Discovered(
            target.host,
            text(values.get(SYS_DESCR)) or "",
            (text(values.get(HR_DEVICE_DESCR)) or None) if is_printer else None,
        )

    async def run() -> list[Discovered]:
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        # A sweep-only engine: the shared one would keep an entry per address swept.
        engine = SnmpEngine()
        gate = asyncio.Semaphore(concurrency)
        try:
            found = await asyncio.gather(*(probe(engine, gate, t) for t in targets))
        finally:
            engine.close_dispatcher()
        return [item for item in found if item is not None]

    rounds = math.ceil(len(targets) / concurrency)
    return LOOP.run(run, rounds * targets[0].budget + 15, targets[0])
