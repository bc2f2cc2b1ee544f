"""The web UI: setup wizard, admin console and release page (Flask; gunicorn in production).

`create_app()` builds the whole UI (what gunicorn serves on the appliance: `webui.wsgi:app`);
`create_app(mode="release")` only the release page and its sign-in, which the node serves
on its release port 9266 beside the /v1 release API (`appliance/api/wsgi.py`).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, redirect, url_for

from appliance.datadir import private_once
from webui import errors, security

MODES = ("full", "release")


def _secret_key(data: str | None) -> bytes:
    """The session-signing key, kept in DIR/webui-secret (0600) so workers and restarts
    agree (`private_once`: gunicorn's workers all start at once on first boot)."""
    if not data:
        return secrets.token_bytes(32)
    path = Path(data) / "webui-secret"
    key = private_once(path, lambda: secrets.token_bytes(32))
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: remove it and restart the web UI")
    return key


def create_app(config: dict[str, Any] | None = None, mode: str = "full") -> Flask:
    """The Flask app factory: defaults, then the instance config file, then `config`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        MESHPRINT_DATA=os.environ.get("MESHPRINT_DATA"),
        RELEASE_API=os.environ.get("MESHPRINT_RELEASE_API"),  # host:port of the node's 9266
        PUBLIC_HOST=os.environ.get("MESHPRINT_HOST"),  # the name people use, e.g. meshprint.local
        DISCOVERY_ENV=None,  # environment for avahi-browse (tests: a private D-Bus)
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="meshprint",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        SESSION_IDLE=30 * 60,
        SESSION_MAX_AGE=8 * 3600,
        RATE_LIMIT=5,
        RATE_WINDOW=5 * 60,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        MODE=mode,
        WHEELHOUSE=os.environ.get("MESHPRINT_WHEELHOUSE"),  # wheels served at /simple/
        WEB_CERT=os.environ.get("MESHPRINT_WEB_CERT"),  # offered at /appliance.pem
    )
    app.config.from_pyfile("webui.cfg", silent=True)
    if config:
        app.config.update(config)
    if "SECRET_KEY" not in app.config or not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(app.config["MESHPRINT_DATA"])
    if mode == "release":
        app.config["SESSION_COOKIE_NAME"] = "meshprint_release"
    security.init(app)
    errors.init(app)

    from webui.context import jinja_helpers
    from webui.views import admin, auth, release, setup, usage, wheels

    app.jinja_env.globals.update(jinja_helpers())
    app.register_blueprint(release.bp)
    if mode == "full":
        app.register_blueprint(auth.bp)
        app.register_blueprint(setup.bp)
        app.register_blueprint(admin.bp)
        app.register_blueprint(usage.bp)
        app.register_blueprint(wheels.bp)

    @app.get("/health")
    def health() -> Any:
        return {"ok": True}

    @app.get("/")
    def home() -> Any:
        if mode == "release":
            return redirect(url_for("release.index"))
        return redirect(url_for("admin.dashboard"))

    return app
