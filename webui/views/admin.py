"""The admin console: dashboard (live), users, printers (with QR release posters), nodes,
settings and a diagnostics bundle. Signed-in administrators only."""

from __future__ import annotations

import io
import json
import logging
import platform
import re
import time
import zipfile
from typing import Any

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)

from appliance import __version__
from appliance.crypto.password_policy import check_password
from appliance.errors import BadRequest, MeshprintError
from appliance.humanize import describe_event, plain, since
from appliance.jobs.status import status_document
from appliance.printers import registry
from appliance.site import admin, authority
from appliance.site.state import open_site
from appliance.store import printer_status
from webui import links, security, sitework
from webui.context import data, event, has_site, release_api, site, store
from webui.errors import form_status
from webui.qr import qr_svg
from webui.security import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = logging.getLogger(__name__)
SETTINGS = {
    "retention": "Keep held jobs for",
    "repair_grace": "Rebuild copies of a node gone longer than",
    "max_job_size": "Largest document",
}


@bp.before_request
def ready() -> Any:
    if not store().has_admin() or not has_site():
        return redirect(url_for("setup.index"))
    return None


def _status() -> dict[str, Any]:
    """The node's view of the mesh (live peers, jobs, printer status); from the directory
    alone, marked offline, when the node does not answer."""
    try:
        status = release_api().status()
        status["offline"] = False
    except MeshprintError as err:
        db, _ = _db_site()
        status = status_document(site().directory(), printer_status.known(db))
        status.update(offline=True, offline_reason=str(err))
    for printer in status.get("printers", []):
        printer["reason"] = plain(printer.get("reason") or "")
        printer["alerts"] = [plain(a) for a in printer.get("alerts") or []]
    status["events"] = _events(status)
    return status


def _events(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The newest events: the node's (jobs held, replicated, printed, failed, expired;
    nodes up and down) with the web UI's own (users, printers, settings), in plain words."""
    names = {m["id"]: m["name"] for m in status.get("members", [])}
    names.update({p["name"]: p.get("display_name") or p["name"] for p in status["printers"]})
    found = [{"at": e["at"], "kind": e["kind"], "text": e["text"]} for e in store().events(20)]
    if not status.get("offline"):
        try:
            found += [
                {"at": e["at"], "kind": e["kind"], "text": describe_event(e, names)}
                for e in release_api().events()
            ]
        except MeshprintError as err:  # an older node, or it stopped since the status
            log.info("dashboard: no node events: %s", err)
    found.sort(key=lambda e: float(e["at"]), reverse=True)
    return [{**e, "when": since(e["at"])} for e in found[:15]]


def _db_site() -> Any:
    return open_site(data())


@bp.get("/")
@admin_required
def dashboard() -> Any:
    return render_template("admin/dashboard.html", title="Dashboard", s=_status(), nav="dashboard")


@bp.get("/status.json")
@admin_required
def status_json() -> Any:
    return _status()


# Users


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> Any:
    added: list[sitework.NewUser] = []
    error: str | None = None
    problems: list[str] = []
    status = 200
    if request.method == "POST":
        action = request.form.get("action")
        name = request.form.get("name", "")
        try:
            if action == "add":
                added = [
                    sitework.add_user(
                        name, request.form.get("password", ""), request.form.get("confirm", "")
                    )
                ]
            elif action == "import":
                added, problems = sitework.import_users(request.files.get("csv"))
                if problems:
                    status = 400
            elif action == "reset":
                password = request.form.get("password", "")
                if password != request.form.get("confirm", ""):
                    raise BadRequest("the two passwords differ")
                token = admin.reset_password(site(), name, password)
                event("user", f"password of {name} reset")
                added = [sitework.NewUser(name, token)]
            elif action in ("alias", "unalias"):
                alias = request.form.get("alias", "")
                aliases = admin.set_alias(site(), name, alias, remove=action == "unalias")
                event("user", f"aliases of {name} changed")
                flash(f"{name}'s aliases: {', '.join(aliases) or 'none'}.", "ok")
                return redirect(url_for("admin.users"))
            elif action == "rotate-url":
                admin.printer_url(site(), name, rotate=True)
                event("user", f"personal printer URL of {name} replaced")
                flash(
                    f"{name}'s personal printer URL was replaced: the old one takes no more "
                    "jobs, and they see the new one on the release page.",
                    "ok",
                )
                return redirect(url_for("admin.users"))
            elif action == "revoke-url":
                admin.revoke_printer_url(site(), name)
                event("user", f"personal printer URL of {name} revoked")
                flash(f"{name} has no personal printer URL now.", "ok")
                return redirect(url_for("admin.users"))
            elif action == "remove":
                admin.remove_user(site(), name)
                event("user", f"user {name} removed")
                flash(f"Removed {name}.", "ok")
                return redirect(url_for("admin.users"))
            else:
                raise BadRequest("unknown action")
        except MeshprintError as err:
            error, status = str(err), form_status(err)
    return (
        render_template(
            "admin/users.html",
            title="Users",
            nav="users",
            users=site().directory().users,
            records={n: site().directory().user(n) for n in site().directory().users},
            added=added,
            problems=problems,
            error=error,
        ),
        status,
    )


