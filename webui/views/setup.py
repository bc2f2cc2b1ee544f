"""The setup wizard (/setup): setup code, administrator, site, time zone, printers, users,
the Secure Print queue, edge nodes, upstream broker, finish. Progress is kept in the web
UI's database, so it can be left and resumed; once finished, /setup is gone (404)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from appliance.crypto.password_policy import check_password
from appliance.errors import BadRequest, MeshprintError
from appliance.humanize import plain
from appliance.printers import registry
from appliance.site import admin, authority, setupcode
from appliance.site.authority import RecoveryKey
from appliance.site.ca import SiteCA
from appliance.site.directory import check_user_name
from appliance.site.enroll import create_site
from appliance.site.state import open_site
from webui import links, security, sitework, unlock
from webui.context import data, event, has_site, site, store
from webui.errors import form_status
from webui.qr import qr_svg

bp = Blueprint("setup", __name__, url_prefix="/setup")

STEPS = [
    ("code", "Setup code"),
    ("admin", "Administrator"),
    ("site", "Your site"),
    ("timezone", "Time zone"),
    ("printers", "Printers"),
    ("users", "Users"),
    ("queue", "Secure Print"),
    ("nodes", "Add an office PC"),
    ("upstream", "Upstream"),
    ("finish", "Finish"),
]
STEP_NAMES = [name for name, _ in STEPS]
RETENTION_CHOICES = ["30m", "1h", "2h", "4h", "8h", "12h", "1d", "2d", "3d"]


def done_steps() -> list[str]:
    return list(store().get("setup_steps", []))


def mark_done(step: str) -> None:
    steps = done_steps()
    if step not in steps:
        store().put("setup_steps", [*steps, step])


def next_step() -> str:
    done = done_steps()
    return next((name for name in STEP_NAMES if name not in done), "finish")


def go_next(step: str) -> Any:
    mark_done(step)
    return redirect(url_for("setup.step", name=next_step()))


@bp.before_request
def guard() -> Any:
    """Gone once finished; the code first; then the administrator who created it."""
    if setupcode.is_done(data().root):
        abort(404)
    step = (request.view_args or {}).get("name")
    if step == "code" or request.endpoint == "setup.index":
        return None
    if store().has_admin():
        if not session.get("admin"):
            return redirect(url_for("auth.login", next=request.path))
        return None
    if not session.get("claimed"):
        return redirect(url_for("setup.step", name="code"))
    if step not in ("admin", None):
        return redirect(url_for("setup.step", name="admin"))
    return None


@bp.get("/")
def index() -> Any:
    if store().has_admin() and not session.get("admin"):
        return redirect(url_for("auth.login", next=url_for("setup.index")))
    if not session.get("claimed") and not store().has_admin():
        return redirect(url_for("setup.step", name="code"))
    return redirect(url_for("setup.step", name=next_step()))


def page(step: str, status: int = 200, **values: Any) -> Any:
    index = STEP_NAMES.index(step)
    return (
        render_template(
            f"setup/{step}.html",
            steps=STEPS,
            step=step,
            done=done_steps(),
            title=f"Setup · {dict(STEPS)[step]}",
            number=index + 1,
            total=len(STEPS),
            **values,
        ),
        status,
    )


@bp.route("/<name>", methods=["GET", "POST"])
def step(name: str) -> Any:
    handler = HANDLERS.get(name)
    if handler is None:
        abort(404)
    if name not in ("code", "admin", "site") and not has_site():
        return redirect(url_for("setup.step", name="site"))
    try:
        return handler()
    except MeshprintError as err:
        return page(name, form_status(err), error=str(err), **_values(name))


def _values(name: str) -> dict[str, Any]:
    """What a step's page shows besides the form (for re-rendering after an error)."""
    if name == "site":
        return _site_values()
    if name == "printers":
        return _printer_values(discover=False)
    if name == "users":
        return {"users": site().directory().users}
    if name == "admin":
        return {"site_exists": has_site()}
    if name == "timezone":
        return {"zones": sitework.timezones(), "current": _zone()}
    if name == "upstream":
        return {"upstream": store().get("upstream", "")}
    return {}


