"""Serve the web UI over HTTPS in a thread (werkzeug), for `make demo` and the browser
tests. On the appliance gunicorn serves `webui.wsgi:app` with the device certificate."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from appliance.site import ca


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host` (and localhost), made once in `directory`."""
    cert_path, key_path = directory / "web.pem", directory / "web.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = ca.self_signed("meshprint web UI", ["localhost", host], days=825)
    ca.write_private(key_path, ca.key_pem(key))
    cert_path.write_bytes(ca.cert_pem(cert))
    return cert_path, key_path


class WebServer:
    """The app on https://HOST:PORT in a daemon thread; `stop()` shuts it down."""

    def __init__(self, app: Flask, host: str, port: int, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        self.server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, ssl_context=context
        )
        self.url = f"https://{host}:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webui", daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_demo(
    root: Path, data: Path, release: str, env: dict[str, str] | None = None
) -> tuple[WebServer, str]:
    """`make demo`: the whole web UI for the node in `data` on a loopback port; returns
    the server and the setup code that claims it."""
    from appliance.devtools.processes import free_port
    from appliance.site import setupcode
    from webui import create_app

    code = setupcode.ensure(data)
    app = create_app(
        {
            "MESHPRINT_DATA": str(data),
            "RELEASE_API": release,
            "RELEASE_URL": f"https://{release}",
            "DISCOVERY_ENV": env,
        }
    )
    cert, key = self_signed(root / "web")
    return WebServer(app, "127.0.0.1", free_port(), cert, key).start(), code