# Printers


@bp.route("/printers", methods=["GET", "POST"])
@admin_required
def printers() -> Any:
    error, status, report = None, 200, None
    if request.method == "POST":
        action = request.form.get("action")
        name = request.form.get("name", "")
        try:
            if action == "add":
                record, said = sitework.add_printer(request.form.to_dict())
                flash(f"Added {record.name}: {said}.", "ok")
                return redirect(url_for("admin.printers"))
            if action == "set":
                record = registry.set_printer(
                    site(), name, request.form.get("label", ""), request.form.get("location", "")
                )
                event("printer", f"printer {record.name} is now shown as {record.display_name}")
                flash(f"{record.name} is shown as “{record.display_name}”.", "ok")
                return redirect(url_for("admin.printers"))
            if action == "test":
                report = sitework.test_printer(name)
            elif action == "remove":
                registry.remove_printer(site(), name)
                event("printer", f"printer {name} removed")
                flash(f"Removed {name}.", "ok")
                return redirect(url_for("admin.printers"))
            else:
                raise BadRequest("unknown action")
        except MeshprintError as err:
            error, status = str(err), form_status(err)
    found, search_problem = [], None
    if request.args.get("search"):
        try:
            found = sitework.discover(fresh=True)
        except MeshprintError as err:
            search_problem = f"Searching the network did not work: {err}"
    polled = printer_status.known(_db_site()[0])
    records = list(registry.printers(site().directory().doc).values())
    return (
        render_template(
            "admin/printers.html",
            title="Printers",
            nav="printers",
            printers=records,
            polled=polled,
            found=found,
            searched=bool(request.args.get("search")),
            search_problem=search_problem,
            report=report,
            error=error,
        ),
        status,
    )


@bp.get("/printers/<name>/poster")
@admin_required
def poster(name: str) -> Any:
    record = registry.find(site().directory().doc, name)
    url = links.release_url(record.name)
    return render_template(
        "admin/poster.html",
        title=f"Release poster · {record.name}",
        printer=record,
        url=url,
        qr=qr_svg(url, f"Release at {record.name}"),
        site_name=site().directory().name,
    )


# Nodes


@bp.route("/nodes", methods=["GET", "POST"])
@admin_required
def nodes() -> Any:
    token, error, status = None, None, 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "invite":
                token = sitework.invite(request.form.get("ttl", "1h")).encode()
            elif action == "remove":
                record = admin.remove_member(site(), request.form.get("node", ""))
                event("node", f"node {record.name} ({record.id}) removed and revoked")
                flash(
                    f"Removed {record.name}; its certificate is revoked and its copies are "
                    "rebuilt elsewhere after the grace period.",
                    "ok",
                )
                return redirect(url_for("admin.nodes"))
            else:
                raise BadRequest("unknown action")
        except MeshprintError as err:
            error, status = str(err), form_status(err)
    return (
        render_template(
            "admin/nodes.html",
            title="Nodes",
            nav="nodes",
            s=_status(),
            token=token,
            token_qr=qr_svg(token, "Join token") if token else None,
            error=error,
        ),
        status,
    )


