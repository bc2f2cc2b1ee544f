"""The `meshprint` command: run a node, manage the site, and act as a client."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from appliance import __version__
from appliance.api.auth import basic_header
from appliance.api.client import Client, describe
from appliance.config import parse_duration
from appliance.crypto.userkeys import b64, check_password, create_user_key
from appliance.datadir import DataDir
from appliance.errors import BadRequest, ConfigError, MeshprintError, NotFound
from appliance.node import (
    DEFAULT_PEER_PORT,
    DEFAULT_RELEASE_PORT,
    DEFAULT_SUBMIT_PORT,
    Endpoint,
    Node,
    open_site,
)
from appliance.printers import monitor, registry
from appliance.printers.delivery import SIDES
from appliance.printers.registry import SnmpConfig, new_printer
from appliance.site.ca import sha256_hex
from appliance.site.directory import check_user_name
from appliance.site.enroll import create_site, join_site
from appliance.site.tls import client_context
from appliance.site.tokens import JoinToken

READ_SIZE = 256 * 1024


# Helpers


def _data(args: argparse.Namespace) -> DataDir:
    return DataDir(args.data)


def _read_secret(path: str | None, what: str, confirm: bool = False) -> str:
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ConfigError(f"cannot read the {what} file {path}: {err.strerror}") from None
        if not text or not text[0]:
            raise ConfigError(f"the {what} file {path} is empty")
        return text[0]
    if not sys.stdin.isatty():
        raise ConfigError(f"give the {what} with --password-file (no terminal to ask on)")
    secret = getpass.getpass(f"{what.capitalize()}: ")
    if confirm and getpass.getpass(f"{what.capitalize()} again: ") != secret:
        raise ConfigError(f"the two {what}s differ")
    return secret


def _client(args: argparse.Namespace, default_port: int) -> Client:
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
    return Client(url.hostname, url.port or default_port, client_context(Path(ca)))


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


# Site and node


def cmd_site_create(args: argparse.Namespace) -> None:
    data = _data(args)
    identity = create_site(data, args.name, args.host)
    print(
        f"Created site {args.name!r} ({identity.site_id}); this node is {identity.node_id}, "
        "its controller."
    )
    print(f"Site CA certificate (give it to clients): {data.ca_cert}")
    print(f"Next: meshprint node --data {args.data}")


def cmd_invite(args: argparse.Namespace) -> None:
    data = _data(args)
    if not data.is_controller:
        raise ConfigError("invite on the site controller (the node that created the site)")
    ttl = parse_duration(args.ttl)
    if not 1 <= ttl <= 7 * 86400:
        raise ConfigError("--ttl must be between 1s and 7d")
    _, site = open_site(data)
    directory = site.directory()
    me = directory.node(directory.controller_id)
    assert me is not None
    if not me.reachable:
        raise ConfigError(
            f"start the node first (meshprint node --data {args.data}) so the "
            "token can carry its address"
        )
    token = JoinToken.new(
        site.site_id, f"{me.host}:{me.submit_port}", site.ca.fingerprint, time.time() + ttl
    )
    site.add_token(token.secret, token.expires)
    print(token.encode())


def cmd_join(args: argparse.Namespace) -> None:
    identity = join_site(_data(args), args.token, args.role, args.name, args.host)
    print(f"Joined site {identity.site_id} as {identity.role} node {identity.node_id}.")
    print(f"Next: meshprint node --data {args.data}")


def cmd_node(args: argparse.Namespace) -> None:
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    endpoint = Endpoint(
        args.host, args.advertise, args.peer_port, args.submit_port, args.release_port
    )
    node = Node(_data(args), endpoint)
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
    data = _data(args)
    name = check_user_name(args.name)
    password = _read_secret(args.password_file, "password", confirm=True)
    check_password(password)
    public, wrapped = create_user_key(password)
    token = secrets.token_urlsafe(24)
    _, site = open_site(data)

    def add(doc: dict[str, Any]) -> None:
        if name in doc["users"]:
            raise BadRequest(f"user {name} already exists")
        doc["users"][name] = {
            "public_key": b64(public),
            "wrapped_key": wrapped.to_dict(),
            "token_hash": sha256_hex(token.encode()),
        }

    site.edit(add)
    print(token)


def cmd_user_list(args: argparse.Namespace) -> None:
    _, site = open_site(_data(args))
    for name in site.directory().users:
        print(name)


def cmd_user_remove(args: argparse.Namespace) -> None:
    _, site = open_site(_data(args))

    def remove(doc: dict[str, Any]) -> None:
        if doc["users"].pop(args.name, None) is None:
            raise NotFound(f"no user {args.name}")

    site.edit(remove)
    print(f"removed user {args.name}")


def cmd_member_list(args: argparse.Namespace) -> None:
    _, site = open_site(_data(args))
    directory = site.directory()
    for record in directory.nodes.values():
        address = f"{record.host}:{record.peer_port}" if record.reachable else "-"
        controller = " (controller)" if record.id == directory.controller_id else ""
        print(f"{record.id}  {record.role:5}  {address:21}  {record.name}{controller}")


def cmd_member_remove(args: argparse.Namespace) -> None:
    _, site = open_site(_data(args))
    directory = site.directory()
    record = directory.node(args.node_id)
    if record is None:
        raise NotFound(f"no member {args.node_id}")
    if record.id == directory.controller_id:
        raise BadRequest("the controller cannot remove itself")

    def remove(doc: dict[str, Any]) -> None:
        del doc["nodes"][record.id]
        doc["revoked"] = sorted({*doc["revoked"], record.cert_serial})

    site.edit(remove)
    print(
        f"removed {record.id}; its certificate is revoked on every node as the directory "
        "reaches it, and its jobs are re-replicated after the grace period"
    )


def cmd_settings(args: argparse.Namespace) -> None:
    _, site = open_site(_data(args))
    if args.key is not None:
        if args.value is None:
            raise BadRequest("settings: give a value: meshprint settings KEY VALUE")
        new = site.directory().settings.changed(args.key, args.value)
        site.edit(lambda doc: doc.__setitem__("settings", new.to_dict()))
    for key, value in site.directory().settings.describe().items():
        print(f"{key} = {value}")


# Printers


def cmd_printer_add(args: argparse.Namespace) -> None:
    snmp = None
    if args.snmp:
        snmp = SnmpConfig.parse(args.snmp, args.community, args.snmp_v3)
    elif args.community or args.snmp_v3:
        raise BadRequest("--community and --snmp-v3 go with --snmp HOST[:PORT]")
    record = new_printer(
        args.name, args.uri, args.location or "", snmp, args.pin, args.allow_self_signed
    )
    _, site = open_site(_data(args))
    registry.check_new(site.directory().doc, record.name)
    if args.cups_queue:
        record = _through_cups(record, args.cups_queue)

    def add(doc: dict[str, Any]) -> None:
        printers = doc.setdefault("printers", {})
        if record.name in printers:
            raise BadRequest(f"printer {record.name} already exists (remove it first)")
        printers[record.name] = record.to_dict()

    site.edit(add)
    print(f"added printer {record.name}: {record.uri}")


def _through_cups(record: registry.PrinterRecord, queue: str) -> registry.PrinterRecord:
    """Create a driverless `everywhere` queue on this machine's CUPS for an IPP printer,
    wait until CUPS has really built its driver, and print through that queue."""
    from appliance.printers.delivery.cups import create_everywhere_queue

    if record.endpoint.scheme not in ("ipp", "ipps"):
        raise BadRequest("--cups-queue needs an ipp:// or ipps:// printer URI")
    registry.parse_uri(f"cups:{queue}")
    print(
        f"creating CUPS queue {queue} for {record.uri} (waiting until it is ready) …",
        file=sys.stderr,
    )
    create_everywhere_queue(queue, record.uri)
    return new_printer(record.name, f"cups:{queue}", record.location, record.snmp)


def _printer_state(entry: dict[str, Any]) -> str:
    """One line from a polled printer status: ready, supplies and pages, or the reason."""
    if entry.get("ready") is None:
        return "status unknown (no SNMP, or not polled yet)"
    parts = ["ready" if entry["ready"] else f"NOT READY: {entry['reason']}"]
    for supply in entry.get("supplies", []):
        if supply.get("percent") is not None:
            parts.append(f"{supply['name']} {supply['percent']}%")
    if entry.get("pages") is not None:
        parts.append(f"{entry['pages']} pages")
    parts += [f"alert: {alert}" for alert in entry.get("alerts", []) if entry["ready"]]
    return " · ".join(parts)


def cmd_printer_list(args: argparse.Namespace) -> None:
    db, site = open_site(_data(args))
    records = registry.printers(site.directory().doc)
    polled = monitor.known(db)
    if args.json:
        _print_json([{**r.public(), **polled.get(r.name, {})} for r in records.values()])
        return
    if not records:
        print("no printers yet: meshprint printer add NAME --uri URI --data DIR")
        return
    for record in records.values():
        print(f"{record.name:20} {record.uri:40} {record.location}")
        print(f"{'':20} {_printer_state(polled.get(record.name, {}))}")


def cmd_printer_test(args: argparse.Namespace) -> None:
    from appliance.printers.check import check

    _, site = open_site(_data(args))
    report = check(registry.find(site.directory().doc, args.name), test_page=args.page)
    if args.json:
        _print_json(report.to_dict())
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
                print(f"  alert:     {alert}")
        if report.test_page:
            print(f"  test page: {report.test_page}")
        for problem in report.problems:
            print(f"  problem:   {problem}")
    if not report.ok:
        raise MeshprintError(f"printer {report.printer} is not ready")


def cmd_printer_discover(args: argparse.Namespace) -> None:
    from appliance.printers.discover import discover

    _data(args).identity()  # discovery runs on a node of the site
    found = discover(args.subnet, args.community)
    if args.json:
        _print_json([f.to_dict() for f in found])
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
    _, site = open_site(_data(args))

    def remove(doc: dict[str, Any]) -> None:
        registry.find(doc, args.name)
        del doc["printers"][args.name]

    site.edit(remove)
    print(f"removed printer {args.name}")


# Client commands


def cmd_submit(args: argparse.Namespace) -> None:
    path = Path(args.file)
    try:
        source = sys.stdin.buffer if args.file == "-" else path.open("rb")
    except OSError as err:
        raise ConfigError(f"cannot read {args.file}: {err.strerror}") from None
    token = args.token or os.environ.get("MESHPRINT_TOKEN")
    if not token:
        raise ConfigError("give the user's submit token with --token (or MESHPRINT_TOKEN)")
    title = args.title or (path.name if args.file != "-" else "Untitled")
    client = _client(args, DEFAULT_SUBMIT_PORT)
    length = None if args.file == "-" else path.stat().st_size
    with source:
        response = client.request(
            "POST",
            f"/v1/jobs?title={quote(title)}",
            iter(lambda: source.read(READ_SIZE), b""),
            {
                "Authorization": basic_header(args.user, token),
                "Content-Type": "application/octet-stream",
            },
            length,
        )
    receipt = json.loads(response.read())
    if args.json:
        _print_json(receipt)
    else:
        print(receipt["id"])


def cmd_jobs(args: argparse.Namespace) -> None:
    password = _read_secret(args.password_file, "password")
    jobs = _client(args, DEFAULT_RELEASE_PORT).json(
        "GET", "/v1/jobs", headers={"Authorization": basic_header(args.user, password)}
    )["jobs"]
    if args.json:
        _print_json(jobs)
        return
    if not jobs:
        print("no held jobs")
        return
    now = time.time()
    print(f"{'JOB':26} {'SIZE':>9} {'AGE':>7} {'EXPIRES':>8} {'COPIES':>6}  TITLE")
    for job in jobs:
        print(
            f"{job['id']:26} {_size(job['size']):>9} {_ago(now - job['created_at']):>7} "
            f"{_ago(job['expires_at'] - now):>8} {len(job['copies']):>6}  {job['title']}"
        )


def cmd_release(args: argparse.Namespace) -> None:
    if bool(args.to) == bool(args.printer):
        raise ConfigError("release to a printer (--printer NAME) or to a file (--to PATH)")
    request: dict[str, Any] = {}
    if args.printer:
        request = {
            "printer": args.printer,
            "copies": args.copies,
            "sides": args.sides,
            "mono": args.mono,
            "reprint": args.reprint,
            "release_id": args.release_id or secrets.token_hex(16),
        }
    headers = {"Content-Type": "application/json"}
    if args.user:
        password = _read_secret(args.password_file, "password")
        headers["Authorization"] = basic_header(args.user, password)
    elif args.data:
        from appliance.jobs.release import make_command

        data = _data(args)
        if not data.is_controller:
            raise ConfigError("an authorized release is signed on the site controller")
        _, site = open_site(data)
        request.update(make_command(site.ca, args.job))
    else:
        raise ConfigError(
            "release as the owner (--user and --password-file) or as the "
            "admin on the controller (--data DIR)"
        )
    client = _client(args, DEFAULT_RELEASE_PORT)
    path = f"/v1/jobs/{quote(args.job)}/release"
    response = client.request("POST", path, json.dumps(request).encode(), headers)
    if args.printer:
        delivery = json.loads(response.read())
        _follow(client, delivery, args.wait)
        return
    expected = int(response.headers.get("Content-Length", "-1"))
    written = _write_output(args.to, response)
    if expected >= 0 and written != expected:
        raise MeshprintError(
            f"the release stopped after {written} of {expected} bytes; "
            "the job is still held: try again"
        )
    print(f"released {args.job} ({_size(written)}) to {args.to}", file=sys.stderr)


def _follow(client: Client, delivery: dict[str, Any], wait: float) -> None:
    """Print the delivery's progress until it is printed or failed (or `wait` runs out)."""
    release_id = delivery["release_id"]
    print(f"release {release_id}: {delivery['stage']} on {delivery['printer']}", flush=True)
    deadline = time.time() + wait
    last = delivery["stage"]
    while last not in ("printed", "failed", "unknown") and time.time() < deadline:
        time.sleep(0.5)
        delivery = client.json("GET", f"/v1/releases/{quote(release_id)}")
        if delivery["stage"] != last:
            last = delivery["stage"]
            reason = f" ({delivery['reason']})" if delivery["reason"] else ""
            print(f"release {release_id}: {last}{reason}", flush=True)
    if last in ("failed", "unknown"):
        raise MeshprintError(f"the job was not printed: {delivery['reason'] or last}")


