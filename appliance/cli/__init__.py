"""The `meshprint` command: run a node, manage the site, and act as a client.

Each command group lives in its own module with a `register(sub)` function. The
parser is built lazily: `COMMANDS` names each top-level command's module and its
one-line help, so `meshprint --help` imports no command module, and `meshprint X`
imports only X's module (and what it uses). A command of the appliance, whose module
needs the `appliance` extra (CUPS, SNMP, MQTT), says so instead of a traceback on a
plain install (an edge node).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from appliance import __version__
from appliance.errors import MeshprintError, MissingExtra

# name: (module under appliance.cli, help shown by `meshprint --help`), in that order.
# tests/unit/test_cli_lazy.py checks that each module registers these names with this help.
COMMANDS: dict[str, tuple[str, str]] = {
    "site": ("site", "create a site"),
    "invite": ("site", "print a one-time join token for a new node"),
    "join": ("site", "make this machine a member of a site"),
    "node": ("site", "run the node: peer, submit and release APIs"),
    "user": ("site", "manage users (on the controller)"),
    "admin": ("site", "who can unlock the site authority (on the controller)"),
    "member": (
        "site",
        "list or remove nodes, set a node's disk budget (on the controller)",
    ),
    "settings": (
        "site",
        "show site settings, or change one (on the controller): retention, repair_grace, "
        "max_job_size, disk_reserve, edge_budget",
    ),
    "printer": ("printers", "the site's printers (on the controller)"),
    "submit": ("client", "hand a document in; prints the job id"),
    "jobs": ("client", "list your held jobs"),
    "release": (
        "client",
        "release a held job to a file: as its owner (--user), or as the admin with the "
        "recovery key (--data, --key-file) while two of its holders are up",
    ),
    "job": ("client", "one held job"),
    "status": ("client", "members, liveness, held jobs and replica health"),
    "edge": ("edge", "run this PC as an edge node at boot: install, status, uninstall"),
    "setup-code": (
        "setup",
        "print this appliance's setup code for the web setup wizard (created if absent; "
        "void once setup is finished)",
    ),
    "intake": ("intake", "the node's printer on this machine (IPP intake)"),
    "dnssd": ("intake", "DNS-SD records of the node's printer (unicast DNS)"),
    "broker": ("broker", "the site MQTT broker (Mosquitto) and its commands"),
    "usage": (
        "usage",
        "pages printed per user and printer (pages, sheets, colour and two-sided counts)",
    ),
    "quota": ("usage", "monthly page quotas per user (on the controller): show, set, top up"),
}

# Third-party modules of the `appliance` extra (pyproject.toml), by import name.
APPLIANCE_MODULES = frozenset({"cups", "pysnmp", "pyasn1", "paho", "gunicorn"})


def load_group(module: str) -> ModuleType:
    """The command module appliance.cli.`module`; MissingExtra if it needs the appliance
    extra and this install lacks it."""
    try:
        return importlib.import_module(f"appliance.cli.{module}")
    except ModuleNotFoundError as err:
        raise missing_extra(err) from None


def missing_extra(err: ModuleNotFoundError) -> MissingExtra:
    """MissingExtra if `err` is a module of the appliance extra missing; else `err` again."""
    if (err.name or "").split(".")[0] in APPLIANCE_MODULES:
        return MissingExtra(
            "this needs meshprint[appliance] (CUPS, SNMP, MQTT): it runs on the appliance; "
            "install it with: pip install 'meshprint[appliance]'"
        )
    raise err


def _requested(argv: Sequence[str]) -> str | None:
    """The top-level command in `argv` (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None, full: bool = False) -> argparse.ArgumentParser:
    """The parser; the module of the command `argv` names is loaded and registers its
    commands fully (every module with `full`), the others are one-line stubs."""
    parser = argparse.ArgumentParser(
        prog="meshprint",
        description="Secure pull printing: jobs held encrypted with a split key on an office "
        "mesh until their owner releases them.",
    )
    parser.add_argument("--version", action="version", version=f"meshprint {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = _requested(argv or [])
    modules = (
        {m for m, _ in COMMANDS.values()} if full else {COMMANDS[wanted][0]} if wanted else set()
    )
    for name, (module, help) in COMMANDS.items():
        if name in sub.choices:
            continue
        if module in modules:
            load_group(module).register(sub)
        else:
            sub.add_parser(name, help=help, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
        args.func(args)
        sys.stdout.flush()
    except MeshprintError as err:
        print(f"meshprint: {err}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as err:  # a command that reached for the appliance extra
        print(f"meshprint: {missing_extra(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped early (`meshprint jobs | head`): no traceback, and no second
        # error when Python flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
