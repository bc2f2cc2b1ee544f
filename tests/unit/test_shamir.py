"""appliance.crypto.shamir: 2-of-n secret sharing over GF(2^8) and share derivation."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.crypto.shamir import combine, derive, split

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
