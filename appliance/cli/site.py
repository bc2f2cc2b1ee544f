"""Site, node, user, member and settings commands (most run on the controller)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from appliance.cli.common import (
    admin_args,
    admin_credential,
    admin_site,
    command,
    data_arg,
    data_dir,
    read_secret,
)
from appliance.config import parse_duration
from appliance.crypto.password_policy import check_password
from appliance.endpoint import (
    DEFAULT_IPP_PORT,
    DEFAULT_PEER_PORT,
    DEFAULT_RELEASE_PORT,
    DEFAULT_SUBMIT_PORT,
    Endpoint,
)
from appliance.errors import BadRequest, ConfigError
from appliance.humanize import human_size
from appliance.node import Node
from appliance.portable import tune_malloc
from appliance.sdnotify import Notifier
from appliance.service import wait_for_site
from appliance.site import admin, authority, printer_urls, release_authority
from appliance.site.authority import RecoveryKey
from appliance.site.directory import check_user_name
from appliance.site.enroll import create_site, join_site
from appliance.site.restore import restore_site
from appliance.site.state import open_site


def cmd_site_create(args: argparse.Namespace) -> None:
    data = data_dir(args)
    created = create_site(data, args.name, args.host)
    identity = created.identity
    print(
        f"Created site {args.name!r} ({identity.site_id}); this node is {identity.node_id}, "
        "its controller."
    )
    _show_recovery_key(created.recovery_key)
    print(f"Site CA certificate (give it to clients): {data.ca_cert}")
    print(f"Next: meshprint node --data {args.data}")


def _show_recovery_key(key: str) -> None:
    print(f"Recovery key: {key}")
    print(
        "  Keep it on paper or in a password manager: it is shown only this once, and with "
        "it\n  'meshprint site restore' rebuilds this controller on a new machine if this one "
        "is lost."
    )


def cmd_site_restore(args: argparse.Namespace) -> None:
    key = read_secret(args.key_file, "recovery key", flag="--key-file")
    identity = restore_site(data_dir(args), args.member, key, args.host)
    print(
        f"Restored site {identity.site_id}: this node ({identity.node_id}) is its controller; "
        "the lost one is removed and its certificate revoked."
    )
    print(f"Next: meshprint node --data {args.data} (members learn of it when it starts)")


def cmd_site_recovery_key(args: argparse.Namespace) -> None:
    data = data_dir(args)
    _, site = open_site(data)
    current = None
    if release_authority.FIELD in site.directory().doc:
        current = read_secret(args.key_file, "current recovery key", flag="--key-file")
        authority.unlock(data, site, RecoveryKey(current))
    elif site.ca.key is None:  # a site from before release authorities, already sealed
        authority.unlock(data, site, admin_credential(args))
    _show_recovery_key(admin.new_recovery_key(site, current))
    print("  The previous recovery key no longer works.")


def cmd_invite(args: argparse.Namespace) -> None:
    data = data_dir(args)
    if not data.is_controller:
        raise ConfigError("invite on the site controller (the node that created the site)")
    ttl = parse_duration(args.ttl)
    data, site = admin_site(args)
    print(admin.invite(data, site, ttl).encode())


def cmd_join(args: argparse.Namespace) -> None:
    identity = join_site(data_dir(args), args.token, args.role, args.name, args.host)
    print(f"Joined site {identity.site_id} as {identity.role} node {identity.node_id}.")
    print(f"Next: meshprint node --data {args.data}")


def cmd_node(args: argparse.Namespace) -> None:
    tune_malloc()
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    endpoint = Endpoint(
        args.host,
        args.advertise,
        args.peer_port,
        args.submit_port,
        args.release_port,
        args.ipp_port,
    )
    if not wait_for_site(data_dir(args), Notifier.from_env()):
        return
    node = Node(data_dir(args), endpoint)
    try:
        node.start()
    except OSError as err:
        node.stop()
        raise ConfigError(f"cannot listen on {args.host}: {err.strerror}") from None
    print(
        f"node {node.id} ready: peer {endpoint.address}:{endpoint.peer_port}, submit "
        f"https://{endpoint.address}:{endpoint.submit_port}, release "
        f"https://{endpoint.address}:{endpoint.release_port}",
        flush=True,
    )
    node.wait()


def cmd_user_add(args: argparse.Namespace) -> None:
    data_dir(args)
    name = check_user_name(args.name)
    password = read_secret(args.password_file, "password", confirm=True)
    check_password(password, name)
    _, site = admin_site(args)
    print(admin.add_user(site, name, password))


def cmd_user_list(args: argparse.Namespace) -> None:
    _, site = open_site(data_dir(args))
    directory = site.directory()
    for name in directory.users:
        user = directory.user(name)
        aliases = f"  (aliases: {', '.join(user.aliases)})" if user and user.aliases else ""
        print(f"{name}{aliases}")


def cmd_user_remove(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    admin.remove_user(site, args.name)
    print(f"removed user {args.name}")


def cmd_user_printer_url(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    if args.revoke:
        admin.revoke_printer_url(site, args.name)
        print(f"{args.name} has no personal printer URL now (--rotate makes a new one)")
        return
    secret = admin.printer_url(site, args.name, args.rotate)
    if secret is None:
        raise ConfigError(
            f"{args.name}'s personal printer URL is kept only as a hash and sealed to their "
            "key, so it cannot be shown here: they see it on the release page after signing "
            "in; --rotate makes a new one (the old one stops working) and prints it"
        )
    directory = site.directory()
    controller = directory.node(directory.controller_id)
    host = args.host or (controller.host if controller and controller.host else "HOST")
    print(printer_urls.url(host, args.port, secret))
    print(
        "  Add it as an IPP printer on the user's computer (README: 'Add Secure Print to a "
        "computer');\n  the old URL, if any, no longer takes jobs."
    )


def cmd_user_alias(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    aliases = admin.set_alias(site, args.name, args.alias, args.remove)
    print(f"{args.name}'s aliases: {', '.join(aliases) or '(none)'}")


def cmd_admin_add(args: argparse.Namespace) -> None:
    name = authority.check_admin_name(args.name)
    password = read_secret(args.password_file, f"password for {name}", confirm=True)
    check_password(password, name)
    data, site = admin_site(args)
    authority.add_admin(data, name, password, site.ca, site.site_id)
    print(f"administrator {name} can unlock the site authority (--admin {name})")


def cmd_admin_list(args: argparse.Namespace) -> None:
    for name in authority.admins(data_dir(args)):
        print(name)


def cmd_admin_remove(args: argparse.Namespace) -> None:
    data, _ = admin_site(args)
    authority.remove_admin(data, args.name)
    print(f"removed administrator {args.name}: their password no longer unlocks anything")


def cmd_member_list(args: argparse.Namespace) -> None:
    _, site = open_site(data_dir(args))
    directory = site.directory()
    for record in directory.nodes.values():
        address = f"{record.host}:{record.peer_port}" if record.reachable else "-"
        controller = " (controller)" if record.id == directory.controller_id else ""
        print(f"{record.id}  {record.role:5}  {address:21}  {record.name}{controller}")


def cmd_member_remove(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    record = admin.remove_member(site, args.node_id)
    print(
        f"removed {record.id}; its certificate is revoked on every node as the directory "
        "reaches it, and its jobs are re-replicated after the grace period"
    )


def cmd_member_budget(args: argparse.Namespace) -> None:
    _, site = admin_site(args)
    record = admin.set_budget(site, args.node_id, args.size)
    if record.budget is None:
        shown = site.directory().settings.describe()["edge_budget"]
        print(f"{record.id} holds at most the site's edge_budget ({shown})")
    else:
        print(f"{record.id} holds at most {human_size(record.budget)}")


def cmd_settings(args: argparse.Namespace) -> None:
    _, site = open_site(data_dir(args))
    if args.key is not None:
        if args.value is None:
            raise BadRequest("settings: give a value: meshprint settings KEY VALUE")
        _, site = admin_site(args)
        admin.change_settings(site, {args.key: args.value})
    for key, value in site.directory().settings.describe().items():
        print(f"{key} = {value}")


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    site = sub.add_parser("site", help="create a site").add_subparsers(
        dest="site_command", required=True, metavar="ACTION"
    )
    p = command(
        site,
        "create",
        cmd_site_create,
        "create a site: its CA, and this node as super node and controller",
    )
    data_arg(p)
    p.add_argument("--name", required=True, help="the site's name, e.g. the office")
    p.add_argument("--host", help="an address to put in this node's certificate")

    p = command(
        site,
        "restore",
        cmd_site_restore,
        "make this new node the controller of a site whose controller was lost",
    )
    data_arg(p)
    p.add_argument(
        "--from",
        dest="member",
        required=True,
        metavar="HOST[:PORT]",
        help=f"a surviving member's submit API (default port {DEFAULT_SUBMIT_PORT})",
    )
    p.add_argument(
        "--key-file", metavar="FILE", help="first line is the recovery key (default: ask)"
    )
    p.add_argument("--host", help="an address to put in this node's certificate")

    p = command(
        site,
        "recovery-key",
        cmd_site_recovery_key,
        "make a new recovery key (on the controller); the old one stops working",
    )
    data_arg(p)
    p.add_argument(
        "--key-file", metavar="FILE", help="first line is the current recovery key (default: ask)"
    )
    admin_args(p, key_file=False)

    p = command(sub, "invite", cmd_invite, "print a one-time join token for a new node")
    data_arg(p)
    admin_args(p)
    p.add_argument("--ttl", default="30m", help="how long the token is valid (default 30m)")

    p = command(sub, "join", cmd_join, "make this machine a member of a site")
    p.add_argument("token", help="the token from 'meshprint invite'")
    data_arg(p)
    p.add_argument(
        "--role",
        choices=["edge", "super"],
        default="edge",
        help="edge (an office PC, default) or super (an always-on node)",
    )
    p.add_argument("--name", help="a name for this node (default: the host name)")
    p.add_argument("--host", help="an address to put in this node's certificate")

    p = command(sub, "node", cmd_node, "run the node: peer, submit and release APIs")
    data_arg(p)
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument(
        "--advertise",
        help="address other nodes use (default: --host, or this "
        "machine's address when listening on all)",
    )
    p.add_argument(
        "--peer-port",
        type=int,
        default=DEFAULT_PEER_PORT,
        help=f"node-to-node API, mutual TLS (default {DEFAULT_PEER_PORT})",
    )
    p.add_argument(
        "--submit-port",
        type=int,
        default=DEFAULT_SUBMIT_PORT,
        help=f"submission API (default {DEFAULT_SUBMIT_PORT})",
    )
    p.add_argument(
        "--release-port",
        type=int,
        default=DEFAULT_RELEASE_PORT,
        help=f"release API (default {DEFAULT_RELEASE_PORT})",
    )
    p.add_argument(
        "--ipp-port",
        type=int,
        metavar="P",
        help="the node's own printer, ipp:// and ipps:// HOST:P/ipp/print "
        "(default 631 on a super node, off on an edge node; 0: off)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="default info",
    )

    user = sub.add_parser("user", help="manage users (on the controller)").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    p = command(user, "add", cmd_user_add, "add a user; prints their submit token")
    p.add_argument("name")
    data_arg(p)
    admin_args(p)
    p.add_argument(
        "--password-file", metavar="FILE", help="first line is the password (default: ask twice)"
    )
    p = command(user, "list", cmd_user_list, "list users")
    data_arg(p)
    p = command(user, "remove", cmd_user_remove, "remove a user")
    p.add_argument("name")
    data_arg(p)
    admin_args(p)
    p = command(
        user,
        "printer-url",
        cmd_user_printer_url,
        "a user's personal printer URL (for computers that cannot sign in): --rotate "
        "makes a new one and prints it, --revoke removes it",
    )
    p.add_argument("name")
    data_arg(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--rotate", action="store_true", help="make a new one (the old one ends)")
    how.add_argument("--revoke", action="store_true", help="remove it (no personal URL)")
    p.add_argument("--host", help="the printer's host in the URL (default: the controller's)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_IPP_PORT, help=f"its port (default {DEFAULT_IPP_PORT})"
    )
    admin_args(p)
    p = command(user, "alias", cmd_user_alias, "give a user an extra name (e.g. OFFICE-PC\\alice)")
    p.add_argument("name")
    p.add_argument("alias")
    data_arg(p)
    p.add_argument("--remove", action="store_true", help="take the alias away")
    admin_args(p)

    admins = sub.add_parser(
        "admin", help="who can unlock the site authority (on the controller)"
    ).add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    p = command(
        admins,
        "add",
        cmd_admin_add,
        "give an administrator a password that unlocks the site authority",
    )
    p.add_argument("name")
    data_arg(p)
    p.add_argument(
        "--password-file",
        metavar="FILE",
        help="first line is the new administrator's password (default: ask twice)",
    )
    admin_args(p)
    p = command(admins, "list", cmd_admin_list, "list the administrators")
    data_arg(p)
    p = command(admins, "remove", cmd_admin_remove, "remove an administrator")
    p.add_argument("name")
    data_arg(p)
    admin_args(p)

    member = sub.add_parser(
        "member", help="list or remove nodes, set a node's disk budget (on the controller)"
    )
    msub = member.add_subparsers(dest="member_command", required=True, metavar="ACTION")
    p = command(msub, "list", cmd_member_list, "list the site's nodes")
    data_arg(p)
    p = command(msub, "remove", cmd_member_remove, "remove a node and revoke its certificate")
    p.add_argument("node_id")
    data_arg(p)
    admin_args(p)
    p = command(
        msub, "budget", cmd_member_budget, "set how much an edge node holds at most (or 'site')"
    )
    p.add_argument("node_id")
    p.add_argument("size", help="e.g. 5G, or 'site' for the site's edge_budget")
    data_arg(p)
    admin_args(p)

    p = command(
        sub,
        "settings",
        cmd_settings,
        "show site settings, or change one (on the controller): retention, "
        "repair_grace, max_job_size, disk_reserve, edge_budget",
    )
    p.add_argument("key", nargs="?", help="setting to change")
    p.add_argument("value", nargs="?", help="new value, e.g. 8h, 10m, 512M")
    data_arg(p)
    admin_args(p)
