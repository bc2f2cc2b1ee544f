"""Client commands: submit, jobs, release, job show, status."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from appliance.cli.common import (
    READ_SIZE,
    client_args,
    client_for,
    command,
    data_dir,
    key_file_arg,
    print_json,
    read_secret,
    release_authority,
)
from appliance.cli.printers import printer_state
from appliance.clients.models import DeliveryInfo
from appliance.clients.node import NodeClient, lost_answer, new_idempotency_key
from appliance.endpoint import DEFAULT_RELEASE_PORT, DEFAULT_SUBMIT_PORT
from appliance.errors import BadRequest, ConfigError, MeshprintError
from appliance.https.client import describe
from appliance.humanize import human_duration, human_size, plain
from appliance.jobs.intake import check_idempotency_key
from appliance.printoptions import MEDIA, SIDES, describe_options
from appliance.site.directory import Directory
from appliance.site.state import open_site
from appliance.store.states import JobState, Stage

# Client commands


def check_key(value: str) -> str:
    """An --idempotency-key as the submit API accepts it."""
    try:
        return check_idempotency_key(value) or value
    except BadRequest as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def cmd_submit(args: argparse.Namespace) -> None:
    """Hand a document in with an idempotency key: a lost answer is retried once with the
    same key (a file is read again; standard input streams once), and if it still fails
    the key is printed, so submitting again with it cannot make a second job."""
    path = Path(args.file)
    token = args.token or os.environ.get("MESHPRINT_TOKEN")
    if not token:
        raise ConfigError("give the user's submit token with --token (or MESHPRINT_TOKEN)")
    title = args.title or (path.name if args.file != "-" else "Untitled")
    client = client_for(args, DEFAULT_SUBMIT_PORT)
    key = args.idempotency_key or new_idempotency_key()
    opened: list[BinaryIO] = []

    def document() -> Iterator[bytes]:
        try:
            source = sys.stdin.buffer if args.file == "-" else path.open("rb")
        except OSError as err:
            raise ConfigError(f"cannot read {args.file}: {err.strerror}") from None
        opened.append(source)
        return iter(lambda: source.read(READ_SIZE), b"")

    try:
        length = None if args.file == "-" else path.stat().st_size
        receipt = client.submit(
            (args.user, token),
            document() if args.file == "-" else document,
            title,
            "application/octet-stream",
            length,
            idempotency_key=key,
        )
    except OSError as err:
        raise ConfigError(f"cannot read {args.file}: {err.strerror}") from None
    except MeshprintError as err:
        if lost_answer(err):
            raise MeshprintError(
                f"{err}. The job may have been held all the same: submit it again with "
                f"--idempotency-key {key} to get that job rather than a second one"
            ) from None
        raise
    finally:
        for source in opened:
            if source is not sys.stdin.buffer:
                source.close()
    if args.json:
        print_json(receipt)
    else:
        print(receipt["id"])


def cmd_jobs(args: argparse.Namespace) -> None:
    password = read_secret(args.password_file, "password")
    jobs = client_for(args, DEFAULT_RELEASE_PORT).jobs((args.user, password))
    if args.json:
        print_json(jobs)
        return
    if not jobs:
        print("no held jobs")
        return
    now = time.time()
    # HELD ON: how many nodes hold a sealed copy (three when all is well), not print copies.
    head = (
        f"{'JOB':26} {'PAGES':>5} {'SIZE':>9} {'AGE':>7} {'EXPIRES':>8} {'HELD ON':>7}  "
        f"{'SETTINGS':34} TITLE"
    )
    print(head)
    for job in jobs:
        age = human_duration(now - job["created_at"], compact=True)
        expires = human_duration(job["expires_at"] - now, compact=True)
        held = f"{len(job.get('copies', []))}/3"
        pages = str(pages_of(job) or "-")
        print(
            f"{job['id']:26} {pages:>5} {human_size(job['size']):>9} {age:>7} {expires:>8} "
            f"{held:>7}  "
            f"{describe_options(job.get('options') or {}):34} {job['title']}"
        )


def cmd_release(args: argparse.Namespace) -> None:
    if bool(args.to) == bool(args.printer):
        raise ConfigError("release to a printer (--printer NAME) or to a file (--to PATH)")
    request: dict[str, Any] = {}
    if args.printer:
        request = {
            "printer": args.printer,
            "reprint": args.reprint,
            "release_id": args.release_id or secrets.token_hex(16),
        }
        # Left out, the job's own defaults apply (what its sender asked for).
        chosen = {
            "copies": args.copies,
            "sides": args.sides,
            "mono": args.mono,
            "media": args.media,
        }
        request.update({k: v for k, v in chosen.items() if v is not None})
    credentials = None
    if args.user:
        credentials = (args.user, read_secret(args.password_file, "password"))
    elif args.data:
        from appliance.jobs.release import make_command

        _, site = open_site(data_dir(args))
        signer = release_authority(args, site)
        request.update(make_command(signer, args.job, _node_at(site.directory(), args.node)))
    else:
        raise ConfigError(
            "release as the owner (--user and --password-file) or as the "
            "admin on the controller (--data DIR)"
        )
    sending = None if credentials else "the signed release command"
    client = client_for(args, DEFAULT_RELEASE_PORT, sending=sending)
    if args.printer:
        _follow(client, client.release(args.job, request, credentials), args.wait)
        return
    response = client.release_document(args.job, credentials, request)
    expected = int(response.headers.get("Content-Length", "-1"))
    written = _write_output(args.to, response)
    if expected >= 0 and written != expected:
        raise MeshprintError(
            f"the release stopped after {written} of {expected} bytes; "
            "the job is still held: try again"
        )
    print(f"released {args.job} ({human_size(written)}) to {args.to}", file=sys.stderr)


def _node_at(directory: Directory, address: str) -> str:
    """The id of the member whose release API is at `address` (--node): a release command
    names the node that delivers it."""
    url = urlsplit(address if "://" in address else f"https://{address}")
    port = url.port or DEFAULT_RELEASE_PORT
    for record in directory.nodes.values():
        if record.host == url.hostname and record.release_port == port:
            return record.id
    raise ConfigError(f"no node of this site has its release API at {address}")


def _follow(client: NodeClient, delivery: DeliveryInfo, wait: float) -> None:
    """Print the delivery's progress until it is printed or failed (or `wait` runs out)."""
    release_id = delivery["release_id"]
    print(f"release {release_id}: {delivery['stage']} on {delivery['printer']}", flush=True)
    deadline = time.time() + wait
    last = delivery["stage"]
    while not Stage(last).settled and time.time() < deadline:
        time.sleep(0.5)
        delivery = client.release_status(release_id)
        if delivery["stage"] != last:
            last = delivery["stage"]
            print(f"release {release_id}: {plain_stage(last, delivery['reason'])}", flush=True)
    if last in (Stage.FAILED, Stage.UNKNOWN):
        raise MeshprintError(f"the job was not printed: {plain(delivery['reason'] or last)}")


