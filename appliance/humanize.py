"""Sizes and durations for people: 1.5 MB, 42 s, 2 h 05 min (or 2h05m in a table), and
durations as settings write them (8h, 90m)."""

from __future__ import annotations

import re
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


# IPP keywords (RFC 8011 job- and printer-state-reasons, PWG 5100.x) as people say them.
# `plain` rewrites those it finds in a message and leaves every other word alone.
IPP_WORDS = {
    "job-completed-successfully": "printed",
    "job-completed-with-warnings": "printed, with warnings",
    "job-completed-with-errors": "finished with errors",
    "job-canceled-by-user": "cancelled by the user",
    "job-canceled-by-operator": "cancelled at the printer",
    "job-canceled-at-device": "cancelled at the printer",
    "job-aborted-by-system": "stopped by the printer",
    "job-incoming": "arriving at the printer",
    "job-queued": "waiting at the printer",
    "job-printing": "printing",
    "job-transforming": "being prepared",
    "job-hold-until-specified": "held at the printer",
    "job-data-insufficient": "the printer got too little of the document",
    "document-format-error": "the printer could not read the document",
    "document-unprintable-error": "the printer could not print the document",
    "unsupported-document-format": "the printer does not take this kind of document",
    "unsupported-compression": "the printer does not take this compression",
    "aborted-by-system": "stopped by the printer",
    "processing-to-stop-point": "stopping",
    "queued-in-device": "waiting inside the printer",
    "printer-stopped": "the printer is stopped",
    "printer-stopped-partly": "the printer is partly stopped",
    "paused": "paused",
    "shutdown": "switched off",
    "connecting-to-device": "connecting to the printer",
    "timed-out": "the printer did not answer in time",
    "offline": "offline",
    "other": "a printer problem",
    "media-empty": "out of paper",
    "media-needed": "needs paper",
    "media-low": "paper low",
    "media-jam": "paper jam",
    "media-path-jam": "paper jam",
    "input-tray-missing": "a paper tray is missing",
    "output-tray-missing": "the output tray is missing",
    "output-area-full": "the output tray is full",
    "output-area-almost-full": "the output tray is almost full",
    "door-open": "a door is open",
    "cover-open": "a cover is open",
    "interlock-open": "a cover is open",
    "toner-empty": "out of toner",
    "toner-low": "toner low",
    "marker-supply-empty": "out of ink or toner",
    "marker-supply-low": "ink or toner low",
    "marker-waste-full": "the waste container is full",
    "marker-waste-almost-full": "the waste container is almost full",
    "developer-empty": "the developer is empty",
    "developer-low": "developer low",
    "fuser-over-temp": "the fuser is too hot",
    "fuser-under-temp": "the fuser is warming up",
    "spool-area-full": "the printer's memory is full",
    "moving-to-paused": "pausing",
    "deactivated": "switched off by an administrator",
    "identify-printer-requested": "identifying itself",
    "cups-missing-filter": "CUPS has no filter for this document",
    "cups-waiting-for-job-completed": "waiting for the printer to finish",
}
_SUFFIXES = {"-error": "", "-warning": " (warning)", "-report": ""}
_KEYWORD_RE = re.compile(r"\b[a-z]+(?:-[a-z]+)+\b")


def ipp_word(keyword: str) -> str | None:
    """One IPP keyword in plain words (a severity suffix, -error/-warning/-report,
    understood), or None when it is not one."""
    if keyword in IPP_WORDS:
        return IPP_WORDS[keyword]
    for suffix, said in _SUFFIXES.items():
        if keyword.endswith(suffix) and keyword[: -len(suffix)] in IPP_WORDS:
            return IPP_WORDS[keyword[: -len(suffix)]] + said
    return None


def plain(text: object) -> str:
    """`text` with the IPP keywords in it said in plain words:
    "printed (job-completed-successfully)" -> "printed",
    "media-empty-error, toner-low-warning" -> "out of paper, toner low (warning)"."""
    said = _KEYWORD_RE.sub(lambda m: ipp_word(m.group(0)) or m.group(0), str(text))
    # "printed (printed)": a stage with its own keyword in brackets says it once.
    said = re.sub(r"\b([\w ,]+) \(\1\)", r"\1", said)
    return said


def describe_event(event: dict[str, object], names: dict[str, str] | None = None) -> str:
    """A node's event (`store.node_events`) as a line for people; `names` gives node and
    printer ids their display names."""
    names = names or {}

    def name(key: str) -> str:
        value = str(event.get(key) or "?")
        return names.get(value, value)

    job = f"job …{str(event.get('job') or '')[-6:]}"
    size = event.get("size")
    kind = event.get("kind")
    if kind == "held":
        extra = f" ({human_size(size)})" if isinstance(size, int) else ""
        return f"{job} held{extra}, taken in by {name('node')}"
    if kind == "replicated":
        return f"a copy of {job} is now kept on {name('node')}"
    if kind == "released":
        return f"{job} released to {name('printer')} by {name('node')}"
    if kind == "printed":
        return f"{job} printed on {name('printer')}"
    if kind == "failed":
        return f"{job} failed on {name('printer')}; it is held again"
    if kind == "expired":
        return f"{job} expired and was deleted on {name('node')}"
    if kind == "node-up":
        return f"node {name('node')} is up"
    if kind == "node-down":
        return f"node {name('node')} is down (not heard from)"
    return str(kind)
