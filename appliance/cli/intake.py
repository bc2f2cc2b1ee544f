"""`meshprint intake …` and `meshprint dnssd …`: the node's own printer on this machine
(moving off the old CUPS Secure Print queue) and how devices find it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from appliance.cli.common import command, data_arg, data_dir
from appliance.endpoint import DEFAULT_IPP_PORT, DEFAULT_RELEASE_PORT
from appliance.errors import ConfigError
from appliance.intake import dnssd, install  # install: CUPS (the appliance extra)


def _printer_args(p: argparse.ArgumentParser, host_help: str) -> None:
    p.add_argument("--host", default="", metavar="NAME", help=host_help)
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_IPP_PORT,
        help=f"the node's printer port, its --ipp-port (default {DEFAULT_IPP_PORT})",
    )
    p.add_argument(
        "--release-port",
        type=int,
        default=DEFAULT_RELEASE_PORT,
        help=f"the node's release page port, in adminurl (default {DEFAULT_RELEASE_PORT})",
    )
    p.add_argument("--name", default=dnssd.NAME, help="the name devices show (DNS-SD)")
    p.add_argument("--location", default="", help="where it is, shown by some devices")


def cmd_intake_install(args: argparse.Namespace) -> None:
    settings = install.Settings(
        data=data_dir(args),
        server=args.cups_server,
        backend_dir=Path(args.backend_dir),
        service_file=Path(args.service_file),
        old_service_file=Path(args.service_file).with_name(Path(dnssd.OLD_SERVICE_FILE).name),
        port=args.port,
        host=args.host,
        release_port=args.release_port,
        name=args.name,
        location=args.location,
        drain=args.drain,
    )
    changes = install.install(settings)
    for change in changes:
        print(change)
    if not changes:
        print("this machine already serves the node's printer: nothing changed")


def cmd_dnssd_records(args: argparse.Namespace) -> None:
    host = args.host.rstrip(".")
    if not host:
        import socket

        host = socket.getfqdn()
    domain = args.domain or host.partition(".")[2]
    if not domain or domain == "local":
        raise ConfigError(
            f"{host!r} has no DNS domain: give --host NAME.DOMAIN (the appliance's name in "
            "the office DNS) or --domain DOMAIN"
        )
    data = data_dir(args)
    if not data.exists():
        raise ConfigError(f"{data.root} has no meshprint node: give its --data")
    printer = dnssd.printer_site(
        data.identity(), host, args.port, args.release_port, args.name, args.location
    )
    print(dnssd.zone_records(printer, domain), end="")


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    intake = sub.add_parser("intake", help="the node's printer on this machine (IPP intake)")
    isub = intake.add_subparsers(dest="intake_command", required=True, metavar="ACTION")
    p = command(
        isub,
        "install",
        cmd_intake_install,
        "move this machine to the node's own printer: remove the old 'Secure Print' CUPS "
        "queue and its backend, keep CUPS off the network (its Unix socket only), write the "
        "printer's DNS-SD record (again: brings it back in line, changes nothing if it is)",
    )
    data_arg(p)
    p.add_argument(
        "--cups-server", metavar="SOCKET", help="CUPS to set up (default: this machine's)"
    )
    p.add_argument(
        "--backend-dir",
        default="/usr/lib/cups/backend",
        metavar="DIR",
        help="CUPS' backend directory, where the old queue's backend is (default %(default)s)",
    )
    p.add_argument(
        "--service-file",
        default=dnssd.SERVICE_FILE,
        metavar="FILE",
        help=f"avahi service file to write (default {dnssd.SERVICE_FILE})",
    )
    _printer_args(p, "the name devices reach this machine at, in adminurl (default HOST.local)")
    p.add_argument(
        "--drain",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the old queue's jobs may take to reach the node before it is "
        "removed (default %(default)g)",
    )

    dns = sub.add_parser("dnssd", help="DNS-SD records of the node's printer (unicast DNS)")
    dsub = dns.add_subparsers(dest="dnssd_command", required=True, metavar="ACTION")
    p = command(
        dsub,
        "records",
        cmd_dnssd_records,
        "print the printer's DNS-SD records (PTR, subtype PTRs, SRV, TXT) in zone-file "
        "syntax, for the office DNS server when devices are on other subnets",
    )
    data_arg(p)
    _printer_args(p, "the appliance's name in the office DNS (default: this machine's FQDN)")
    p.add_argument(
        "--domain", default="", help="the DNS zone devices browse (default: --host's domain)"
    )
