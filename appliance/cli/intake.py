"""`meshprint intake …`: the driverless Secure Print queue on this machine's CUPS."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from appliance.cli.common import command, data_arg, data_dir
from appliance.intake import backend, dnssd, queue


def cmd_intake_install(args: argparse.Namespace) -> None:
    settings = queue.Settings(
        data=data_dir(args),
        server=args.cups_server,
        backend_dir=Path(args.backend_dir),
        service_file=Path(args.service_file),
        listen=args.listen,
        name=args.name,
        location=args.location,
        wait=args.wait,
    )
    changes = queue.install(settings)
    for change in changes:
        print(change)
    if not changes:
        print(f"the {queue.INFO} queue is already set up: nothing changed")


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    intake = sub.add_parser("intake", help="the Secure Print queue (driverless intake)")
    isub = intake.add_subparsers(dest="intake_command", required=True, metavar="ACTION")
    p = command(
        isub,
        "install",
        cmd_intake_install,
        "set up the 'Secure Print' CUPS queue, its backend and its AirPrint DNS-SD record "
        "on this machine (again: brings it back in line, changes nothing if it is)",
    )
    data_arg(p)
    p.add_argument(
        "--cups-server", metavar="SOCKET", help="CUPS to set up (default: this machine's)"
    )
    p.add_argument(
        "--backend-dir",
        default=queue.BACKEND_DIR,
        metavar="DIR",
        help=f"CUPS' backend directory (default {queue.BACKEND_DIR})",
    )
    p.add_argument(
        "--service-file",
        default=dnssd.SERVICE_FILE,
        metavar="FILE",
        help=f"avahi service file to write (default {dnssd.SERVICE_FILE})",
    )
    p.add_argument(
        "--listen",
        default="*:631",
        metavar="ADDRESS:PORT",
        help="where CUPS serves IPP/IPPS to the network, advertised port (default *:631)",
    )
    p.add_argument("--name", default=queue.INFO, help="the name devices show (DNS-SD)")
    p.add_argument("--location", default="", help="where it is, shown by some devices")
    p.add_argument(
        "--wait",
        type=float,
        default=backend.DEFAULT_WAIT,
        metavar="SECONDS",
        help="how long a job waits for the local node before CUPS retries it later "
        f"(default {backend.DEFAULT_WAIT:g})",
    )
