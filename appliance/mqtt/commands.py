"""Release commands over MQTT: the controller-signed authorized release of
`appliance.jobs.release` (same format, same key, same checks), carrying its print
request and the node it is for inside the signed part, so nothing a relay adds or
changes is trusted.

The node that receives one checks it (`act_on`), answers a release id it already
delivered from its delivery log, and otherwise hands it to the ordinary delivery path
(`appliance.jobs.deliver`), whose claims and release records make each release id print
once across the mesh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.errors import BadRequest, Conflict, Forbidden, MeshprintError
from appliance.jobs import deliver, release
from appliance.jobs.context import JobsContext
from appliance.jobs.deliver import check_release_id, print_options
from appliance.printoptions import SIDES
from appliance.site.release_authority import Signer
from appliance.store.deliveries import Delivery
from appliance.store.jobs import check_job_id

MAX_COMMAND_BYTES = 16 * 1024


def release_command(
    signer: Signer,
    job_id: str,
    node_id: str,
    printer: str,
    copies: int = 1,
    sides: str = "one-sided",
    mono: bool = False,
    reprint: bool = False,
    ttl: int = release.COMMAND_TTL,
) -> dict[str, str]:
    """A signed command telling `node_id` to print `job_id` on `printer` (controller only)."""
    if sides not in SIDES:
        raise BadRequest(f"sides must be one of {', '.join(SIDES)}")
    request = {
        "printer": printer,
        "copies": copies,
        "sides": sides,
        "mono": mono,
        "reprint": reprint,
    }
    return release.make_command(signer, job_id, node_id, ttl, print=request)


def encode(signed: dict[str, str]) -> bytes:
    return json.dumps(signed, separators=(",", ":")).encode()


class NotDelivered(MeshprintError):
    """A valid command whose delivery did not happen: the printer is not ready, another
    delivery has the job, the release id was already used on a holder, … (the job stays
    as it was; nothing printed)."""

    def __init__(self, release_id: str, job_id: str, cause: MeshprintError) -> None:
        super().__init__(str(cause))
        self.status = cause.status
        self.release_id = release_id
        self.job_id = job_id


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    repeated: bool  # answered from the delivery log: this release id was delivered before


def parse(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_COMMAND_BYTES:
        raise BadRequest(f"release command is larger than {MAX_COMMAND_BYTES} bytes")
    try:
        signed = json.loads(payload)
    except ValueError:
        raise BadRequest("release command is not JSON") from None
    if not isinstance(signed, dict):
        raise BadRequest("release command is malformed")
    return signed


def act_on(node: JobsContext, payload: bytes) -> Outcome:
    """Check a command from the broker and deliver it. Raises (and prints nothing) for a
    forged, expired, misaddressed, replayed or unknown-job command."""
    signed = parse(payload)
    command = release.check_command(node, signed)  # Forbidden unless the controller's
    if command.get("node") != node.id:
        raise Forbidden(f"release command is for node {command.get('node')!r}, not this one")
    job_id = check_job_id(str(command.get("job", "")))
    request = command.get("print")
    if not isinstance(request, dict) or not request.get("printer"):
        raise BadRequest("release command names no printer")
    release_id = check_release_id(str(command["release_id"]))
    earlier = node.deliveries.get(release_id)
    if earlier is not None:
        if earlier.job_id != job_id:
            raise Conflict(f"release {release_id} was for another job")
        return Outcome(earlier, repeated=True)
    job = release.find_job(node, job_id, owner=None)  # NotFound: no such job on the mesh
    options = print_options(request, job)
    try:
        delivery = deliver.deliver(
            node,
            job,
            str(request["printer"]),
            options,
            release_id,
            bool(request.get("reprint")),
            lambda: release.release_authorized(node, signed, job_id),
        )
    except MeshprintError as err:
        raise NotDelivered(release_id, job_id, err) from None
    return Outcome(delivery, repeated=False)
