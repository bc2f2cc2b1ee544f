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
