"""Sizes and durations for people: 1.5 MB, 42 s, 2 h 05 min (or 2h05m in a table), and
durations as settings write them (8h, 90m)."""

from __future__ import annotations

import time

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WORDS = {"s": "s", "m": "min", "h": "h", "d": "d"}


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_duration(seconds: float, compact: bool = False) -> str:
    """A duration rounded down to what matters: "42 s", "5 min", "2 h 05 min", "3 d 4 h";
    `compact` for table columns: "42s", "5m", "2h05m", "3d4h"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        parts = [(seconds, "s")]
    elif seconds < 3600:
        parts = [(seconds // 60, "m")]
    elif seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        parts = [(hours, "h"), (minutes, "m")] if minutes else [(hours, "h")]
    else:
        parts = [(seconds // 86400, "d"), ((seconds % 86400) // 3600, "h")]
    said = []
    for index, (number, unit) in enumerate(parts):
        digits = f"{number:02d}" if index and unit == "m" else str(number)
        said.append(f"{digits}{unit}" if compact else f"{digits} {_WORDS[unit]}")
    return ("" if compact else " ").join(said)


def since(timestamp: float) -> str:
    """'just now', '5 min ago', '2 h ago'."""
    age = time.time() - timestamp
    return "just now" if age < 10 else f"{human_duration(age)} ago"


def format_duration(seconds: int) -> str:
    """A duration as a setting writes it, exactly, in its largest whole unit: 8h, 90m, 45s."""
    for unit in ("d", "h", "m"):
        size = DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