def cmd_job_show(args: argparse.Namespace) -> None:
    password = _read_secret(args.password_file, "password")
    job = _client(args, DEFAULT_RELEASE_PORT).json(
        "GET",
        f"/v1/jobs/{quote(args.job)}",
        headers={"Authorization": basic_header(args.user, password)},
    )
    if args.json:
        _print_json(job)
        return
    now = time.time()
    state = job["state"] + (f" ({job['reason']})" if job.get("reason") else "")
    if job["state"] == "unknown":
        state += " — it may have printed; release with --reprint to print it again"
    print(
        f"{job['id']}  {job['title']}\n  state:   {state}\n  size:    {_size(job['size'])}"
        f"\n  age:     {_ago(now - job['created_at'])}\n  expires: in "
        f"{_ago(job['expires_at'] - now)}\n  copies:  {len(job['copies'])} "
        f"({', '.join(job['copies'])})"
    )
    for delivery in job.get("deliveries", []):
        reason = f" ({delivery['reason']})" if delivery["reason"] else ""
        print(
            f"  release {delivery['release_id']} to {delivery['printer']}: "
            f"{delivery['stage']}{reason}"
        )


def _write_output(target: str, response: Any) -> int:
    written = 0
    if target == "-":
        while piece := response.read(READ_SIZE):
            sys.stdout.buffer.write(piece)
            written += len(piece)
        sys.stdout.buffer.flush()
        return written
    path = Path(target)
    part = path.with_name(f".{path.name}.part")
    try:
        with part.open("wb") as out:
            while piece := response.read(READ_SIZE):
                out.write(piece)
                written += len(piece)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise MeshprintError(f"release interrupted: {describe(err)}") from None
    expected = int(response.headers.get("Content-Length", "-1"))
    if expected >= 0 and written != expected:
        part.unlink(missing_ok=True)
        return written
    os.replace(part, path)
    return written


