"""What the MQTT agent uses of the running node (`appliance.node.Node` provides it)."""

from __future__ import annotations

from typing import Protocol

from appliance.datadir import DataDir
from appliance.jobs.context import JobsContext
from appliance.store.db import Database


class AgentContext(JobsContext, Protocol):
    @property
    def role(self) -> str:
        """super or edge."""

    @property
    def data(self) -> DataDir: ...

    @property
    def db(self) -> Database: ...
