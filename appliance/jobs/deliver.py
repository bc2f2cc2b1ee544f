"""Delivery: a released job goes to a printer exactly once.

Every release carries an id. The delivering node records it (a repeated or redelivered
release is answered from that record) and claims the job on its live holders, so no
other node prints it meanwhile; a holder's Conflict stops the delivery before anything is
printed. Then: SNMP preflight, the decrypted stream to the printer's driver, and tracking
until the printer reports the job printed — only then is the job deleted everywhere. A
printer that is down, jammed or refuses the job leaves it held with the reason. A node
that stops while sending leaves the job "unknown": it may have printed, so it is
released again only when its owner asks for a reprint.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.errors import (
    BadRequest,
    Conflict,
    DeliveryInterrupted,
    MeshprintError,
    NotFound,
    Unavailable,
)
from appliance.jobs.context import JobsContext
from appliance.jobs.release import FoundJob, Plaintext
from appliance.mesh.holders import delete_everywhere
from appliance.printers import registry
from appliance.printers.delivery import PrintOptions, Submitted
from appliance.printers.drivers import driver_for, preflight
from appliance.printers.errors import PrinterUnreachable
from appliance.printoptions import SIDES, clean_options
from appliance.store.deliveries import Delivery
from appliance.store.jobs import Job
from appliance.store.states import DeliveryStep, JobState, Stage

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


def print_options(data: dict[str, Any], job: FoundJob) -> PrintOptions:
    """Copies, sides and colour from a release request, checked; what the request leaves
    out comes from the job's default options (what its sender asked for), then 1 copy,
    one-sided, colour."""
    defaults = clean_options(job.options)
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
        title=job.title,
        user=job.owner,
        document_format=job.format,
    )


def queue_node(node: JobsContext, printer_name: str) -> str | None:
    """The node that must deliver to this printer when it is not this one: a `cups:`
    printer is a queue on one machine's CUPS."""
    printer = registry.find(node.directory().doc, printer_name)
    return printer.node if printer.node and printer.node != node.id else None


# Claims on the holders


@dataclass(frozen=True)
class Claim:
    """One delivery's hold on a job, as its holders are told of it."""

    job: str
    release_id: str
    node: str  # the node delivering it
    reprint: bool = False

    def to_wire(self, reason: str = "") -> dict[str, Any]:
        return {
            "job": self.job,
            "release_id": self.release_id,
            "node": self.node,
            "reprint": self.reprint,
            "reason": reason,
        }

    @classmethod
    def from_wire(cls, job_id: str, data: dict[str, Any]) -> tuple[Claim, str]:
        """The claim and the reason a delivering node sent (peer API)."""
        if data.get("job") != job_id:
            raise BadRequest("the delivery step names another job")
        try:
            claim = cls(
                job_id,
                check_release_id(str(data["release_id"])),
                str(data["node"]),
                bool(data.get("reprint")),
            )
        except KeyError:
            raise BadRequest("a delivery step needs the release id and the node") from None
        return claim, str(data.get("reason", ""))


def claim_here(node: JobsContext, claim: Claim) -> Job:
    """Claim on this holder. A delivery that was cut off, or whose node is gone, is taken
    over only on an explicit reprint."""
    job = node.store.require(claim.job)
    cut_off = job.state == JobState.UNKNOWN or (
        job.state == JobState.DELIVERING
        and job.delivery_node is not None
        and not node.peers.is_live(job.delivery_node)
    )
    if cut_off and not claim.reprint:
        raise Conflict(
            f"job {job.id} may already have printed (its delivery by node {job.delivery_node} "
            "was cut off); release it again with reprint to print it anyway"
        )
    return node.store.claim(
        job.id, claim.release_id, claim.node, may_take_over=claim.reprint and cut_off
    )


def step_here(node: JobsContext, step: DeliveryStep, claim: Claim, reason: str = "") -> None:
    """A delivery step on this node's copy (from this node or, by the peer API, another)."""
    if step is DeliveryStep.CLAIM:
        claim_here(node, claim)
    elif step is DeliveryStep.UNCLAIM:
        node.store.unclaim(claim.job, claim.release_id, claim.node, reason)
    else:
        node.store.mark_unknown(claim.job, claim.release_id, claim.node, reason)


def peer_step(node: JobsContext, job_id: str, step: str, data: dict[str, Any]) -> None:
    """The peer API side of `_on_holders`."""
    try:
        known = DeliveryStep(step)
    except ValueError:
        raise NotFound(f"unknown delivery step {step}") from None
    claim, reason = Claim.from_wire(job_id, data)
    step_here(node, known, claim, reason)