# Settings


def _zone() -> str:
    return str(store().get("timezone") or "UTC")


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings() -> Any:
    error, status = None, 200
    if request.method == "POST":
        try:
            values = {k: request.form.get(k, "").strip() for k in SETTINGS}
            upstream = sitework.check_upstream(request.form.get("upstream", ""))
            zone = sitework.check_timezone(request.form.get("timezone", _zone()))
            admin.change_settings(site(), values)
            if upstream != store().get("upstream", ""):
                sitework.set_upstream(upstream)
            store().put("timezone", zone)
            said = ", ".join(f"{k}={v}" for k, v in {**values, "timezone": zone}.items())
            event("settings", f"settings changed: {said}")
            flash("Settings saved. Every node picks them up within seconds.", "ok")
            return redirect(url_for("admin.settings"))
        except MeshprintError as err:
            error, status = str(err), form_status(err)
    current = site().directory().settings.describe()
    values = {k: request.form.get(k, current[k]) for k in SETTINGS}
    return (
        render_template(
            "admin/settings.html",
            title="Settings",
            nav="settings",
            labels=SETTINGS,
            values=values,
            upstream=request.form.get("upstream", store().get("upstream", "")),
            zones=sitework.timezones(),
            zone=request.form.get("timezone", _zone()),
            error=error,
        ),
        status,
    )


@bp.post("/password")
@admin_required
def password() -> Any:
    """The signed-in administrator changes their own password (the current one first)."""
    name = str(session["admin"])
    try:
        security.limited("login", name)
        if not store().check_admin(name, request.form.get("current", "")):
            security.failed("login", name)
            raise BadRequest("your current password is not right")
        new = request.form.get("password", "")
        if new != request.form.get("confirm", ""):
            raise BadRequest("the two new passwords differ")
        check_password(new, name)
    except MeshprintError as err:
        flash(str(err), "error")
        return redirect(url_for("admin.settings")), 303
    current = request.form.get("current", "")
    if name in authority.admins(data()):  # the admin key, re-wrapped: what it seals stays
        authority.change_password(data(), name, current, new)
    store().set_admin_password(name, new)
    event("admin", f"{name} changed their password")
    flash("Your password was changed.", "ok")
    return redirect(url_for("admin.settings"))


# Diagnostics

SECRET_WORDS = re.compile(
    r"(password|secret|token|key|community|auth|priv|share|wrapped)", re.IGNORECASE
)


PERSONAL_EVENTS = ("user", "admin", "release", "quota")  # they name people: not in the bundle


def scrub(value: Any) -> Any:
    """A copy of `value` with every secret-looking field replaced."""
    if isinstance(value, dict):
        return {
            k: "(removed)" if SECRET_WORDS.search(str(k)) else scrub(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


@bp.get("/diagnostics.zip")
@admin_required
def diagnostics() -> Any:
    directory = site().directory()
    doc = scrub(directory.doc)
    doc["users"] = {"count": len(directory.users)}
    if isinstance(doc.get("quotas"), dict) and "topups" in doc["quotas"]:
        doc["quotas"]["topups"] = {"users": len(doc["quotas"]["topups"])}  # names people
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(
            "about.json",
            json.dumps(
                {
                    "meshprint": __version__,
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
            ),
        )
        bundle.writestr("directory.json", json.dumps(doc, indent=2))
        status = scrub(_status())
        status.pop("events", None)
        bundle.writestr("status.json", json.dumps(status, indent=2, default=str))
        events = [
            {**e, "text": f"({e['kind']} event)"} if e["kind"] in PERSONAL_EVENTS else e
            for e in store().events(200)
        ]
        bundle.writestr("events.json", json.dumps(events, indent=2))
    buffer.seek(0)
    event("admin", "diagnostics bundle downloaded")
    stamp = time.strftime("%Y%m%d-%H%M")
    return send_file(
        buffer,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"meshprint-diagnostics-{stamp}.zip",
    )


@bp.app_template_global()
def printer_poster_url(name: str) -> str:
    return url_for("admin.poster", name=name)
