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
from appliance.endpoint import DEFAULT_SUBMIT_PORT
from appliance.errors import BadRequest, ConfigError
from appliance.https.client import Client, PeerCheck
from appliance.site import authority
from appliance.site.answering import MemberCache, gather, member_check
from appliance.site.authority import AdminPassword, Credential, RecoveryKey
from appliance.site.ca import SiteCA, load_cert
from appliance.site.directory import Membership
from appliance.site.release_authority import ReleaseAuthority, unlock
from appliance.site.state import SiteState, open_site
from appliance.site.tls import client_context

READ_SIZE = 256 * 1024
MEMBERS_TIMEOUT = 5.0  # for each member asked for its member list

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


ADMIN_ENV = "MESHPRINT_ADMIN"
ADMIN_PASSWORD_ENV = "MESHPRINT_ADMIN_PASSWORD_FILE"
KEY_FILE_ENV = "MESHPRINT_KEY_FILE"


def admin_args(parser: argparse.ArgumentParser, key_file: bool = True) -> None:
    """The administrator's credential, which unlocks the site authority for the command:
    --admin NAME with --admin-password-file (or asked), or the recovery key."""
    parser.add_argument(
        "--admin",
        metavar="NAME",
        help=f"act as this administrator (default: ${ADMIN_ENV}; without one, the "
        "recovery key unlocks the site authority)",
    )
    parser.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help=f"first line is the administrator's password (default: ${ADMIN_PASSWORD_ENV}, or ask)",
    )
    if key_file:
        parser.add_argument(
            "--key-file",
            metavar="FILE",
            help=f"first line is the site's recovery key (default: ${KEY_FILE_ENV}, or ask)",
        )


def admin_credential(args: argparse.Namespace) -> Credential:
    """The credential the command was given (flags, then the environment, then asked)."""
    name = getattr(args, "admin", None) or os.environ.get(ADMIN_ENV)
    if name:
        path = getattr(args, "admin_password_file", None) or os.environ.get(ADMIN_PASSWORD_ENV)
        password = read_secret(
            path, f"password of administrator {name}", flag="--admin-password-file"
        )
        return AdminPassword(name, password)
    path = getattr(args, "key_file", None) or os.environ.get(KEY_FILE_ENV)
    if not path and not sys.stdin.isatty():
        raise ConfigError(
            "this changes the site: give an administrator's credential (--admin NAME with "
            "--admin-password-file FILE, or --key-file FILE with the recovery key)"
        )
    return RecoveryKey(read_secret(path, "recovery key", flag="--key-file"))


def admin_site(args: argparse.Namespace) -> tuple[DataDir, SiteState]:
    """The site of --data with its authority unlocked by the administrator's credential,
    for one command (the controller only)."""
    data = data_dir(args)
    if not data.is_controller:
        raise ConfigError("run this on the site controller (the node that created the site)")
    _, site = open_site(data)
    authority.unlock(data, site, admin_credential(args))
    return data, site


def release_authority(args: argparse.Namespace, site: SiteState) -> ReleaseAuthority:
    """The site's release authority, unlocked with the recovery key (`--key-file`'s first
    line, or asked): it signs a password-less release command, then is forgotten."""
    key = read_secret(args.key_file, "recovery key", flag="--key-file")
    return unlock(site.directory().doc, site.site_id, key)


def key_file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file",
        metavar="FILE",
        help="first line is the site's recovery key, which unlocks the release authority "
        "(default: ask)",
    )


def client_for(
    args: argparse.Namespace, default_port: int, check: bool = True, sending: str | None = None
) -> NodeClient:
    """The node API at --node (the default port for the API wanted), trusting --ca (or the
    CA of --data).

    With `check` (for every command that sends a user's secret), each connection first
    checks that the node answering is a current, unrevoked member, and refuses it
    (UntrustedNode) before `sending` (default: the password, or on the submit API the
    submit token) goes out: see `member_check_for`."""
    text = args.node if "://" in args.node else f"https://{args.node}"
    url = urlsplit(text)
    if url.scheme != "https" or not url.hostname:
        raise BadRequest(f"--node must be an https:// address or host[:port], not {args.node!r}")
    data = getattr(args, "data", None)
    ca = args.ca or os.environ.get("MESHPRINT_CA") or (str(DataDir(data).ca_cert) if data else "")
    if not ca:
        raise ConfigError(
            "say which site CA to trust: --ca FILE (tls/ca.pem in any node's data directory) "
            "or MESHPRINT_CA=FILE"
        )
    if not Path(ca).is_file():
        raise ConfigError(f"CA certificate {ca} does not exist")
    address = (url.hostname, url.port or default_port)
    if sending is None:
        sending = "your submit token" if default_port == DEFAULT_SUBMIT_PORT else "your password"
    checked = member_check_for(data, Path(ca), address, sending) if check else None
    return NodeClient(Client(*address, client_context(Path(ca)), check_peer=checked))


def member_check_for(
    data: str | None, ca: Path, address: tuple[str, int], sending: str
) -> PeerCheck:
    """The membership check for the node at `address`: against the directory of the node
    in `data` when the command runs with one, else against the newest signed member list
    from that node, the other members it names and this user's cache (`cache_root`),
    gathered once, at the first connection."""
    where = f"{address[0]}:{address[1]}"
    if data:
        _, site = open_site(DataDir(data))
        return member_check(site.directory, where, sending)
    site_ca = SiteCA(load_cert(ca), None)

    def connect(host: str, port: int) -> NodeClient:
        return NodeClient(Client(host, port, client_context(ca), timeout=MEMBERS_TIMEOUT))

    found: list[Membership] = []

    def members() -> Membership:
        if not found:
            cache = MemberCache(cache_root(), site_ca)
            found.append(gather(site_ca, address, connect, cache, sending))
        return found[0]

    return member_check(members, where, sending)


def cache_root() -> Path:
    """This user's meshprint cache: $XDG_CACHE_HOME/meshprint (default ~/.cache/meshprint)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshprint"


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


def client_args(p: argparse.ArgumentParser, data: bool = True) -> None:
    """--node and --ca, and (unless the command has its own) --data."""
    p.add_argument(
        "--node", required=True, metavar="URL", help="a node: https://HOST:PORT or HOST[:PORT]"
    )
    p.add_argument(
        "--ca",
        metavar="FILE",
        help="site CA certificate to trust (default: $MESHPRINT_CA, or that of --data)",
    )
    if data:
        p.add_argument(
            "--data",
            metavar="DIR",
            help="a node's data directory on this machine: check who answers against its "
            "site directory (default: the member lists the site's nodes serve)",
        )
