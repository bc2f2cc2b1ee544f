"""Friendly error pages: every error is a page with a message a person can act on; no
traceback ever reaches the browser. JSON callers (the static scripts) get JSON."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException

from appliance.errors import MeshprintError

log = logging.getLogger(__name__)

TITLES = {
    400: "Something was not right with that request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    413: "That is too large",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Not available right now",
}
MESSAGES = {
    404: "There is nothing at this address. Check the link, or start from the home page.",
    405: "This page cannot be used that way.",
    413: "The upload is larger than this page accepts.",
    500: "The problem has been logged. Try again; if it keeps happening, download a "
    "diagnostics bundle from Settings and send it to your support contact.",
}


def form_status(err: MeshprintError) -> int:
    """The status of a form page shown again with `err` next to the form: the error's own
    when it is the client's (4xx), else 400."""
    return err.status if 400 <= err.status < 500 else 400


def wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


def render_error(status: int, message: str) -> Any:
    if wants_json():
        return {"error": message}, status
    title = TITLES.get(status, "Something went wrong")
    return render_template("error.html", title=title, message=message, status=status), status


def init(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Any:
        status = err.code or 500
        message = MESSAGES.get(status) or err.description or TITLES.get(status, "")
        if status == 400 and err.description and "browser" not in err.description:
            message = err.description
        return render_error(status, message)

    @app.errorhandler(MeshprintError)
    def meshprint_error(err: MeshprintError) -> Any:
        return render_error(err.status if 400 <= err.status < 600 else 500, str(err))

    @app.errorhandler(Exception)
    def unexpected(err: Exception) -> Any:
        log.exception("web UI: %s %s failed", request.method, request.path)
        return render_error(500, MESSAGES[500])
