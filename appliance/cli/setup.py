"""`meshprint setup-code`: the code that claims a fresh appliance in the setup wizard."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.cli.common import command, data_arg
from appliance.site import setupcode


def cmd_setup_code(args: argparse.Namespace) -> None:
    print(setupcode.ensure(args.data))


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    p = command(
        sub,
        "setup-code",
        cmd_setup_code,
        "print this appliance's setup code for the web setup wizard (created if absent; "
        "void once setup is finished)",
    )
    data_arg(p)
