"""The appliance as a package index for the office's PCs, so a PC installs meshprint from
the appliance without internet:

    pip install --index-url https://APPLIANCE/simple --cert appliance.pem meshprint

`/simple/` is a PEP 503 simple index of the wheelhouse that provisioning puts beside the
release (config WHEELHOUSE, env MESHPRINT_WHEELHOUSE); `/appliance.pem` is the web UI's
own certificate, the trust anchor `--cert` needs. Both are public like the software
itself: no sign-in, nothing secret, read-only.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, send_file, url_for

from webui.wheelhouse import Wheelhouse, normalize

bp = Blueprint("wheels", __name__)


def wheelhouse() -> Wheelhouse:
    directory = current_app.config.get("WHEELHOUSE")
    if not directory:
        abort(404, "This appliance serves no packages (no wheelhouse was installed).")
    return Wheelhouse(Path(directory))


def _page(title: str, links: list[str]) -> Response:
    body = "\n".join(links)
    html = (
        f'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
        f"<title>{escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return Response(html, mimetype="text/html")


@bp.get("/simple/")
def index() -> Any:
    projects = wheelhouse().projects()
    links = [
        f'<a href="{escape(url_for("wheels.project", name=p))}">{escape(p)}</a><br>'
        for p in projects
    ]
    return _page("Simple index", links)


@bp.get("/simple/<name>/")
def project(name: str) -> Any:
    if normalize(name) != name:
        return redirect(url_for("wheels.project", name=normalize(name)), 301)
    dists = wheelhouse().dists(name)
    if not dists:
        abort(404, f"No package called {name} here.")
    links = [
        f'<a href="{escape(url_for("wheels.file", filename=d.filename))}#sha256={d.sha256}">'
        f"{escape(d.filename)}</a><br>"
        for d in dists
    ]
    return _page(f"Links for {name}", links)


@bp.get("/simple/files/<filename>")
def file(filename: str) -> Any:
    path = wheelhouse().path(filename)
    if path is None:
        abort(404, f"No file called {filename} here.")
    return send_file(path, mimetype="application/octet-stream", as_attachment=True)


@bp.get("/appliance.pem")
def certificate() -> Any:
    """The web UI's certificate (self-signed per device): what pip's `--cert` trusts."""
    cert = current_app.config.get("WEB_CERT")
    if not cert or not Path(cert).is_file():
        abort(404, "This appliance's certificate is not available here.")
    return send_file(
        cert, mimetype="application/x-pem-file", as_attachment=True, download_name="appliance.pem"
    )
