"""Usage accounting and quotas: what each printed release used, how it reaches the
controller, and the quota check at release.

A delivery writes a draft record (`started`) as the document goes to the printer and
completes it (`printed`) when the printer reports the job printed: the pages are the
printer's own count where it gives one (IPP job-impressions-completed, the SNMP page
counter's advance for RAW), else the document's pages counted at intake times the
copies. Metadata only, never content.

Records of a node other than the controller stay in its database until the controller
has taken them (`forward`, from the maintenance loop, whenever the controller is live);
the controller keeps each (job id, release id) once, so sending again is harmless.

The quota check runs on the node that accepts the release (`check_quota`), with the
controller's figures for the month when it answers, else with its own records (see
docs/architecture.md, Usage and quotas: offline, a user can go over by what other nodes
printed and have not yet forwarded).
"""

from __future__ import annotations

import calendar
import logging
import time
from dataclasses import dataclass
from typing import Any

from appliance.errors import BadRequest, Forbidden, MeshprintError, QuotaExceeded
from appliance.jobs.context import JobsContext
from appliance.jobs.release import FoundJob
from appliance.printers.delivery import PrintOptions
from appliance.site.quotas import Quotas, month_of
from appliance.store.usage import PRINTED, SOURCES, UsageRecord

log = logging.getLogger(__name__)
FORWARD_BATCH = 200
MONTH_FIELDS = ("pages", "color_pages")


