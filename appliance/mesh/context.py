"""What the domain code of the mesh (and the layers above it) uses of the running node:
a narrow view, so that a module does not reach into the whole `Node`. `appliance.node.Node`
provides it; tests may provide their own."""

from __future__ import annotations

from typing import Any, Protocol

from appliance.mesh.peers import Peers
from appliance.site.directory import Directory
from appliance.site.state import SiteState
from appliance.store.jobs import JobStore


class MeshContext(Protocol):
    @property
    def id(self) -> str:
        """This node's id."""

    @property
    def site(self) -> SiteState:
        """The site's CA and signed directory, as this node has them."""

    @property
    def store(self) -> JobStore:
        """The jobs this node holds."""

    @property
    def peers(self) -> Peers:
        """The other members: calls over mutual TLS, and who is alive."""

    @property
    def last_sync(self) -> dict[str, dict[str, Any]]:
        """What each peer said at the last sync (its job count and free disk)."""

    def directory(self) -> Directory:
        """The current signed directory."""
