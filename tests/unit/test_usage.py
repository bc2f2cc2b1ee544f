"""Usage records, figures, reports and quotas (appliance/jobs/usage.py, usagereport.py,
store/usage.py, site/quotas.py)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.errors import BadRequest, Forbidden, NotFound, QuotaExceeded
from appliance.jobs import usage, usagereport
from appliance.jobs.release import FoundJob
from appliance.printers.delivery import PrintOptions
from appliance.site import admin, quotas
from appliance.site.quotas import Quotas, month_of
from appliance.site.state import SiteState
from appliance.store.db import Database
from appliance.store.deliveries import DeliveryLog
from appliance.store.states import Stage
from appliance.store.usage import UsageLog, UsageRecord
from tests.unit.conftest import new_controller


def record(n: int = 0, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "job_id": f"j{n:024x}",
        "release_id": f"rel-{n:08d}",
        "user": "alice",
        "printer": "front",
        "node": "n1",
        "at": time.time(),
        "copies": 1,
        "duplex": False,
        "color": True,
        "doc_pages": 2,
        "pages": 2,
        "sheets": 2,
        "source": "document",
        "state": "printed",
    }
    return UsageRecord(**{**values, **fields})


# What a printed job counts


def test_figures_prefer_the_printers_count() -> None:
    assert usage.figures(3, 2, False, 5) == (5, 5, "printer")
    assert usage.figures(3, 2, True, 6) == (6, 4, "printer")  # 3 a copy: 2 sheets each
    assert usage.figures(None, 1, True, 3) == (3, 2, "printer")


def test_figures_from_the_document_else_unknown() -> None:
    assert usage.figures(3, 2, False, None) == (6, 6, "document")
    assert usage.figures(3, 2, True, 0) == (6, 4, "document")  # 0: the printer did not count
    assert usage.figures(None, 2, False, None) == (0, 0, "unknown")


# The log


@pytest.fixture
def log(db: Database) -> UsageLog:
    return UsageLog(db)


def test_draft_then_printed_once(log: UsageLog) -> None:
    draft = record(1, state="pending", pages=0, sheets=0, source="")
    log.draft(draft)
    log.draft(draft)  # the same release again: still one
    assert log.between() == []  # a draft is not usage yet
    done = log.printed(draft.job_id, draft.release_id, 4, 2, "printer", forwarded=False)
    assert done is not None and (done.pages, done.sheets, done.state) == (4, 2, "printed")
    assert log.printed(draft.job_id, draft.release_id, 9, 9, "printer", False) is None
    assert [r.pages for r in log.between()] == [4]
    assert log.unforwarded() == [done]
    log.mark_forwarded([done])
    assert log.unforwarded() == []


def test_failed_draft_is_dropped(log: UsageLog) -> None:
    draft = record(2, state="pending")
    log.draft(draft)
    log.drop(draft.job_id, draft.release_id)
    assert log.get(draft.job_id, draft.release_id) is None


def test_accept_keeps_each_record_once(log: UsageLog) -> None:
    records = [record(1), record(2)]
    assert log.accept(records) == 2
    assert log.accept(records) == 0  # a retry
    assert log.accept([record(3, state="pending")]) == 0  # only printed jobs
    assert len(log.between()) == 2 and log.unforwarded() == []


def test_between_a_range_and_a_user(log: UsageLog) -> None:
    log.accept([record(1, at=100.0), record(2, at=200.0, user="bob"), record(3, at=300.0)])
    assert [r.at for r in log.between(150.0, 300.0)] == [200.0]
    assert [r.at for r in log.between(user="alice")] == [100.0, 300.0]


def test_controller_accepts_only_the_callers_own_records(log: UsageLog) -> None:
    node = SimpleNamespace(
        id="ctl", usage=log, directory=lambda: SimpleNamespace(controller_id="ctl")
    )
    wire = record(1, node="n1").to_wire()
    with pytest.raises(Forbidden, match="its own usage records"):
        usage.accept(node, "n2", {"records": [wire]})
    with pytest.raises(BadRequest):
        usage.accept(node, "n1", {"records": [{**wire, "pages": "many"}]})
    assert log.between() == []
    assert usage.accept(node, "n1", {"records": [wire]}) == {"accepted": 1, "sent": 1}
    other = SimpleNamespace(
        id="n1", usage=log, directory=lambda: SimpleNamespace(controller_id="ctl")
    )
    with pytest.raises(Forbidden, match="controller"):
        usage.accept(other, "n2", {"records": []})


# Reports


def test_report_groups_and_shares() -> None:
    day = 1764547200.0  # 2025-12-01 00:00 UTC, a Monday
    records = [
        record(1, at=day, pages=4, sheets=2, duplex=True, color=False),
        record(2, at=day + 86400 * 7, pages=6, sheets=6, printer="back"),
        record(3, at=day + 86400 * 40, pages=10, sheets=10, user="bob", color=False),
    ]
    total = usagereport.total(records)
    assert (total.jobs, total.pages, total.sheets) == (3, 20, 18)
    assert total.color_share == pytest.approx(0.3) and total.duplex_share == pytest.approx(0.2)
    assert {k: v.pages for k, v in usagereport.by_user(records).items()} == {"alice": 10, "bob": 10}
    assert list(usagereport.by_printer(records)) == ["back", "front"]
    assert {k: v.pages for k, v in usagereport.by_period(records, "month").items()} == {
        "2025-12": 10,
        "2026-01": 10,
    }
    assert list(usagereport.by_period(records, "week")) == ["2025-W49", "2025-W50", "2026-W02"]
    rows = usagereport.rows(records)
    assert rows[0] == {
        "user": "alice", "printer": "back", "jobs": 1, "pages": 6, "sheets": 6,
        "color_pages": 6, "mono_pages": 0, "duplex_pages": 0, "simplex_pages": 6,
    }  # fmt: skip
    assert usagereport.total([]).color_share == 0.0


def test_csv_has_a_header_and_defuses_formulas() -> None:
    text = usagereport.csv_text(usagereport.rows([record(1, user="=HYPERLINK(1)")]))
    lines = text.splitlines()
    assert lines[0] == ",".join(usagereport.CSV_COLUMNS)
    assert lines[1].startswith("'=HYPERLINK(1),front,1,2,2,2,0,0,2")


def test_date_range() -> None:
    start, end = usagereport.date_range("2026-12-01", "2026-12-01")
    assert end - start == 86400  # the last day is included
    assert usagereport.date_range(None, None) == (0.0, float("inf"))
    with pytest.raises(BadRequest, match="not a date"):
        usagereport.date_range("1/12/2026", None)
    with pytest.raises(BadRequest, match="ends before"):
        usagereport.date_range("2026-12-02", "2026-12-01")


# Quotas


@pytest.fixture
def site(tmp_path: Path) -> SiteState:
    state = new_controller(tmp_path / "ctl")[1]
    admin.add_user(state, "alice", "saffron-tide-44")
    return state


def test_unlimited_by_default(site: SiteState) -> None:
    q = Quotas.of(site.directory())
    assert not q.limited and q.allowance("alice", "2026-12") == (None, None)


def test_quotas_and_top_ups(site: SiteState) -> None:
    quotas.set_quotas(site, "100", 20)
    month = month_of(time.time())
    quotas.top_up(site, "alice", 50)
    q = quotas.top_up(site, "alice", "5", "10")
    assert q.allowance("alice", month) == (155, 30)
    assert q.allowance("alice", "1999-01") == (100, 20)


def test_bad_quota_input_changes_nothing(site: SiteState) -> None:
    version = site.directory().version
    for call in (
        lambda: quotas.set_quotas(site, "-1", 0),
        lambda: quotas.set_quotas(site, "ten", 0),
        lambda: quotas.top_up(site, "alice", 0, 0),
        lambda: quotas.top_up(site, "alice", 5, month="2026-13"),
    ):
        with pytest.raises(BadRequest):
            call()
    with pytest.raises(NotFound):
        quotas.top_up(site, "nobody", 5)
    assert site.directory().version == version


def _node(site: SiteState, db: Database, controller: bool = True) -> Any:
    directory = site.directory()
    return SimpleNamespace(
        id=directory.controller_id if controller else "n-edge",
        directory=site.directory,
        usage=UsageLog(db),
        peers=SimpleNamespace(is_live=lambda node_id: False),
    )


def _job(pages: int | None) -> FoundJob:
    return FoundJob("j" + "0" * 24, "alice", "t", "application/pdf", {}, [], b"", pages)


def test_quota_checked_at_release_with_the_balance(site: SiteState, db: Database) -> None:
    node = _node(site, db)
    assert usage.check_quota(node, _job(3), PrintOptions(copies=2)) is None  # unlimited
    quotas.set_quotas(site, 10, 4)
    node.usage.accept([record(1, pages=5, color=False)])
    left = usage.check_quota(node, _job(2), PrintOptions(copies=2, color=False))
    assert left is not None and (left.pages_left, left.color_left, left.complete) == (5, 4, True)
    with pytest.raises(QuotaExceeded, match=r"needs 6 page.* has 5 of 10 page"):
        usage.check_quota(node, _job(3), PrintOptions(copies=2, color=False))
    with pytest.raises(QuotaExceeded, match=r"colour page.*black and white"):
        usage.check_quota(node, _job(5), PrintOptions(copies=1, color=True))
    quotas.top_up(site, "alice", 1)
    assert usage.check_quota(node, _job(3), PrintOptions(copies=2, color=False)) is not None


def test_quota_offline_uses_this_nodes_records(site: SiteState, db: Database) -> None:
    quotas.set_quotas(site, 10, 0)
    node = _node(site, db, controller=False)  # the controller is not live
    node.usage.accept([record(1, pages=8)])
    left = usage.balance(node, "alice")
    assert (left.pages, left.pages_left, left.complete) == (8, 2, False)
    with pytest.raises(QuotaExceeded):
        usage.check_quota(node, _job(3), PrintOptions())


def test_jobs_printing_now_count_towards_the_quota(site: SiteState, db: Database) -> None:
    """ "Print all": each job checked while the ones before it are still printing."""
    quotas.set_quotas(site, 10, 0)
    node = _node(site, db)
    deliveries = DeliveryLog(db)
    draft = record(1, state="pending", doc_pages=3, copies=2, pages=0)
    deliveries.start(draft.release_id, draft.job_id, "front")
    node.usage.draft(draft)
    cut_off = record(2, state="pending", doc_pages=50, pages=0)
    deliveries.start(cut_off.release_id, cut_off.job_id, "front")
    deliveries.update(cut_off.release_id, Stage.UNKNOWN)  # its draft stays, not counted
    node.usage.draft(cut_off)
    assert usage.balance(node, "alice").pages_left == 4
    with pytest.raises(QuotaExceeded):
        usage.check_quota(node, _job(5), PrintOptions())


class _Controller:
    """The controller's peer API, as far as `forward` calls it."""

    def __init__(self, log: UsageLog, live: bool = True) -> None:
        self.log, self.live, self.calls = log, live, 0

    def is_live(self, node_id: str) -> bool:
        return self.live

    def client(self, node_id: str) -> Any:
        def take(records: list[dict[str, Any]]) -> dict[str, int]:
            self.calls += 1
            return usage.accept(
                SimpleNamespace(id="ctl", usage=self.log, directory=_directory),
                "n1",
                {"records": records},
            )

        return SimpleNamespace(usage=take)


def _directory() -> Any:
    return SimpleNamespace(controller_id="ctl")


def test_printed_jobs_are_forwarded_once_the_controller_is_live(tmp_path: Path) -> None:
    here = UsageLog(Database(tmp_path / "edge.db"))
    controller = _Controller(UsageLog(Database(tmp_path / "ctl.db")), live=False)
    node = SimpleNamespace(id="n1", usage=here, directory=_directory, peers=controller)
    job = FoundJob("j" + "1" * 24, "alice", "t", "application/pdf", {}, [], b"", 3)
    usage.started(
        node, job, "front", PrintOptions(copies=2, sides="two-sided-long-edge"), "rel-00000001"
    )
    assert usage.forward(node) == 0  # not printed yet, and no controller
    done = usage.printed(node, job.id, "rel-00000001", None)
    assert done is not None and (done.pages, done.sheets, done.source) == (6, 4, "document")
    assert usage.forward(node) == 0 and controller.calls == 0  # offline: kept
    controller.live = True
    assert usage.forward(node) == 1
    assert usage.forward(node) == 0 and controller.calls == 1
    assert controller.log.between() == [done]
