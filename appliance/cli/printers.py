"""Printer commands: add, set, list, test, discover, remove."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.cli.common import admin_args, admin_site, command, data_arg, data_dir, print_json
from appliance.errors import BadRequest, MeshprintError
from appliance.humanize import plain, since
from appliance.printers import registry
from appliance.printers.registry import SnmpConfig, new_printer
from appliance.site.state import open_site
from appliance.store import printer_status

# Printers


def cmd_printer_add(args: argparse.Namespace) -> None:
    snmp = None
    if args.snmp:
        snmp = SnmpConfig.parse(args.snmp, args.community, args.snmp_v3)
    elif args.community or args.snmp_v3:
        raise BadRequest("--community and --snmp-v3 go with --snmp HOST[:PORT]")
    data = data_dir(args)
    on_node = args.on_node
    if on_node is None and args.uri.startswith("cups:"):
        on_node = data.identity().node_id  # the queue is on this machine's CUPS
    record = new_printer(
        args.name,
        args.uri,
        args.location or "",
        snmp,
        args.pin,
        args.allow_self_signed,
        args.pdl,
        on_node,
        label=args.display_name or "",
    )
    _, site = admin_site(args)
    doc = site.directory().doc
    registry.check_new(doc, record.name)
    if record.node is not None and record.node not in doc.get("nodes", {}):
        raise BadRequest(f"--on-node {record.node}: no such node (see 'meshprint member list')")
    if args.cups_queue:  # bad input is refused before anything is asked of the network
        _check_cups_queue(record, args.cups_queue)
    said = "not checked (--no-check)"
    if not args.no_check:
        from appliance.printers.check import check_before_adding

        found = check_before_adding(record)
        if found.refused:
            raise BadRequest(
                f"printer {record.name} was not added: {found.said} (to add a printer that "
                "is switched off now, add --no-check)"
            )
        said = found.said
    if args.cups_queue:
        record = _through_cups(record, args.cups_queue, data.identity().node_id)
    registry.add_printer(site, record)
    shown = f"{record.name} ({record.label})" if record.label else record.name
    print(f"added printer {shown}: {record.uri} — {said}")


def cmd_printer_set(args: argparse.Namespace) -> None:
    if args.display_name is None and args.location is None:
        raise BadRequest("say what to change: --display-name TEXT and/or --location TEXT")
    _, site = admin_site(args)
    record = registry.set_printer(site, args.name, args.display_name, args.location)
    print(
        f"printer {record.name}: display name {record.display_name!r}, "
        f"location {record.location or '-'!r}"
    )


def _check_cups_queue(record: registry.PrinterRecord, queue: str) -> None:
    if record.endpoint.scheme not in ("ipp", "ipps"):
        raise BadRequest("--cups-queue needs an ipp:// or ipps:// printer URI")
    registry.parse_uri(f"cups:{queue}")


def _through_cups(
    record: registry.PrinterRecord, queue: str, this_node: str
) -> registry.PrinterRecord:
    """Create a driverless `everywhere` queue on this machine's CUPS for an IPP printer,
    wait until CUPS has really built its driver, and print through that queue."""
    from appliance.printers.delivery.cups import create_everywhere_queue

    _check_cups_queue(record, queue)
    print(
        f"creating CUPS queue {queue} for {record.uri} (waiting until it is ready) …",
        file=sys.stderr,
    )
    create_everywhere_queue(queue, record.uri)
    return new_printer(
        record.name,
        f"cups:{queue}",
        record.location,
        record.snmp,
        node=this_node,
        label=record.label,
    )


def printer_state(entry: dict[str, Any]) -> str:
    """One line from a polled printer status: ready, supplies and pages, or the reason."""
    if entry.get("ready") is None:
        return "status unknown (not polled yet, or a CUPS queue without SNMP)"
    parts = ["ready" if entry["ready"] else f"NOT READY: {plain(entry['reason'])}"]
    for supply in entry.get("supplies", []):
        if supply.get("percent") is not None:
            parts.append(f"{supply['name']} {supply['percent']}%")
    if entry.get("pages") is not None:
        parts.append(f"{entry['pages']} pages")
    parts += [f"alert: {plain(alert)}" for alert in entry.get("alerts", []) if entry["ready"]]
    if entry.get("checked_at"):
        parts.append(f"checked {since(entry['checked_at'])}")
    return " · ".join(parts)


def cmd_printer_list(args: argparse.Namespace) -> None:
    db, site = open_site(data_dir(args))
    records = registry.printers(site.directory().doc)
    polled = printer_status.known(db)
    if args.json:
        print_json([{**r.public(), **polled.get(r.name, {})} for r in records.values()])
        return
    if not records:
        print("no printers yet: meshprint printer add NAME --uri URI --data DIR")
        return
    for record in records.values():
        print(f"{record.name:20} {record.uri:40} {record.location}")
        if record.label:
            print(f"{'':20} shown as {record.label!r}")
        print(f"{'':20} {printer_state(polled.get(record.name, {}))}")


def cmd_printer_test(args: argparse.Namespace) -> None:
    from appliance.printers.check import check

    _, site = open_site(data_dir(args))
    report = check(registry.find(site.directory().doc, args.name), test_page=args.page)
    if args.json:
        print_json(report.to_dict())
    else:
        print(f"{report.printer}: {report.uri}")
        print(
            f"  reachable: {'yes' if report.reachable else 'no'}"
            + (f" — {report.description}" if report.description else "")
        )
        if report.formats:
            print(f"  formats:   {', '.join(report.formats)}")
        if report.status:
            status = report.status
            print(
                f"  status:    device {status['device']}, printer {status['printer']}, "
                f"{status['pages']} pages printed"
            )
            for supply in status["supplies"]:
                level = "?" if supply["percent"] is None else f"{supply['percent']}%"
                print(f"  supply:    {supply['name']}: {level}")
            for alert in status["alerts"]:
                print(f"  alert:     {plain(alert)}")
        if report.test_page:
            print(f"  test page: {plain(report.test_page)}")
        for problem in report.problems:
            print(f"  problem:   {plain(problem)}")
    if not report.ok:
        raise MeshprintError(f"printer {report.printer} is not ready")


def cmd_printer_discover(args: argparse.Namespace) -> None:
    from appliance.printers.discover import discover

    data_dir(args).identity()  # discovery runs on a node of the site
    found = discover(args.subnet, args.community)
    if args.json:
        print_json([f.to_dict() for f in found])
        return
    if not found:
        print(
            "no printers found" + ("" if args.subnet else " (try --subnet CIDR for an SNMP sweep)")
        )
    for item in found:
        print(f"{item.name}  [{', '.join(item.sources)}]")
        print(f"  {item.make_and_model or 'unknown model'} at {item.host}")
        for uri in item.uris:
            print(f"  uri:     {uri}")
        if item.formats:
            print(f"  formats: {', '.join(item.formats)}")


def cmd_printer_remove(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    registry.remove_printer(site, args.name)
    print(f"removed printer {args.name}")


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    printer = sub.add_parser("printer", help="the site's printers (on the controller)")
    psub = printer.add_subparsers(dest="printer_command", required=True, metavar="ACTION")
    p = command(psub, "add", cmd_printer_add, "add a printer")
    p.add_argument("name", help="what users pick, e.g. 2nd-floor")
    data_arg(p)
    admin_args(p)
    p.add_argument(
        "--uri",
        required=True,
        help="ipp://HOST[:PORT]/PATH, ipps://…, socket://HOST[:9100] or cups:QUEUE",
    )
    p.add_argument("--snmp", metavar="HOST[:PORT]", help="check status over SNMP here")
    p.add_argument("--community", help="SNMP v2c community (default public)")
    p.add_argument("--snmp-v3", metavar="USER[:AUTHKEY[:PRIVKEY]]", help="SNMP v3 credentials")
    p.add_argument("--location", help="where it stands, shown to users")
    p.add_argument(
        "--display-name", metavar="TEXT", help='what people read, e.g. "Front desk" (default: NAME)'
    )
    p.add_argument(
        "--no-check",
        action="store_true",
        help="add it even if nothing answers at the address now (a printer that is off)",
    )
    p.add_argument(
        "--pin",
        metavar="SHA256",
        help="ipps: trust exactly this certificate (its SHA-256 fingerprint)",
    )
    p.add_argument(
        "--allow-self-signed",
        action="store_true",
        help="ipps: accept any certificate (weaker than --pin)",
    )
    p.add_argument(
        "--pdl",
        choices=registry.PDL_CHOICES,
        help="socket:// (RAW): the language the printer speaks (default "
        f"{registry.DEFAULT_PDL}); other formats are converted through CUPS's filters, "
        "as-is sends documents unchanged",
    )
    p.add_argument(
        "--on-node",
        metavar="NODE_ID",
        help="cups:QUEUE: the node whose CUPS has the queue (default: this node); releases "
        "of this printer are delivered by that node",
    )
    p.add_argument(
        "--cups-queue",
        metavar="QUEUE",
        help="ipp(s): create a driverless 'everywhere' queue on this machine's CUPS "
        "and print through it",
    )
    p = command(psub, "set", cmd_printer_set, "change a printer's display name or location")
    p.add_argument("name")
    data_arg(p)
    p.add_argument("--display-name", metavar="TEXT", help='e.g. "Front desk" ("" for the name)')
    p.add_argument("--location", metavar="TEXT")
    admin_args(p)
    p = command(psub, "list", cmd_printer_list, "list printers")
    data_arg(p)
    p.add_argument("--json", action="store_true")
    p = command(
        psub,
        "test",
        cmd_printer_test,
        "check a printer: reachable, what it is, SNMP status and supplies",
    )
    p.add_argument("name")
    data_arg(p)
    p.add_argument("--page", action="store_true", help="also print a short test page")
    p.add_argument("--json", action="store_true")
    p = command(
        psub,
        "discover",
        cmd_printer_discover,
        "find printers over DNS-SD (and an SNMP sweep of --subnet)",
    )
    data_arg(p)
    p.add_argument("--subnet", metavar="CIDR", help="also sweep this network over SNMP (≤ /22)")
    p.add_argument("--community", default="public", help="SNMP community for the sweep")
    p.add_argument("--json", action="store_true")
    p = command(psub, "remove", cmd_printer_remove, "remove a printer")
    p.add_argument("name")
    data_arg(p)
    admin_args(p)
