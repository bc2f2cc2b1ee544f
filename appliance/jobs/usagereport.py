"""Usage figures from usage records: totals per user, per printer and per week or month
(UTC), colour and duplex shares, and the rows of `meshprint usage` and the CSV export.
Pure functions of the records (`store.usage.UsageRecord`)."""

from __future__ import annotations

import calendar
import csv
import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from appliance.errors import BadRequest
from appliance.store.usage import UsageRecord

PERIODS = ("week", "month")
CSV_COLUMNS = (
    "user",
    "printer",
    "jobs",
    "pages",
    "sheets",
    "color_pages",
    "mono_pages",
    "duplex_pages",
    "simplex_pages",
)


@dataclass
class Totals:
    jobs: int = 0
    pages: int = 0  # impressions
    sheets: int = 0
    color_pages: int = 0
    duplex_pages: int = 0  # pages printed two-sided

    def add(self, record: UsageRecord) -> None:
        self.jobs += 1
        self.pages += record.pages
        self.sheets += record.sheets
        self.color_pages += record.pages if record.color else 0
        self.duplex_pages += record.pages if record.duplex else 0

    @property
    def mono_pages(self) -> int:
        return self.pages - self.color_pages

    @property
    def simplex_pages(self) -> int:
        return self.pages - self.duplex_pages

    @property
    def color_share(self) -> float:
        """Colour pages as a fraction of all pages (0 with none)."""
        return self.color_pages / self.pages if self.pages else 0.0

    @property
    def duplex_share(self) -> float:
        return self.duplex_pages / self.pages if self.pages else 0.0


def _grouped(
    records: Iterable[UsageRecord], key: Callable[[UsageRecord], str]
) -> dict[str, Totals]:
    out: dict[str, Totals] = {}
    for record in records:
        out.setdefault(key(record), Totals()).add(record)
    return dict(sorted(out.items()))


def total(records: Iterable[UsageRecord]) -> Totals:
    out = Totals()
    for record in records:
        out.add(record)
    return out


def by_user(records: Iterable[UsageRecord]) -> dict[str, Totals]:
    return _grouped(records, lambda r: r.user)


def by_printer(records: Iterable[UsageRecord]) -> dict[str, Totals]:
    return _grouped(records, lambda r: r.printer)


def period_of(at: float, period: str) -> str:
    """ "2026-12" for a month, "2026-W49" (ISO week) for a week, in UTC."""
    day = time.gmtime(at)
    if period == "month":
        return time.strftime("%Y-%m", day)
    if period == "week":
        return time.strftime("%G-W%V", day)
    raise BadRequest(f"a period is one of {', '.join(PERIODS)}")


def by_period(records: Iterable[UsageRecord], period: str) -> dict[str, Totals]:
    return _grouped(records, lambda r: period_of(r.at, period))


def rows(records: Iterable[UsageRecord]) -> list[dict[str, object]]:
    """One row per user and printer (the CLI table and the CSV export)."""
    grouped = _grouped(records, lambda r: f"{r.user}\0{r.printer}")
    out: list[dict[str, object]] = []
    for key, t in grouped.items():
        user, printer = key.split("\0")
        out.append(
            {
                "user": user,
                "printer": printer,
                "jobs": t.jobs,
                "pages": t.pages,
                "sheets": t.sheets,
                "color_pages": t.color_pages,
                "mono_pages": t.mono_pages,
                "duplex_pages": t.duplex_pages,
                "simplex_pages": t.simplex_pages,
            }
        )
    return out


def csv_text(table: list[dict[str, object]]) -> str:
    """The rows as CSV with a header line. A cell that a spreadsheet would take for a
    formula (=, +, -, @ first) is quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def parse_day(text: str, end: bool = False) -> float:
    """The start of a day "YYYY-MM-DD" (UTC) as a time; `end`: the start of the day after,
    so a range `--to` includes its last day."""
    try:
        day = time.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise BadRequest(f"{text[:20]!r} is not a date: use YYYY-MM-DD, e.g. 2026-12-01") from None
    start = calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 0, 0, 0))
    return start + 86400 if end else start


def date_range(since: str | None, until: str | None) -> tuple[float, float]:
    """`--from`/`--to` (both days included); everything when neither is given."""
    start = parse_day(since) if since else 0.0
    end = parse_day(until, end=True) if until else float("inf")
    if end <= start:
        raise BadRequest("the range ends before it starts: --to must not be before --from")
    return start, end
