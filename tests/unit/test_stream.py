"""appliance.crypto.stream: chunked ChaCha20-Poly1305 (STREAM) round trips and tampering."""

from __future__ import annotations

import io
import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.crypto.stream import (
    CHUNK_SIZE,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_CHUNK_SIZE,
    TAG_SIZE,
    Sealer,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
    parse_header,
    plaintext_size,
)
from appliance.errors import IntegrityError

CHUNK = 64
SEALED_CHUNK = CHUNK + TAG_SIZE
KEY = bytes(range(32))
CONTEXT = b"j0123456789abcdef01234567"


def seal(data: bytes, key: bytes = KEY, context: bytes = CONTEXT, chunk: int = CHUNK) -> bytes:
    return b"".join(encrypt_stream(io.BytesIO(data).read, key, context, chunk))


def unseal(sealed: bytes, key: bytes = KEY, context: bytes = CONTEXT) -> bytes:
    return b"".join(decrypt_stream(io.BytesIO(sealed).read, key, context))


def split(sealed: bytes, chunk: int = CHUNK) -> tuple[bytes, list[bytes]]:
    """The header and the sealed chunks of a stream."""
    step = chunk + TAG_SIZE
    body = sealed[HEADER_SIZE:]
    return sealed[:HEADER_SIZE], [body[i : i + step] for i in range(0, len(body), step)]


def dribble(data: bytes, step: int = 7) -> Callable[[int], bytes]:
    """A reader that returns at most `step` bytes per call, like a slow socket."""
    buffer = io.BytesIO(data)

    def read(n: int) -> bytes:
        return buffer.read(min(n, step))

    return read


SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 17]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    assert unseal(sealed) == data
    if size >= 16:  # shorter data could turn up in random ciphertext by chance
        assert data not in sealed  # the plaintext is not stored in the clear


@pytest.mark.parametrize("size", SIZES)
def test_sizes_agree_with_output(size: int) -> None:
    sealed = seal(os.urandom(size))
    assert len(sealed) == ciphertext_size(size, CHUNK)
    assert plaintext_size(len(sealed), CHUNK) == size
    chunks = max(1, -(-size // CHUNK))
    assert len(split(sealed)[1]) == chunks


def test_round_trip_at_default_chunk_size() -> None:
    data = os.urandom(2 * CHUNK_SIZE + 1)
    sealed = b"".join(encrypt_stream(io.BytesIO(data).read, KEY, CONTEXT))
    assert parse_header(sealed[:HEADER_SIZE]) == CHUNK_SIZE
    assert len(sealed) == ciphertext_size(len(data))
    assert plaintext_size(len(sealed), CHUNK_SIZE) == len(data)
    assert len(split(sealed, CHUNK_SIZE)[1]) == 3
    assert b"".join(decrypt_stream(io.BytesIO(sealed).read, KEY, CONTEXT)) == data


def test_short_reads_on_both_sides() -> None:
    data = os.urandom(4 * CHUNK + 5)
    sealed = b"".join(encrypt_stream(dribble(data), KEY, CONTEXT, CHUNK))
    assert sealed[:HEADER_SIZE] == HEADER.pack(MAGIC, CHUNK)
    assert len(sealed) == ciphertext_size(len(data), CHUNK)
    assert unseal(sealed) == data
    assert b"".join(decrypt_stream(dribble(sealed, 5), KEY, CONTEXT)) == data


def test_output_chunks_are_sealed_chunks() -> None:
    pieces = list(encrypt_stream(io.BytesIO(os.urandom(2 * CHUNK + 3)).read, KEY, CONTEXT, CHUNK))
    assert [len(p) for p in pieces] == [HEADER_SIZE, SEALED_CHUNK, SEALED_CHUNK, 3 + TAG_SIZE]
    assert pieces[0] == HEADER.pack(MAGIC, CHUNK)


@pytest.mark.parametrize("size", SIZES)
def test_a_said_length_seals_the_same_stream(size: int) -> None:
    data = os.urandom(size)
    said = b"".join(encrypt_stream(dribble(data), KEY, CONTEXT, CHUNK, size))
    assert said == seal(data)  # the same key and nonces: the very same bytes


def test_a_said_length_seals_each_chunk_before_reading_the_next() -> None:
    """A job's pieces go on to the disk and the peers as they arrive: none waits for
    the next one to be read (which, from a client, may still be on its way)."""
    data = os.urandom(3 * CHUNK + 5)
    buffer, reads = io.BytesIO(data), []

    def read(n: int) -> bytes:
        reads.append(buffer.tell())
        return buffer.read(n)

    seen = []
    for piece in encrypt_stream(read, KEY, CONTEXT, CHUNK, len(data)):
        seen.append((len(piece), buffer.tell()))
    header, *chunks = seen
    assert header == (HEADER_SIZE, 0)  # before anything is read
    assert chunks == [
        (SEALED_CHUNK, CHUNK),
        (SEALED_CHUNK, 2 * CHUNK),
        (SEALED_CHUNK, 3 * CHUNK),
        (5 + TAG_SIZE, len(data)),
    ]
    assert reads == [0, CHUNK, 2 * CHUNK, 3 * CHUNK]  # nothing read past the length


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700), chunk=st.integers(min_value=1, max_value=200))
def test_round_trip_any_size_and_chunk(data: bytes, chunk: int) -> None:
    sealed = seal(data, chunk=chunk)
    assert len(sealed) == ciphertext_size(len(data), chunk)
    assert plaintext_size(len(sealed), chunk) == len(data)
    assert unseal(sealed) == data


