"""Did a RAW job come out? The printer's SNMP page counter (prtMarkerLifeCount) says.

RAW printing has no job state, so before sending, the driver reads the counter; after,
the job counts as printed once the counter has advanced by the pages the receipt expects
(at least one when the number is unknown) and the printer is no longer busy printing.
Until then the job is "printing", with the printer's reason when it is stuck
(jammed, out of paper). Another job printed on the same printer at the same moment can
make the count arrive early: the check is as good as the counter.
"""

from __future__ import annotations

from appliance.printers.delivery import Progress, Stage
from appliance.printers.delivery.raw import RawReceipt
from appliance.printers.snmp.mib import PRT_MARKER_LIFE_COUNT
from appliance.printers.snmp.status import read_status
from appliance.printers.snmp.target import SnmpTarget
from appliance.printers.snmp.transport import read_values


class SnmpPageCounter:
    """A `CompletionCheck` for `RawDriver` over SNMP."""

    def __init__(self, target: SnmpTarget) -> None:
        self.target = target

    def baseline(self) -> int | None:
        values = read_values(self.target, [PRT_MARKER_LIFE_COUNT])
        count = values.get(PRT_MARKER_LIFE_COUNT)
        return count if isinstance(count, int) else None

    def progress(self, receipt: RawReceipt) -> Progress:
        status = read_status(self.target)
        if status.page_count is None or receipt.pages_before is None:
            return Progress(Stage.PRINTED, "sent; the printer reports no page counter")
        done = status.page_count - receipt.pages_before
        needed = receipt.pages or 1
        if done >= needed and status.printer_status != "printing":
            return Progress(Stage.PRINTED, f"{done} page(s) counted by the printer", done)
        stuck = status.blocking_reason()
        if stuck:
            return Progress(Stage.PRINTING, stuck)
        return Progress(Stage.PRINTING, f"{max(done, 0)} of {needed} page(s) counted so far")
