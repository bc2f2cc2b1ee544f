"""Administrator sign-in and sign-out (rate-limited, one message for every failure)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from appliance.errors import Forbidden, MeshprintError, Unauthorized
from appliance.site import authority
from appliance.site.state import open_site
from webui import security, unlock
from webui.context import data, event, has_site, store

bp = Blueprint("auth", __name__)
WRONG = "Wrong name or password."


def safe_next(target: str | None, default: str) -> str:
    """Only paths on this site (no //host, no scheme) are followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if not store().has_admin():
        return redirect(url_for("setup.index"))
    target = safe_next(request.values.get("next"), url_for("admin.dashboard"))
    error, name, status = None, "", 200
    if request.method == "POST":
        name = request.form.get("name", "").strip()[:64]
        password = request.form.get("password", "")
        try:
            security.limited("login", name)
            if not name or not password or not store().check_admin(name, password):
                security.failed("login", name)
                raise Unauthorized(WRONG)
        except MeshprintError as err:
            error, status = str(err), err.status
        else:
            security.succeeded("login", name)
            security.new_session(admin=name)
            _unlock(name, password)
            event("admin", f"{name} signed in")
            return redirect(target)
    return render_template("login.html", error=error, name=name, next=target), status


def _unlock(name: str, password: str) -> None:
    """Open this administrator's admin key for the session (`webui.unlock`); an account
    from before admin keys gets one now, and a CA key still in the clear is sealed under
    it and removed (`authority.unlock_with_admin_key`)."""
    state = open_site(data())[1] if has_site() else None
    try:
        if name not in authority.admins(data()):
            if state is None or state.ca.key is None:
                raise Forbidden(
                    f"administrator {name} has no key to the site authority: give them one "
                    f"on the controller with 'meshprint admin add {name}'"
                )
            authority.add_admin(data(), name, password, state.ca, state.site_id)
        admin_key = authority.open_admin_key(data(), name, password)
        unlock.keep(store(), name, admin_key)
        if state is not None:
            authority.unlock_with_admin_key(data(), state, name, admin_key)
    except MeshprintError as err:
        flash(f"Signed in, but the site authority stays locked: {err}", "error")


@bp.post("/logout")
def logout() -> Any:
    unlock.forget(store())
    session.clear()
    return redirect(url_for("auth.login"))