# Tampering: every case must raise IntegrityError once the stream is read to its end.

DATA = os.urandom(3 * CHUNK + 20)  # three full chunks and a short final one
SEALED = seal(DATA)


def test_flipping_any_byte_is_detected() -> None:
    for position in range(len(SEALED)):
        tampered = bytearray(SEALED)
        tampered[position] ^= 0x01
        with pytest.raises(IntegrityError):
            unseal(bytes(tampered))


@settings(max_examples=50, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_flipping_any_bit_is_detected(position: int, bit: int) -> None:
    tampered = bytearray(SEALED)
    tampered[position % len(SEALED)] ^= 1 << bit
    with pytest.raises(IntegrityError):
        unseal(bytes(tampered))


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 2), (0, 2), (2, 3)])
def test_reordering_chunks_is_detected(a: int, b: int) -> None:
    header, chunks = split(SEALED)
    if len(chunks[a]) != len(chunks[b]):
        # Swapping the short final chunk in: lay the stream out so it still parses.
        chunks = [*chunks[:a], chunks[b], *chunks[a + 1 : b], chunks[a]]
    else:
        chunks[a], chunks[b] = chunks[b], chunks[a]
    with pytest.raises(IntegrityError):
        unseal(header + b"".join(chunks))


@pytest.mark.parametrize("index", [1, 2])
def test_dropping_a_middle_chunk_is_detected(index: int) -> None:
    header, chunks = split(SEALED)
    del chunks[index]
    with pytest.raises(IntegrityError):
        unseal(header + b"".join(chunks))


@pytest.mark.parametrize("size", [3 * CHUNK, 3 * CHUNK + 20])
def test_dropping_the_final_chunk_is_detected(size: int) -> None:
    header, chunks = split(seal(os.urandom(size)))
    assert len(chunks) == (3 if size % CHUNK == 0 else 4)
    with pytest.raises(IntegrityError):
        unseal(header + b"".join(chunks[:-1]))


def test_dropping_all_chunks_is_detected() -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED[:HEADER_SIZE])


@pytest.mark.parametrize(
    "cut",
    [
        len(SEALED) - 1,
        len(SEALED) - TAG_SIZE,
        HEADER_SIZE + SEALED_CHUNK // 2,
        HEADER_SIZE + SEALED_CHUNK + 5,  # a final piece shorter than a tag
        HEADER_SIZE - 1,
        0,
    ],
)
def test_truncating_mid_chunk_is_detected(cut: int) -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED[:cut])


@pytest.mark.parametrize("size", [3 * CHUNK, 3 * CHUNK + 20])
@pytest.mark.parametrize("which", ["copy-of-last", "copy-of-first", "random-chunk", "one-byte"])
def test_appending_is_detected(size: int, which: str) -> None:
    sealed = seal(os.urandom(size))
    _, chunks = split(sealed)
    extra = {
        "copy-of-last": chunks[-1],
        "copy-of-first": chunks[0],
        "random-chunk": os.urandom(SEALED_CHUNK),
        "one-byte": b"\x00",
    }[which]
    with pytest.raises(IntegrityError):
        unseal(sealed + extra)


def test_appending_a_chunk_spliced_from_a_longer_stream_is_detected() -> None:
    # Same key and context, so the spliced chunk carries a valid tag for its position.
    short, longer = os.urandom(2 * CHUNK), os.urandom(3 * CHUNK)
    header, chunks = split(seal(short))
    _, longer_chunks = split(seal(longer))
    with pytest.raises(IntegrityError):
        unseal(header + b"".join(chunks) + longer_chunks[2])


