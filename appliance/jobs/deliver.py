"""Delivery: a released job goes to a printer exactly once.

Every release carries an id. The delivering node records it (a repeated or redelivered
release is answered from that record) and claims the job on its live holders, so no
other node prints it meanwhile. Then: SNMP preflight, the decrypted stream to the
printer's driver, and tracking until the printer reports the job printed — only then is
the job deleted everywhere. A printer that is down, jammed or refuses the job leaves it
held with the reason. A node that stops while sending leaves the job "unknown": it may
have printed, so it is released again only when its owner asks for a reprint.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.clients.models import DeliveryInfo
from appliance.errors import (
    BadRequest,
    Conflict,
    DeliveryInterrupted,
    MeshprintError,
    NotFound,
    Unavailable,
)
from appliance.jobs.options import clean_options
from appliance.jobs.release import Plaintext
from appliance.printers import registry
from appliance.printers.delivery import SIDES, PrintOptions, Stage, Submitted
from appliance.printers.drivers import driver_for, preflight
from appliance.printers.errors import PrinterUnreachable
from appliance.store.deliveries import Delivery
from appliance.store.jobs import Job

if TYPE_CHECKING:
    from appliance.node import Node

log = logging.getLogger(__name__)
TRACK_FIRST = 0.02  # the printer is asked at once after the document went out, then soon …
TRACK_INTERVAL = 1.0  # … then less and less often, up to once a second
TRACK_TIMEOUT = 3600.0
# Out of reach this long after taking the job (CUPS stopped, the printer switched off):
# the delivery is "unknown" and the owner is told, while tracking goes on.
LOST_AFTER = 10.0


RELEASE_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def check_release_id(release_id: str) -> str:
    if not RELEASE_ID_RE.fullmatch(release_id):
        raise BadRequest("a release id is 8-64 letters, digits, '_' or '-'")
    return release_id


def print_options(data: dict[str, Any], meta: dict[str, Any]) -> PrintOptions:
    """Copies, sides and colour from a release request, checked; what the request leaves
    out comes from the job's default options (what its sender asked for), then 1 copy,
    one-sided, colour."""
    defaults = clean_options(meta.get("options"))
    copies = data.get("copies", defaults.get("copies", 1))
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= 99:
        raise BadRequest("copies must be a whole number from 1 to 99")
    sides = data.get("sides", defaults.get("sides", "one-sided"))
    if sides not in SIDES:
        raise BadRequest(f"sides must be one of {', '.join(SIDES)}")
    color = not data["mono"] if "mono" in data else defaults.get("color", True)
    return PrintOptions(
        copies=copies,
        sides=sides,
        color=bool(color),
        title=str(meta["title"]),
        user=str(meta["owner"]),
        document_format=str(meta.get("format", "application/octet-stream")),
    )


def queue_node(node: Node, printer_name: str) -> str | None:
    """The node that must deliver to this printer when it is not this one: a `cups:`
    printer is a queue on one machine's CUPS."""
    printer = registry.find(node.directory().doc, printer_name)
    return printer.node if printer.node and printer.node != node.id else None


def forward(node: Node, target: str, job_id: str, request: dict[str, Any]) -> DeliveryInfo:
    """Hand a release to the node whose CUPS has the printer's queue (peer API, mutual
    TLS); `request` carries the printer, options, release id and what opens the job: the
    owner's opened share, or the controller-signed command. Its delivery is returned."""
    if not node.peers.is_live(target):
        raise Unavailable(
            f"printer {request['printer']} is a CUPS queue on node {target}, which is not up;"
            " the job stays held — release it again when that node is back"
        )
    return node.peers.client(target).deliver(job_id, request)


def claim_here(node: Node, job_id: str, release_id: str, deliverer: str, reprint: bool) -> Job:
    """Claim on this holder. A delivery that was cut off, or whose node is gone, is taken
    over only on an explicit reprint."""
    job = node.store.require(job_id)
    cut_off = job.state == "unknown" or (
        job.state == "delivering"
        and job.delivery_node is not None
        and not node.peers.is_live(job.delivery_node)
    )
    if cut_off and not reprint:
        raise Conflict(
            f"job {job_id} may already have printed (its delivery by node {job.delivery_node} "
            "was cut off); release it again with reprint to print it anyway"
        )
    return node.store.claim(job_id, release_id, deliverer, may_take_over=reprint and cut_off)


def _on_holders(node: Node, holders: list[str], action: str, payload: dict[str, Any]) -> list[str]:
    """Run a claim/unclaim/unknown step on every live holder; returns those that did it.

    A holder's Conflict (another delivery has the job) stops a claim: the holders this
    one had claimed are released again, and the Conflict goes to whoever asked."""
    done = []
    for holder in holders:
        try:
            if holder == node.id:
                _local(node, action, payload)
            elif node.peers.is_live(holder):
                node.peers.client(holder).delivery_step(payload["job"], action, payload)
            else:
                continue
            done.append(holder)
        except Conflict as err:
            if action == "claim":
                _on_holders(node, done, "unclaim", {**payload, "reason": ""})
            log.info("job %s: %s refused by %s: %s", payload["job"], action, holder, err)
            raise
        except MeshprintError as err:
            log.info("job %s: %s on %s failed: %s", payload["job"], action, holder, err)
    return done


def _local(node: Node, action: str, p: dict[str, Any]) -> None:
    if action == "claim":
        claim_here(node, p["job"], p["release_id"], p["node"], bool(p.get("reprint")))
    elif action == "unclaim":
        node.store.unclaim(p["job"], p["release_id"], p["node"], p.get("reason", ""))
    elif action == "unknown":
        node.store.mark_unknown(p["job"], p["release_id"], p["node"], p.get("reason", ""))