def cmd_status(args: argparse.Namespace) -> None:
    status = _client(args, DEFAULT_RELEASE_PORT).json("GET", "/v1/status")
    if args.json:
        _print_json(status)
        return
    now = time.time()
    print(
        f"site {status['site']} (directory v{status['directory_version']}), "
        f"asked node {status['node']}"
    )
    print(f"\n{'NODE':14} {'ROLE':5} {'STATE':5} {'SEEN':>6} {'JOBS':>5}  ADDRESS")
    for m in status["members"]:
        seen = _ago(now - m["last_seen"]) if m["last_seen"] else "never"
        jobs = "-" if m["jobs"] is None else str(m["jobs"])
        mark = " (controller)" if m["controller"] else ""
        print(
            f"{m['id']:14} {m['role']:5} {'up' if m['live'] else 'down':5} {seen:>6} "
            f"{jobs:>5}  {m['address'] or '-'}{mark}"
        )
    jobs = status["jobs"]
    print(
        f"\njobs held: {jobs['held']}  fully replicated: {jobs['fully_replicated']}  "
        f"under-replicated: {jobs['under_replicated']}"
    )
    if status.get("printers"):
        print()
        for printer in status["printers"]:
            print(f"printer {printer['name']:16} {_printer_state(printer)}")


# Parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshprint",
        description="Secure pull printing: jobs held encrypted with a split key on an office "
        "mesh until their owner releases them.",
    )
    parser.add_argument("--version", action="version", version=f"meshprint {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, func: Callable[[argparse.Namespace], None], help: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help, description=help)
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

    site = sub.add_parser("site", help="create a site").add_subparsers(
        dest="site_command", required=True, metavar="ACTION"
    )
    p = command(
        "create",
        cmd_site_create,
        "create a site: its CA, and this node as super node and controller",
        site,
    )
    data_arg(p)
    p.add_argument("--name", required=True, help="the site's name, e.g. the office")
    p.add_argument("--host", help="an address to put in this node's certificate")

    p = command("invite", cmd_invite, "print a one-time join token for a new node")
    data_arg(p)
    p.add_argument("--ttl", default="30m", help="how long the token is valid (default 30m)")

    p = command("join", cmd_join, "make this machine a member of a site")
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

    p = command("node", cmd_node, "run the node: peer, submit and release APIs")
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
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="default info",
    )

    user = sub.add_parser("user", help="manage users (on the controller)").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    p = command("add", cmd_user_add, "add a user; prints their submit token", user)
    p.add_argument("name")
    data_arg(p)
    p.add_argument(
        "--password-file", metavar="FILE", help="first line is the password (default: ask twice)"
    )
    p = command("list", cmd_user_list, "list users", user)
    data_arg(p)
    p = command("remove", cmd_user_remove, "remove a user", user)
    p.add_argument("name")
    data_arg(p)

    member = sub.add_parser("member", help="list or remove nodes (on the controller)")
    msub = member.add_subparsers(dest="member_command", required=True, metavar="ACTION")
    p = command("list", cmd_member_list, "list the site's nodes", msub)
    data_arg(p)
    p = command("remove", cmd_member_remove, "remove a node and revoke its certificate", msub)
    p.add_argument("node_id")
    data_arg(p)

    printer = sub.add_parser("printer", help="the site's printers (on the controller)")
    psub = printer.add_subparsers(dest="printer_command", required=True, metavar="ACTION")
    p = command("add", cmd_printer_add, "add a printer", psub)
    p.add_argument("name", help="what users pick, e.g. 2nd-floor")
    data_arg(p)
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
        "--cups-queue",
        metavar="QUEUE",
        help="ipp(s): create a driverless 'everywhere' queue on this machine's CUPS "
        "and print through it",
    )
    p = command("list", cmd_printer_list, "list printers", psub)
    data_arg(p)
    p.add_argument("--json", action="store_true")
    p = command(
        "test",
        cmd_printer_test,
        "check a printer: reachable, what it is, SNMP status and supplies",
        psub,
    )
    p.add_argument("name")
    data_arg(p)
    p.add_argument("--page", action="store_true", help="also print a short test page")
    p.add_argument("--json", action="store_true")
    p = command(
        "discover",
        cmd_printer_discover,
        "find printers over DNS-SD (and an SNMP sweep of --subnet)",
        psub,
    )
    data_arg(p)
    p.add_argument("--subnet", metavar="CIDR", help="also sweep this network over SNMP (≤ /22)")
    p.add_argument("--community", default="public", help="SNMP community for the sweep")
    p.add_argument("--json", action="store_true")
    p = command("remove", cmd_printer_remove, "remove a printer", psub)
    p.add_argument("name")
    data_arg(p)

    p = command(
        "settings",
        cmd_settings,
        "show site settings, or change one (on the controller): retention, "
        "repair_grace, max_job_size, disk_reserve",
    )
    p.add_argument("key", nargs="?", help="setting to change")
    p.add_argument("value", nargs="?", help="new value, e.g. 8h, 10m, 512M")
    data_arg(p)

    p = command("submit", cmd_submit, "hand a document in; prints the job id")
    p.add_argument("file", help="the document, or - for standard input")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--token", help="the user's submit token (default: $MESHPRINT_TOKEN)")
    p.add_argument("--title", help="the job's title (default: the file name)")
    p.add_argument("--json", action="store_true", help="print the whole receipt as JSON")

    p = command("jobs", cmd_jobs, "list your held jobs")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", metavar="FILE", help="default: ask")
    p.add_argument("--json", action="store_true")

    p = command(
        "release",
        cmd_release,
        "release a held job to a file: as its owner (--user), or as the admin on "
        "the controller (--data) while two of its holders are up",
    )
    p.add_argument("job")
    client_args(p)
    p.add_argument("--user", help="the job's owner")
    p.add_argument("--password-file", metavar="FILE", help="default: ask")
    p.add_argument(
        "--data", metavar="DIR", help="the controller's data directory, for an authorized release"
    )
    p.add_argument("--printer", metavar="NAME", help="print it on this site printer")
    p.add_argument("--copies", type=int, default=1, help="with --printer (default 1)")
    p.add_argument("--sides", default="one-sided", choices=SIDES, help="with --printer")
    p.add_argument("--mono", action="store_true", help="with --printer: black and white")
    p.add_argument(
        "--reprint",
        action="store_true",
        help="print a job whose earlier delivery was cut off (it may have printed)",
    )
    p.add_argument("--release-id", help="an id of your own: repeating it never prints twice")
    p.add_argument(
        "--wait",
        type=float,
        default=120,
        metavar="SECONDS",
        help="with --printer: how long to follow it to 'printed' (default 120)",
    )
    p.add_argument("--to", metavar="PATH", help="output file, or - for stdout")

    job = sub.add_parser("job", help="one held job")
    jsub = job.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    p = command("show", cmd_job_show, "a job's state, copies and deliveries", jsub)
    p.add_argument("job")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", metavar="FILE", help="default: ask")
    p.add_argument("--json", action="store_true")

    p = command("status", cmd_status, "members, liveness, held jobs and replica health")
    client_args(p)
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MeshprintError as err:
        print(f"meshprint: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
