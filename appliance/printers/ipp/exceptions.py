"""IPP client errors. They describe the protocol; `appliance.printers.delivery.ipp` turns
them into the printer errors users see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.printers.ipp.enums import Status

if TYPE_CHECKING:
    from appliance.printers.ipp.message import IppMessage


class IppError(Exception):
    """Base class of every error raised by this package."""


class IppParseError(IppError):
    """Bytes that are not a well-formed IPP message (truncated, bad tag, bad length …)."""


class IppEncodeError(IppError):
    """A request that cannot be encoded (value out of range, string too long …)."""


class IppConnectionError(IppError):
    """No connection to the printer, or it broke: refused, unreachable, reset."""


class IppTimeoutError(IppConnectionError):
    """The printer did not answer in time."""


class IppTlsError(IppError):
    """The TLS handshake failed or the printer's certificate is not trusted.

    `fingerprint` is the SHA-256 (hex) of the certificate the printer presented, when it
    could be read, so an administrator can compare it with the printer's own page.
    """

    def __init__(self, message: str, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class IppHttpError(IppError):
    """The server answered over HTTP, but not with an IPP response."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class IppStatusError(IppError):
    """The printer answered with an IPP error status."""

    def __init__(self, response: IppMessage) -> None:
        self.response = response
        self.status = response.code
        self.status_message = response.status_message
        self.unsupported = response.unsupported_names
        text = Status.describe(self.status)
        if self.status_message:
            text += f": {self.status_message}"
        if self.unsupported:
            text += f" (unsupported: {', '.join(self.unsupported)})"
        super().__init__(text)

    @property
    def keyword(self) -> str:
        return Status.describe(self.status)

    @property
    def busy(self) -> bool:
        return self.status == Status.SERVER_ERROR_BUSY