def figures(
    doc_pages: int | None, copies: int, duplex: bool, impressions: int | None
) -> tuple[int, int, str]:
    """(pages, sheets, source) of a printed job: the printer's impressions when it
    counted, else the document's pages times the copies."""
    if impressions is not None and impressions > 0:
        pages, source = impressions, "printer"
    elif doc_pages:
        pages, source = doc_pages * copies, "document"
    else:
        return 0, 0, "unknown"
    if not duplex:
        return pages, pages, source
    if doc_pages and source == "document":
        return pages, (doc_pages + 1) // 2 * copies, source
    per_copy = -(-pages // copies)  # each copy starts on a new sheet
    return pages, (per_copy + 1) // 2 * copies, source


def started(
    node: JobsContext, job: FoundJob, printer: str, options: PrintOptions, release_id: str
) -> None:
    node.usage.draft(
        UsageRecord(
            job_id=job.id,
            release_id=release_id,
            user=job.owner,
            printer=printer,
            node=node.id,
            at=time.time(),
            copies=options.copies,
            duplex=options.sides != "one-sided",
            color=options.color,
            doc_pages=job.pages,
        )
    )


def failed(node: JobsContext, job_id: str, release_id: str) -> None:
    node.usage.drop(job_id, release_id)


def printed(
    node: JobsContext, job_id: str, release_id: str, impressions: int | None
) -> UsageRecord | None:
    draft = node.usage.get(job_id, release_id)
    if draft is None or draft.state == PRINTED:
        return draft
    pages, sheets, source = figures(draft.doc_pages, draft.copies, draft.duplex, impressions)
    is_controller = node.directory().controller_id == node.id
    record = node.usage.printed(job_id, release_id, pages, sheets, source, is_controller)
    log.info("job %s: %d page(s), %d sheet(s) (%s) for %s", job_id, pages, sheets, source,
             draft.user)  # fmt: skip
    return record


def forward(node: JobsContext) -> int:
    """Send this node's printed records the controller does not have yet; how many went.
    Nothing to do on the controller, or while it is not live."""
    controller = node.directory().controller_id
    if controller == node.id:
        return 0
    if not node.peers.is_live(controller):
        return 0
    records = node.usage.unforwarded(FORWARD_BATCH)
    if not records:
        return 0
    node.peers.client(controller).usage([r.to_wire() for r in records])
    node.usage.mark_forwarded(records)
    return len(records)


def accept(node: JobsContext, caller: str, data: dict[str, Any]) -> dict[str, int]:
    """The controller's side of `forward`: the calling member's own printed records."""
    if node.directory().controller_id != node.id:
        raise Forbidden("usage records go to the site controller")
    items = data.get("records")
    if not isinstance(items, list) or len(items) > FORWARD_BATCH:
        raise BadRequest(f"records must be a list of at most {FORWARD_BATCH}")
    records = [_record_from_wire(item, caller) for item in items]
    return {"accepted": node.usage.accept(records), "sent": len(records)}


def _record_from_wire(item: object, caller: str) -> UsageRecord:
    if not isinstance(item, dict):
        raise BadRequest("a usage record is an object")
    try:
        record = UsageRecord(
            job_id=str(item["job_id"])[:64],
            release_id=str(item["release_id"])[:64],
            user=str(item["user"])[:64],
            printer=str(item["printer"])[:64],
            node=str(item["node"]),
            at=float(item["at"]),
            copies=_whole(item["copies"]),
            duplex=bool(item["duplex"]),
            color=bool(item["color"]),
            doc_pages=None if item.get("doc_pages") is None else _whole(item["doc_pages"]),
            pages=_whole(item["pages"]),
            sheets=_whole(item["sheets"]),
            source=str(item["source"]),
            state=str(item["state"]),
        )
    except (KeyError, TypeError, ValueError):
        raise BadRequest("a usage record lacks a field or has one of the wrong type") from None
    if record.node != caller:
        raise Forbidden(f"node {caller} sends its own usage records only")
    if record.source not in SOURCES or record.state != PRINTED:
        raise BadRequest("a usage record must be a printed job's")
    return record


def _whole(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000_000:
        raise ValueError("not a count")
    return value


# Monthly figures and quotas


@dataclass(frozen=True)
class Balance:
    """A user's month: what they printed and what is left (None: no limit)."""

    user: str
    month: str
    pages: int
    color_pages: int
    pages_left: int | None
    color_left: int | None
    allowance: int | None
    color_allowance: int | None
    complete: bool  # False: the controller was not reachable, so only this node's records

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def month_figures(node: JobsContext, user: str, month: str) -> dict[str, int]:
    """Pages and colour pages `user` printed in `month`, from this node's records."""
    start, end = month_bounds(month)
    records = node.usage.between(start, end, user)
    return {
        "pages": sum(r.pages for r in records),
        "color_pages": sum(r.pages for r in records if r.color),
    }


def month_bounds(month: str) -> tuple[float, float]:
    """The month's first and the next month's first second (UTC)."""
    year, number = (int(part) for part in month.split("-"))
    following = (year + number // 12, number % 12 + 1, 1, 0, 0, 0)
    return calendar.timegm((year, number, 1, 0, 0, 0)), calendar.timegm(following)


def balance(node: JobsContext, user: str, at: float | None = None) -> Balance:
    """`user`'s balance this month, with the controller's figures when it answers."""
    month = month_of(time.time() if at is None else at)
    controller = node.directory().controller_id
    complete = True
    if controller == node.id:
        used = month_figures(node, user, month)
    else:
        try:
            if not node.peers.is_live(controller):
                raise MeshprintError("the controller is not live")
            answer = node.peers.client(controller).usage_of(user, month)
            used = {name: int(answer[name]) for name in MONTH_FIELDS}
            # what this node printed and the controller does not have yet
            for record in node.usage.unforwarded(FORWARD_BATCH):
                if record.user == user and month_of(record.at) == month:
                    used["pages"] += record.pages
                    used["color_pages"] += record.pages if record.color else 0
        except (MeshprintError, KeyError, TypeError, ValueError) as err:
            log.info("usage of %s: the controller's figures are not to be had (%s)", user, err)
            used, complete = month_figures(node, user, month), False
    for draft in node.usage.pending(user):  # printing now: not counted yet, but will be
        if month_of(draft.at) == month:
            expected = (draft.doc_pages or 1) * draft.copies
            used["pages"] += expected
            used["color_pages"] += expected if draft.color else 0
    pages, color = Quotas.of(node.directory()).allowance(user, month)
    return Balance(
        user=user,
        month=month,
        pages=used["pages"],
        color_pages=used["color_pages"],
        pages_left=None if pages is None else max(pages - used["pages"], 0),
        color_left=None if color is None else max(color - used["color_pages"], 0),
        allowance=pages,
        color_allowance=color,
        complete=complete,
    )


def needed_pages(job: FoundJob, options: PrintOptions) -> int:
    """The pages a release will print, as far as intake could count them (at least one
    per copy)."""
    return (job.pages or 1) * options.copies


def check_quota(node: JobsContext, job: FoundJob, options: PrintOptions) -> Balance | None:
    """Refuse a release that would take its owner past their monthly quota
    (QuotaExceeded, with the balance); None when the site has no quotas."""
    if not Quotas.of(node.directory()).limited:
        return None
    left = balance(node, job.owner)
    needed = needed_pages(job, options)
    if left.pages_left is not None and needed > left.pages_left:
        raise QuotaExceeded(
            f"this job needs {needed} page(s) but {job.owner} has {left.pages_left} of "
            f"{left.allowance} page(s) left this month ({left.month}); ask an administrator "
            "to top up your quota"
        )
    if options.color and left.color_left is not None and needed > left.color_left:
        raise QuotaExceeded(
            f"this job needs {needed} colour page(s) but {job.owner} has {left.color_left} of "
            f"{left.color_allowance} colour page(s) left this month ({left.month}); print it "
            "in black and white, or ask an administrator to top up your quota"
        )
    return left
