"""Where a node listens: its three default ports, and the address it tells the others.

A bottom-layer module (it imports nothing of the application): the node binds these
ports, the command line and the web UI name them to reach a node, the intake door
records the submit port for the Secure Print backend.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

DEFAULT_PEER_PORT = 9264
DEFAULT_SUBMIT_PORT = 9265
DEFAULT_RELEASE_PORT = 9266
DEFAULT_IPP_PORT = 631  # the node's own printer (IPP and IPPS on one port), super nodes


@dataclass(frozen=True)
class Endpoint:
    """Where this node listens, and the address it tells the others."""

    bind: str = "0.0.0.0"
    advertise: str | None = None
    peer_port: int = DEFAULT_PEER_PORT
    submit_port: int = DEFAULT_SUBMIT_PORT
    release_port: int = DEFAULT_RELEASE_PORT
    ipp_port: int | None = None  # None: the role's default (631 on a super node); 0: off

    @property
    def address(self) -> str:
        if self.advertise:
            return self.advertise
        if self.bind not in ("0.0.0.0", "::", ""):
            return self.bind
        return lan_address()


def lan_address() -> str:
    """This machine's address on its network: the source address of the route to the
    outside (a UDP socket "connected" without sending anything), since the host name often
    resolves to a loopback address (Debian maps it to 127.0.1.1). Loopback only when the
    machine has no network at all."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed like any outside address
        address: str = probe.getsockname()[0]
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    with contextlib.suppress(OSError):
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            return address
    return "127.0.0.1"
