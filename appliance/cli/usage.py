"""`meshprint usage`: pages printed per user and printer, from the node's usage records
(the controller has every node's; another node only its own deliveries). `meshprint
quota`: the monthly page quotas and top-ups (controller)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from appliance.cli.common import admin_args, admin_site, command, data_arg, data_dir
from appliance.jobs import usagereport
from appliance.site import quotas
from appliance.site.quotas import Quotas, month_of
from appliance.site.state import open_site
from appliance.store.usage import UsageLog

COLUMNS = (
    ("user", "USER", 16),
    ("printer", "PRINTER", 16),
    ("jobs", "JOBS", 5),
    ("pages", "PAGES", 6),
    ("sheets", "SHEETS", 6),
    ("color_pages", "COLOUR", 6),
    ("mono_pages", "MONO", 6),
    ("duplex_pages", "2-SIDED", 7),
    ("simplex_pages", "1-SIDED", 7),
)


def cmd_usage(args: argparse.Namespace) -> None:
    start, end = usagereport.date_range(args.since, args.until)
    data = data_dir(args)
    db, _ = open_site(data)
    table = usagereport.rows(UsageLog(db).between(start, end))
    if not data.is_controller:
        print(
            "meshprint: this node is not the controller: only the jobs it delivered itself",
            file=sys.stderr,
        )
    if args.csv:
        sys.stdout.write(usagereport.csv_text(table))
        return
    if not table:
        print("no printed jobs in this range")
        return
    _print_table(table)


def _print_table(table: list[dict[str, Any]]) -> None:
    def line(cells: list[str]) -> str:
        out = []
        for (key, _, width), cell in zip(COLUMNS, cells, strict=True):
            out.append(cell.ljust(width) if key in ("user", "printer") else cell.rjust(width))
        return "  ".join(out).rstrip()

    print(line([head for _, head, _ in COLUMNS]))
    for row in table:
        print(line([str(row[key]) for key, _, _ in COLUMNS]))
    totals = {key: sum(int(row[key]) for row in table) for key, _, _ in COLUMNS[2:]}
    print(line(["total", ""] + [str(totals[key]) for key, _, _ in COLUMNS[2:]]))


def _limit(n: int) -> str:
    return str(n) if n else "unlimited"


def cmd_quota_show(args: argparse.Namespace) -> None:
    _, site = open_site(data_dir(args))
    _print_quotas(Quotas.of(site.directory()))


def _print_quotas(q: Quotas) -> None:
    print(f"pages per user per month: {_limit(q.monthly_pages)}")
    print(f"colour pages per user per month: {_limit(q.monthly_color_pages)}")
    month = month_of(time.time())
    for user in sorted(q.topups):
        pages, color = q.extra(user, month)
        if pages or color:
            print(f"  {user}: +{pages} pages, +{color} colour pages in {month}")


def cmd_quota_set(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    _print_quotas(quotas.set_quotas(site, args.pages, args.color_pages))


def cmd_quota_top_up(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    q = quotas.top_up(site, args.user, args.pages, args.color_pages, args.month)
    month = args.month or month_of(time.time())
    pages, color = q.extra(args.user, month)
    print(f"{args.user}: +{pages} pages, +{color} colour pages in {month}")


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    p = command(
        sub,
        "usage",
        cmd_usage,
        "pages printed per user and printer (pages, sheets, colour and two-sided counts)",
    )
    data_arg(p)
    p.add_argument("--from", dest="since", metavar="YYYY-MM-DD", help="first day (UTC)")
    p.add_argument("--to", dest="until", metavar="YYYY-MM-DD", help="last day, included")
    p.add_argument("--csv", action="store_true", help="CSV with a header line")

    quota = sub.add_parser(
        "quota", help="monthly page quotas per user (on the controller): show, set, top up"
    )
    qsub = quota.add_subparsers(dest="quota_command", required=True, metavar="ACTION")
    p = command(qsub, "show", cmd_quota_show, "the quotas and this month's top-ups")
    data_arg(p)
    p = command(qsub, "set", cmd_quota_set, "pages per user per month (0: unlimited)")
    data_arg(p)
    p.add_argument("--pages", type=int, required=True, help="pages per user per month")
    p.add_argument(
        "--color-pages", type=int, default=0, help="of which colour (0: not limited on its own)"
    )
    admin_args(p)
    p = command(qsub, "top-up", cmd_quota_top_up, "give a user more pages for a month")
    p.add_argument("user")
    data_arg(p)
    p.add_argument("--pages", type=int, default=0, help="more pages")
    p.add_argument("--color-pages", type=int, default=0, help="more colour pages")
    p.add_argument("--month", metavar="YYYY-MM", help="the month (default: this one, UTC)")
    admin_args(p)
