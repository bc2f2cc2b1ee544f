"""Shamir secret sharing over GF(2^8), byte by byte.

A share is a point (x, y) on a random polynomial per byte whose value at 0 is the
secret. meshprint uses threshold 2: any two shares give the key, one gives nothing.
`derive` makes a share at a new point from `threshold` shares. Repair does the same
without bringing two shares together (masked resharing): each of two holders computes
its Lagrange-weighted `part` of the new share, one adds a random mask it chose and the
other the same mask (`masked`), and only the new holder sums the two (`sum_parts`). The
mask cancels (XOR), so the sum is `derive`'s share; each masked part alone is uniformly
random, so neither the parts' carriers nor a holder that sees one part learn a second
share.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping

# Log and antilog tables for GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1, generator 3.
_EXP = [0] * 510
_LOG = [0] * 256
_v = 1
for _i in range(255):
    _EXP[_i] = _v
    _LOG[_v] = _i
    _v ^= (_v << 1) ^ (0x11B if _v & 0x80 else 0)
    _v &= 0xFF
for _i in range(255, 510):
    _EXP[_i] = _EXP[_i - 255]


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _div(a: int, b: int) -> int:
    if a == 0:
        return 0
    return _EXP[(_LOG[a] - _LOG[b]) % 255]


def _check_x(x: int) -> None:
    if not 1 <= x <= 255:
        raise ValueError(f"share point must be 1..255, got {x}")


def split(secret: bytes, xs: Iterable[int], threshold: int = 2) -> dict[int, bytes]:
    """Shares of `secret` at the points `xs`; any `threshold` of them recover it."""
    points = list(xs)
    if len(set(points)) != len(points):
        raise ValueError("share points must be distinct")
    if threshold < 2 or threshold > len(points):
        raise ValueError("threshold must be at least 2 and at most the number of shares")
    for x in points:
        _check_x(x)
    coefficients = [secrets.token_bytes(len(secret)) for _ in range(threshold - 1)]
    shares: dict[int, bytes] = {}
    for x in points:
        out = bytearray(secret)
        power = 1
        for coefficient in coefficients:
            power = _mul(power, x)
            for i, c in enumerate(coefficient):
                out[i] ^= _mul(c, power)
        shares[x] = bytes(out)
    return shares


def _weight(j: int, points: Iterable[int], at: int) -> int:
    """The Lagrange basis polynomial of point `j` over `points`, evaluated at `at`
    (subtraction is XOR in GF(2^8))."""
    weight = 1
    for m in points:
        if m != j:
            weight = _mul(weight, _div(at ^ m, j ^ m))
    return weight


def _scale(data: bytes, factor: int) -> bytes:
    return bytes(_mul(y, factor) for y in data)


def _interpolate(shares: Mapping[int, bytes], at: int) -> bytes:
    points = list(shares)
    if len(points) < 2:
        raise ValueError("at least two shares are needed")
    lengths = {len(v) for v in shares.values()}
    if len(lengths) != 1:
        raise ValueError("shares differ in length")
    for x in points:
        _check_x(x)
    return sum_parts(_scale(shares[j], _weight(j, points, at)) for j in points)


def combine(shares: Mapping[int, bytes]) -> bytes:
    """The secret from at least `threshold` shares {x: y}."""
    return _interpolate(shares, 0)


def derive(shares: Mapping[int, bytes], x: int) -> bytes:
    """A new share at point `x`, on the same polynomial as `shares`."""
    _check_x(x)
    if x in shares:
        return shares[x]
    return _interpolate(shares, x)


def part(x: int, share: bytes, points: Iterable[int], at: int) -> bytes:
    """The share at `x`'s Lagrange-weighted part of the share at the new point `at`,
    over the holders `points` taking part (`x` among them): the parts of all of
    `points` sum to `derive`'s share at `at`. Alone a part is the holder's own share
    times a known factor, so it travels only `masked`."""
    chosen = set(points)
    if x not in chosen or len(chosen) < 2:
        raise ValueError("a part is taken over at least two points, its own among them")
    for p in (*chosen, at):
        _check_x(p)
    if at in chosen:
        raise ValueError("the new point must differ from the points taking part")
    return _scale(share, _weight(x, chosen, at))


def new_mask(size: int) -> bytes:
    """A fresh random mask for one repair (as long as a share)."""
    return secrets.token_bytes(size)


def masked(data: bytes, mask: bytes) -> bytes:
    """`data` with `mask` added (XOR: adding the same mask again removes it)."""
    if len(data) != len(mask):
        raise ValueError("the mask must be as long as the part")
    return bytes(a ^ b for a, b in zip(data, mask, strict=True))


def sum_parts(parts: Iterable[bytes]) -> bytes:
    """The sum (XOR) of equally long parts: the new share from its masked parts."""
    out: bytearray | None = None
    for piece in parts:
        if out is None:
            out = bytearray(piece)
        elif len(piece) != len(out):
            raise ValueError("parts differ in length")
        else:
            for i, y in enumerate(piece):
                out[i] ^= y
    if out is None:
        raise ValueError("no parts to sum")
    return bytes(out)
