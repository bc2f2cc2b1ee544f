"""A release request, as the release API and the peer API receive it: to the requester
(the document) or to a printer, delivered here or handed to the node whose CUPS has the
printer's queue. The owner's password or a controller-signed command opens the job; a
request repeated with the same release id is answered with the first one's delivery,
wherever in the mesh that was made."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.clients.models import DeliveryInfo
from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Conflict, MeshprintError, NotFound, Unavailable
from appliance.jobs import deliver, release, usage
from appliance.jobs.context import JobsContext
from appliance.jobs.release import FoundJob, Plaintext
from appliance.jobs.status import mesh_jobs
from appliance.mesh.holders import OWNER_DELETE, delete_everywhere
from appliance.mesh.placement import USER_X
from appliance.store.jobs import check_job_id

Owner = tuple[str, X25519PrivateKey]  # a user and their opened private key


def unlock(node: JobsContext, name: str, password: str) -> Owner:
    """The user with their opened key: the one KDF run of a sign-in or one-off call."""
    return name, release.authenticate(node, name, password)


@dataclass(frozen=True)
class Opener:
    """What opens a job: the owner's opened share, or a controller-signed command (the
    whole signed request)."""

    share_x: int = 0
    share: bytes = b""
    command: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.command is not None:
            return {"command": self.command}
        return {"x": self.share_x, "share": b64(self.share)}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Opener:
        if isinstance(data.get("command"), dict):
            return cls(command=data["command"])
        try:
            return cls(int(data["x"]), unb64(str(data["share"])))
        except (KeyError, ValueError, TypeError):
            raise BadRequest("a handed-over release needs the owner's share") from None

    def plaintext(self, node: JobsContext, job_id: str, job: FoundJob | None) -> Plaintext:
        if self.command is not None:
            return release.release_authorized(node, self.command, job_id)
        return release.release_with_share(
            node, job or release.find_job(node, job_id, None), self.share_x, self.share
        )


def release_job(
    node: JobsContext, job_id: str, data: dict[str, Any], owner: Owner | None
) -> Plaintext | DeliveryInfo:
    """The document (no printer named), or the delivery to the printer `data` names."""
    check_job_id(job_id)
    try:
        return _release(node, job_id, data, owner)
    except (NotFound, Conflict):
        # Gone or claimed: perhaps by this very release, retried here after another
        # node took it. Asking the peers only now keeps the usual path short.
        earlier = repeated(node, data, job_id, everywhere=True)
        if earlier is not None:
            return earlier
        raise


def _release(
    node: JobsContext, job_id: str, data: dict[str, Any], owner: Owner | None
) -> Plaintext | DeliveryInfo:
    job: FoundJob | None = None
    if owner is not None:
        private = owner[1]
        earlier = repeated(node, data, job_id)
        if earlier is not None:
            return earlier
        job = release.find_job(node, job_id, owner=owner[0])
        opener = Opener(USER_X, release.open_user_share(private, job))
    else:
        opener = Opener(command=data)
    if not data.get("printer"):
        return opener.plaintext(node, job_id, job)
    earlier = repeated(node, data, job_id)
    if earlier is not None:
        return earlier
    job = job or release.find_job(node, job_id, owner=None)
    release_id = deliver.check_release_id(
        data.get("release_id") or release.command_release_id(data)
    )
    options = deliver.print_options(data, job)  # checked here, before any forwarding
    if owner is not None:
        usage.check_quota(node, job, options)  # the owner's monthly pages, if limited
    printer = str(data["printer"])
    target = deliver.queue_node(node, printer)
    if target is not None:
        handed: dict[str, Any] = {
            **{key: data[key] for key in ("copies", "sides", "mono", "media") if key in data},
            "printer": printer,
            "release_id": release_id,
            "reprint": bool(data.get("reprint")),
            "opener": opener.to_wire(),
        }
        return _forward(node, target, job_id, handed)
    return deliver.deliver(
        node,
        job,
        printer,
        options,
        release_id,
        bool(data.get("reprint")),
        lambda: opener.plaintext(node, job_id, job),
    ).to_dict()


def _forward(node: JobsContext, target: str, job_id: str, request: dict[str, Any]) -> DeliveryInfo:
    """Hand a release to the node whose CUPS has the printer's queue (peer API, mutual
    TLS); `request` carries the printer, options, release id and what opens the job."""
    if not node.peers.is_live(target):
        raise Unavailable(
            f"printer {request['printer']} is a CUPS queue on node {target}, which is not up;"
            " the job stays held — release it again when that node is back"
        )
    return node.peers.client(target).deliver(job_id, request)


def deliver_handed_over(node: JobsContext, job_id: str, data: dict[str, Any]) -> DeliveryInfo:
    """A release to a printer whose CUPS queue is on this node, handed over by the node
    the owner (or the controller's command) released it on."""
    check_job_id(job_id)
    if not isinstance(data.get("opener"), dict):
        raise BadRequest("a handed-over release needs what opens the job")
    opener = Opener.from_wire(data["opener"])
    printer = str(data.get("printer", ""))
    if deliver.queue_node(node, printer) is not None:
        raise BadRequest(f"printer {printer} is not attached to this node")
    job = release.find_job(node, job_id, owner=None)
    return deliver.deliver(
        node,
        job,
        printer,
        deliver.print_options(data, job),
        deliver.check_release_id(str(data.get("release_id", ""))),
        bool(data.get("reprint")),
        lambda: opener.plaintext(node, job_id, job),
    ).to_dict()


def find_delivery(node: JobsContext, release_id: str) -> DeliveryInfo | None:
    """A delivery made by this node or, failing that, by a live peer."""
    found = node.deliveries.get(release_id)
    if found is not None:
        return found.to_dict()
    for peer in node.peers.live():
        if peer.id != node.id:
            with contextlib.suppress(MeshprintError):
                return node.peers.client(peer.id).release_status(release_id)
    return None


def repeated(
    node: JobsContext, data: dict[str, Any], job_id: str, everywhere: bool = False
) -> DeliveryInfo | None:
    """A release already made here (or, `everywhere`, by a live peer): the job may be
    printed and gone."""
    release_id = data.get("release_id") or (
        release.command_release_id(data) if "command" in data else None
    )
    if not data.get("printer") or not release_id:
        return None
    release_id = deliver.check_release_id(str(release_id))
    if everywhere:
        earlier = find_delivery(node, release_id)
    else:
        found = node.deliveries.get(release_id)
        earlier = found.to_dict() if found is not None else None
    if earlier is None:
        return None
    if earlier["job_id"] != job_id:
        raise Conflict(f"release {release_id} was for another job")
    return earlier


def deliveries_of(node: JobsContext, job_id: str) -> list[DeliveryInfo]:
    """Every release of the job this node and the live peers know of, oldest first."""
    found = [d.to_dict() for d in node.deliveries.for_job(job_id)]
    for peer in node.peers.live():
        if peer.id != node.id:
            with contextlib.suppress(MeshprintError):
                found += node.peers.client(peer.id).deliveries(job_id)
    return sorted(found, key=lambda d: d["updated_at"])


def jobs_of(node: JobsContext, owner: Owner) -> list[dict[str, Any]]:
    """The owner's held jobs across the mesh (metadata only), oldest first."""
    items = sorted(mesh_jobs(node, owner[0]).values(), key=lambda j: j["created_at"])
    for item in items:
        item.pop("holders_version", None)
    return items


def job_of(node: JobsContext, job_id: str, owner: Owner) -> dict[str, Any]:
    """One of the owner's jobs, with every release of it the mesh knows of."""
    check_job_id(job_id)
    job = mesh_jobs(node, owner[0]).get(job_id)
    if job is None:
        raise NotFound(f"you have no job {job_id} (printed and deleted jobs are gone)")
    job.pop("holders_version", None)
    return {**job, "deliveries": deliveries_of(node, job_id)}


def delete_job(node: JobsContext, job_id: str, owner: Owner) -> None:
    """The owner deletes a job everywhere."""
    name, private = owner
    job = release.find_job(node, job_id, owner=name)
    # Holding no copy, we prove to each holder that the owner asks (their key).
    delete_everywhere(node, job_id, OWNER_DELETE, job.holder_ids, owner_key=private)
