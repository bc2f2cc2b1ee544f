"""An IPP request on the wire: its attributes, then the document, in one HTTP body.

The attributes are read (at most ATTRIBUTES_MAX bytes) until their end tag and decoded
with the IPP codec; what follows is the document, passed on as a stream (`Document`)
that undoes gzip or deflate (RFC 1951, what `compression=deflate` is) as it is read and
never holds more than a chunk.
"""

from __future__ import annotations

import struct
import zlib

from appliance.errors import BadRequest, TooLarge
from appliance.mesh.replicate import Upload
from appliance.printers.ipp import IppMessage, IppParseError
from appliance.printers.ipp.parser import parse_with_data

ATTRIBUTES_MAX = 256 * 1024  # a request's attributes (a phone's are ~2 KB)
READ_SIZE = 64 * 1024
GZIP_CHUNK = 256 * 1024  # the most one read inflates at a time
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": -zlib.MAX_WBITS}  # zlib's for each


class Malformed(BadRequest):
    """Not a whole IPP request; `request_id` as far as it could be read (0 if not),
    `version` False when the version is one this printer does not speak."""

    def __init__(self, message: str, request_id: int = 0, version: bool = True) -> None:
        super().__init__(message)
        self.request_id, self.version = request_id, version


def attributes_end(data: bytes | bytearray) -> int | None:
    """Where the attributes of the IPP message in `data` end (after the end tag), or
    None if more must arrive. Walks the tag/length structure only."""
    pos = 8
    size = len(data)
    while pos < size:
        tag = data[pos]
        if tag == 0x03:
            return pos + 1
        if tag <= 0x0F:
            pos += 1
            continue
        if pos + 3 > size:
            return None
        (name_length,) = struct.unpack_from(">H", data, pos + 1)
        pos += 3 + name_length
        if pos + 2 > size:
            return None
        (value_length,) = struct.unpack_from(">H", data, pos)
        pos += 2 + value_length
    return None


def read_request(body: Upload) -> tuple[IppMessage, bytes]:
    """The request's attributes, decoded, and the first bytes of its document. Anything
    that is not a whole IPP request is a BadRequest."""
    data = bytearray()
    while True:
        end = attributes_end(data) if len(data) >= 9 else None
        if end is not None:
            break
        request_id = int.from_bytes(data[4:8], "big") if len(data) >= 8 else 0
        if len(data) >= 8 and data[0] not in (1, 2):
            raise Malformed(f"IPP version {data[0]} is not supported (1.1, 2.0)", request_id, False)
        if len(data) > ATTRIBUTES_MAX:
            raise TooLarge(f"the request's attributes are larger than {ATTRIBUTES_MAX} bytes")
        piece = body.read(READ_SIZE)
        if not piece:
            raise Malformed(
                "not an IPP request: it ends before its end-of-attributes tag", request_id
            )
        data += piece
    if data[0] not in (1, 2):
        request_id = int.from_bytes(data[4:8], "big")
        raise Malformed(f"IPP version {data[0]} is not supported (1.1, 2.0)", request_id, False)
    try:
        message, rest = parse_with_data(bytes(data))
    except IppParseError as err:
        raise Malformed(f"malformed IPP request: {err}", request_id) from None
    return message, rest


class Document:
    """The document after the attributes, as an `Upload`, its `compression` ("gzip" or
    "deflate"; "" or "none": none) undone as it streams. `sent`: its size as sent, when
    the request said it (a Content-Length); its `length` then, unless compressed."""

    def __init__(
        self, body: Upload, first: bytes, compression: str = "", sent: int | None = None
    ) -> None:
        self._body = body
        self._pending = first
        self.compression = compression if compression in WBITS else ""
        wbits = WBITS.get(compression)
        self._inflate = zlib.decompressobj(wbits) if wbits is not None else None
        self.length = sent if self._inflate is None else None
        self._ended = False
        self.received = 0  # bytes of the document as sent (compressed, if it was)

    def _raw(self, n: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
        else:
            data = self._body.read(n)
        self.received += len(data)
        return data

    def read(self, n: int = READ_SIZE) -> bytes:
        if self._inflate is None:
            return self._raw(n)
        while not self._ended:
            if self._inflate.unconsumed_tail:
                data = self._inflate.unconsumed_tail
            else:
                data = self._raw(READ_SIZE)
                if not data:
                    self._ended = True
                    if not self._inflate.eof:
                        raise BadRequest(f"the {self.compression}-compressed document is cut off")
                    return self._inflate.flush()
            try:
                out = self._inflate.decompress(data, min(n, GZIP_CHUNK))
            except zlib.error:
                raise BadRequest(f"the document is not valid {self.compression}") from None
            if self._inflate.eof and not self._inflate.unconsumed_tail:
                self._ended = True
            if out:
                return out
        return b""
