"""The WSGI adapter that lets the node's release server hand non-/v1 paths to the web
release page (appliance/api/wsgi.py), with a plain WSGI app standing in for Flask."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from email.message import Message
from typing import Any

from appliance.api.wsgi import adapter
from appliance.https.server import Body, Request


def _request(method: str, path: str, raw_query: str = "", body: bytes = b"") -> Request:
    headers = Message()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["Cookie"] = "a=b"
    return Request(
        method=method,
        path=path,
        query={},
        headers=headers,
        body=Body(io.BytesIO(body), len(body), False),
        client=("192.0.2.7", 5555),
        raw_query=raw_query,
    )


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    seen = (
        f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?{environ['QUERY_STRING']} "
        f"{environ['wsgi.url_scheme']} {environ['REMOTE_ADDR']} {environ['CONTENT_TYPE']} "
        f"{environ['HTTP_COOKIE']} {environ['wsgi.input'].read().decode()}"
    )
    start_response(
        "201 Created",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", "999"),
            ("Set-Cookie", "s=1; Secure; HttpOnly"),
            ("X-Frame-Options", "DENY"),
        ],
    )
    return [seen.encode(), b"!"]


def test_request_reaches_the_app_and_its_answer_comes_back() -> None:
    handle = adapter(echo, 9266)
    response = handle(_request("POST", "/release/login", "r=a&r=b", b"name=alice"))
    assert response.status == 201
    assert response.body == (
        b"POST /release/login?r=a&r=b https 192.0.2.7 application/x-www-form-urlencoded "
        b"a=b name=alice!"
    )
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.headers == {"Set-Cookie": "s=1; Secure; HttpOnly", "X-Frame-Options": "DENY"}
