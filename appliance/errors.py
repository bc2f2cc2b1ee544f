"""Errors a user can act on. Each carries the HTTP status the APIs answer with."""

from __future__ import annotations


class MeshprintError(Exception):
    """Base error: `str(err)` is a message meant for the person who caused it."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(MeshprintError):
    status = 400


class Unauthorized(MeshprintError):
    status = 401


class Forbidden(MeshprintError):
    status = 403


class NotFound(MeshprintError):
    status = 404


class Conflict(MeshprintError):
    status = 409


class Gone(MeshprintError):
    status = 410


class TooLarge(MeshprintError):
    status = 413


class InsufficientStorage(MeshprintError):
    status = 507


class Unavailable(MeshprintError):
    status = 503


class IntegrityError(MeshprintError):
    """Ciphertext was tampered with, reordered or truncated."""

    status = 500


class ConfigError(MeshprintError):
    """A setting or data directory is invalid."""
