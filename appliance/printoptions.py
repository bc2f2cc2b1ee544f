"""The print options a job carries: copies, sides, colour and paper size, and their valid
values.

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
# The paper sizes a job can ask for: PWG self-describing name → (width, height) in
# hundredths of a millimetre, and the name people know it by.
MEDIA = {
    "iso_a4_210x297mm": (21000, 29700),
    "na_letter_8.5x11in": (21590, 27940),
    "na_legal_8.5x14in": (21590, 35560),
    "iso_a5_148x210mm": (14800, 21000),
}
MEDIA_NAMES = {
    "iso_a4_210x297mm": "A4",
    "na_letter_8.5x11in": "Letter",
    "na_legal_8.5x14in": "Legal",
    "iso_a5_148x210mm": "A5",
}
MEDIA_BY_NAME = {name.lower(): pwg for pwg, name in MEDIA_NAMES.items()}  # "a4" → PWG
_SIZE_SLACK = 100  # 1 mm: clients round inches to hundredths of a millimetre differently


def media_of_size(width: object, height: object) -> str | None:
    """The name of the paper size `width` by `height` (hundredths of a millimetre, either
    orientation), or None when it is none of MEDIA."""
    if not isinstance(width, int) or not isinstance(height, int):
        return None
    short, long = sorted((width, height))
    for name, (w, h) in MEDIA.items():
        if abs(short - w) <= _SIZE_SLACK and abs(long - h) <= _SIZE_SLACK:
            return name
    return None


def clean_options(raw: object) -> dict[str, Any]:
    """The valid part of `raw`: copies (1-99), sides (one of SIDES), color (bool), media
    (one of MEDIA)."""
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
    if raw.get("media") in MEDIA:
        out["media"] = raw["media"]
    return out


def describe_options(options: Mapping[str, Any]) -> str:
    """A job's print settings as people read them: "2 copies, two-sided, black & white, A4";
    what the sender left out reads as the default (1 copy, one-sided, colour; the paper
    size only when the sender chose one)."""
    clean = clean_options(options)
    copies = int(clean.get("copies", 1))
    sides = {"one-sided": "one-sided", "two-sided-short-edge": "two-sided (short edge)"}.get(
        clean.get("sides", "one-sided"), "two-sided"
    )
    colour = "colour" if clean.get("color", True) else "black & white"
    paper = f", {MEDIA_NAMES[clean['media']]}" if "media" in clean else ""
    return f"{copies} {'copy' if copies == 1 else 'copies'}, {sides}, {colour}{paper}"
