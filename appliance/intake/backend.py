"""The CUPS backend `meshprint`: each job of the Secure Print queue goes into the meshprint
node on this machine, held for the job's requesting user.

CUPS runs it as `meshprint JOB-ID USER TITLE COPIES OPTIONS [FILE]` with the device URI
(`meshprint:///var/lib/meshprint?wait=60` — the node's data directory, and how long to
wait for the node before handing the job back to CUPS) in $DEVICE_URI. The document (the
spooled FILE, or stdin when CUPS ran filters first) is streamed straight into the node's
intake door (door.py): it is sealed as it arrives and never written here. Title, copies,
sides and colour become the job's default options for release.

Outcomes, as CUPS understands them (stderr lines and the exit status):
- held: INFO line, exit 0 — the CUPS job completes.
- a user the site does not know, or a document the site refuses: ERROR line (CUPS shows
  it as the job's job-printer-state-message), exit 5 — the job is cancelled, nothing held.
- the node is down or cannot store the job now: exit 6 — CUPS keeps the job and tries
  again after its JobRetryInterval.

Every attempt for one CUPS job carries the same idempotency key (the CUPS job id and a
digest of the spooled file's identity), so an attempt whose answer was lost — the node killed after
it held the job — and that CUPS runs again gets the job already held, not a second one.

Run with no arguments it prints its device line, for `lpinfo -v`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shlex
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from appliance.clients.node import NodeClient
from appliance.datadir import DataDir
from appliance.errors import MeshprintError, RemoteError
from appliance.https.client import Client
from appliance.intake import door
from appliance.printoptions import MEDIA, MEDIA_BY_NAME
from appliance.site.answering import own_node_check
from appliance.site.tls import client_context

CUPS_BACKEND_OK = 0
CUPS_BACKEND_FAILED = 1
CUPS_BACKEND_CANCEL = 5
CUPS_BACKEND_RETRY = 6

SCHEME = "meshprint"
DEVICE_LINE = f'network {SCHEME} "Unknown" "meshprint Secure Print"'
DEFAULT_WAIT = 300.0
READ_SIZE = 256 * 1024
# What the node answers when the job itself is unacceptable: cancel it, do not retry.
REFUSED = (400, 403, 404, 410, 413, 415)


def _say(kind: str, message: str) -> None:
    """A status line for cupsd (ERROR/INFO become the job's state message)."""
    print(f"{kind}: {' '.join(message.split())}", file=sys.stderr, flush=True)


def parse_device_uri(uri: str) -> tuple[DataDir, float]:
    """meshprint:///DATA/DIR?wait=SECONDS → (data directory, wait)."""
    parts = urlsplit(uri)
    if parts.scheme != SCHEME or not parts.path.startswith("/"):
        raise MeshprintError(
            f"device URI {uri!r} is not meshprint:///DATA-DIR (set by 'meshprint intake install')"
        )
    wait = DEFAULT_WAIT
    values = parse_qs(parts.query).get("wait")
    if values:
        try:
            wait = max(0.0, float(values[-1]))
        except ValueError:
            raise MeshprintError(f"device URI {uri!r}: wait must be a number of seconds") from None
    return DataDir(parts.path), wait


def job_options(copies: str, options: str) -> dict[str, str]:
    """The job's default options as intake query values, from CUPS' copies argument and
    its option string (`sides=two-sided-long-edge print-color-mode=monochrome …`)."""
    try:
        words = shlex.split(options)
    except ValueError:
        words = options.split()
    given = dict(word.split("=", 1) for word in words if "=" in word)
    out = {"copies": copies if copies.isdigit() and copies != "0" else "1"}
    sides = given.get("sides")
    if sides is None:
        sides = {
            "None": "one-sided",
            "DuplexNoTumble": "two-sided-long-edge",
            "DuplexTumble": "two-sided-short-edge",
        }.get(given.get("Duplex", ""))
    if sides:
        out["sides"] = sides
    mode = given.get("print-color-mode") or given.get("output-mode")
    if mode in ("monochrome", "bi-level", "process-monochrome", "auto-monochrome"):
        out["color"] = "0"
    elif mode == "color":
        out["color"] = "1"
    elif given.get("ColorModel") == "Gray":
        out["color"] = "0"
    media = given.get("media") or given.get("PageSize") or ""
    media = media if media in MEDIA else MEDIA_BY_NAME.get(media.lower(), "")
    if media:
        out["media"] = media
    return out


def _chunks(source: IO[bytes]) -> Iterator[bytes]:
    while piece := source.read(READ_SIZE):
        yield piece


def idempotency_key(cups_job: str, source: IO[bytes], said: Sequence[str]) -> str:
    """The same key for every attempt at one CUPS job: its id and a digest of the spooled
    file's identity (inode, size, modification time: the same file for every attempt,
    another for the next job even when cupsd's job ids start again) or, for a stream from
    a filter, of what CUPS said about the job (`said`). Never of the document itself."""
    digest = hashlib.sha256("\0".join(said).encode())
    try:
        info = os.fstat(source.fileno())
        if stat.S_ISREG(info.st_mode):
            digest.update(f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}".encode())
    except (OSError, ValueError):
        pass
    job = "".join(ch for ch in cups_job if ch.isalnum())[:16]
    return f"cups-{job}-{digest.hexdigest()[:32]}"


def _wait_for_node(client: NodeClient, wait: float) -> bool:
    """Whether the local node answers within `wait` seconds (saying so while it waits)."""
    deadline = time.monotonic() + wait
    told = False
    pause = 0.2
    while True:
        try:
            client.health()
            return True
        except MeshprintError as err:
            if time.monotonic() >= deadline:
                _say("ERROR", f"the meshprint node on this machine does not answer: {err}")
                return False
            if not told:
                _say("INFO", "waiting for the meshprint node on this machine")
                told = True
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def submit(
    data: DataDir,
    wait: float,
    user: str,
    title: str,
    query: dict[str, str],
    source: IO[bytes],
    cups_job: str = "",
) -> int:
    """Stream `source` into the local node as `user`'s job (CUPS job `cups_job`); the
    CUPS exit status."""
    try:
        config = door.load(data)
        # The document and the intake secret go to this machine's own node only.
        local = f"{config.host}:{config.port}"
        check = own_node_check(data.node_cert, local, "the job or the intake secret")
    except MeshprintError as err:
        _say("ERROR", str(err))
        return CUPS_BACKEND_RETRY
    context = client_context(config.ca)
    client = NodeClient(Client(config.host, config.port, context, timeout=300, check_peer=check))
    if not _wait_for_node(client, wait):
        return CUPS_BACKEND_RETRY
    try:
        info = os.fstat(source.fileno())
        size = info.st_size - source.tell() if stat.S_ISREG(info.st_mode) else None
    except (OSError, ValueError):
        size = None
    content_type = os.environ.get("FINAL_CONTENT_TYPE") or os.environ.get("CONTENT_TYPE", "")
    said = [user, title, content_type, *(f"{k}={v}" for k, v in sorted(query.items()))]
    key = idempotency_key(cups_job, source, said)
    receipt: dict[str, Any]
    try:
        receipt = dict(
            client.intake(
                config.secret, user, title, query, _chunks(source), content_type, size, key
            )
        )
    except (ValueError, OSError, http.client.HTTPException):
        receipt = {}  # accepted (201): only the details of the receipt are lost
    except RemoteError as err:
        _say("ERROR", str(err))
        return CUPS_BACKEND_CANCEL if err.status in REFUSED else CUPS_BACKEND_RETRY
    except MeshprintError as err:
        _say("ERROR", f"handing the job to the meshprint node failed: {err}")
        return CUPS_BACKEND_RETRY
    where = len(receipt.get("durable_on", [])) + len(receipt.get("replicating_to", []))
    # INFO also becomes the queue's printer-state-message, which anyone may read: no
    # user name or job id there; those go to CUPS' debug log only.
    _say("DEBUG", f"held for {user} as job {receipt.get('id', '?')} on {where} node(s)")
    _say("INFO", "held until its owner releases it at a printer")
    return CUPS_BACKEND_OK


def main(argv: Sequence[str]) -> int:
    if len(argv) == 1:
        print(DEVICE_LINE, flush=True)
        return CUPS_BACKEND_OK
    if len(argv) not in (6, 7):
        print(
            f"Usage: {SCHEME} job-id user title copies options [file]", file=sys.stderr, flush=True
        )
        return CUPS_BACKEND_FAILED
    cups_job, user, title, copies, options = argv[1:6]
    try:
        data, wait = parse_device_uri(os.environ.get("DEVICE_URI") or argv[0])
    except MeshprintError as err:
        _say("ERROR", str(err))
        return CUPS_BACKEND_FAILED
    query = job_options(copies, options)
    if len(argv) == 7:
        try:
            with open(argv[6], "rb") as source:
                return submit(data, wait, user, title, query, source, cups_job)
        except OSError as err:
            _say("ERROR", f"cannot read the job's document: {err.strerror}")
            return CUPS_BACKEND_FAILED
    return submit(data, wait, user, title, query, sys.stdin.buffer, cups_job)


if __name__ == "__main__":  # pragma: no cover - CUPS runs the installed script
    sys.exit(main(sys.argv))
