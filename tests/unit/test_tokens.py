"""appliance.site.tokens: one-time join tokens as copy-pasteable text."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import BadRequest
from appliance.site.tokens import PREFIX, JoinToken

TOKEN = JoinToken.new("Office", "10.0.0.5:8631", "ab" * 32, 1_900_000_000.5)


def encode_json(value: object) -> str:
    raw = json.dumps(value).encode()
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trip() -> None:
    text = TOKEN.encode()
    assert text.startswith("mp1.")
    assert "=" not in text
    assert JoinToken.decode(text) == TOKEN


def test_surrounding_whitespace_is_ignored() -> None:
    assert JoinToken.decode(f"  {TOKEN.encode()}\n") == TOKEN


def test_new_tokens_have_fresh_secrets() -> None:
    other = JoinToken.new("Office", "10.0.0.5:8631", "ab" * 32, 1.0)
    assert other.secret != TOKEN.secret
    assert len(TOKEN.secret) >= 32


@given(
    site=st.text(),
    controller=st.text(),
    ca=st.text(alphabet="0123456789abcdef"),
    expires=st.floats(allow_nan=False, allow_infinity=False),
)
def test_round_trip_any_fields(site: str, controller: str, ca: str, expires: float) -> None:
    token = JoinToken.new(site, controller, ca, expires)
    text = token.encode()
    assert text.isascii()
    assert JoinToken.decode(text) == token


@pytest.mark.parametrize("text", ["", "hello", "mp2.abc", "MP1.abc", TOKEN.encode()[1:]])
def test_wrong_prefix_is_refused(text: str) -> None:
    with pytest.raises(BadRequest, match=r"not a meshprint join token.*'mp1\.'"):
        JoinToken.decode(text)


@pytest.mark.parametrize(
    "text",
    [
        "mp1.",
        "mp1.!!!!",
        "mp1.é",
        "mp1.bm90IGpzb24",  # "not json"
        TOKEN.encode()[:-10],
        TOKEN.encode()[: len(TOKEN.encode()) // 2],
        encode_json([1, 2, 3]),
        encode_json("a string"),
        encode_json(None),
        encode_json({"site": "x", "controller": "y", "ca": "z"}),
        encode_json({"site": "x", "controller": "y", "ca": "z", "secret": "s", "expires": "soon"}),
        encode_json({"site": "x", "controller": "y", "ca": "z", "secret": "s", "expires": None}),
        PREFIX + base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
    ],
)
def test_damaged_token_is_refused_helpfully(text: str) -> None:
    with pytest.raises(BadRequest) as err:
        JoinToken.decode(text)
    assert "damaged" in str(err.value)
    assert "meshprint invite" in str(err.value)
    assert err.value.status == 400


def test_damage_in_the_json_structure_is_refused() -> None:
    text = TOKEN.encode()
    body = text[len(PREFIX) :]
    # The first base64 character encodes the opening brace: change it.
    damaged = PREFIX + ("A" if body[0] != "A" else "B") + body[1:]
    with pytest.raises(BadRequest, match="damaged"):
        JoinToken.decode(damaged)
