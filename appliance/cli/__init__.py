"""The `meshprint` command: run a node, manage the site, and act as a client.

Each command group lives in its own module with a `register(sub)` function;
`COMMAND_GROUPS` lists them in the order `meshprint --help` shows them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from appliance import __version__
from appliance.cli import broker, client, intake, printers, setup, site
from appliance.errors import MeshprintError

COMMAND_GROUPS = (site, printers, client, setup, intake, broker)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshprint",
        description="Secure pull printing: jobs held encrypted with a split key on an office "
        "mesh until their owner releases them.",
    )
    parser.add_argument("--version", action="version", version=f"meshprint {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
        sys.stdout.flush()
    except MeshprintError as err:
        print(f"meshprint: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader stopped early (`meshprint jobs | head`): no traceback, and no second
        # error when Python flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
