"""The print options a job carries: copies, sides and colour, and their valid values.

A bottom-layer module: the store keeps the options with each job (and cleans what it
reads back), the printers' drivers apply them, intake and release take them from users.
Only known keys with valid values are kept, so a replica or an old database row can
never carry anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SIDES = ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
COPIES_MAX = 99


def clean_options(raw: object) -> dict[str, Any]:
    """The valid part of `raw`: copies (1-99), sides (one of SIDES), color (bool)."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, Any] = {}
    copies = raw.get("copies")
    if isinstance(copies, int) and not isinstance(copies, bool) and 1 <= copies <= COPIES_MAX:
        out["copies"] = copies
    if raw.get("sides") in SIDES:
        out["sides"] = raw["sides"]
    if isinstance(raw.get("color"), bool):
        out["color"] = raw["color"]
    return out


def describe_options(options: Mapping[str, Any]) -> str:
    """A job's print settings as people read them: "2 copies, two-sided, black & white";
    what the sender left out reads as the default (1 copy, one-sided, colour)."""
    clean = clean_options(options)
    copies = int(clean.get("copies", 1))
    sides = {"one-sided": "one-sided", "two-sided-short-edge": "two-sided (short edge)"}.get(
        clean.get("sides", "one-sided"), "two-sided"
    )
    colour = "colour" if clean.get("color", True) else "black & white"
    return f"{copies} {'copy' if copies == 1 else 'copies'}, {sides}, {colour}"
