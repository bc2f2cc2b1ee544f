"""The node printer's wire format: where attributes end, the document after them, gzip."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import pytest

from appliance.errors import BadRequest, TooLarge
from appliance.intake.ipp.wire import ATTRIBUTES_MAX, Document, Malformed, read_request

HEAD = (
    b"\x02\x00\x00\x02\x00\x00\x00\x2a\x01"
    b"\x47\x00\x12attributes-charset\x00\x05utf-8"
    b"\x48\x00\x1battributes-natural-language\x00\x02en"
    b"\x03"
)


class Trickle:
    """A body that arrives a few bytes at a time."""

    length = None

    def __init__(self, data: bytes, step: int = 3) -> None:
        self.data, self.step = io.BytesIO(data), step

    def read(self, n: int = 65536) -> bytes:
        return self.data.read(min(n, self.step))


def test_attributes_then_the_document_whatever_the_reads() -> None:
    body = Trickle(HEAD + b"%PDF-1.4 rest", step=5)
    message, first = read_request(body)
    assert message.code == 2 and message.request_id == 42
    assert message.first("attributes-charset") == "utf-8"
    document = Document(body, first)
    out = b""
    while piece := document.read(4):
        out += piece
    assert out == b"%PDF-1.4 rest"


@pytest.mark.parametrize(
    "bad",
    [
        HEAD[:12],  # cut off
        HEAD[:-1] + b"\x45\xff\xff",  # a name length past the end
        HEAD[:8] + b"\x45\x00\x01a\x00\x00\x03",  # an attribute before any group
    ],
)
def test_malformed_requests_are_bad_requests(bad: bytes) -> None:
    try:
        read_request(Trickle(bad))
    except BadRequest:
        return
    pytest.fail("accepted")  # pragma: no cover


def test_a_version_it_does_not_speak_keeps_the_request_id() -> None:
    with pytest.raises(Malformed) as info:
        read_request(Trickle(b"\x09\x09" + HEAD[2:]))
    assert not info.value.version and info.value.request_id == 42


def test_endless_attributes_are_too_large() -> None:
    endless = HEAD[:-1] + (b"\x44\x00\x01k\x00\x01v" * (ATTRIBUTES_MAX // 7 + 10))
    with pytest.raises(TooLarge):
        read_request(Trickle(endless, step=65536))


def _deflate(data: bytes) -> bytes:
    """Raw deflate (RFC 1951), as libcups sends `compression=deflate`."""
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_compression_is_undone_as_it_streams_and_a_cut_is_refused(compression: str) -> None:
    data = os.urandom(300_000) + bytes(700_000)
    packed = gzip.compress(data) if compression == "gzip" else _deflate(data)
    document = Document(Trickle(packed[100:], step=4096), packed[:100], compression)
    out = bytearray()
    while piece := document.read(65536):
        assert len(piece) <= 65536
        out += piece
    assert bytes(out) == data
    cut = Document(Trickle(packed[: len(packed) // 2], step=4096), b"", compression)
    with pytest.raises(BadRequest, match=f"{compression}-compressed document is cut off"):
        while cut.read(65536):
            pass
    with pytest.raises(BadRequest, match=f"not valid {compression}"):
        Document(Trickle(b"\xff\xfe not compressed at all"), b"", compression).read(100)


def test_the_documents_length_is_what_was_sent_unless_it_is_compressed() -> None:
    assert Document(Trickle(b"rest"), b"%PDF", sent=8).length == 8  # sealed as it arrives
    assert Document(Trickle(b"rest"), b"%PDF").length is None  # chunked: not known
    assert Document(Trickle(b"packed"), b"", "gzip", sent=6).length is None  # inflated size