def test_wrong_key_is_detected() -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED, key=bytes(32))


def test_wrong_context_is_detected() -> None:
    with pytest.raises(IntegrityError):
        unseal(SEALED, context=b"j0123456789abcdef01234568")
    with pytest.raises(IntegrityError):
        unseal(SEALED, context=b"")


def test_chunk_from_another_job_is_detected() -> None:
    other = seal(DATA, context=b"j" + b"f" * 24)
    header, chunks = split(SEALED)
    _, other_chunks = split(other)
    chunks[1] = other_chunks[1]
    with pytest.raises(IntegrityError):
        unseal(header + b"".join(chunks))


@pytest.mark.parametrize("chunk_size", [CHUNK - 1, CHUNK + 1, 2 * CHUNK, CHUNK // 2, 1])
def test_changed_header_chunk_size_is_detected(chunk_size: int) -> None:
    tampered = HEADER.pack(MAGIC, chunk_size) + SEALED[HEADER_SIZE:]
    with pytest.raises(IntegrityError):
        unseal(tampered)


@pytest.mark.parametrize(
    "header",
    [HEADER.pack(MAGIC, 0), HEADER.pack(MAGIC, MAX_CHUNK_SIZE + 1), HEADER.pack(b"MPS2", CHUNK)],
)
def test_invalid_header_is_refused(header: bytes) -> None:
    with pytest.raises(IntegrityError, match="not a meshprint sealed job"):
        parse_header(header)
    with pytest.raises(IntegrityError):
        unseal(header + SEALED[HEADER_SIZE:])


def test_parse_header_reads_the_chunk_size() -> None:
    assert parse_header(HEADER.pack(MAGIC, 12345) + b"rest") == 12345
    with pytest.raises(IntegrityError, match="truncated"):
        parse_header(HEADER.pack(MAGIC, CHUNK)[:-1])


# The Sealer on its own.


def test_sealer_rejects_a_short_non_final_chunk() -> None:
    sealer = Sealer(KEY, CONTEXT, CHUNK)
    with pytest.raises(ValueError, match="final chunk"):
        sealer.seal(b"x" * (CHUNK - 1), final=False)
    with pytest.raises(ValueError):
        sealer.seal(b"", final=False)


def test_sealer_rejects_an_oversized_chunk() -> None:
    sealer = Sealer(KEY, CONTEXT, CHUNK)
    with pytest.raises(ValueError):
        sealer.seal(b"x" * (CHUNK + 1), final=True)
    with pytest.raises(ValueError):
        sealer.seal(b"x" * (CHUNK + 1), final=False)


def test_sealer_refuses_use_after_final() -> None:
    sealer = Sealer(KEY, CONTEXT, CHUNK)
    sealer.seal(b"x" * CHUNK, final=False)
    sealer.seal(b"end", final=True)
    with pytest.raises(ValueError, match="already finished"):
        sealer.seal(b"more", final=True)
    with pytest.raises(ValueError, match="already finished"):
        sealer.seal(b"x" * CHUNK, final=False)


def test_sealer_output_decrypts() -> None:
    sealer = Sealer(KEY, CONTEXT, CHUNK)
    parts = [sealer.header, sealer.seal(b"a" * CHUNK, final=False), sealer.seal(b"b", final=True)]
    assert unseal(b"".join(parts)) == b"a" * CHUNK + b"b"


@pytest.mark.parametrize("chunk_size", [0, -1, MAX_CHUNK_SIZE + 1])
def test_sealer_rejects_bad_chunk_sizes(chunk_size: int) -> None:
    with pytest.raises(ValueError):
        Sealer(KEY, CONTEXT, chunk_size)


# Sizes.


def test_plaintext_size_is_negative_for_too_small_streams() -> None:
    for sealed_size in range(HEADER_SIZE + TAG_SIZE):
        assert plaintext_size(sealed_size, CHUNK) == -1


def test_plaintext_size_is_negative_for_every_impossible_size() -> None:
    possible = {ciphertext_size(n, CHUNK) for n in range(10 * CHUNK)}
    for sealed_size in range(max(possible)):
        size = plaintext_size(sealed_size, CHUNK)
        if sealed_size in possible:
            assert ciphertext_size(size, CHUNK) == sealed_size
        else:
            assert size == -1, f"plaintext_size({sealed_size}, {CHUNK}) == {size}"
