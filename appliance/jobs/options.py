"""A job's default print options: what the sender asked for (copies, sides, colour,
paper size).

They travel with the job to every holder and apply at release unless the owner chooses
otherwise. Which values are valid is `appliance.printoptions` (the store checks them
too, below the jobs layer); this module reads them from an intake request's query.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.printoptions import clean_options


def from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Default options from the query of an intake request
    (copies=2&sides=…&color=0&media=iso_a4_210x297mm)."""
    raw: dict[str, Any] = {}
    if query.get("copies", "").isdigit():
        raw["copies"] = int(query["copies"])
    if "sides" in query:
        raw["sides"] = query["sides"]
    if query.get("color") in ("0", "1"):
        raw["color"] = query["color"] == "1"
    if "media" in query:
        raw["media"] = query["media"]
    return clean_options(raw)
