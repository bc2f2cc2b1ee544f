"""From a printer record to its driver and its SNMP preflight."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.printers.delivery import Driver
from appliance.printers.registry import PrinterRecord

if TYPE_CHECKING:
    from appliance.printers.snmp.target import SnmpTarget


def driver_for(record: PrinterRecord) -> Driver:
    endpoint = record.endpoint
    if endpoint.scheme in ("ipp", "ipps"):
        from appliance.printers.delivery.ipp import IppDriver

        return IppDriver.for_record(record)
    if endpoint.scheme == "socket":
        from appliance.printers.delivery.raw import RawDriver
        from appliance.printers.pagecount import SnmpPageCounter

        target = snmp_target(record)
        return RawDriver(
            endpoint.host,
            endpoint.port,
            pdl=None if record.pdl in (None, "as-is") else record.pdl,
            check=SnmpPageCounter(target) if target is not None else None,
        )
    from appliance.printers.delivery.cups import CupsDriver

    return CupsDriver(endpoint.path)


def snmp_target(record: PrinterRecord) -> SnmpTarget | None:
    if record.snmp is None:
        return None
    from appliance.printers.snmp.target import SnmpTarget

    return SnmpTarget.from_config(record.snmp)


def preflight(record: PrinterRecord) -> None:
    """Raise PrinterNotReady / PrinterUnreachable when SNMP says the job must wait."""
    target = snmp_target(record)
    if target is not None:
        from appliance.printers.snmp.status import preflight as snmp_preflight

        snmp_preflight(target)
