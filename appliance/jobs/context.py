"""What the jobs layer uses of the running node: the mesh's view plus the log of the
deliveries this node made. `appliance.node.Node` provides it."""

from __future__ import annotations

from typing import Protocol

from appliance.datadir import DataDir
from appliance.mesh.context import MeshContext
from appliance.store.db import Database
from appliance.store.deliveries import DeliveryLog
from appliance.store.usage import UsageLog


class JobsContext(MeshContext, Protocol):
    @property
    def deliveries(self) -> DeliveryLog:
        """One row per release id this node delivered (or is delivering)."""

    @property
    def usage(self) -> UsageLog:
        """The usage records of this node's printed jobs (the controller: everyone's)."""


class NodeContext(JobsContext, Protocol):
    """The above plus this node's data directory and database, for the interfaces (the
    APIs, the MQTT agent)."""

    @property
    def data(self) -> DataDir: ...

    @property
    def db(self) -> Database: ...
