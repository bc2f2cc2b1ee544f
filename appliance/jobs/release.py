"""Release: put the job's key back together in memory, decrypt the stream, then delete
the job on every holder.

*User present*: the password unwraps the owner's private key, which opens the user
share; one holder's share completes the key, so one live holder is enough.
*Authorized*: a release command signed by the controller names the node that delivers
it; that node (and only it) gathers a second holder's share, or, holding no copy, a
holder's share with its sealed document plus a second holder's share, and decrypts
itself. Two live holders are needed, no password.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.clients.models import ShareInfo
from appliance.clients.peer import SHARE_HEADER, SIZE_HEADER, PeerClient
from appliance.crypto import shamir
from appliance.crypto.stream import decrypt_stream
from appliance.crypto.userkeys import (
    ARGON2_COST,
    KdfBusy,
    WrappedKey,
    WrongPassword,
    b64,
    needs_rewrap,
    open_sealed,
    unb64,
    unwrap_private_key,
    wrap_private_key,
)
from appliance.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    IntegrityError,
    MeshprintError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import delete_everywhere, served_to
from appliance.mesh.placement import USER_X
from appliance.printoptions import clean_options
from appliance.site import release_authority
from appliance.site.release_authority import Signer
from appliance.site.state import SiteState
from appliance.store.jobs import Holder, check_job_id, clean_pages, holders_from_list

log = logging.getLogger(__name__)
COMMAND_TTL = 300
READ_SIZE = 256 * 1024  # what is passed on at a time from a holder's decrypted answer


@functools.cache
def _decoy() -> WrappedKey:
    """A key no password opens, wrapped with the current KDF cost, so that an unknown user
    costs a KDF run like a wrong password. Made at the first such sign-in, not at import:
    no KDF at start-up."""
    return wrap_private_key(X25519PrivateKey.generate(), secrets.token_urlsafe(16))


@dataclass
class Plaintext:
    """A decrypted document on its way out; `finish` runs once it was fully sent."""

    size: int
    chunks: Iterator[bytes]
    finish: Callable[[], None]


# Users


def authenticate(node: MeshContext, name: str, password: str) -> X25519PrivateKey:
    """The user's private key; the same error (WrongPassword, and about the same time)
    for any failure. On the controller, a key wrapped with an older KDF or a lower cost
    is wrapped again with the current one (`rewrap_user_key`); elsewhere it stays as it
    is until the user signs in through the controller, the one node that signs
    directory versions."""
    user = node.directory().user(name)
    if user is None:
        with contextlib.suppress(WrongPassword):
            unwrap_private_key(_decoy(), password)
        raise WrongPassword("wrong user name or password")
    wrapped = WrappedKey.from_dict(user.wrapped_key)
    private = unwrap_private_key(wrapped, password)
    if (
        needs_rewrap(wrapped)
        and node.site.controller_here(node.id)
        and node.site.queued_rewrap(name) != user.wrapped_key
    ):
        rewrap_user_key(node.site, name, user.wrapped_key, private, password)
    return private


def rewrap_user_key(
    site: SiteState,
    name: str,
    old: dict[str, Any],
    private: X25519PrivateKey,
    password: str,
) -> bool:
    """Controller only: replace the user's wrapped key `old` by the same private key
    wrapped with the current KDF cost (same public key, so held jobs still open). The
    upgrade is queued (`SiteState.queue_rewrap`) and rides on the next directory version
    the controller signs, which it signs at once while it holds the CA key; a sign-in
    itself never needs to. Nothing changes when the record is no longer `old` (a password
    reset meanwhile) or the node is too busy for a second KDF run now (the next sign-in
    tries again). Whether the directory has the upgrade now."""
    user = site.directory().user(name)
    if user is None or user.wrapped_key != old:
        return False
    try:
        new = wrap_private_key(private, password).to_dict()
    except KdfBusy:
        return False
    site.queue_rewrap(name, old, new)
    if site.ca.key is None:
        return False
    try:
        directory = site.edit(lambda doc: None)
    except MeshprintError as err:  # never fail a sign-in for an upgrade
        log.warning("could not re-wrap %s's key: %s", name, err)
        return False
    upgraded = directory.user(name)
    if upgraded is None or upgraded.wrapped_key != new:
        return False
    log.info("re-wrapped %s's key with %s %s", name, new["kdf"], ARGON2_COST)
    return True


@dataclass(frozen=True)
class FoundJob:
    """A held job as a release finds it, here or at a live holder (`find_job`)."""

    id: str
    owner: str
    title: str
    format: str
    options: dict[str, Any]
    holders: list[Holder]
    user_share: bytes  # sealed to the owner's key
    pages: int | None = None  # the document's pages, when intake could count them

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> FoundJob:
        """From `Job.holder_info()` (ours, or a holder's answer)."""
        try:
            return cls(
                id=str(info["id"]),
                owner=str(info["owner"]),
                title=str(info["title"]),
                format=str(info.get("format", "application/octet-stream")),
                options=clean_options(info.get("options")),
                holders=holders_from_list(info["holders_x"]),
                user_share=unb64(str(info["user_share"])),
                pages=clean_pages(info.get("pages")),
            )
        except (KeyError, ValueError, TypeError):
            raise Unavailable("a holder answered with a malformed job record") from None

    @property
    def holder_ids(self) -> list[str]:
        return [h.node for h in self.holders]


def find_job(node: MeshContext, job_id: str, owner: str | None) -> FoundJob:
    """The job with its sealed user share, from this node or a live holder; NotFound
    when it is not there or not `owner`'s."""
    check_job_id(job_id)
    job = node.store.get(job_id)
    info: Mapping[str, Any] | None = job.holder_info() if job is not None else None
    for peer in node.peers.live() if info is None else []:
        if peer.id == node.id:
            continue
        try:
            info = node.peers.client(peer.id).job(job_id)
            break
        except MeshprintError:
            continue
    if info is None or (owner is not None and info["owner"] != owner):
        raise NotFound(f"you have no job {job_id}")
    return FoundJob.from_info(info)


def open_user_share(private: X25519PrivateKey, job: FoundJob) -> bytes:
    """The owner's share of the job's key, opened with their unwrapped key
    (`authenticate`)."""
    return open_sealed(private, job.user_share, job.id.encode())


def release_with_share(node: MeshContext, job: FoundJob, share_x: int, share: bytes) -> Plaintext:
    """Decrypt with one share from outside the holders (the owner's) and a holder's: ours
    when we have a copy, else a live holder decrypts for us over mutual TLS."""
    job_id, holders = job.id, job.holders
    local = node.store.get(job_id)
    if local is not None:
        key = shamir.combine({local.share_x: local.share, share_x: share})
        return local_plaintext(node, job_id, key, holders)
    return _remote_plaintext(
        node, job_id, holders, lambda peer: peer.open(job_id, share_x, b64(share))
    )


# Authorized (controller-signed) release


def make_command(
    signer: Signer, job_id: str, node: str, ttl: int = COMMAND_TTL, **extra: Any
) -> dict[str, str]:
    """A release command signed by the site's release authority (unlocked with the
    recovery key: `site.release_authority.unlock`; on a site without one yet, the CA). It
    names the `node` that delivers the job: only that node may gather the two shares
    (and, holding no copy, the sealed document) it needs. `extra` fields (a print
    request) are signed with it."""
    if not isinstance(node, str) or not node:
        raise BadRequest("a release command names the node that delivers it")
    now = time.time()
    raw = json.dumps(
        {
            **extra,
            "type": "release",
            "node": node,
            "job": check_job_id(job_id),
            "release_id": secrets.token_hex(16),
            "issued_at": now,
            "expires_at": now + ttl,
        }
    ).encode()
    return {"command": b64(raw), "signature": b64(signer.sign(raw))}


def check_command(node: MeshContext, signed: dict[str, Any]) -> dict[str, Any]:
    """The command inside `signed` when it is the controller's, a release and current
    (without using it up: `verify_command` does that)."""
    try:
        raw, signature = unb64(signed["command"]), unb64(signed["signature"])
        command = json.loads(raw)
        if not isinstance(command, dict):
            raise ValueError("not an object")
    except (KeyError, ValueError, TypeError):
        raise BadRequest("release command is malformed") from None
    release_authority.verify(node.directory().doc, node.site.ca, raw, signature)
    if command.get("type") != "release" or not isinstance(command.get("release_id"), str):
        raise Forbidden("not a release command")
    if not isinstance(command.get("node"), str):
        raise Forbidden("release command names no delivering node")
    if float(command.get("expires_at", 0)) < time.time():
        raise Forbidden("release command has expired")
    return command


def verify_command(
    node: MeshContext, signed: dict[str, Any], job_id: str, deliverer: str
) -> dict[str, Any]:
    """The command, when it is the controller's, for this job and for node `deliverer`,
    current and not used here."""
    command = check_command(node, signed)
    if command.get("job") != job_id:
        raise Forbidden("release command is for another job")
    if command["node"] != deliverer:
        raise Forbidden(f"release command is for node {command['node']}, not {deliverer}")
    if not node.store.record_release(str(command["release_id"]), job_id):
        raise Conflict(f"release {command['release_id']} was already used")
    return command


def command_release_id(signed: dict[str, Any]) -> str:
    """The release id inside a signed command (a fresh one when there is no command), so a
    redelivered command is recognised as the same release."""
    try:
        return str(json.loads(unb64(signed["command"]))["release_id"])
    except (KeyError, ValueError, TypeError):
        return secrets.token_hex(16)


def release_authorized(node: MeshContext, signed: dict[str, Any], job_id: str) -> Plaintext:
    """Decrypt here, as the node the command names: our share (or, holding no copy, a
    holder's share with its sealed document) and a second holder's share."""
    verify_command(node, signed, job_id, node.id)
    local = node.store.get(job_id)
    if local is not None:
        other = _second_share(node, job_id, local.holders, signed, {node.id})
        key = shamir.combine({local.share_x: local.share, **other})
        return local_plaintext(node, job_id, key, local.holders)
    holders = find_job(node, job_id, owner=None).holders
    errors = []
    for holder in holders:
        if not node.peers.is_live(holder.node):
            continue
        try:
            response = node.peers.client(holder.node, timeout=60).release(job_id, signed)
        except MeshprintError as err:
            if err.status in (401, 409):
                raise
            errors.append(f"{holder.node}: {err}")
            continue
        try:
            first = _sealed_share(response)
            other = _second_share(node, job_id, holders, signed, {holder.node})
        except BaseException:
            response.close()
            raise
        key = shamir.combine({**first, **other})
        return _decrypt_response(node, job_id, key, response, holders)
    detail = "; ".join(errors) or "none of its holders is up"
    raise Unavailable(f"job {job_id} cannot be released right now: {detail}")


def _second_share(
    node: MeshContext, job_id: str, holders: list[Holder], signed: dict[str, Any], have: set[str]
) -> dict[int, bytes]:
    """A share from a live holder not in `have`, against the command naming us."""
    for holder in holders:
        if holder.node in have or not node.peers.is_live(holder.node):
            continue
        try:
            other = node.peers.client(holder.node).share(job_id, signed)
        except MeshprintError as err:
            log.info("job %s: share from %s refused: %s", job_id, holder.node, err)
            continue
        return {int(other["x"]): unb64(other["share"])}
    raise Unavailable(
        "an authorized release needs a second holder of this job to be up; none answered "
        "(the owner can still release it with their password)"
    )


def _sealed_share(response: http.client.HTTPResponse) -> dict[int, bytes]:
    """The holder's share that comes with its sealed document (`SHARE_HEADER`)."""
    try:
        info = json.loads(unb64(response.headers.get(SHARE_HEADER, "")))
        return {int(info["x"]): unb64(str(info["share"]))}
    except (KeyError, ValueError, TypeError):
        raise Unavailable("a holder sent its sealed copy without its share") from None


def _decrypt_response(
    node: MeshContext,
    job_id: str,
    key: bytes,
    response: http.client.HTTPResponse,
    holders: list[Holder],
) -> Plaintext:
    """Decrypt a sealed document as it arrives from a holder."""
    size = int(response.headers.get(SIZE_HEADER, "-1"))
    return _decrypting(
        response,
        key,
        job_id,
        size,
        lambda: delete_everywhere(node, job_id, "released", [h.node for h in holders]),
    )


# On a holder, for another member (peer API)


def open_for_member(
    node: MeshContext, job_id: str, caller: str, request: dict[str, Any]
) -> Plaintext:
    """Decrypt our copy with the owner's opened share, which a member sends that released
    the job with the owner's password but holds no copy (`/peer/jobs/ID/open`). Only the
    owner's share (at USER_X) is taken: it is the proof that the owner's password opened
    the release, and no holder's share is ever combined with ours here."""
    job = node.store.require(job_id)
    try:
        user_x, user_share = int(request["x"]), unb64(str(request["share"]))
    except (KeyError, ValueError, TypeError):
        raise BadRequest("open needs the user's share") from None
    if user_x != USER_X:
        raise Forbidden("a job is opened for a member only with its owner's share")
    key = shamir.combine({job.share_x: job.share, user_x: user_share})
    plaintext = local_plaintext(node, job.id, key, job.holders)
    served_to(node, job.id, caller)
    return plaintext


def share_for_holder(
    node: MeshContext, job_id: str, caller: str, signed: dict[str, Any]
) -> ShareInfo:
    """Our share, for the node a controller-signed release command names (it delivers)."""
    job = node.store.require(job_id)
    verify_command(node, signed, job.id, caller)
    served_to(node, job.id, caller)
    return {"x": job.share_x, "share": b64(job.share)}


@dataclass
class SealedCopy:
    """Our sealed document and our share, for the node a release command names that
    holds no copy: it decrypts itself, with a second holder's share."""

    size: int
    sealed_size: int
    header: str  # SHARE_HEADER's value
    chunks: Iterator[bytes]


def sealed_for_deliverer(
    node: MeshContext, job_id: str, caller: str, signed: dict[str, Any]
) -> SealedCopy:
    job = node.store.require(job_id)
    verify_command(node, signed, job.id, caller)
    sealed = node.store.open_sealed(job.id)
    served_to(node, job.id, caller)

    def chunks() -> Generator[bytes]:
        with sealed:
            while piece := sealed.read(READ_SIZE):
                yield piece

    header = b64(json.dumps({"x": job.share_x, "share": b64(job.share)}).encode())
    return SealedCopy(job.size, job.sealed_size, header, chunks())


# Decrypting


def local_plaintext(node: MeshContext, job_id: str, key: bytes, holders: list[Any]) -> Plaintext:
    """Decrypt our sealed copy."""
    job = node.store.require(job_id)
    sealed = node.store.open_sealed(job_id)
    return _decrypting(
        sealed, key, job_id, job.size, lambda: delete_everywhere(node, job_id, "released")
    )


def _decrypting(
    source: Any, key: bytes, job_id: str, size: int, finish: Callable[[], None]
) -> Plaintext:
    """`source` (a sealed file or a holder's answer: read and close) decrypted as it is
    read. The first chunk is opened before returning, so a wrong key is an error the
    caller can still answer properly."""

    def chunks() -> Generator[bytes]:
        with source:
            yield from decrypt_stream(source.read, key, job_id.encode())

    stream = chunks()
    try:
        first = next(stream)
    except IntegrityError:
        stream.close()
        raise Unauthorized("the shares given do not open this job") from None
    return Plaintext(size, itertools.chain([first], stream), finish)


def _remote_plaintext(
    node: MeshContext,
    job_id: str,
    holders: list[Holder],
    fetch: Callable[[PeerClient], http.client.HTTPResponse],
) -> Plaintext:
    """Have a live holder decrypt and stream the document to us over mutual TLS."""
    errors = []
    for holder in (h.node for h in holders):
        if holder == node.id or not node.peers.is_live(holder):
            continue
        try:
            response = fetch(node.peers.client(holder, timeout=60))
        except MeshprintError as err:
            if err.status in (401, 403, 409):
                raise
            errors.append(f"{holder}: {err}")
            continue
        size = int(response.headers.get("Content-Length", "-1"))
        return Plaintext(
            size,
            _read_through(response),
            lambda: delete_everywhere(node, job_id, "released", [h.node for h in holders]),
        )
    detail = "; ".join(errors) or "none of its holders is up"
    raise Unavailable(f"job {job_id} cannot be released right now: {detail}")


def _read_through(response: http.client.HTTPResponse) -> Iterator[bytes]:
    with response:
        while piece := response.read(READ_SIZE):
            yield piece