def code_step() -> Any:
    if store().has_admin() or session.get("claimed"):
        return redirect(url_for("setup.index"))
    if request.method == "POST":
        security.limited("setup-code")
        if not setupcode.check(data().root, request.form.get("code", "")):
            security.failed("setup-code")
            raise BadRequest(
                "That is not this appliance's setup code. Check the code on the appliance's "
                "screen or in the file setup-code.txt on its memory card."
            )
        security.succeeded("setup-code")
        security.new_session(claimed=True)
        mark_done("code")
        return redirect(url_for("setup.step", name="admin"))
    return page("code")


def admin_step() -> Any:
    if store().has_admin():
        mark_done("admin")
        return redirect(url_for("setup.index"))
    if request.method == "POST":
        name = check_user_name(request.form.get("name", "").strip())
        password = request.form.get("password", "")
        if password != request.form.get("confirm", ""):
            raise BadRequest("the two passwords differ")
        check_password(password, name)
        ca = _existing_authority(request.form.get("recovery_key", ""))
        site_id = site().site_id if ca is not None else ""
        admin_key = authority.add_admin(data(), name, password, ca, site_id)
        store().add_admin(name, password)
        security.new_session(admin=name, claimed=True)
        unlock.keep(store(), name, admin_key)
        event("admin", f"administrator {name} created")
        return go_next("admin")
    return page("admin", **_values("admin"))


def _existing_authority(recovery_key: str) -> SiteCA | None:
    """The CA of a site made before the wizard ran (on the command line), opened with
    its recovery key so the first administrator gets a key to it; None without a site."""
    if not has_site():
        return None
    state = site()
    if state.ca.key is None:
        if not recovery_key.strip():
            raise BadRequest(
                "this site was made on the command line: give its recovery key, so this "
                "administrator can unlock the site authority"
            )
        authority.unlock(data(), state, RecoveryKey(recovery_key))
    return state.ca


def _zone() -> str:
    return str(store().get("timezone") or "UTC")


def _site_values() -> dict[str, Any]:
    values: dict[str, Any] = {"retentions": RETENTION_CHOICES, "exists": has_site()}
    if has_site():
        directory = site().directory()
        values.update(
            site_name=directory.name, retention=directory.settings.describe()["retention"]
        )
    else:
        values.update(site_name="", retention="8h")
    return values


def site_step() -> Any:
    if request.method == "POST":
        retention = request.form.get("retention", "8h").strip()
        if not has_site():
            name = request.form.get("site_name", "").strip()
            if not name:
                raise BadRequest("give your site a name, e.g. the office's name")
            from appliance.config import LIMITS

            LIMITS["retention"].parse("retention", retention)  # check before creating
            created = create_site(data(), name, _certificate_host())
            _seal_for_admin(created.authority)
            event("site", f"site {name} created")
            admin.change_settings(site(), {"retention": retention})
            mark_done("site")
            # Shown once, in this answer only: it is stored nowhere.
            return page(
                "site",
                recovery_key=created.recovery_key,
                next_step=next_step(),
                **_site_values(),
            )
        admin.change_settings(site(), {"retention": retention})
        return go_next("site")
    return page("site", **_site_values())


def _seal_for_admin(ca: SiteCA) -> None:
    """Seal the new site's CA key under the signed-in administrator's admin key (it is
    already sealed under the recovery key), so their sessions unlock it."""
    found = unlock.admin_key(store())
    if found is None:
        flash(
            "The site authority is sealed under the recovery key only: sign in again "
            "and give an administrator a key with 'meshprint admin add'.",
            "error",
        )
        return
    _, state = open_site(data())
    state.ca = ca
    authority.give_authority(data(), found[0], found[1], state)


