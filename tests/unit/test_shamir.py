"""appliance.crypto.shamir: 2-of-n secret sharing over GF(2^8) and share derivation."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.crypto.shamir import combine, derive, masked, new_mask, part, split, sum_parts

POINTS = (1, 2, 3, 255)
PAIRS = list(itertools.combinations(POINTS, 2))


@pytest.fixture
def secret() -> bytes:
    return os.urandom(32)


@pytest.fixture
def shares(secret: bytes) -> dict[int, bytes]:
    return split(secret, POINTS)


def test_split_gives_one_share_per_point(shares: dict[int, bytes]) -> None:
    assert sorted(shares) == list(POINTS)
    assert all(len(share) == 32 for share in shares.values())
    assert len(set(shares.values())) == len(POINTS)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_any_two_shares_recover_the_secret(
    secret: bytes, shares: dict[int, bytes], a: int, b: int
) -> None:
    assert combine({a: shares[a], b: shares[b]}) == secret
    assert combine({b: shares[b], a: shares[a]}) == secret


def test_more_than_two_shares_recover_the_secret(secret: bytes, shares: dict[int, bytes]) -> None:
    assert combine(shares) == secret
    assert combine({x: shares[x] for x in (1, 3, 255)}) == secret


def test_one_share_alone_is_not_the_secret(secret: bytes, shares: dict[int, bytes]) -> None:
    for share in shares.values():
        assert share != secret
    with pytest.raises(ValueError, match="two shares"):
        combine({1: shares[1]})
    with pytest.raises(ValueError):
        combine({})


def test_shares_are_fresh_each_time(secret: bytes) -> None:
    assert split(secret, POINTS) != split(secret, POINTS)


def test_mismatched_pair_does_not_recover(secret: bytes, shares: dict[int, bytes]) -> None:
    others = split(os.urandom(32), POINTS)
    assert combine({1: shares[1], 2: others[2]}) != secret
    # A share used at the wrong point gives a different value too.
    assert combine({1: shares[1], 3: shares[2]}) != secret


@pytest.mark.parametrize("new_x", [4, 17, 128, 254])
@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_derived_share_combines_with_any_old_share(
    secret: bytes, shares: dict[int, bytes], a: int, b: int, new_x: int
) -> None:
    new = derive({a: shares[a], b: shares[b]}, new_x)
    assert len(new) == 32
    assert new != secret
    for old_x in POINTS:
        assert combine({old_x: shares[old_x], new_x: new}) == secret


def test_derived_shares_agree_whichever_pair_made_them(shares: dict[int, bytes]) -> None:
    derived = {derive({a: shares[a], b: shares[b]}, 42) for a, b in PAIRS}
    assert len(derived) == 1


def test_derive_at_an_existing_point_returns_that_share(shares: dict[int, bytes]) -> None:
    assert derive({1: shares[1], 2: shares[2]}, 2) == shares[2]
    assert derive({1: shares[1], 2: shares[2]}, 3) == shares[3]


def test_two_derived_shares_recover_the_secret(secret: bytes, shares: dict[int, bytes]) -> None:
    pair = {2: shares[2], 255: shares[255]}
    assert combine({10: derive(pair, 10), 11: derive(pair, 11)}) == secret


@pytest.mark.parametrize(
    "points",
    [(0, 1), (1, 256), (1, 1), (1, 2, 2), (-1, 2), (1,), ()],
)
def test_split_rejects_bad_points(points: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        split(os.urandom(32), points)


def test_split_rejects_bad_threshold() -> None:
    with pytest.raises(ValueError):
        split(os.urandom(32), POINTS, threshold=1)
    with pytest.raises(ValueError):
        split(os.urandom(32), POINTS, threshold=5)


@pytest.mark.parametrize("bad", [0, 256, -3])
def test_combine_and_derive_reject_bad_points(shares: dict[int, bytes], bad: int) -> None:
    with pytest.raises(ValueError):
        combine({bad: shares[1], 2: shares[2]})
    with pytest.raises(ValueError):
        derive({1: shares[1], 2: shares[2]}, bad)
    with pytest.raises(ValueError):
        derive({bad: shares[1], 2: shares[2]}, 5)


def test_combine_rejects_shares_of_different_lengths(shares: dict[int, bytes]) -> None:
    with pytest.raises(ValueError, match="length"):
        combine({1: shares[1], 2: shares[2][:-1]})


def test_threshold_three_needs_three_shares() -> None:
    secret = os.urandom(32)
    shares = split(secret, (1, 2, 3, 4, 5), threshold=3)
    for trio in itertools.combinations(shares, 3):
        assert combine({x: shares[x] for x in trio}) == secret
    assert combine({1: shares[1], 2: shares[2]}) != secret


@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=48),
    points=st.lists(st.integers(min_value=1, max_value=255), min_size=2, max_size=6, unique=True),
    new_x=st.integers(min_value=1, max_value=255),
)
def test_any_two_points_recover_any_secret(secret: bytes, points: list[int], new_x: int) -> None:
    shares = split(secret, points)
    a, b = points[0], points[-1]
    assert combine({a: shares[a], b: shares[b]}) == secret
    new = derive({a: shares[a], b: shares[b]}, new_x)
    other = points[1]
    if other != new_x:
        assert combine({other: shares[other], new_x: new}) == secret


# Masked resharing (repair without bringing two shares together)


def _reshare(shares: dict[int, bytes], c: int, h2: int, new_x: int) -> tuple[bytes, bytes, bytes]:
    """What repair computes: (mask, C's masked part, H2's masked part)."""
    mask = new_mask(len(shares[c]))
    part_c = masked(part(c, shares[c], (c, h2), new_x), mask)
    part_h2 = masked(part(h2, shares[h2], (c, h2), new_x), mask)
    return mask, part_c, part_h2


@pytest.mark.parametrize("new_x", [4, 99, 254])
@pytest.mark.parametrize(("c", "h2"), [(1, 2), (2, 3), (3, 1)])
def test_masked_parts_sum_to_the_derived_share(
    secret: bytes, shares: dict[int, bytes], c: int, h2: int, new_x: int
) -> None:
    _, part_c, part_h2 = _reshare(shares, c, h2, new_x)
    new = sum_parts([part_c, part_h2])
    assert new == derive({c: shares[c], h2: shares[h2]}, new_x)
    assert combine({new_x: new, 255: shares[255]}) == secret  # works with the owner's share


def test_neither_party_alone_gets_a_second_share(secret: bytes, shares: dict[int, bytes]) -> None:
    c, h2, new_x = 1, 2, 4
    mask, part_c, part_h2 = _reshare(shares, c, h2, new_x)
    new = sum_parts([part_c, part_h2])
    # C's view: its own share, the mask it chose and its masked part. Nothing in it,
    # taken as a share at the new point (or at H2's), opens the key with C's share.
    for guess in (part_c, masked(part_c, mask), mask):
        for x in (new_x, h2):
            assert combine({c: shares[c], x: guess}) != secret
    # H2's view: its own share, the mask, its masked part.
    for guess in (part_h2, masked(part_h2, mask), mask):
        for x in (new_x, c):
            assert combine({h2: shares[h2], x: guess}) != secret
    # N's view: two masked parts whose sum is one share (its own), never a second one.
    for guess in (part_c, part_h2):
        assert combine({new_x: new, c: guess}) != secret
        assert combine({new_x: new, h2: guess}) != secret
        assert guess not in (shares[c], shares[h2])
    # C's view and N's single part from H2 (what a coordinator would see if the part
    # passed through it): still not the key without the other.
    assert combine({c: shares[c], new_x: part_h2}) != secret


def test_a_masked_part_is_uniform_whatever_the_share() -> None:
    """One byte, every mask: the masked part takes every value exactly once, whichever
    share it came from, so it tells its carrier nothing about the share."""
    for share in (b"\x00", b"\x5a", b"\xff"):
        weighted = part(2, share, (1, 2), 7)
        seen = sorted(masked(weighted, bytes([m]))[0] for m in range(256))
        assert seen == list(range(256))


def test_part_rejects_bad_points(shares: dict[int, bytes]) -> None:
    with pytest.raises(ValueError):
        part(1, shares[1], (2, 3), 4)  # its own point not among them
    with pytest.raises(ValueError):
        part(1, shares[1], (1, 2), 2)  # the new point is a taking part
    with pytest.raises(ValueError):
        part(1, shares[1], (1,), 4)
    with pytest.raises(ValueError):
        part(1, shares[1], (1, 2), 256)
    with pytest.raises(ValueError):
        masked(shares[1], b"short")
    with pytest.raises(ValueError):
        sum_parts([])
