"""Counting a document's pages as it streams in (appliance/jobs/pages.py)."""

from __future__ import annotations

import struct
import zlib

import pytest

from appliance.jobs.pages import PageCounter
from tests.fixtures.documents import pdf


def counted(document_format: str, data: bytes, chunk: int = 7) -> int | None:
    counter = PageCounter(document_format)
    for start in range(0, len(data), chunk):
        counter.feed(data[start : start + chunk])
    return counter.pages


def packbits_line(row: bytes, pixel: int) -> bytes:
    """One line as PWG/URF runs: every pixel as a literal run of up to 128 pixels."""
    out = b""
    pixels = [row[i : i + pixel] for i in range(0, len(row), pixel)]
    while pixels:
        run, pixels = pixels[:128], pixels[128:]
        if len(run) == 1:
            out += b"\x00" + run[0]
        else:
            out += bytes([257 - len(run)]) + b"".join(run)
    return out


def page_lines(width: int, height: int, pixel: int) -> bytes:
    # first line literal, then one line repeated for the rest of the page
    literal = bytes(range(width * pixel)) if width * pixel < 256 else bytes(width * pixel)
    lines = b"\x00" + packbits_line(literal, pixel)
    rest = height - 1
    while rest:
        repeat = min(rest, 256)
        lines += bytes([repeat - 1]) + bytes([0x7F]) + b"\xff" * pixel  # 128 white pixels
        rest -= repeat
    return lines


def pwg(pages: int, width: int = 128, height: int = 300) -> bytes:
    out = b"RaS2"
    for _ in range(pages):
        header = bytearray(1796)
        header[372:380] = struct.pack(">II", width, height)
        header[384:396] = struct.pack(">III", 8, 24, width * 3)
        out += bytes(header) + page_lines(width, height, 3)
    return out


def urf(pages: int, declared: int | None = None, width: int = 128, height: int = 10) -> bytes:
    out = b"UNIRAST\0" + struct.pack(">I", pages if declared is None else declared)
    for _ in range(pages):
        header = bytes([24, 1, 1, 4]) + bytes(8) + struct.pack(">III", width, height, 300)
        out += header + bytes(8) + page_lines(width, height, 3)
    return out


@pytest.mark.parametrize("pages", [1, 3, 12])
def test_pdf_pages_from_the_page_tree(pages: int) -> None:
    assert counted("application/pdf", pdf(pages)) == pages


def test_pdf_pages_from_page_objects_when_the_tree_has_no_count() -> None:
    assert counted("application/pdf", pdf(4, tree=False)) == 4
    assert counted("application/pdf", pdf(4, tree=False), chunk=1) == 4
    assert counted("application/pdf", pdf(4, tree=False), chunk=100_000) == 4


@pytest.mark.parametrize("chunk", [1, 7, 100_000])
def test_pdf_page_tree_count_before_or_after_its_type(chunk: int) -> None:
    """The root /Pages dictionary's /Count, whichever side of /Type it is; a /Count of
    another dictionary (an outline's) never counts."""
    before = (
        pdf(2)
        .replace(b"/Type /Pages /Kids", b"/Count 9 /Kids")
        .replace(b"/Count 2 >>", b"/Type /Pages >>")
    )
    assert b"/Count 9 /Kids" in before and b"/Type /Pages >>" in before
    assert counted("application/pdf", before, chunk) == 9
    outline = b"<< /Type /Outlines /Count 40 >>\n"
    assert counted("application/pdf", pdf(3).replace(b"%%EOF", outline + b"%%EOF"), chunk) == 3


def test_pdf_whose_pages_are_compressed_is_unknown() -> None:
    hidden = b"%PDF-1.7\n1 0 obj\n<< /Type /ObjStm /Filter /FlateDecode >>\nstream\n"
    hidden += zlib.compress(pdf(3)) + b"\nendstream\nendobj\n%%EOF\n"
    assert counted("application/pdf", hidden) is None


@pytest.mark.parametrize("pages", [1, 2, 5])
def test_pwg_raster_pages_walked(pages: int) -> None:
    data = pwg(pages)
    assert counted("image/pwg-raster", data) == pages
    assert counted("image/pwg-raster", data, chunk=4096) == pages


def test_pwg_raster_cut_short_is_unknown() -> None:
    data = pwg(2)
    assert counted("image/pwg-raster", data[:-5]) is None
    assert counted("image/pwg-raster", b"not a raster at all") is None


def test_urf_page_count_from_its_header_else_walked() -> None:
    assert counted("image/urf", urf(3)) == 3
    assert counted("image/urf", urf(2, declared=0)) == 2


def test_other_formats() -> None:
    assert counted("image/jpeg", b"\xff\xd8\xff" + bytes(100)) == 1
    assert counted("text/plain", b"hello\n" * 100) is None
    assert counted("application/postscript", b"%!PS\nshowpage\n") is None
