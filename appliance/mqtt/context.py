"""What the MQTT agent uses of the running node (`appliance.node.Node` provides it)."""

from __future__ import annotations

from typing import Protocol

from appliance.jobs.context import NodeContext


class AgentContext(NodeContext, Protocol):
    @property
    def role(self) -> str:
        """super or edge."""
