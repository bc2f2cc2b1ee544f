"""From a printer record to its driver and its SNMP preflight."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.printers.delivery import Driver
from appliance.printers.registry import PrinterRecord

if TYPE_CHECKING:
    from appliance.printers import snmp


def driver_for(record: PrinterRecord) -> Driver:
    endpoint = record.endpoint
    if endpoint.scheme in ("ipp", "ipps"):
        from appliance.printers.delivery.ipp import IppDriver

        return IppDriver(
            endpoint.uri, pin_sha256=record.pin_sha256, allow_self_signed=record.allow_self_signed
        )
    if endpoint.scheme == "socket":
        from appliance.printers.delivery.raw import RawDriver

        return RawDriver(endpoint.host, endpoint.port)
    from appliance.printers.delivery.cups import CupsDriver

    return CupsDriver(endpoint.path)


def snmp_target(record: PrinterRecord) -> snmp.SnmpTarget | None:
    config = record.snmp
    if config is None:
        return None
    from appliance.printers import snmp

    v3 = None
    if config.v3_user:
        v3 = snmp.SnmpV3User(config.v3_user, config.v3_auth_key, config.v3_priv_key)
    return snmp.SnmpTarget(config.host, config.port, community=config.community, v3=v3)


def preflight(record: PrinterRecord) -> None:
    """Raise PrinterNotReady / PrinterUnreachable when SNMP says the job must wait."""
    target = snmp_target(record)
    if target is not None:
        from appliance.printers import snmp

        snmp.preflight(target)
