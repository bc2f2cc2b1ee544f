"""Page quotas: pages per user per calendar month (UTC), colour pages counted
separately if set, and administrators' top-ups. Unlimited by default.

They live in the signed directory under `quotas` (so every node knows them, also
offline; older nodes ignore the key):
`{"monthly_pages": N, "monthly_color_pages": M, "topups": {user: {"YYYY-MM": {"pages": n,
"color_pages": m}}}}` — 0 means no limit.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import BadRequest, NotFound
from appliance.site.directory import Directory
from appliance.site.state import SiteState

MAX_PAGES = 1_000_000
MONTH_RE = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def month_of(at: float) -> str:
    """The calendar month (UTC) a time falls in, as "YYYY-MM"."""
    return time.strftime("%Y-%m", time.gmtime(at))


def check_month(month: str) -> str:
    if not MONTH_RE.fullmatch(month):
        raise BadRequest(f"{month[:20]!r} is not a month: use YYYY-MM, e.g. 2026-12")
    return month


def _count(value: object, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PAGES:
        raise BadRequest(f"{what} must be a whole number from 0 to {MAX_PAGES}")
    return value


@dataclass(frozen=True)
class Quotas:
    monthly_pages: int = 0  # 0: unlimited
    monthly_color_pages: int = 0  # 0: colour pages are not limited on their own
    topups: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @classmethod
    def of(cls, directory: Directory) -> Quotas:
        data = directory.doc.get("quotas") or {}
        return cls(
            monthly_pages=int(data.get("monthly_pages", 0)),
            monthly_color_pages=int(data.get("monthly_color_pages", 0)),
            topups=data.get("topups") or {},
        )

    @property
    def limited(self) -> bool:
        return bool(self.monthly_pages or self.monthly_color_pages)

    def extra(self, user: str, month: str) -> tuple[int, int]:
        """Pages and colour pages an administrator added for `user` in `month`."""
        given = self.topups.get(user, {}).get(month, {})
        return int(given.get("pages", 0)), int(given.get("color_pages", 0))

    def allowance(self, user: str, month: str) -> tuple[int | None, int | None]:
        """(pages, colour pages) `user` may print in `month`; None: no limit."""
        extra_pages, extra_color = self.extra(user, month)
        pages = self.monthly_pages + extra_pages if self.monthly_pages else None
        color = self.monthly_color_pages + extra_color if self.monthly_color_pages else None
        return pages, color

    def to_dict(self) -> dict[str, Any]:
        return {
            "monthly_pages": self.monthly_pages,
            "monthly_color_pages": self.monthly_color_pages,
            "topups": self.topups,
        }


def set_quotas(site: SiteState, monthly_pages: object, monthly_color_pages: object) -> Quotas:
    """Controller: the monthly quotas (0: unlimited). Both valid, or nothing changes."""
    pages = _count(monthly_pages, "the monthly page quota")
    color = _count(monthly_color_pages, "the monthly colour page quota")

    def change(doc: dict[str, Any]) -> None:
        quotas = doc.setdefault("quotas", {})
        quotas["monthly_pages"], quotas["monthly_color_pages"] = pages, color

    return Quotas.of(site.edit(change))


def top_up(
    site: SiteState, user: str, pages: object, color_pages: object = 0, month: str | None = None
) -> Quotas:
    """Controller: give `user` more pages (and colour pages) for `month` (this month by
    default). Top-ups add up."""
    if site.directory().user(user) is None:
        raise NotFound(f"no user {user[:64]!r} on this site")
    month = check_month(month or month_of(time.time()))
    more, more_color = _count(pages, "pages"), _count(color_pages, "colour pages")
    if not more and not more_color:
        raise BadRequest("a top-up adds at least one page")

    def change(doc: dict[str, Any]) -> None:
        given = doc.setdefault("quotas", {}).setdefault("topups", {})
        entry = given.setdefault(user, {}).setdefault(month, {"pages": 0, "color_pages": 0})
        entry["pages"] = min(int(entry.get("pages", 0)) + more, MAX_PAGES)
        entry["color_pages"] = min(int(entry.get("color_pages", 0)) + more_color, MAX_PAGES)

    return Quotas.of(site.edit(change))
