"""The head of an HTTP/1.x request: finding where it ends, and parsing it strictly.

Strict on purpose: the server sits behind nothing, so every ambiguity that lets two
parsers disagree about where a request ends (both Content-Length and chunked, a transfer
coding other than exactly `chunked`, a header name with a space before its colon,
folded lines, duplicate lengths) is refused with a typed error, not guessed at.
"""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass

from appliance.errors import BadRequest, TooLarge, Unsupported

MAX_HEAD = 32 * 1024
MAX_HEADERS = 100
MAX_TARGET = 8 * 1024
METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(r"/[\x21-\x7e]*")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_LENGTH = re.compile(r"\d{1,18}")


def head_end(buffer: bytes | bytearray) -> int | None:
    """The offset just past the blank line that ends the head, or None if not there yet."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    ends = [i + 4 for i in (crlf,) if i >= 0] + [i + 2 for i in (lf,) if i >= 0]
    return min(ends) if ends else None


def is_http09(buffer: bytes | bytearray) -> bool:
    """True once the first line is complete and names no HTTP version (`GET /`): a
    request of HTTP/0.9, which has no head to wait for and no status line to answer."""
    line, newline, _ = bytes(buffer).lstrip(b"\r\n").partition(b"\n")
    if not newline:
        return False
    return len(line.split()) < 3


@dataclass
class Head:
    method: str
    target: str
    version: tuple[int, int]
    headers: http.client.HTTPMessage
    length: int | None  # Content-Length, None when absent or chunked
    chunked: bool
    keep_alive: bool
    expect_continue: bool


def parse(raw: bytes) -> Head:
    """Parse a complete head (request line, header lines, blank line). Raises BadRequest,
    TooLarge or Unsupported with a message for the client."""
    text = raw.decode("latin-1").lstrip("\r\n")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise BadRequest("empty request")
    method, target, version = _request_line(lines[0])
    headers = _headers(lines[1:])
    length, chunked = _framing(headers, version)
    connection = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
    keep_alive = version >= (1, 1) and "close" not in connection
    expect = headers.get("Expect", "").strip().lower()
    if expect and expect != "100-continue":
        raise BadRequest(f"unsupported expectation: {expect[:40]}")
    return Head(method, target, version, headers, length, chunked, keep_alive, bool(expect))


def _request_line(line: str) -> tuple[str, str, tuple[int, int]]:
    parts = line.split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    found = _VERSION.fullmatch(version)
    if found is None:
        raise BadRequest("malformed request line")
    number = (int(found[1]), int(found[2]))
    if number not in ((1, 0), (1, 1)):
        raise Unsupported(f"HTTP version {found[1]}.{found[2]} is not supported")
    if not _TOKEN.fullmatch(method):
        raise BadRequest("malformed request method")
    if method == "OPTIONS" and target == "*":
        return method, target, number  # the asterisk form (an RFC 2817 upgrade to TLS)
    if method not in METHODS:
        raise Unsupported(f"method {method[:20]} is not supported")
    if len(target) > MAX_TARGET:
        raise TooLarge(f"request target is longer than {MAX_TARGET} bytes")
    if not _TARGET.fullmatch(target):
        raise BadRequest("malformed request target")
    return method, target, number


def _headers(lines: list[str]) -> http.client.HTTPMessage:
    if len(lines) > MAX_HEADERS:
        raise TooLarge(f"more than {MAX_HEADERS} header lines")
    headers = http.client.HTTPMessage()
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise BadRequest("malformed header line")  # also folded lines and "Name :"
        if any(c in value for c in "\r\n\0"):
            raise BadRequest("malformed header value")
        headers[name] = value.strip(" \t")
    return headers


def _framing(headers: http.client.HTTPMessage, version: tuple[int, int]) -> tuple[int | None, bool]:
    """Where the body ends: (Content-Length, chunked)."""
    codings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if codings and lengths:
        raise BadRequest("a request may not have both Transfer-Encoding and Content-Length")
    if codings:
        if version < (1, 1):
            raise BadRequest("Transfer-Encoding needs HTTP/1.1")
        if len(codings) != 1 or codings[0].strip().lower() != "chunked":
            raise Unsupported("the only transfer coding accepted is chunked")
        return None, True
    if not lengths:
        return None, False
    if len(lengths) != 1 or not _LENGTH.fullmatch(lengths[0].strip()):
        raise BadRequest("bad Content-Length")
    return int(lengths[0]), False
