"""Shared pieces of the meshprint command: argument helpers, secrets, clients, formatting."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from appliance.clients.node import NodeClient
from appliance.datadir import DataDir
from appliance.errors import BadRequest, ConfigError
from appliance.https.client import Client
from appliance.site.tls import client_context

READ_SIZE = 256 * 1024

# Helpers


def data_dir(args: argparse.Namespace) -> DataDir:
    return DataDir(args.data)


def read_secret(
    path: str | None, what: str, confirm: bool = False, flag: str = "--password-file"
) -> str:
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ConfigError(f"cannot read the {what} file {path}: {err.strerror}") from None
        if not text or not text[0]:
            raise ConfigError(f"the {what} file {path} is empty")
        return text[0]
    if not sys.stdin.isatty():
        raise ConfigError(f"give the {what} with {flag} (no terminal to ask on)")
    secret = getpass.getpass(f"{what.capitalize()}: ")
    if confirm and getpass.getpass(f"{what.capitalize()} again: ") != secret:
        raise ConfigError(f"the two {what}s differ")
    return secret


def client_for(args: argparse.Namespace, default_port: int) -> NodeClient:
    """The node API at --node (the default port for the API wanted), trusting --ca."""
    text = args.node if "://" in args.node else f"https://{args.node}"
    url = urlsplit(text)
    if url.scheme != "https" or not url.hostname:
        raise BadRequest(f"--node must be an https:// address or host[:port], not {args.node!r}")
    ca = args.ca or os.environ.get("MESHPRINT_CA")
    if not ca:
        raise ConfigError(
            "say which site CA to trust: --ca FILE (tls/ca.pem in any node's data directory) "
            "or MESHPRINT_CA=FILE"
        )
    if not Path(ca).is_file():
        raise ConfigError(f"CA certificate {ca} does not exist")
    return NodeClient(Client(url.hostname, url.port or default_port, client_context(Path(ca))))


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


# Site and node

CommandFunc = Callable[[argparse.Namespace], None]


def command(parent: Any, name: str, func: CommandFunc, help: str) -> argparse.ArgumentParser:
    """A subcommand of `parent` that runs `func`."""
    p: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
    p.set_defaults(func=func)
    return p


def data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="the node's data directory")


def client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node", required=True, metavar="URL", help="a node: https://HOST:PORT or HOST[:PORT]"
    )
    p.add_argument(
        "--ca", metavar="FILE", help="site CA certificate to trust (default: $MESHPRINT_CA)"
    )
