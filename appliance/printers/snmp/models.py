"""What a printer says about itself, and what that means for a job: `PrinterStatus`
(with its reasons and warnings in plain words) and its `Supply` rows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.printers.snmp.mib import SUPPLY_RECEPTACLE

# A value as read from the agent: INTEGER/Counter/Gauge -> int, OCTET STRING -> bytes,
# OBJECT IDENTIFIER -> dotted str. Missing objects are left out of the mapping.
Value = int | bytes | str

# Conditions that stop a job, most urgent first, with what the person at the printer does.
BLOCKING_ERRORS = {
    "jammed": "paper jam — clear the jammed paper",
    "doorOpen": "a door or cover is open — close it",
    "noPaper": "out of paper — load paper",
    "noToner": "out of toner — replace the toner cartridge",
    "markerSupplyMissing": "a toner cartridge or other supply is missing — install it",
    "outputFull": "the output tray is full — empty it",
    "outputTrayMissing": "the output tray is missing — put it back",
    "offline": "the printer is offline — put it back online",
}
# Conditions worth showing, but the printer still prints.
WARNING_ERRORS = {
    "lowPaper": "paper is low",
    "lowToner": "toner is low",
    "inputTrayEmpty": "an input tray is empty",
    "inputTrayMissing": "an input tray is missing",
    "outputNearFull": "the output tray is nearly full",
    "serviceRequested": "the printer asks for service",
    "overduePreventMaint": "preventive maintenance is overdue",
}
LOW_SUPPLY_PERCENT = 10


@dataclass(frozen=True)
class Supply:
    """One row of prtMarkerSuppliesTable."""

    index: str  # hrDeviceIndex.prtMarkerSuppliesIndex, e.g. "1.1"
    description: str
    max_capacity: int | None  # -1 no limit, -2 unknown
    level: int | None  # -1 no limit, -2 unknown, -3 some remaining
    supply_class: int | None = None  # 3 consumed (toner), 4 receptacle (waste toner)

    @property
    def receptacle(self) -> bool:
        return self.supply_class == SUPPLY_RECEPTACLE

    @property
    def percent(self) -> int | None:
        """Level as a percentage of capacity (fill level for a receptacle), None if unknown."""
        if self.level is None or self.max_capacity is None:
            return None
        if self.level < 0 or self.max_capacity <= 0:
            return None
        percent = min(100, math.floor(100 * self.level / self.max_capacity + 0.5))
        return max(percent, 1 if self.level > 0 else 0)  # a little left is not "0%"

    @property
    def remaining(self) -> str:
        """The level as a person reads it: "42%", "some remaining", "unknown" …"""
        if self.percent is not None:
            return f"{self.percent}%"
        if self.level == -3:
            return "some remaining"
        if self.level == -1:
            return "no limit"
        if self.level is not None and self.level >= 0 and self.max_capacity == -1:
            return str(self.level)
        return "unknown"

    @property
    def empty(self) -> bool:
        """A consumed supply with nothing left (a known capacity and level 0)."""
        return not self.receptacle and self.level == 0 and (self.max_capacity or 0) != 0

    @property
    def full(self) -> bool:
        """A receptacle (waste toner box) that is full."""
        return (
            self.receptacle
            and self.level is not None
            and self.max_capacity is not None
            and self.max_capacity > 0
            and self.level >= self.max_capacity
        )

    @property
    def low(self) -> bool:
        percent = self.percent
        if percent is None:
            return False
        if self.receptacle:
            return percent >= 100 - LOW_SUPPLY_PERCENT and not self.full
        return 0 < percent <= LOW_SUPPLY_PERCENT

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "description": self.description,
            "max_capacity": self.max_capacity,
            "level": self.level,
            "percent": self.percent,
            "remaining": self.remaining,
            "receptacle": self.receptacle,
        }


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer says about itself. Fields are None when the agent does not have them."""

    host: str = ""
    port: int = 161
    device_status: str | None = None  # unknown, running, warning, testing, down
    printer_status: str | None = None  # other, unknown, idle, printing, warmup
    errors: tuple[str, ...] = ()  # set bits of hrPrinterDetectedErrorState, in bit order
    page_count: int | None = None
    supplies: tuple[Supply, ...] = ()
    alerts: tuple[str, ...] = ()
    description: str | None = None  # sysDescr
    model: str | None = None  # hrDeviceDescr
    raw: Mapping[str, Value] = field(default_factory=dict, repr=False, compare=False)

    def blocking_reasons(self) -> list[str]:
        reasons = []
        if self.device_status == "down":
            reasons.append("the printer reports it is down — check its display")
        elif self.device_status == "testing":
            reasons.append("the printer is in test or maintenance mode")
        empty = [s for s in self.supplies if s.empty]
        for name, reason in BLOCKING_ERRORS.items():
            if name in self.errors and not (name == "noToner" and empty):
                reasons.append(reason)
        reasons.extend(f"{s.description or 'a supply'} is empty — replace it" for s in empty)
        reasons.extend(
            f"{s.description or 'a waste receptacle'} is full — empty or replace it"
            for s in self.supplies
            if s.full
        )
        return reasons

    def blocking_reason(self) -> str | None:
        """Why a job must not be sent now, in words for the person at the printer; None if
        the printer can take it (low paper or toner are warnings, not reasons)."""
        reasons = self.blocking_reasons()
        if not reasons:
            return None
        said = f" (the printer says: {'; '.join(self.alerts)})" if self.alerts else ""
        return "; ".join(reasons) + said

    @property
    def printable(self) -> bool:
        return not self.blocking_reasons()

    def warnings(self) -> list[str]:
        found = [text for name, text in WARNING_ERRORS.items() if name in self.errors]
        if self.device_status == "warning" and not found:
            found.append("the printer reports a warning")
        found.extend(
            f"{s.description or 'a supply'} is low ({s.remaining})"
            for s in self.supplies
            if s.low and not s.receptacle
        )
        found.extend(
            f"{s.description or 'a waste receptacle'} is nearly full"
            for s in self.supplies
            if s.low and s.receptacle
        )
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": f"{self.host}:{self.port}",
            "device_status": self.device_status,
            "printer_status": self.printer_status,
            "errors": list(self.errors),
            "page_count": self.page_count,
            "supplies": [s.to_dict() for s in self.supplies],
            "alerts": list(self.alerts),
            "description": self.description,
            "model": self.model,
            "printable": self.printable,
            "blocking_reason": self.blocking_reason(),
            "warnings": self.warnings(),
        }
