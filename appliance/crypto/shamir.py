"""Shamir secret sharing over GF(2^8), byte by byte.

A share is a point (x, y) on a random polynomial per byte whose value at 0 is the
secret. meshprint uses threshold 2: any two shares give the key, one gives nothing.
`derive` makes a share at a new point from `threshold` shares, which is how repair
gives a new holder its own share without ever storing the key.
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


def _interpolate(shares: Mapping[int, bytes], at: int) -> bytes:
    points = list(shares)
    if len(points) < 2:
        raise ValueError("at least two shares are needed")
    lengths = {len(v) for v in shares.values()}
    if len(lengths) != 1:
        raise ValueError("shares differ in length")
    for x in points:
        _check_x(x)
    out = bytearray(lengths.pop())
    for j in points:
        # Lagrange basis polynomial l_j evaluated at `at` (subtraction is XOR in GF(2^8)).
        weight = 1
        for m in points:
            if m != j:
                weight = _mul(weight, _div(at ^ m, j ^ m))
        for i, y in enumerate(shares[j]):
            out[i] ^= _mul(y, weight)
    return bytes(out)


def combine(shares: Mapping[int, bytes]) -> bytes:
    """The secret from at least `threshold` shares {x: y}."""
    return _interpolate(shares, 0)


def derive(shares: Mapping[int, bytes], x: int) -> bytes:
    """A new share at point `x`, on the same polynomial as `shares`."""
    _check_x(x)
    if x in shares:
        return shares[x]
    return _interpolate(shares, x)
