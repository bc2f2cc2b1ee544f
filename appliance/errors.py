"""Errors a user can act on. Each class carries the HTTP status the APIs answer with, and
keeps its type across the network: a server answers `to_wire(err)`, a client raises
`from_wire(...)`, an instance of the same class that is also a `RemoteError`.

    try:
        peers.client(holder).delivery_step(job_id, "claim", claim)
    except Conflict:            # the holder's own refusal, as if it were raised here
        ...
"""

from __future__ import annotations

from typing import Any, cast


class MeshprintError(Exception):
    """Base error: `str(err)` is a message meant for the person who caused it;
    `retry_after`, when set, the seconds after which trying again may succeed (the
    servers send it as Retry-After)."""

    status = 400
    retry_after: int | None = None


class BadRequest(MeshprintError):
    status = 400


class Unauthorized(MeshprintError):
    status = 401


class Forbidden(MeshprintError):
    status = 403


class QuotaExceeded(Forbidden):
    """A release that would take its owner past their monthly page quota."""


class UntrustedNode(Forbidden):
    """The node answering a user's client is not a current member of the site (removed,
    revoked, or not shown to be a member): the client sent it nothing secret."""


class NotFound(MeshprintError):
    status = 404


class MethodNotAllowed(MeshprintError):
    status = 405


class RequestTimeout(MeshprintError):
    """The client stopped sending in the middle of a request."""

    status = 408


class Conflict(MeshprintError):
    status = 409


class Gone(MeshprintError):
    status = 410


class TooLarge(MeshprintError):
    status = 413


class TooManyRequests(MeshprintError):
    status = 429


class InternalError(MeshprintError):
    """Something failed that the user cannot mend; the details are in the node's log."""

    status = 500


class IntegrityError(MeshprintError):
    """Ciphertext was tampered with, reordered or truncated."""

    status = 500


class DeliveryInterrupted(MeshprintError):
    """A document was cut off on its way to a printer: it may have printed in part."""

    status = 502


class Unsupported(MeshprintError):
    """The server does not implement what the request needs (a method, transfer coding
    or HTTP version)."""

    status = 501


class Unavailable(MeshprintError):
    status = 503


class InsufficientStorage(MeshprintError):
    status = 507


class ConfigError(MeshprintError):
    """A setting or data directory is invalid."""


class MissingExtra(ConfigError):
    """The command needs an optional part of meshprint that this install lacks (the
    `appliance` extra: CUPS, SNMP, MQTT)."""


class RemoteError(MeshprintError):
    """Raised by a client: the other side answered with this error (`where` says who).

    Never raised as itself: `from_wire` makes an instance of the named class that is also
    a RemoteError, so both `except Conflict` and `except RemoteError` catch it."""

    where = ""


_BY_STATUS: dict[int, type[MeshprintError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        RequestTimeout,
        Conflict,
        Gone,
        TooLarge,
        TooManyRequests,
        InternalError,
        DeliveryInterrupted,
        Unsupported,
        Unavailable,
        InsufficientStorage,
    )
}
_remote_classes: dict[type[MeshprintError], type[RemoteError]] = {}


def to_wire(err: MeshprintError) -> dict[str, str]:
    """The JSON error body an API answers with (beside the status `err.status`)."""
    return {"error": str(err), "type": type(err).__name__}


def _named(name: str) -> type[MeshprintError] | None:
    """The error class of this name among those this process has imported."""
    pending = [MeshprintError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name and not issubclass(cls, RemoteError):
            return cls
        pending += cls.__subclasses__()
    return None


def from_wire(status: int, body: Any, where: str) -> RemoteError:
    """The error a server answered with, as an instance of its own class where this side
    knows it (and it agrees with the status), else of the class for the status."""
    message = body.get("error") if isinstance(body, dict) else None
    name = body.get("type") if isinstance(body, dict) else None
    cls = _named(name) if isinstance(name, str) else None
    if cls is None or cls.status != status:
        cls = _BY_STATUS.get(status, MeshprintError)
    remote = RemoteError if cls is MeshprintError else _remote_classes.get(cls)
    if remote is None:
        made = type(cls.__name__, (cls, RemoteError), {"__module__": cls.__module__})
        remote = cast(type[RemoteError], made)
        _remote_classes[cls] = remote
    err = remote(str(message or f"{where} answered {status}"))
    err.where = where
    err.status = status
    return err
