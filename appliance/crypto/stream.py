"""Chunked ChaCha20-Poly1305 for documents of any size (the STREAM construction).

Layout: an 8-byte header (magic, chunk size), then chunks of `chunk_size` plaintext
bytes, each sealed with a 16-byte tag. The 12-byte nonce is the chunk's position
(11 bytes, big-endian) followed by a final-chunk flag, and every chunk's associated
data is the header plus the caller's context (the job id). So chunks cannot be
reordered, dropped, swapped between jobs or cut off at a chunk boundary without
`open` failing. A key must seal one stream only: meshprint makes a fresh key per job.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from appliance.errors import IntegrityError

MAGIC = b"MPS1"
HEADER = struct.Struct(">4sI")
HEADER_SIZE = HEADER.size
TAG_SIZE = 16
CHUNK_SIZE = 256 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024

Reader = Callable[[int], bytes]


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """Exact size of the sealed form of `plaintext_size` bytes."""
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + plaintext_size + chunks * TAG_SIZE


def plaintext_size(sealed_size: int, chunk_size: int) -> int:
    """The document size behind a sealed stream of `sealed_size` bytes (-1 if impossible)."""
    body = sealed_size - HEADER_SIZE
    chunks = max(1, -(-body // (chunk_size + TAG_SIZE)))
    size = body - chunks * TAG_SIZE
    if size < 0 or ciphertext_size(size, chunk_size) != sealed_size:
        return -1
    return size


def parse_header(header: bytes) -> int:
    """The chunk size from a sealed stream's header; IntegrityError if it is not one."""
    if len(header) < HEADER_SIZE:
        raise IntegrityError("sealed job is truncated (no header)")
    magic, chunk_size = HEADER.unpack(header[:HEADER_SIZE])
    if magic != MAGIC or not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError("not a meshprint sealed job")
    return int(chunk_size)


class Sealer:
    """Seals one stream chunk by chunk; the caller says which chunk is the last."""

    def __init__(self, key: bytes, context: bytes, chunk_size: int = CHUNK_SIZE) -> None:
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be 1..{MAX_CHUNK_SIZE} bytes")
        self._aead = ChaCha20Poly1305(key)
        self.chunk_size = chunk_size
        self.header = HEADER.pack(MAGIC, chunk_size)
        self._aad = self.header + context
        self._index = 0
        self._done = False

    def seal(self, chunk: bytes, final: bool) -> bytes:
        if self._done:
            raise ValueError("stream already finished")
        if len(chunk) > self.chunk_size or (not final and len(chunk) != self.chunk_size):
            raise ValueError("only the final chunk may be shorter than the chunk size")
        sealed = self._aead.encrypt(_nonce(self._index, final), chunk, self._aad)
        self._index += 1
        self._done = final
        return sealed


def encrypt_stream(
    read: Reader,
    key: bytes,
    context: bytes,
    chunk_size: int = CHUNK_SIZE,
    length: int | None = None,
) -> Iterator[bytes]:
    """Yield the header, then sealed chunks, of everything `read` returns until b"".

    `read(n)` must return up to n bytes (fewer only at the end, like a file). Knowing
    which chunk is final takes reading one ahead, unless the stream's `length` is said:
    then each chunk is sealed as soon as it is read, the one that reaches `length` (or
    comes short) as the final one, and nothing after it is read. Memory stays at two
    chunks.
    """
    sealer = Sealer(key, context, chunk_size)
    yield sealer.header
    if length is None:
        current = _read_full(read, chunk_size)
        while len(current) == chunk_size:
            following = _read_full(read, chunk_size)
            if not following:
                break
            yield sealer.seal(current, final=False)
            current = following
    else:
        current, left = b"", length
        while left and len(current := _read_full(read, min(chunk_size, left))) == chunk_size:
            left -= chunk_size
            if not left:
                break
            yield sealer.seal(current, final=False)
    yield sealer.seal(current, final=True)


def decrypt_stream(read: Reader, key: bytes, context: bytes) -> Iterator[bytes]:
    """Yield plaintext chunks of a sealed stream; raise IntegrityError on any tampering."""
    header = _read_full(read, HEADER_SIZE)
    chunk_size = parse_header(header)
    aead = ChaCha20Poly1305(key)
    aad = header + context
    sealed_size = chunk_size + TAG_SIZE
    index = 0
    current = _read_full(read, sealed_size)
    while True:
        following = _read_full(read, sealed_size) if len(current) == sealed_size else b""
        final = not following
        if len(current) < TAG_SIZE:
            raise IntegrityError("sealed job is truncated")
        try:
            yield aead.decrypt(_nonce(index, final), current, aad)
        except InvalidTag:
            raise IntegrityError(
                "sealed job failed authentication: it was tampered with, reordered or truncated"
            ) from None
        if final:
            return
        index += 1
        current = following


def _read_full(read: Reader, size: int) -> bytes:
    data = read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)
