"""Administrator sign-in and sign-out (rate-limited, one message for every failure)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for

from appliance.errors import MeshprintError, Unauthorized
from webui import security
from webui.context import event, store

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
            event("admin", f"{name} signed in")
            return redirect(target)
    return render_template("login.html", error=error, name=name, next=target), status


@bp.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("auth.login"))