def peer_action(node: Node, action: str, payload: dict[str, Any]) -> None:
    """The peer API side of `_on_holders`."""
    if action not in ("claim", "unclaim", "unknown"):
        raise NotFound(f"unknown delivery step {action}")
    _local(node, action, payload)


def deliver(
    node: Node,
    job_id: str,
    holders: list[str],
    printer_name: str,
    options: PrintOptions,
    release_id: str,
    reprint: bool,
    open_plaintext: Callable[[], Plaintext],
) -> Delivery:
    earlier = node.deliveries.get(release_id)
    if earlier is not None:
        return earlier  # the same release again: never a second print
    printer = registry.find(node.directory().doc, printer_name)
    step = {"job": job_id, "release_id": release_id, "node": node.id, "reprint": reprint}
    claimed = _on_holders(node, holders, "claim", step)  # Conflict: another delivery has it
    if not claimed:
        raise Unavailable(f"no holder of job {job_id} is up to claim it")
    delivery = node.deliveries.start(release_id, job_id, printer.name)
    if delivery is None:  # a concurrent duplicate got here first
        found = node.deliveries.get(release_id)
        assert found is not None
        return found
    try:
        preflight(printer)
        plaintext = open_plaintext()
        driver = driver_for(printer)
        submitted = driver.submit(plaintext.chunks, plaintext.size, options)
    except MeshprintError as err:
        node.deliveries.update(release_id, Stage.FAILED, reason=str(err))
        _on_holders(node, claimed, "unclaim", {**step, "reason": str(err)})
        raise
    except Exception as err:  # the document may be partly printed: never guess
        reason = f"delivery to {printer.name} was interrupted ({type(err).__name__}: {err})"
        node.deliveries.update(release_id, "unknown", reason=reason)
        _on_holders(node, claimed, "unknown", {**step, "reason": reason})
        raise DeliveryInterrupted(reason) from None
    node.deliveries.update(release_id, Stage.QUEUED, printer_job=submitted.printer_job)
    threading.Thread(
        target=track,
        args=(node, job_id, holders, printer, submitted, step),
        name=f"track-{release_id}",
        daemon=True,
    ).start()
    found = node.deliveries.get(release_id)
    assert found is not None
    return found


def track(
    node: Node,
    job_id: str,
    holders: list[str],
    printer: registry.PrinterRecord,
    submitted: Submitted,
    step: dict[str, Any],
) -> None:
    """Follow the job at the printer; delete it everywhere once printed."""
    driver = driver_for(printer)
    release_id = step["release_id"]
    deadline = time.time() + TRACK_TIMEOUT
    pause = 0.0
    lost_since: float | None = None
    told = False
    while time.time() < deadline:
        time.sleep(pause)
        pause = min(max(pause * 2, TRACK_FIRST), TRACK_INTERVAL)
        try:
            progress = driver.progress(submitted)
        except PrinterUnreachable as err:
            log.info("job %s at %s: %s", job_id, printer.name, err)
            lost_since = lost_since or time.monotonic()
            if not told and time.monotonic() - lost_since >= LOST_AFTER:
                # It had the whole document: it may print when it is back. Say so now
                # rather than leave the owner waiting; a later answer still counts.
                reason = (
                    f"lost contact with {printer.name} after it took the job ({err}); it may"
                    " have printed: release it again with reprint to print it anyway"
                )
                node.deliveries.update(release_id, "unknown", reason=reason)
                _on_holders(node, holders, "unknown", {**step, "reason": reason})
                told = True
            continue
        except MeshprintError as err:
            log.info("job %s at %s: %s", job_id, printer.name, err)
            continue
        lost_since = None
        node.deliveries.update(release_id, progress.stage, reason=progress.reason)
        if progress.stage == Stage.PRINTED:
            log.info("job %s printed on %s", job_id, printer.name)
            node.delete_everywhere(job_id, "printed", holders)
            return
        if progress.stage == Stage.FAILED:
            reason = f"{printer.name} did not print it: {progress.reason or 'job failed'}"
            _on_holders(node, holders, "unclaim", {**step, "reason": reason})
            return
    node.deliveries.update(release_id, "unknown", reason="no answer from the printer for an hour")
    _on_holders(node, holders, "unknown", {**step, "reason": "the printer stopped reporting"})


def resume(node: Node) -> None:
    """At start: deliveries this node had open. Those already at the printer are tracked
    again; one cut off while sending is marked unknown on its holders."""
    for delivery in node.deliveries.open():
        job = node.store.get(delivery.job_id)
        holders = [h.node for h in job.holders] if job else [node.id]
        step = {"job": delivery.job_id, "release_id": delivery.release_id, "node": node.id}
        if delivery.printer_job is None:
            reason = "the node delivering it stopped while sending: it may have printed"
            node.deliveries.update(delivery.release_id, "unknown", reason=reason)
            try:
                _on_holders(node, holders, "unknown", {**step, "reason": reason})
            except MeshprintError as err:
                log.info("job %s: %s", delivery.job_id, err)
            continue
        try:
            printer = registry.find(node.directory().doc, delivery.printer)
        except MeshprintError:
            continue
        threading.Thread(
            target=track,
            args=(node, delivery.job_id, holders, printer, Submitted(delivery.printer_job), step),
            daemon=True,
        ).start()