def pages_of(job: Mapping[str, Any]) -> int | None:
    """The job's page count where intake counted it (older nodes send none)."""
    pages = job.get("pages")
    return pages if isinstance(pages, int) and not isinstance(pages, bool) else None


def plain_stage(stage: str, reason: str) -> str:
    """ "printed", "failed (out of paper)": a stage and its reason in plain words."""
    return plain(stage + (f" ({reason})" if reason else ""))


def cmd_job_show(args: argparse.Namespace) -> None:
    password = read_secret(args.password_file, "password")
    job = client_for(args, DEFAULT_RELEASE_PORT).job(args.job, (args.user, password))
    if args.json:
        print_json(job)
        return
    now = time.time()
    state = plain_stage(job["state"], job.get("reason") or "")
    if job["state"] == JobState.UNKNOWN:
        state += " — it may have printed; release with --reprint to print it again"
    age = human_duration(now - job["created_at"], compact=True)
    expires = human_duration(job["expires_at"] - now, compact=True)
    print(
        f"{job['id']}  {job['title']}\n  state:   {state}\n  size:    {human_size(job['size'])}"
        + (f"\n  pages:   {pages_of(job)}" if pages_of(job) else "")
        + f"\n  age:     {age}\n  expires: in {expires}\n  held on: {len(job['copies'])} "
        f"node(s) ({', '.join(job['copies'])})"
        f"\n  prints:  {describe_options(job.get('options') or {})} (as sent)"
    )
    for delivery in job.get("deliveries", []):
        print(
            f"  release {delivery['release_id']} to {delivery['printer']}: "
            f"{plain_stage(delivery['stage'], delivery['reason'])}"
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
    status = client_for(args, DEFAULT_RELEASE_PORT, check=False).status()  # sends nothing
    if args.json:
        print_json(status)
        return
    now = time.time()
    print(
        f"site {status['site']} (directory v{status['directory_version']}), "
        f"asked node {status['node']}"
    )
    print(f"\n{'NODE':14} {'ROLE':5} {'STATE':5} {'SEEN':>6} {'JOBS':>5}  ADDRESS")
    for m in status["members"]:
        seen = human_duration(now - m["last_seen"], compact=True) if m["last_seen"] else "never"
        jobs = "-" if m["jobs"] is None else str(m["jobs"])
        mark = " (controller)" if m["controller"] else ""
        print(
            f"{m['id']:14} {m['role']:5} {'up' if m['live'] else 'down':5} {seen:>6} "
            f"{jobs:>5}  {m['address'] or '-'}{mark}"
        )
    if status.get("live_window"):
        print(
            f"(as node {status['node']} sees it now: up means heard from in the last "
            f"{status['live_window']:.0f} s, directly or by gossip, and not failing its own "
            "last check; a node that just stopped can show up that long)"
        )
    jobs = status["jobs"]
    print(
        f"\njobs held: {jobs['held']}  fully replicated: {jobs['fully_replicated']}  "
        f"under-replicated: {jobs['under_replicated']}"
    )
    if status.get("printers"):
        print()
        for printer in status["printers"]:
            name = printer["name"]
            if printer.get("display_name", name) != name:
                name = f"{name} ({printer['display_name']})"
            print(f"printer {name:16} {printer_state(printer)}")


def register(sub: Any) -> None:
    """Add these commands to the top-level subparsers `sub`."""
    p = command(sub, "submit", cmd_submit, "hand a document in; prints the job id")
    p.add_argument("file", help="the document, or - for standard input")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--token", help="the user's submit token (default: $MESHPRINT_TOKEN)")
    p.add_argument("--title", help="the job's title (default: the file name)")
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        type=check_key,
        help="16-64 letters, digits, _ or -; the same submission again with the same key "
        "gets the job it made (default: a fresh key)",
    )
    p.add_argument("--json", action="store_true", help="print the whole receipt as JSON")

    p = command(sub, "jobs", cmd_jobs, "list your held jobs")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", metavar="FILE", help="default: ask")
    p.add_argument("--json", action="store_true")

    p = command(
        sub,
        "release",
        cmd_release,
        "release a held job to a file: as its owner (--user), or as the admin with the "
        "recovery key (--data, --key-file) while two of its holders are up",
    )
    p.add_argument("job")
    client_args(p, data=False)
    p.add_argument("--user", help="the job's owner")
    p.add_argument("--password-file", metavar="FILE", help="default: ask")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="a node's data directory: for an authorized release, with the recovery key "
        "(--key-file); with --user, to check who answers against its directory",
    )
    key_file_arg(p)
    p.add_argument("--printer", metavar="NAME", help="print it on this site printer")
    p.add_argument("--copies", type=int, help="with --printer (default: as sent, else 1)")
    p.add_argument(
        "--sides", choices=SIDES, help="with --printer (default: as sent, else one-sided)"
    )
    p.add_argument(
        "--mono",
        action=argparse.BooleanOptionalAction,
        help="with --printer: black and white (default: as sent, else colour)",
    )
    p.add_argument(
        "--media",
        choices=MEDIA,
        help="with --printer: the paper size (default: as sent, else the printer's)",
    )
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
    p = command(jsub, "show", cmd_job_show, "a job's state, copies and deliveries")
    p.add_argument("job")
    client_args(p)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", metavar="FILE", help="default: ask")
    p.add_argument("--json", action="store_true")

    p = command(sub, "status", cmd_status, "members, liveness, held jobs and replica health")
    client_args(p)
    p.add_argument("--json", action="store_true")
