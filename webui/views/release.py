"""The release page (phone first): a user signs in with name and password, sees their
held jobs with the settings each was sent with (copies, sides, colour: chosen in the form,
`copies-ID`, `sides-ID`, `colour-ID`, and changeable per job), picks a printer
(pre-selected from a printer's QR code, `/release?printer=ID`), releases one or all (each
with its own settings), follows them to "printed", or deletes them.

Everything goes through this node's local release API (127.0.0.1:9266, /v1/…), so it
works with the internet and the broker down. Sign-in opens the user's key once on the
node (`POST /v1/sessions`); the cookie holds only the session's token, and the key stays
in the node's memory until sign-out or expiry (30 minutes idle, 8 hours at most): a
release in the session runs no KDF. Nothing of the session is on disk.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from appliance.clients.models import DeliveryInfo
from appliance.clients.node import Auth, NodeClient, SessionToken
from appliance.errors import (
    BadRequest,
    MeshprintError,
    QuotaExceeded,
    RemoteError,
    Unauthorized,
    UntrustedNode,
)
from appliance.humanize import plain
from appliance.printers import registry
from appliance.printoptions import SIDES
from appliance.store.jobs import check_job_id
from appliance.store.states import JobState, Stage
from webui import security
from webui.context import release_api, site

bp = Blueprint("release", __name__, url_prefix="/release")
WRONG = "Wrong name or password."
T = TypeVar("T")


def _credentials() -> tuple[str, SessionToken] | None:
    """The signed-in user and their session's token (None: signed out)."""
    held = session.get("release")
    if not held or not isinstance(held, dict) or "token" not in held:
        return None
    return str(held["user"]), SessionToken(held["token"])


def _api(call: Callable[[NodeClient, Auth], T]) -> T:
    """`call` on the release API as the signed-in user; a refused or ended session ends
    the page's session too."""
    creds = _credentials()
    if creds is None:
        raise Unauthorized("your session ended: sign in again")
    try:
        return call(release_api(), creds[1])
    except RemoteError as err:
        if err.status == 401:
            session.pop("release", None)
        raise


def _printers() -> list[registry.PrinterRecord]:
    return list(registry.printers(site().directory().doc).values())


@bp.get("/")
def index() -> Any:
    printer = request.args.get("printer", "")
    creds = _credentials()
    if creds is None:
        return render_template("release/login.html", title="Sign in to print", printer=printer)
    jobs = _api(NodeClient.jobs)
    return render_template(
        "release/jobs.html",
        title="Your print jobs",
        user=creds[0],
        jobs=jobs,
        printers=_printers(),
        selected=printer or session.get("printer", ""),
        now=time.time(),
        sides=SIDES,
        usage=_usage(),
        printer_url=_printer_url(),
    )


def _usage() -> dict[str, Any] | None:
    """The user's pages this month and their quota's balance; None if not to be had."""
    try:
        return _api(NodeClient.usage)
    except MeshprintError as err:
        if err.status == 401:
            raise
        current_app.logger.info("release page: usage: %s", err)
        return None


def _printer_url() -> dict[str, str] | None:
    """The signed-in user's personal printer URL on this node's printer (for "Add Secure
    Print to this computer"), or why there is none."""
    try:
        found = _api(NodeClient.printer_url)
    except RemoteError as err:
        if err.status == 401:
            raise
        return {"missing": str(err)}
    if not found.get("port"):
        return {
            "missing": "This node has no printer of its own: add Secure Print on the appliance."
        }
    host = urllib.parse.urlsplit(f"//{request.host}").hostname or ""
    if not host or not all(c.isalnum() or c in ".-:" for c in host):
        return {"missing": "Open this page by the appliance's name or address to see it."}
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    url = f"ipps://{host}:{int(found['port'])}{found['path']}"
    return {
        "url": url,
        "address": f"{host}:{int(found['port'])}",
        "queue": str(found["path"]).lstrip("/"),
        "powershell": f'Add-Printer -Name "Secure Print" -IppURL "{url}"',
    }


@bp.post("/login")
def login() -> Any:
    name = request.form.get("name", "").strip().lower()[:64]
    password = request.form.get("password", "")
    printer = request.form.get("printer", "")
    try:
        security.limited("release", name)
        if not name or not password:
            raise Unauthorized(WRONG)
        try:
            token = release_api().sign_in((name, password))
        except RemoteError as err:
            if err.status == 401:
                security.failed("release", name)
                raise Unauthorized(WRONG) from None
            raise
    except MeshprintError as err:
        status = err.status if err.status in (401, 429) else 503
        if isinstance(err, UntrustedNode):
            status = err.status  # its own words: the password was not sent
        message = str(err) if status != 503 else f"The release service is not answering: {err}"
        return (
            render_template(
                "release/login.html",
                title="Sign in to print",
                printer=printer,
                error=message,
                name=name,
            ),
            status,
        )
    security.succeeded("release", name)
    security.new_session(release={"user": name, "token": str(token)})
    return redirect(url_for("release.index", printer=printer or None))


