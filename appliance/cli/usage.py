"""`meshprint usage`: pages printed per user and printer, from the node's usage records
(the controller has every node's; another node only its own deliveries)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.cli.common import command, data_arg, data_dir
from appliance.jobs import usagereport
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
