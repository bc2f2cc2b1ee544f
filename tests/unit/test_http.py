"""appliance.https.server: reading request bodies (Content-Length and chunked) as streams."""

from __future__ import annotations

import io
import os

import pytest

from appliance.errors import BadRequest, TooLarge
from appliance.https.server import TRAILER_LINES, Body


def plain(data: bytes, length: int | None = None) -> Body:
    return Body(io.BytesIO(data), len(data) if length is None else length, chunked=False)


def chunked(wire: bytes) -> Body:
    return Body(io.BytesIO(wire), None, chunked=True)


def encode_chunks(*pieces: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


def read_everything(body: Body, n: int) -> bytes:
    parts = []
    while piece := body.read(n):
        assert len(piece) <= n
        parts.append(piece)
    return b"".join(parts)


# Content-Length


@pytest.mark.parametrize("n", [1, 7, 1000, 1 << 20])
def test_content_length_body(n: int) -> None:
    data = os.urandom(1000)
    body = plain(data)
    assert body.length == 1000
    assert not body.complete
    assert read_everything(body, n) == data
    assert body.complete
    assert body.received == 1000
    assert body.length == 1000
    assert body.read() == b""


def test_content_length_stops_at_the_length() -> None:
    stream = io.BytesIO(b"hello" + b"NEXT REQUEST")
    body = Body(stream, 5, chunked=False)
    assert body.read_all(100) == b"hello"
    assert body.read() == b""
    assert stream.read() == b"NEXT REQUEST"  # nothing past the body was consumed


@pytest.mark.parametrize("length", [0, None])
def test_empty_body(length: int | None) -> None:
    body = Body(io.BytesIO(b"unrelated"), length, chunked=False)
    assert body.complete
    assert body.read() == b""
    assert body.length == 0


@pytest.mark.parametrize("sent", [0, 1, 499])
def test_cut_off_body_is_a_bad_request(sent: int) -> None:
    body = plain(b"x" * sent, length=500)
    with pytest.raises(BadRequest, match="cut off") as err:
        read_everything(body, 64)
    assert f"{500 - sent} bytes never arrived" in str(err.value)
    assert not body.complete


def test_read_all_and_limit() -> None:
    assert plain(b"x" * 100).read_all(100) == b"x" * 100
    with pytest.raises(TooLarge):
        plain(b"x" * 101).read_all(100)
    with pytest.raises(TooLarge):
        chunked(encode_chunks(b"x" * 60, b"y" * 60)).read_all(100)


def test_drain() -> None:
    body = chunked(encode_chunks(b"a" * 10, b"b" * 20))
    body.drain()
    assert body.complete
    assert body.received == 30


# Chunked


@pytest.mark.parametrize("n", [1, 3, 10, 1 << 20])
def test_chunked_body(n: int) -> None:
    pieces = [os.urandom(10), os.urandom(1), os.urandom(300)]
    body = chunked(encode_chunks(*pieces))
    assert body.length is None
    assert read_everything(body, n) == b"".join(pieces)
    assert body.complete
    assert body.received == 311
    assert body.read() == b""


def test_chunked_upper_case_hex_and_bare_newlines() -> None:
    wire = b"1A\r\n" + b"z" * 26 + b"\r\n" + b"3\n" + b"abc\n" + b"0\n\n"
    assert chunked(wire).read_all(100) == b"z" * 26 + b"abc"


def test_chunked_body_with_extensions() -> None:
    wire = b'5;name=value\r\nhello\r\n6 ; a=1;b="x"\r\n world\r\n0;last\r\n\r\n'
    body = chunked(wire)
    assert body.read_all(100) == b"hello world"
    assert body.complete


def test_chunked_body_with_trailers_consumes_them() -> None:
    wire = encode_chunks(b"data", trailer=b"Checksum: abc\r\nX-Other: 1\r\n")
    stream = io.BytesIO(wire + b"GET /next HTTP/1.1\r\n")
    body = Body(stream, None, chunked=True)
    assert body.read_all(100) == b"data"
    assert body.complete
    assert stream.read() == b"GET /next HTTP/1.1\r\n"


def test_empty_chunked_body() -> None:
    body = chunked(b"0\r\n\r\n")
    assert body.read() == b""
    assert body.complete
    assert body.received == 0


@pytest.mark.parametrize(
    "wire",
    [
        b"",  # nothing at all
        b"5\r\nhel",  # inside a chunk
        b"5\r\nhello\r\n",  # before the next size line
        b"5\r\nhello",  # before the chunk's CRLF
    ],
)
def test_cut_off_chunked_body_is_a_bad_request(wire: bytes) -> None:
    with pytest.raises(BadRequest):
        chunked(wire).read_all(100)


@pytest.mark.parametrize(
    "size_line",
    [b"zz\r\n", b"\r\n", b"5 5\r\n", b";ext\r\n", b"five\r\n", b"0x\r\n"],
)
def test_malformed_chunk_size_is_a_bad_request(size_line: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed chunked upload"):
        chunked(size_line + b"hello\r\n0\r\n\r\n").read_all(100)


@pytest.mark.parametrize("buffered", [False, True], ids=["BytesIO", "BufferedReader"])
@pytest.mark.parametrize("size_line", [b"-5\r\n", b"-1\r\n"])
def test_negative_chunk_size_is_a_bad_request(size_line: bytes, buffered: bool) -> None:
    raw = io.BytesIO(size_line + b"hello\r\n0\r\n\r\n")
    rfile = io.BufferedReader(raw) if buffered else raw  # the server reads a buffered socket
    body = Body(rfile, None, chunked=True)
    with pytest.raises(BadRequest, match="malformed chunked upload"):
        body.read(100)


@pytest.mark.parametrize("size_line", [b"0x5\r\n", b"+5\r\n", b"0_5\r\n"])
def test_non_hex_chunk_size_is_a_bad_request(size_line: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed chunked upload"):
        chunked(size_line + b"hello\r\n0\r\n\r\n").read_all(100)


@pytest.mark.parametrize("after", [b"XX", b"lo\r\n", b"\r\r\n"])
def test_missing_crlf_after_chunk_data_is_a_bad_request(after: bytes) -> None:
    with pytest.raises(BadRequest, match="malformed chunked upload"):
        chunked(b"3\r\nhel" + after + b"0\r\n\r\n").read_all(100)


def test_chunk_longer_than_its_size_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="malformed"):
        chunked(b"3\r\nhello\r\n0\r\n\r\n").read_all(100)


# Trailers and chunk lines are bounded


def test_many_trailers_are_a_bad_request() -> None:
    wire = encode_chunks(b"data", trailer=b"X-T: 1\r\n" * (TRAILER_LINES + 1))
    with pytest.raises(BadRequest, match="trailers"):
        chunked(wire).read_all(100)


def test_trailers_up_to_the_limit_are_skipped() -> None:
    wire = encode_chunks(b"data", trailer=b"X-T: 1\r\n" * TRAILER_LINES)
    assert chunked(wire).read_all(100) == b"data"


@pytest.mark.parametrize(
    "trailer",
    [b"X-Long: " + b"a" * 2000 + b"\r\n", (b"X-T: " + b"a" * 900 + b"\r\n") * 10],
    ids=["one long line", "too many bytes"],
)
def test_large_trailers_are_a_bad_request(trailer: bytes) -> None:
    with pytest.raises(BadRequest, match="trailers"):
        chunked(encode_chunks(b"data", trailer=trailer)).read_all(100)


def test_an_endless_chunk_size_line_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="too long"):
        chunked(b"5;" + b"x" * 5000 + b"\r\nhello\r\n0\r\n\r\n").read_all(100)