@bp.post("/logout")
def logout() -> Any:
    creds = _credentials()
    session.clear()
    if creds is not None:
        try:
            release_api().sign_out(creds[1])
        except MeshprintError as err:  # the node forgets it at expiry anyway
            current_app.logger.info("release page: sign-out: %s", err)
    return redirect(url_for("release.index"))


def _printer() -> str:
    printer = request.form.get("printer", "")
    registry.find(site().directory().doc, printer)
    session["printer"] = printer
    return printer


def _field(name: str, job_id: str) -> str | None:
    """A setting chosen for one job (`copies-ID`), else for all (`copies`), else None."""
    value = request.form.get(f"{name}-{job_id}")
    return request.form.get(name) if value is None else value


def _options(job_id: str) -> dict[str, Any]:
    """The print settings chosen for `job_id` on the page; what the page leaves out is
    the job's own (as it was sent), applied by the node."""
    chosen: dict[str, Any] = {}
    copies = _field("copies", job_id)
    if copies is not None:
        try:
            chosen["copies"] = int(copies)
        except ValueError:
            raise BadRequest("copies must be a whole number from 1 to 99") from None
        if not 1 <= chosen["copies"] <= 99:
            raise BadRequest("copies must be a whole number from 1 to 99")
    sides = _field("sides", job_id)
    if sides is not None:
        if sides not in SIDES:
            raise BadRequest(f"sides must be one of {', '.join(SIDES)}")
        chosen["sides"] = sides
    colour = _field("colour", job_id)
    if colour is not None:
        if colour not in ("colour", "mono"):
            raise BadRequest("colour must be colour or mono")
        chosen["mono"] = colour == "mono"
    elif request.form.get("mono") is not None:
        chosen["mono"] = request.form.get("mono") == "on"
    return chosen


def _release_call(job_id: str, body: dict[str, Any]) -> Callable[[NodeClient, Auth], DeliveryInfo]:
    """Releasing one job, as a call for `_api`."""
    return lambda api, creds: api.release(job_id, body, creds)


@bp.post("/print")
def release_jobs() -> Any:
    """Release the chosen job (or all of them) to a printer; then follow them."""
    if _credentials() is None:
        return redirect(url_for("release.index"))
    printer = _printer()
    if request.form.get("all") == "1":
        jobs = [j["id"] for j in _api(NodeClient.jobs) if j["state"] == JobState.HELD]
        if not jobs:
            raise BadRequest("you have no held jobs to print")
    else:
        jobs = [check_job_id(request.form.get("job", ""))]
    chosen = {job_id: _options(job_id) for job_id in jobs}  # all checked before any prints
    started: list[str] = []
    for job_id in jobs:
        request_body = {"printer": printer, **chosen[job_id], "release_id": secrets.token_hex(16)}
        try:
            delivery = _api(_release_call(job_id, request_body))
        except QuotaExceeded as err:  # shown on the page, with the balance beside it
            flash(f"Not printed: {err}", "error")
            if started:
                return redirect(url_for("release.progress", r=started))
            return redirect(url_for("release.index", printer=printer))
        started.append(delivery["release_id"])  # the node logs it (dashboard events)
    return redirect(url_for("release.progress", r=started))


@bp.get("/progress")
def progress() -> Any:
    ids = request.args.getlist("r")[:50]
    if _credentials() is None:
        return redirect(url_for("release.index"))
    items = [_delivery(i) for i in ids]
    return render_template("release/progress.html", title="Printing", items=items)


def _delivery(release_id: str) -> dict[str, Any]:
    from appliance.jobs.deliver import check_release_id

    check_release_id(release_id)
    try:
        found: dict[str, Any] = dict(release_api().release_status(release_id))
    except RemoteError as err:
        found = {
            "release_id": release_id,
            "stage": Stage.UNKNOWN,
            "reason": str(err),
            "printer": "",
        }
    found["reason"] = plain(found.get("reason") or "")  # no raw IPP keywords on the phone
    names = {p.name: p.display_name for p in _printers()}
    found["printer_name"] = names.get(found["printer"], found["printer"])
    return found


@bp.get("/releases/<release_id>.json")
def release_status(release_id: str) -> Any:
    if _credentials() is None:
        return {"error": "sign in again"}, 401
    return _delivery(release_id)


@bp.post("/delete")
def delete() -> Any:
    if _credentials() is None:
        return redirect(url_for("release.index"))
    job_id = check_job_id(request.form.get("job", ""))
    _api(lambda api, creds: api.delete(job_id, creds))
    flash("The job was deleted.", "ok")
    return redirect(url_for("release.index"))


@bp.errorhandler(MeshprintError)
def api_error(err: MeshprintError) -> Any:
    """Errors from the release API shown on the release page itself."""
    if err.status == 401:
        flash(str(err), "error")
        return redirect(url_for("release.index"))
    from webui.errors import render_error

    status = err.status if 400 <= err.status < 600 else 500
    current_app.logger.info("release page: %s", err)
    return render_error(status, str(err))
