"""The address a node announces when it listens on all interfaces: its network address,
never the 127.0.1.1 that Debian's /etc/hosts gives the host name."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from appliance import endpoint
from appliance.endpoint import Endpoint, lan_address


class FakeSocket:
    source = "10.1.2.3"
    routed = True

    def __init__(self, *args: Any) -> None:
        pass

    def __enter__(self) -> FakeSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def connect(self, address: tuple[str, int]) -> None:
        if not self.routed:
            raise OSError(101, "Network is unreachable")

    def getsockname(self) -> tuple[str, int]:
        return (self.source, 40000)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeSocket]:
    monkeypatch.setattr(endpoint.socket, "socket", FakeSocket)
    monkeypatch.setattr(endpoint.socket, "gethostbyname", lambda name: "127.0.1.1")
    monkeypatch.setattr(FakeSocket, "routed", True)
    return FakeSocket


def test_the_routed_source_address_is_announced(fake: type[FakeSocket]) -> None:
    assert lan_address() == "10.1.2.3"
    assert Endpoint(bind="0.0.0.0").address == "10.1.2.3"
    assert Endpoint(bind="10.9.9.9").address == "10.9.9.9"
    assert Endpoint(advertise="print.example").address == "print.example"


def test_no_network_means_loopback_not_127_0_1_1(
    fake: type[FakeSocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeSocket, "routed", False)
    assert lan_address() == "127.0.0.1"
    monkeypatch.setattr(endpoint.socket, "gethostbyname", lambda name: "10.0.0.7")
    assert lan_address() == "10.0.0.7"


def test_this_machine() -> None:
    assert socket.inet_aton(lan_address())  # a real IPv4 address, whatever the machine
