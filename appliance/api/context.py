"""What the HTTPS APIs use of the running node (`appliance.node.Node` provides it)."""

from __future__ import annotations

from typing import Protocol

from appliance.jobs.context import NodeContext


class ApiContext(NodeContext, Protocol):
    @property
    def is_controller(self) -> bool:
        """Whether this node is the site controller (joins come here)."""

    @property
    def intake_secret(self) -> str:
        """The Secure Print backend's key to the local intake door."""

    @property
    def ipp_port(self) -> int:
        """This node's own printer's port (0: it serves none)."""
