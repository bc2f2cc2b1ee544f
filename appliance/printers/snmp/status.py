"""A printer's status over SNMP, and the preflight before a job is sent: says in plain
words why a job must not be sent now, if it must not."""

from __future__ import annotations

from appliance.printers.errors import PrinterNotReady
from appliance.printers.snmp.decode import decode_status
from appliance.printers.snmp.mib import STATUS_COLUMNS, STATUS_SCALARS
from appliance.printers.snmp.models import PrinterStatus, Value
from appliance.printers.snmp.target import SnmpTarget, check_target
from appliance.printers.snmp.transport import LOOP, Session


def read_status(target: SnmpTarget) -> PrinterStatus:
    """Ask the printer for its state; PrinterUnreachable if it does not answer."""
    check_target(target)

    async def read() -> dict[str, Value]:
        session = Session(LOOP.engine(), target)
        values = await session.get(STATUS_SCALARS)
        values.update(await session.walk(STATUS_COLUMNS))
        return values

    # A GET, then one GETNEXT per table row: each bounded by pysnmp's own timeout.
    values = LOOP.run(read, target.budget * 4 + 10, target)
    return decode_status(values, target.host, target.port)


def preflight(target: SnmpTarget) -> PrinterStatus:
    """The printer's status if a job can go now; PrinterNotReady with the reason if not."""
    status = read_status(target)
    reason = status.blocking_reason()
    if reason:
        raise PrinterNotReady(reason)
    return status