def _certificate_host() -> str | None:
    host = links.host()
    return None if host in ("localhost", "127.0.0.1") else host


def timezone_step() -> Any:
    if request.method == "POST":
        store().put("timezone", sitework.check_timezone(request.form.get("timezone", "")))
        return go_next("timezone")
    return page("timezone", **_values("timezone"))


def _printer_values(discover: bool = True) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    problem = None
    if discover:
        try:
            found = sitework.discover(fresh=request.args.get("search") == "1")
        except MeshprintError as err:
            problem = f"Searching the network did not work: {err}"
    printers = list(registry.printers(site().directory().doc).values())
    return {"found": found, "printers": printers, "search_problem": problem}


def printers_step() -> Any:
    if request.method == "POST":
        action = request.form.get("action")
        if action == "add":
            record, said = sitework.add_printer(request.form.to_dict())
            flash(f"Added {record.name} ({said}). Print a test page to check it.", "ok")
        elif action == "test":
            report = sitework.test_printer(request.form.get("name", ""))
            _flash_report(report)
        elif action == "continue":
            return go_next("printers")
        else:
            raise BadRequest("unknown action")
        return redirect(url_for("setup.step", name="printers"))
    return page("printers", **_printer_values())


def _flash_report(report: dict[str, Any]) -> None:
    if report["test_page"] and report["test_page"].startswith("printed"):
        flash(f"Test page printed on {report['printer']}.", "ok")
    elif report["test_page"]:
        flash(f"Test page on {report['printer']}: {plain(report['test_page'])}.", "warn")
    else:
        problems = plain("; ".join(report["problems"])) or "no answer"
        flash(f"{report['printer']} is not ready: {problems}", "error")


def users_step() -> Any:
    added: list[sitework.NewUser] = []
    if request.method == "POST":
        action = request.form.get("action")
        if action == "add":
            added = [
                sitework.add_user(
                    request.form.get("name", ""),
                    request.form.get("password", ""),
                    request.form.get("confirm", ""),
                )
            ]
        elif action == "import":
            added, problems = sitework.import_users(request.files.get("csv"))
            if problems:
                return page("users", 400, problems=problems, users=site().directory().users)
        elif action == "continue":
            return go_next("users")
        else:
            raise BadRequest("unknown action")
    return page("users", added=added, users=site().directory().users)


def queue_step() -> Any:
    if request.method == "POST":
        return go_next("queue")
    url = links.release_url()
    return page(
        "queue",
        queue=links.queue_uri(),
        release=url,
        release_qr=qr_svg(url, "Release page"),
        host=links.host(),
    )


def nodes_step() -> Any:
    token = None
    if request.method == "POST":
        if request.form.get("action") == "continue":
            return go_next("nodes")
        token = sitework.invite(request.form.get("ttl", "1h")).encode()
    return page(
        "nodes",
        token=token,
        token_qr=qr_svg(token, "Join token") if token else None,
    )


def upstream_step() -> Any:
    if request.method == "POST":
        sitework.set_upstream(request.form.get("upstream", ""))
        return go_next("upstream")
    return page("upstream", upstream=store().get("upstream", ""))


def finish_step() -> Any:
    if request.method == "POST":
        setupcode.void(data().root)
        store().put("setup_complete", True)
        event("site", "setup finished")
        flash("Setup is finished. This is your dashboard.", "ok")
        return redirect(url_for("admin.dashboard"))
    directory = site().directory()
    return page(
        "finish",
        site_name=directory.name,
        printers=list(registry.printers(directory.doc)),
        users=directory.users,
        zone=_zone(),
        upstream=store().get("upstream", ""),
        retention=directory.settings.describe()["retention"],
    )


HANDLERS = {
    "code": code_step,
    "admin": admin_step,
    "site": site_step,
    "timezone": timezone_step,
    "printers": printers_step,
    "users": users_step,
    "queue": queue_step,
    "nodes": nodes_step,
    "upstream": upstream_step,
    "finish": finish_step,
}
