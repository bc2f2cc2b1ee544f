"""Delivery: a released job goes to a printer exactly once, also when a node dies.

Every release carries an id. The delivering node records it first (a repeated or
redelivered release is answered from that record), then claims the job on its live
holders, so no other node prints it meanwhile; a holder's Conflict stops the delivery
before anything is printed. Then: SNMP preflight, the decrypted stream to the printer's
driver, and tracking until the printer reports the job printed — only then is the job
deleted everywhere. A printer that is down, jammed or refuses the job leaves it held
with the reason. A node that stops while sending leaves the job "unknown": it may have
printed, so it is released again only when its owner asks for a reprint; one that stops
before sending leaves it held. Who delivers is the calling member itself (its
certificate), never a name in the request.

No claim outlives its delivery: the delivering node's record is the truth. At start it
tells the holders of what was cut off until they answer (`resume`); a holder asks the
delivering node about any claim that has stood a while (`ClaimWatch`) and before
refusing another release for it (`settle_claim`), which also covers a holder that was
away when the delivery ended.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.clients.models import DeliveryInfo
from appliance.errors import (
    BadRequest,
    Conflict,
    DeliveryInterrupted,
    Forbidden,
    MeshprintError,
    NotFound,
    Unavailable,
)
from appliance.jobs import usage
from appliance.jobs.context import JobsContext
from appliance.jobs.release import FoundJob, Plaintext
from appliance.mesh.holders import delete_everywhere
from appliance.printers import registry
from appliance.printers.delivery import PrintOptions, Submitted
from appliance.printers.drivers import driver_for, preflight
from appliance.printers.errors import PrinterUnreachable
from appliance.printoptions import MEDIA, SIDES, clean_options
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

# At start, the holders of deliveries cut off are told for this long, every RESUME_RETRY s.
RESUME_TELL_FOR = 120.0
RESUME_RETRY = 1.0
# A claim that has stood this long is checked with its delivering node, then every …
CLAIM_CHECK_AFTER = 8.0
CLAIM_CHECK_EVERY = 5.0

RELEASE_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def check_release_id(release_id: str) -> str:
    if not RELEASE_ID_RE.fullmatch(release_id):
        raise BadRequest("a release id is 8-64 letters, digits, '_' or '-'")
    return release_id


def print_options(data: dict[str, Any], job: FoundJob) -> PrintOptions:
    """Copies, sides, colour and paper size from a release request, checked; what the
    request leaves out comes from the job's default options (what its sender asked for),
    then 1 copy, one-sided, colour, the printer's own paper."""
    defaults = clean_options(job.options)
    copies = data.get("copies", defaults.get("copies", 1))
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= 99:
        raise BadRequest("copies must be a whole number from 1 to 99")
    sides = data.get("sides", defaults.get("sides", "one-sided"))
    if sides not in SIDES:
        raise BadRequest(f"sides must be one of {', '.join(SIDES)}")
    color = not data["mono"] if "mono" in data else defaults.get("color", True)
    media = data.get("media", defaults.get("media"))
    if media is not None and media not in MEDIA:
        raise BadRequest(f"media must be one of {', '.join(MEDIA)}")
    return PrintOptions(
        copies=copies,
        sides=sides,
        color=bool(color),
        media=media,
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
    """One delivery's hold on a job, as its holders are told of it. On the wire the
    delivering node is never named: it is whoever calls (its certificate)."""

    job: str
    release_id: str
    node: str  # the node delivering it
    reprint: bool = False

    def to_wire(self, reason: str = "") -> dict[str, Any]:
        return {
            "job": self.job,
            "release_id": self.release_id,
            "reprint": self.reprint,
            "reason": reason,
        }

    @classmethod
    def from_wire(cls, job_id: str, caller: str, data: dict[str, Any]) -> tuple[Claim, str]:
        """The claim of the calling member `caller` and the reason it sent (peer API).
        A member speaks for its own deliveries only: naming another node is refused."""
        if data.get("job") != job_id:
            raise BadRequest("the delivery step names another job")
        if data.get("node", caller) != caller:
            raise Forbidden(
                f"node {caller} cannot claim or release job {job_id} for another node: "
                "the delivering node is the caller"
            )
        if "release_id" not in data:
            raise BadRequest("a delivery step needs the release id")
        claim = cls(
            job_id, check_release_id(str(data["release_id"])), caller, bool(data.get("reprint"))
        )
        return claim, str(data.get("reason", ""))


def claim_here(node: JobsContext, claim: Claim) -> Job:
    """Claim on this holder. A delivery that was cut off, or whose node is gone, is taken
    over only on an explicit reprint. Another delivery's claim is first brought up to
    date with its node's own record (`settle_claim`): a node that restarted, or finished
    while this holder was away, must not keep the job stuck."""
    job = node.store.require(claim.job)
    if job.state == JobState.DELIVERING and (job.release_id, job.delivery_node) != (
        claim.release_id,
        claim.node,
    ):
        job = settle_claim(node, job, unrecorded_frees=False)
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


def settle_claim(node: JobsContext, job: Job, unrecorded_frees: bool = True) -> Job:
    """A job claimed ("delivering") on this holder, brought up to date with what the
    delivering node recorded of that release: failed (also: it stopped before sending)
    puts it back to held, printed deletes it here (its node stopped before it could, or
    this holder was away), unknown makes it unknown, and so does no record at all when
    `unrecorded_frees` (a node records a delivery before it claims, and forgets it only
    once its claims were taken back, so a claim it has no record of is left over or
    forged). While the delivery is open, or its node cannot be asked, the claim stands."""
    release_id, claimant = job.release_id, job.delivery_node
    if job.state != JobState.DELIVERING or not release_id or not claimant:
        return job
    info: DeliveryInfo | None
    try:
        if claimant == node.id:
            found = node.deliveries.get(release_id)
            info = found.to_dict() if found is not None else None
        elif node.peers.is_live(claimant):
            try:
                info = node.peers.client(claimant).release_status(release_id)
            except NotFound:
                info = None
        else:
            return job
    except MeshprintError as err:
        log.info("job %s: cannot ask node %s about its claim: %s", job.id, claimant, err)
        return job
    if info is not None and info.get("job_id") != job.id:
        info = None  # that release id is another job's: this claim is not its node's
    if info is None and not unrecorded_frees:
        return job
    if info is None:
        reason = f"node {claimant} has no record of delivering it: nothing was printed"
        node.store.unclaim(job.id, release_id, claimant, reason)
    elif info["stage"] == Stage.FAILED:
        node.store.unclaim(job.id, release_id, claimant, info.get("reason") or "")
    elif info["stage"] == Stage.UNKNOWN:
        node.store.mark_unknown(job.id, release_id, claimant, info.get("reason") or "")
    elif info["stage"] == Stage.PRINTED:
        # Its node deletes it everywhere once printed, unless it stopped in between (or
        # this holder was away): its record, the word of the node delivering it, is enough.
        node.store.delete(job.id, "printed")
    else:
        return job  # still open
    log.info("job %s: claim %s of node %s settled: %s", job.id, release_id, claimant, info)
    return node.store.get(job.id) or job


class ClaimWatch:
    """Holders ask the delivering node about claims that have stood a while
    (`CLAIM_CHECK_AFTER`), every `CLAIM_CHECK_EVERY` s: so a claim never outlives its
    delivery — not when the delivering node restarted before it could tell this holder,
    nor when this holder was away as the delivery ended. Run from the maintenance loop."""

    def __init__(self) -> None:
        self._asked: dict[tuple[str, str, str], float] = {}

    def run(self, node: JobsContext) -> None:
        now = time.monotonic()
        seen: dict[tuple[str, str, str], float] = {}
        for job in node.store.delivering():
            if not job.release_id or not job.delivery_node:
                continue
            key = (job.id, job.release_id, job.delivery_node)
            last = self._asked.get(key)
            if last is None:
                seen[key] = now - CLAIM_CHECK_EVERY + CLAIM_CHECK_AFTER  # first sight
                continue
            if now - last < CLAIM_CHECK_EVERY:
                seen[key] = last
                continue
            seen[key] = now
            settle_claim(node, job)
        self._asked = seen


def step_here(node: JobsContext, step: DeliveryStep, claim: Claim, reason: str = "") -> None:
    """A delivery step on this node's copy (from this node or, by the peer API, another)."""
    if step is DeliveryStep.CLAIM:
        claim_here(node, claim)
    elif step is DeliveryStep.UNCLAIM:
        node.store.unclaim(claim.job, claim.release_id, claim.node, reason)
    else:
        node.store.mark_unknown(claim.job, claim.release_id, claim.node, reason)


def peer_step(node: JobsContext, caller: str, params: dict[str, str], data: dict[str, Any]) -> None:
    """The peer API side of `_on_holders` (`params`: the route's job id and step).
    `caller` is the member that called (its certificate): the delivering node."""
    try:
        step = DeliveryStep(params["step"])
    except ValueError:
        raise NotFound(f"unknown delivery step {params['step']}") from None
    claim, reason = Claim.from_wire(params["job_id"], caller, data)
    step_here(node, step, claim, reason)


def _on_holders(
    node: JobsContext,
    holders: list[str],
    step: DeliveryStep,
    claim: Claim,
    reason: str = "",
    everyone: bool = False,
) -> list[str]:
    """Run a delivery step on every live holder (`everyone`: on every holder that
    answers); returns those that did it.

    A holder's Conflict (another delivery has the job) stops a claim: the holders this
    one had claimed are released again, and the Conflict goes to whoever asked. A claim
    that no holder took because they no longer have the job (printed or deleted
    meanwhile) is NotFound."""
    done: list[str] = []
    gone: list[str] = []  # no longer hold the job
    targets = [h for h in holders if h == node.id or everyone or node.peers.is_live(h)]

    def run(holder: str) -> None:
        if holder == node.id:
            step_here(node, step, claim, reason)
        else:
            node.peers.client(holder).delivery_step(claim.job, step, claim.to_wire(reason))

    # The first holder (in the job's own order, the same for every deliverer) alone, then
    # the others at once: two deliveries racing meet at the first, and one of them wins.
    # Our own step runs in this thread (its database connection).
    first, rest = targets[:1], sorted(targets[1:], key=lambda h: h != node.id)
    outcomes = _at_once([functools.partial(run, h) for h in first])
    if outcomes and isinstance(outcomes[0], Conflict):
        rest = []  # another delivery has the job: the others need not be asked
    outcomes += _at_once([functools.partial(run, h) for h in rest])
    targets = first + rest
    refused: Conflict | None = None
    for holder, error in zip(targets, outcomes, strict=True):
        if error is None:
            done.append(holder)
        elif isinstance(error, Conflict):
            log.info("job %s: %s refused by %s: %s", claim.job, step, holder, error)
            refused = refused or error
        elif isinstance(error, MeshprintError):
            log.info("job %s: %s on %s failed: %s", claim.job, step, holder, error)
            if isinstance(error, NotFound):
                gone.append(holder)
        else:
            raise error
    if refused is not None:
        if step is DeliveryStep.CLAIM:
            _on_holders(node, done, DeliveryStep.UNCLAIM, claim)
        raise refused
    if step is DeliveryStep.CLAIM:
        if not done and gone:
            raise NotFound(f"job {claim.job} is no longer held (printed or deleted meanwhile)")
        return done
    return done + gone  # a holder without the job has nothing left to be told


def _at_once(calls: list[Callable[[], None]]) -> list[BaseException | None]:
    """Run `calls` side by side (the first in this thread); each one's error, or None."""

    def outcome(call: Callable[[], None]) -> BaseException | None:
        try:
            call()
        except BaseException as err:  # handed back to the caller, who decides
            return err
        return None

    if len(calls) <= 1:
        return [outcome(c) for c in calls]
    results: list[BaseException | None] = [None] * len(calls)

    def into(i: int) -> None:
        results[i] = outcome(calls[i])

    threads = [threading.Thread(target=into, args=(i,), daemon=True) for i in range(1, len(calls))]
    for thread in threads:
        thread.start()
    into(0)
    for thread in threads:
        thread.join()
    return results


class _Background:
    """A call started now in a thread of its own; `result()` waits for it and raises
    what it raised."""

    def __init__(self, call: Callable[[], None]) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as err:
            self._error = err

    def result(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


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
    # Recorded before any claim: the holders can always ask this node about a claim of
    # it, and a restart here knows whether anything was sent.
    if node.deliveries.start(release_id, job.id, printer.name) is None:
        return _recorded(node, release_id)  # a concurrent duplicate got here first
    claim = Claim(job.id, release_id, node.id, reprint)
    # The printer's status (SNMP) is asked while the holders are claimed: it reads only
    # the printer, and its answer is used only once the claim stands.
    checked = _Background(functools.partial(preflight, printer))
    try:
        claimed = _on_holders(node, job.holder_ids, DeliveryStep.CLAIM, claim)  # or Conflict
        if not claimed:
            raise Unavailable(f"no holder of job {job.id} is up to claim it")
    except BaseException:
        node.deliveries.forget(release_id)  # nothing was sent: the id may be tried again
        raise
    try:
        checked.result()
        plaintext = open_plaintext()
        node.deliveries.update(release_id, Stage.DELIVERING)  # from here it may print
        usage.started(node, job, printer.name, options, release_id)
        submitted = driver_for(printer).submit(plaintext.chunks, plaintext.size, options)
    except MeshprintError as err:
        node.deliveries.update(release_id, Stage.FAILED, reason=str(err))
        usage.failed(node, job.id, release_id)
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
            usage.printed(node, job_id, release_id, progress.impressions)
            delete_everywhere(node, job_id, "printed", holders)
            return
        if progress.stage == Stage.FAILED:
            usage.failed(node, job_id, release_id)
            reason = f"{printer.name} did not print it: {progress.reason or 'job failed'}"
            _on_holders(node, holders, DeliveryStep.UNCLAIM, claim, reason)
            return
    reason = "no answer from the printer for an hour"
    node.deliveries.update(release_id, Stage.UNKNOWN, reason=reason)
    _on_holders(node, holders, DeliveryStep.UNKNOWN, claim, "the printer stopped reporting")


def resume(node: JobsContext, tell_for: float = RESUME_TELL_FOR) -> None:
    """At start: deliveries this node had open. Those already at the printer are tracked
    again. One that stopped before sending is failed (held again on its holders), one cut
    off while sending is unknown (it may have printed: only a reprint releases it). The
    holders are told as soon as they answer — at start none counts as live yet — for up
    to `tell_for` seconds; a holder told nothing by then asks this node itself
    (`ClaimWatch`)."""
    to_tell: list[tuple[Claim, DeliveryStep, str, list[str]]] = []
    for held in node.store.delivering():  # stopped after recording it printed: its usage
        for delivery in node.deliveries.for_job(held.id):
            if delivery.stage is Stage.PRINTED:  # (the claim watch deletes it everywhere)
                usage.printed(node, held.id, delivery.release_id, None)
    for delivery in node.deliveries.open():
        job = node.store.get(delivery.job_id)
        holders = [h.node for h in job.holders] if job else [node.id]
        claim = Claim(delivery.job_id, delivery.release_id, node.id)
        if delivery.stage is Stage.CLAIMING or delivery.printer_job is None:
            if delivery.stage is Stage.CLAIMING:
                stage, step = Stage.FAILED, DeliveryStep.UNCLAIM
                reason = "the node delivering it stopped before sending it: nothing was printed"
            else:
                stage, step = Stage.UNKNOWN, DeliveryStep.UNKNOWN
                reason = "the node delivering it stopped while sending: it may have printed"
            node.deliveries.update(delivery.release_id, stage, reason=reason)
            to_tell.append((claim, step, reason, holders))
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
    _tell(node, to_tell, tell_for)


def _tell(
    node: JobsContext, steps: list[tuple[Claim, DeliveryStep, str, list[str]]], for_s: float
) -> None:
    """Run each step on its holders, again and again until each holder has it (or
    `for_s` seconds have passed)."""
    deadline = time.monotonic() + for_s
    pending = [(claim, step, reason, list(holders)) for claim, step, reason, holders in steps]
    while pending:
        left = []
        for claim, step, reason, holders in pending:
            try:
                done = _on_holders(node, holders, step, claim, reason, everyone=True)
            except MeshprintError as err:
                log.info("job %s: %s", claim.job, err)
                done = []
            rest = [h for h in holders if h not in done]
            if rest:
                left.append((claim, step, reason, rest))
        pending = left
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(RESUME_RETRY)
    for claim, step, _, holders in pending:
        log.info("job %s: %s not told to %s yet; they will ask", claim.job, step, holders)
