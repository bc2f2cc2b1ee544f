"""A job's default print options: what the sender asked for (copies, sides, colour).

They travel with the job to every holder and apply at release unless the owner chooses
otherwise. Only known keys with valid values are kept, so a replica or an old database
row can never carry anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.printers.delivery import SIDES

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


def from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Default options from the query of an intake request (copies=2&sides=…&color=0)."""
    raw: dict[str, Any] = {}
    if query.get("copies", "").isdigit():
        raw["copies"] = int(query["copies"])
    if "sides" in query:
        raw["sides"] = query["sides"]
    if query.get("color") in ("0", "1"):
        raw["color"] = query["color"] == "1"
    return clean_options(raw)
