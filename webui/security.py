"""Request-level security: CSRF tokens, security headers, session expiry, sign-in rate
limits and the `admin_required` guard."""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, abort, current_app, g, redirect, request, session, url_for

from appliance.ratelimit import Limiter

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def _check_csrf() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, "This form has expired or did not come from this page. Reload and try again.")


def _expire_session() -> None:
    """Sessions end after IDLE seconds without a request, and MAX_AGE after sign-in."""
    now = time.time()
    if "seen" in session:
        idle = current_app.config["SESSION_IDLE"]
        age = current_app.config["SESSION_MAX_AGE"]
        if now - session["seen"] > idle or now - session.get("born", now) > age:
            session.clear()
            g.session_expired = True
    session["seen"] = now
    session.setdefault("born", now)
    session.permanent = True


def _headers(response: Any) -> Any:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


def init(app: Flask) -> None:
    app.before_request(_expire_session)
    app.before_request(_check_csrf)
    app.after_request(_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token


def new_session(**values: Any) -> None:
    """Start a fresh session (no fixation): keep nothing from before but the given values."""
    session.clear()
    now = time.time()
    session.update(values, seen=now, born=now, csrf=secrets.token_urlsafe(32))
    session.permanent = True


# Rate limiting: failures per key in a sliding window (`appliance.ratelimit`, the
# limiter the node's /v1 APIs use too), kept in the web UI's database so that every
# gunicorn worker sees the same counts


def client_ip() -> str:
    return request.remote_addr or "unknown"


def _limiter() -> Limiter:
    from webui.context import store

    return Limiter(store(), current_app.config["RATE_LIMIT"], current_app.config["RATE_WINDOW"])


def limited(kind: str, *names: str) -> None:
    """Refuse with 429 and a clear message while `kind` has had too many failures for this
    client address or any of `names` (e.g. the account being tried)."""
    _limiter().check(kind, client_ip(), *names)


def failed(kind: str, *names: str) -> None:
    _limiter().failed(kind, client_ip(), *names)


def succeeded(kind: str, *names: str) -> None:
    _limiter().succeeded(kind, client_ip(), *names)


# Guards

View = Callable[..., Any]


def admin_required(view: View) -> View:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not session.get("admin"):
            return redirect(url_for("auth.login", next=request.path))
        return view(*args, **kwargs)

    return guarded
