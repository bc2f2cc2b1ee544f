"""Errors keep their type across the network: to_wire on the server, from_wire on the
client."""

from __future__ import annotations

import pytest

from appliance.crypto.userkeys import KdfBusy
from appliance.errors import (
    Conflict,
    DeliveryInterrupted,
    MeshprintError,
    NotFound,
    RemoteError,
    Unavailable,
    from_wire,
    to_wire,
)


@pytest.mark.parametrize("cls", [Conflict, NotFound, Unavailable, DeliveryInterrupted, KdfBusy])
def test_a_named_error_arrives_as_its_own_class(cls: type[MeshprintError]) -> None:
    sent = cls("the reason")
    got = from_wire(sent.status, to_wire(sent), "node n1 (127.0.0.1:9264)")
    assert type(got).__name__ == cls.__name__
    assert isinstance(got, cls) and isinstance(got, RemoteError)
    assert str(got) == "the reason" and got.status == sent.status
    assert got.where == "node n1 (127.0.0.1:9264)"
    with pytest.raises(cls):
        raise got


def test_an_unknown_or_disagreeing_type_falls_back_to_the_status() -> None:
    got = from_wire(409, {"error": "busy", "type": "NoSuchError"}, "x")
    assert isinstance(got, Conflict)
    # A name that exists here but with another status: the status wins.
    got = from_wire(404, {"error": "gone", "type": "Conflict"}, "x")
    assert isinstance(got, NotFound) and not isinstance(got, Conflict)


def test_a_status_without_a_class_is_a_plain_remote_error() -> None:
    got = from_wire(418, {"error": "teapot"}, "x")
    assert type(got) is RemoteError and got.status == 418 and str(got) == "teapot"
    got = from_wire(502, "not json at all", "a proxy")
    assert isinstance(got, DeliveryInterrupted) and "a proxy answered 502" in str(got)


def test_remote_classes_are_made_once() -> None:
    first = from_wire(409, {"error": "a"}, "x")
    second = from_wire(409, {"error": "b", "type": "Conflict"}, "y")
    assert type(first) is type(second)
