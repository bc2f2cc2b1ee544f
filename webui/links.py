"""The addresses people are shown: the release page, a printer's release link, the
Secure Print printer."""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, request

from appliance.endpoint import DEFAULT_RELEASE_PORT


def host() -> str:
    """The name or address people reach this appliance by."""
    configured = current_app.config.get("PUBLIC_HOST")
    return str(configured or request.host.rsplit(":", 1)[0] or "meshprint.local")


def release_url(printer: str | None = None) -> str:
    base = current_app.config.get("RELEASE_URL") or f"https://{host()}:{DEFAULT_RELEASE_PORT}"
    url = f"{base.rstrip('/')}/release"
    return f"{url}?printer={quote(printer)}" if printer else url


def queue_uri() -> str:
    """The node's own printer (appliance/intake/ipp), on 631 on the appliance."""
    return f"ipps://{host()}:631/ipp/print"
