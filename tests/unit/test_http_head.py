"""appliance.https.head: strict request heads; and the JSON body rules of Request.json."""

from __future__ import annotations

import io
import json

import pytest

from appliance.errors import BadRequest, MeshprintError, TooLarge, Unsupported
from appliance.https import head
from appliance.https.server import JSON_DEPTH, Body, Request, json_depth


def parse(text: bytes) -> head.Head:
    return head.parse(text)


def test_a_plain_head() -> None:
    got = parse(b"POST /v1/jobs?title=x HTTP/1.1\r\nHost: n\r\nContent-Length: 12\r\n\r\n")
    assert (got.method, got.target, got.version) == ("POST", "/v1/jobs?title=x", (1, 1))
    assert got.length == 12 and not got.chunked and got.keep_alive
    assert got.headers["host"] == "n"


def test_connection_close_and_http10_do_not_keep_alive() -> None:
    assert not parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive
    assert not parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive


def test_chunked() -> None:
    got = parse(b"PUT /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n")
    assert got.chunked and got.length is None


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b"GET /\r\n\r\n", BadRequest),
        (b"GET  / HTTP/1.1\r\n\r\n", BadRequest),
        (b"GET / HTTP/2.0\r\n\r\n", Unsupported),
        (b"GET / HTTPS/1.1\r\n\r\n", BadRequest),
        (b"PATCH / HTTP/1.1\r\n\r\n", Unsupported),
        (b"OPTIONS / HTTP/1.1\r\n\r\n", Unsupported),  # only the asterisk form
        (b"GET * HTTP/1.1\r\n\r\n", BadRequest),
        (b"G(T / HTTP/1.1\r\n\r\n", BadRequest),
        (b"GET http://x/ HTTP/1.1\r\n\r\n", BadRequest),
        (b"GET /a\x7f HTTP/1.1\r\n\r\n", BadRequest),
        (b"GET /" + b"a" * head.MAX_TARGET + b" HTTP/1.1\r\n\r\n", TooLarge),
        (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", BadRequest),
        (b"GET / HTTP/1.1\r\nName : v\r\n\r\n", BadRequest),
        (b"GET / HTTP/1.1\r\nA: 1\r\n\tfolded\r\n\r\n", BadRequest),
        (b"GET / HTTP/1.1\r\n" + b"A: 1\r\n" * (head.MAX_HEADERS + 1) + b"\r\n", TooLarge),
        (b"GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", BadRequest),
        # framing: nothing two parsers could read differently
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", BadRequest),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", BadRequest),
        (b"POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n", BadRequest),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", BadRequest),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", BadRequest),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Unsupported),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Unsupported),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", Unsupported),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
            Unsupported,
        ),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", BadRequest),
    ],
)
def test_refused_heads(wire: bytes, error: type[MeshprintError]) -> None:
    with pytest.raises(error):
        parse(wire)


def test_head_end_and_http09() -> None:
    assert head.head_end(b"GET / HTTP/1.1\r\nA: b\r\n") is None
    assert head.head_end(b"GET / HTTP/1.1\r\n\r\nBODY") == 18
    assert head.head_end(b"GET / HTTP/1.1\n\nBODY") == 16
    assert head.is_http09(b"GET /\r\n")
    assert head.is_http09(b"\r\nGET\n")
    assert not head.is_http09(b"GET / HTTP/1.1\r\n")
    assert not head.is_http09(b"GET /")  # the line is not complete yet
    assert not head.is_http09(b"\r\n")


# Request.json


def request(body: bytes) -> Request:
    return Request("POST", "/", {}, {}, Body(io.BytesIO(body), len(body), False), ("h", 1))


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_json_depth() -> None:
    assert json_depth(1) == 0
    assert json_depth({}) == 1
    assert json_depth({"a": [1, {"b": []}]}) == 4
    assert json_depth(json.loads(nested(40))) == 40


def test_json_within_the_depth_is_read() -> None:
    req = request(nested(JSON_DEPTH))
    assert json_depth(req.json()) == JSON_DEPTH
    assert req.json_read


@pytest.mark.parametrize(
    "body",
    [nested(JSON_DEPTH + 1), b"[" * 100_000, b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"],
)
def test_deeply_nested_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="nested deeper"):
        request(body).json()


@pytest.mark.parametrize("body", [b"[]", b"1", b'"x"', b"null", b"true"])
def test_json_that_is_not_an_object_is_a_bad_request(body: bytes) -> None:
    req = request(body)
    with pytest.raises(BadRequest, match="JSON object"):
        req.json()
    assert not req.json_read


@pytest.mark.parametrize("body", [b"{", b"\xff", b"{'a': 1}", b"NaN!"])
def test_invalid_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        request(body).json()


def test_empty_body_is_an_empty_object() -> None:
    assert request(b"").json() == {}
