"""Serve a WSGI application (the web release page) from one of the node's own HTTPS
servers: the release port 9266 answers /v1/… itself and hands every other path to the
Flask release blueprint, in-process, through this small adapter (the node, which
composes the servers, builds the web UI and passes it in: the API does not import it).

Pages are small, so the WSGI answer is collected into one body. Only one Set-Cookie
header is kept (the release page sets one session cookie).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from appliance.https.server import Request, Response

BODY_LIMIT = 2 * 1024 * 1024
_SKIP = {"content-type", "content-length", "cache-control", "connection", "transfer-encoding"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def adapter(app: WsgiApp, server_port: int) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        body = request.body.read_all(BODY_LIMIT)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": request.path,
            "QUERY_STRING": request.raw_query or urlencode(request.query),
            "SERVER_NAME": "meshprint",
            "SERVER_PORT": str(server_port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": request.client[0],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in request.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            started["status"], started["headers"] = status, headers
            return lambda data: None

        result = app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        response = Response(int(started["status"].split()[0]), payload)
        for name, value in started["headers"]:
            if name.lower() == "content-type":
                response.content_type = value
            elif name.lower() not in _SKIP:
                response.headers[name] = value
        return response

    return handle
