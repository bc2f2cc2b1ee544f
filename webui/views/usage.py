"""The admin Usage page: pages per user, per printer and per week or month, colour and
two-sided shares, server-drawn SVG charts, a CSV export for a date range, and the
monthly quotas with top-ups. Signed-in administrators only.

It reads the usage records from the node's database (the appliance is the controller,
which has every node's records); quotas and top-ups are changed in the signed directory
(`appliance.site.quotas`)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from appliance.errors import MeshprintError
from appliance.jobs import usagereport
from appliance.jobs.usage import month_bounds
from appliance.jobs.usagereport import Totals
from appliance.site import quotas
from appliance.site.quotas import Quotas, month_of
from appliance.store.db import Database
from appliance.store.usage import UsageLog, UsageRecord
from webui.charts import Part, bar_chart
from webui.context import data, event, has_site, site, store
from webui.errors import form_status
from webui.security import admin_required

bp = Blueprint("usage", __name__, url_prefix="/admin/usage")
LEGEND_COLOR = [("color", "colour pages"), ("mono", "black-and-white pages")]


@bp.before_request
def ready() -> Any:
    if not store().has_admin() or not has_site():
        return redirect(url_for("setup.index"))
    return None


def _log() -> UsageLog:
    return UsageLog(Database(data().db))


def _range() -> tuple[str, str, float, float]:
    since, until = request.args.get("from", "").strip(), request.args.get("to", "").strip()
    start, end = usagereport.date_range(since or None, until or None)
    return since, until, start, end


def _stacked(groups: dict[str, Totals]) -> list[tuple[str, list[Part]]]:
    return [
        (
            name,
            [
                Part(t.color_pages, "color", "colour pages"),
                Part(t.mono_pages, "mono", "black-and-white pages"),
            ],
        )
        for name, t in groups.items()
    ]


def _balances(records: list[UsageRecord], q: Quotas, users: list[str]) -> list[dict[str, Any]]:
    month = month_of(time.time())
    start, end = month_bounds(month)
    this_month = [r for r in records if start <= r.at < end]
    used = usagereport.by_user(this_month)
    out = []
    for user in users:
        t = used.get(user, Totals())
        pages, color = q.allowance(user, month)
        out.append(
            {
                "user": user,
                "pages": t.pages,
                "color_pages": t.color_pages,
                "allowance": pages,
                "color_allowance": color,
                "left": None if pages is None else max(pages - t.pages, 0),
                "color_left": None if color is None else max(color - t.color_pages, 0),
                "extra": q.extra(user, month),
            }
        )
    return out


@bp.get("/")
@admin_required
def page() -> Any:
    error, status = None, 200
    period = request.args.get("period", "month")
    if period not in usagereport.PERIODS:
        period = "month"
    try:
        since, until, start, end = _range()
    except MeshprintError as err:
        error, status = str(err), form_status(err)
        since, until, start, end = "", "", 0.0, float("inf")
    log = _log()
    records = log.between(start, end)
    directory = site().directory()
    q = Quotas.of(directory)
    users, printers = usagereport.by_user(records), usagereport.by_printer(records)
    periods = usagereport.by_period(records, period)
    charts = {
        "users": bar_chart("Pages per user", _stacked(users), LEGEND_COLOR),
        "printers": bar_chart("Pages per printer", _stacked(printers), LEGEND_COLOR),
        "periods": bar_chart(f"Pages per {period}", _stacked(periods), LEGEND_COLOR),
    }
    return (
        render_template(
            "admin/usage.html",
            title="Usage",
            nav="usage",
            error=error,
            since=since,
            until=until,
            period=period,
            total=usagereport.total(records),
            users=users,
            printers=printers,
            charts=charts,
            quotas=q,
            balances=_balances(
                log.between(*month_bounds(month_of(time.time()))), q, directory.users
            ),
            month=month_of(time.time()),
            site_users=directory.users,
        ),
        status,
    )


@bp.get("/usage.csv")
@admin_required
def export() -> Any:
    since, until, start, end = _range()
    text = usagereport.csv_text(usagereport.rows(_log().between(start, end)))
    name = f"meshprint-usage-{since or 'start'}-to-{until or 'now'}.csv"
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.post("/quotas")
@admin_required
def set_quotas() -> Any:
    try:
        q = quotas.set_quotas(
            site(),
            request.form.get("monthly_pages", "0"),
            request.form.get("monthly_color_pages", "0"),
        )
    except MeshprintError as err:
        flash(str(err), "error")
        return redirect(url_for("usage.page"))
    pages = f"{q.monthly_pages} pages" if q.monthly_pages else "unlimited pages"
    color = f", {q.monthly_color_pages} colour pages" if q.monthly_color_pages else ""
    event("quota", f"monthly quota set: {pages}{color} per user")
    flash(f"Monthly quota: {pages}{color} per user. Every node picks it up within seconds.", "ok")
    return redirect(url_for("usage.page"))


@bp.post("/topup")
@admin_required
def top_up() -> Any:
    user = request.form.get("user", "")
    try:
        quotas.top_up(
            site(), user, request.form.get("pages", "0"), request.form.get("color_pages", "0")
        )
    except MeshprintError as err:
        flash(str(err), "error")
        return redirect(url_for("usage.page"))
    event("quota", f"quota topped up for {user}")
    flash(f"Topped up {user}'s quota for this month.", "ok")
    return redirect(url_for("usage.page"))
