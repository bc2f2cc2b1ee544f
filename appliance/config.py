"""Typed, validated settings: one schema, clear errors.

`SiteSettings` are site-wide (part of the signed directory, changed by the controller
with `meshprint settings KEY VALUE`). Durations and sizes accept human units: "8h", "30m",
"512M", "2G".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from appliance.errors import ConfigError
from appliance.humanize import DURATION_UNITS, format_duration

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(text: str | int | float) -> int:
    """Seconds from "90", "90s", "30m", "8h" or "3d"."""
    if isinstance(text, int | float):
        return int(text)
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{text!r} is not a duration: use e.g. 90s, 30m, 8h or 3d")
    return int(float(match.group(1)) * DURATION_UNITS[(match.group(2) or "s").lower()])


def parse_size(text: str | int) -> int:
    """Bytes from "1048576", "512K", "512M", "2G"."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{text!r} is not a size: use e.g. 512K, 100M or 2G")
    unit = (match.group(2) or "").lower()[:1]
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


@dataclass(frozen=True)
class Limit:
    minimum: int
    maximum: int
    kind: str  # "duration" or "size"
    help: str

    def parse(self, name: str, value: Any) -> int:
        number = parse_duration(value) if self.kind == "duration" else parse_size(value)
        if not self.minimum <= number <= self.maximum:
            show = format_duration if self.kind == "duration" else _format_size
            raise ConfigError(
                f"{name} must be between {show(self.minimum)} and {show(self.maximum)}"
                f" (got {show(number)})"
            )
        return number


def _format_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        size = _SIZE_UNITS[unit.lower()]
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


LIMITS: dict[str, Limit] = {
    "retention": Limit(1800, 3 * 86400, "duration", "how long a held job waits for release"),
    "repair_grace": Limit(
        5, 7 * 86400, "duration", "how long a holder may be gone before its copy is rebuilt"
    ),
    "max_job_size": Limit(1024, 64 * 1024**4, "size", "largest document a node accepts"),
    "disk_reserve": Limit(
        0, 1024**4, "size", "free space a node keeps: jobs that would eat into it get 507"
    ),
    "edge_budget": Limit(
        1024**2, 64 * 1024**4, "size", "most an edge node holds (a member may have its own)"
    ),
}
EDGE_FREE_FLOOR = 0.10  # an edge node takes nothing that leaves its disk under 10 % free


@dataclass(frozen=True)
class SiteSettings:
    retention: int = 8 * 3600
    repair_grace: int = 600
    max_job_size: int = 512 * 1024**2
    disk_reserve: int = 64 * 1024**2
    edge_budget: int = 2 * 1024**3

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SiteSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"unknown setting {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}"
            )
        return cls(**{name: LIMITS[name].parse(name, value) for name, value in data.items()})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def changed(self, name: str, value: str) -> SiteSettings:
        name = name.replace("-", "_")
        if name not in LIMITS:
            raise ConfigError(f"unknown setting {name!r}; known: {', '.join(sorted(LIMITS))}")
        return replace(self, **{name: LIMITS[name].parse(name, value)})

    def describe(self) -> dict[str, str]:
        out = {}
        for name, limit in LIMITS.items():
            value = getattr(self, name)
            out[name] = format_duration(value) if limit.kind == "duration" else _format_size(value)
        return out
