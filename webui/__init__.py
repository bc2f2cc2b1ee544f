"""The web UI: setup wizard, admin console and release page (Flask; gunicorn in production)."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The Flask app factory: defaults, then the instance config file, then `config`."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(MESHPRINT_DATA=None)
    app.config.from_pyfile("webui.cfg", silent=True)
    if config:
        app.config.update(config)

    @app.get("/health")
    def health() -> Any:
        return jsonify(ok=True)

    return app
