"""How many pages a document has, counted as it streams in at intake (never stored).

Only what the bytes say in the clear, chunk by chunk, in memory:

- PDF: the page tree's `/Count` (the largest `/Count` of a `/Type /Pages` dictionary is
  the root's), else the number of `/Type /Page` objects. A PDF whose page tree sits in
  compressed object streams shows neither: unknown.
- URF (Apple raster): the page count in the file header, else the pages walked.
- PWG raster: each page's header, walked one page at a time through its compressed
  lines (`TotalPageCount` is often 0, so it is not trusted).

Anything else (PostScript, PCL, JPEG counts as 1 page, text) is unknown or one page; the
usage figures then come from the printer.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator

_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_PDF_PAGE_AT_END = re.compile(rb"/Type\s*/Page\Z")
# a /Pages dictionary's /Count, after or before its /Type, within one dictionary level
_PDF_PAGES = re.compile(rb"/Type\s*/Pages(?![A-Za-z])")
_PDF_COUNT_AFTER = re.compile(rb"[^<>]*?/Count\s+(\d+)")  # from the end of its /Type
_PDF_COUNT = re.compile(rb"/Count\s+(\d+)")
_PDF_OVERLAP = 256  # a match cut between two chunks is found in the next one

PWG_SYNC = b"RaS2"
PWG_HEADER = 1796
URF_SYNC = b"UNIRAST\0"
URF_PAGE_HEADER = 32
MAX_PAGES = 100_000


class PageCounter:
    """Feed the document's chunks in order; `pages` is the count once all were fed
    (None: the format does not say)."""

    def __init__(self, document_format: str) -> None:
        self.format = document_format
        self._tail = b""
        self._page_objects = 0
        self._tree_count = 0
        self._raster: _RasterWalk | None = None
        self._head = b""
        if document_format == "image/pwg-raster":
            self._raster = _RasterWalk(pwg=True)
        elif document_format == "image/urf":
            self._raster = _RasterWalk(pwg=False)

    def feed(self, chunk: bytes) -> None:
        if self.format == "application/pdf":
            self._feed_pdf(chunk)
        elif self._raster is not None:
            if len(self._head) < 12:
                self._head += chunk[: 12 - len(self._head)]
            self._raster.feed(chunk)

    def _feed_pdf(self, chunk: bytes) -> None:
        data = self._tail + chunk
        known = len(self._tail)  # matches ending before this were counted last time
        # The patterns are tried only where a /Type is (one bytes.find pass skips the
        # rest many times faster than a regex search would).
        for at in _where(data, b"/Type"):
            match = _PDF_PAGE.match(data, at)
            if match is not None:
                # one ending at the very end waits: the next byte may make it /Pages
                if known <= match.end() < len(data):
                    self._page_objects += 1
            elif pages := _PDF_PAGES.match(data, at):  # the page tree: /Count after, before
                self._count(_PDF_COUNT_AFTER.match(data, pages.end()))
                start = max(data.rfind(b"<", 0, at), data.rfind(b">", 0, at)) + 1
                for count in _PDF_COUNT.finditer(data, start, at):
                    self._count(count)
        self._tail = data[-_PDF_OVERLAP:]

    def _count(self, match: re.Match[bytes] | None) -> None:
        if match:
            self._tree_count = max(self._tree_count, int(match.group(1)))

    @property
    def pages(self) -> int | None:
        if self.format == "application/pdf":
            last = 1 if _PDF_PAGE_AT_END.search(self._tail) else 0
            count = self._tree_count or self._page_objects + last
            return count if 0 < count <= MAX_PAGES else None
        if self.format == "image/urf" and self._raster is not None:
            if len(self._head) >= 12 and self._head.startswith(URF_SYNC):
                declared = int.from_bytes(self._head[8:12], "big")
                if 0 < declared <= MAX_PAGES:
                    return declared
            return self._raster.pages
        if self._raster is not None:
            return self._raster.pages
        if self.format in ("image/jpeg", "image/png"):
            return 1
        return None


def _where(data: bytes, name: bytes) -> Iterator[int]:
    """Every offset of `name` in `data`."""
    at = data.find(name)
    while at >= 0:
        yield at
        at = data.find(name, at + 1)


class _RasterWalk:
    """Walks PWG or URF raster pages: header, then `height` lines, each a repeat byte
    and packbits-style runs of pixels, without keeping more than one header."""

    def __init__(self, pwg: bool) -> None:
        self.pwg = pwg
        self.buf = bytearray()
        self.state = "sync"
        self.pages_done = 0
        self.bad = False
        self.lines_left = 0
        self.line_bytes = 0  # bytes of one line
        self.pixel = 0  # bytes of one pixel
        self.in_line = 0  # bytes of the current line decoded
        self.repeat = 0  # how many more times the current line is repeated
        self.skip = 0  # literal or repeated pixel bytes still to skip

    @property
    def pages(self) -> int | None:
        """Whole pages walked; None if the stream was not a raster or ended mid-page."""
        if self.bad or self.state != "header" or self.buf or self.skip:
            return None
        return self.pages_done or None

    def feed(self, chunk: bytes) -> None:
        if self.bad:
            return
        self.buf += chunk
        try:
            self._run()
        except ValueError:
            self.bad = True
            self.buf.clear()

    def _run(self) -> None:
        buf = self.buf
        pos = 0
        while True:
            if self.skip:
                take = min(self.skip, len(buf) - pos)
                pos += take
                self.skip -= take
                if self.skip:
                    break
                continue
            if self.state == "sync":
                size = 4 if self.pwg else 12
                if len(buf) - pos < size:
                    break
                sync = bytes(buf[pos : pos + size])
                if (self.pwg and sync != PWG_SYNC) or (not self.pwg and sync[:8] != URF_SYNC):
                    raise ValueError("not a raster stream")
                pos += size
                self.state = "header"
            elif self.state == "header":
                size = PWG_HEADER if self.pwg else URF_PAGE_HEADER
                if len(buf) - pos < size:
                    break
                self._start_page(bytes(buf[pos : pos + size]))
                pos += size
            elif self.state == "line":
                if len(buf) - pos < 1:
                    break
                self.repeat = buf[pos]  # the line stands for this many more lines
                pos += 1
                self.in_line = 0
                self.state = "runs"
            else:  # runs
                if len(buf) - pos < 1:
                    break
                code = buf[pos]
                pos += 1
                if code == 0x80 and not self.pwg:
                    count = self.line_bytes - self.in_line  # URF: the rest of the line is white
                    self.in_line += count
                elif code < 0x80:
                    self.in_line += (code + 1) * self.pixel
                    self.skip = self.pixel
                else:
                    count = (257 - code) * self.pixel
                    self.in_line += count
                    self.skip = count
                if self.in_line > self.line_bytes:
                    raise ValueError("a raster line is longer than the page")
                if self.in_line == self.line_bytes:
                    self._end_line()
        del buf[:pos]

    def _start_page(self, header: bytes) -> None:
        if self.pwg:
            width, height = struct.unpack(">II", header[372:380])
            bits_per_pixel, line_bytes = struct.unpack(">II", header[388:396])
        else:
            bits_per_pixel = header[0]
            width, height = struct.unpack(">II", header[12:20])
            line_bytes = width * (bits_per_pixel // 8)
        whole = bits_per_pixel % 8 == 0 or (self.pwg and bits_per_pixel in (1, 2, 4))
        if not (0 < width <= 100_000 and 0 < height <= 1_000_000 and bits_per_pixel and whole):
            raise ValueError("an implausible raster page header")
        # The runs repeat whole pixels, or whole bytes below 8 bits a pixel (black_1).
        self.pixel = max(bits_per_pixel // 8, 1)
        self.line_bytes = line_bytes
        if self.line_bytes != (width * bits_per_pixel + 7) // 8:
            raise ValueError("the raster line size does not match its width")
        self.lines_left = height
        self.state = "line"

    def _end_line(self) -> None:
        self.lines_left -= 1 + self.repeat
        if self.lines_left < 0:
            raise ValueError("a raster page has more lines than its header says")
        if self.lines_left > 0:
            self.state = "line"
            return
        self.pages_done += 1
        if self.pages_done > MAX_PAGES:
            raise ValueError("too many pages")
        self.state = "header"  # the sync word comes once, at the start