def _on_holders(
    node: JobsContext, holders: list[str], step: DeliveryStep, claim: Claim, reason: str = ""
) -> list[str]:
    """Run a delivery step on every live holder; returns those that did it.

    A holder's Conflict (another delivery has the job) stops a claim: the holders this
    one had claimed are released again, and the Conflict goes to whoever asked. A claim
    that no holder took because they no longer have the job (printed or deleted
    meanwhile) is NotFound."""
    done: list[str] = []
    gone: list[NotFound] = []
    for holder in holders:
        try:
            if holder == node.id:
                step_here(node, step, claim, reason)
            elif node.peers.is_live(holder):
                node.peers.client(holder).delivery_step(claim.job, step, claim.to_wire(reason))
            else:
                continue
            done.append(holder)
        except Conflict as err:
            if step is DeliveryStep.CLAIM:
                _on_holders(node, done, DeliveryStep.UNCLAIM, claim)
            log.info("job %s: %s refused by %s: %s", claim.job, step, holder, err)
            raise
        except MeshprintError as err:
            log.info("job %s: %s on %s failed: %s", claim.job, step, holder, err)
            if isinstance(err, NotFound):
                gone.append(err)
    if step is DeliveryStep.CLAIM and not done and gone:
        raise NotFound(f"job {claim.job} is no longer held (printed or deleted meanwhile)")
    return done


# Delivering


def deliver(
    node: JobsContext,
    job: FoundJob,
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
    claim = Claim(job.id, release_id, node.id, reprint)
    claimed = _on_holders(node, job.holder_ids, DeliveryStep.CLAIM, claim)  # or Conflict
    if not claimed:
        raise Unavailable(f"no holder of job {job.id} is up to claim it")
    delivery = node.deliveries.start(release_id, job.id, printer.name)
    if delivery is None:  # a concurrent duplicate got here first
        return _recorded(node, release_id)
    try:
        preflight(printer)
        plaintext = open_plaintext()
        submitted = driver_for(printer).submit(plaintext.chunks, plaintext.size, options)
    except MeshprintError as err:
        node.deliveries.update(release_id, Stage.FAILED, reason=str(err))
        _on_holders(node, claimed, DeliveryStep.UNCLAIM, claim, str(err))
        raise
    except Exception as err:  # the document may be partly printed: never guess
        reason = f"delivery to {printer.name} was interrupted ({type(err).__name__}: {err})"
        node.deliveries.update(release_id, Stage.UNKNOWN, reason=reason)
        _on_holders(node, claimed, DeliveryStep.UNKNOWN, claim, reason)
        raise DeliveryInterrupted(reason) from None
    node.deliveries.update(release_id, Stage.QUEUED, printer_job=submitted.printer_job)
    threading.Thread(
        target=track,
        args=(node, claim, job.holder_ids, printer, submitted),
        name=f"track-{release_id}",
        daemon=True,
    ).start()
    return _recorded(node, release_id)


def _recorded(node: JobsContext, release_id: str) -> Delivery:
    found = node.deliveries.get(release_id)
    assert found is not None
    return found


def track(
    node: JobsContext,
    claim: Claim,
    holders: list[str],
    printer: registry.PrinterRecord,
    submitted: Submitted,
) -> None:
    """Follow the job at the printer; delete it everywhere once printed."""
    driver = driver_for(printer)
    job_id, release_id = claim.job, claim.release_id
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
                node.deliveries.update(release_id, Stage.UNKNOWN, reason=reason)
                _on_holders(node, holders, DeliveryStep.UNKNOWN, claim, reason)
                told = True
            continue
        except MeshprintError as err:
            log.info("job %s at %s: %s", job_id, printer.name, err)
            continue
        lost_since = None
        node.deliveries.update(release_id, progress.stage, reason=progress.reason)
        if progress.stage == Stage.PRINTED:
            log.info("job %s printed on %s", job_id, printer.name)
            delete_everywhere(node, job_id, "printed", holders)
            return
        if progress.stage == Stage.FAILED:
            reason = f"{printer.name} did not print it: {progress.reason or 'job failed'}"
            _on_holders(node, holders, DeliveryStep.UNCLAIM, claim, reason)
            return
    reason = "no answer from the printer for an hour"
    node.deliveries.update(release_id, Stage.UNKNOWN, reason=reason)
    _on_holders(node, holders, DeliveryStep.UNKNOWN, claim, "the printer stopped reporting")


def resume(node: JobsContext) -> None:
    """At start: deliveries this node had open. Those already at the printer are tracked
    again; one cut off while sending is marked unknown on its holders."""
    for delivery in node.deliveries.open():
        job = node.store.get(delivery.job_id)
        holders = [h.node for h in job.holders] if job else [node.id]
        claim = Claim(delivery.job_id, delivery.release_id, node.id)
        if delivery.printer_job is None:
            reason = "the node delivering it stopped while sending: it may have printed"
            node.deliveries.update(delivery.release_id, Stage.UNKNOWN, reason=reason)
            try:
                _on_holders(node, holders, DeliveryStep.UNKNOWN, claim, reason)
            except MeshprintError as err:
                log.info("job %s: %s", delivery.job_id, err)
            continue
        try:
            printer = registry.find(node.directory().doc, delivery.printer)
        except MeshprintError:
            continue
        threading.Thread(
            target=track,
            args=(node, claim, holders, printer, Submitted(delivery.printer_job)),
            daemon=True,
        ).start()
