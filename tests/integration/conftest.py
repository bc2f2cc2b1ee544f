"""Fixtures for integration tests: real node processes with real TLS on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.clients.peer import PeerClient
from appliance.datadir import DataDir
from appliance.devtools.localmesh import LocalMesh
from appliance.errors import RemoteError
from appliance.https.client import Client
from appliance.site import authority, recovery, release_authority
from appliance.site.authority import RecoveryKey
from appliance.site.ca import SiteCA, load_cert
from appliance.site.release_authority import ReleaseAuthority
from appliance.site.state import SiteState, open_site
from appliance.site.tls import peer_client_context

PASSWORDS = {"alice": "velvet-orbit-71", "bob": "quiet-harbor-22"}


class Site:
    """A running LocalMesh plus its users, with client helpers."""

    def __init__(self, mesh: LocalMesh) -> None:
        self.mesh = mesh
        self.tokens = {name: mesh.add_user(name, pw) for name, pw in PASSWORDS.items()}

    def submit(
        self,
        index: int,
        data: bytes,
        user: str = "alice",
        title: str = "doc",
        token: str | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        credentials = (user, token or self.tokens[user])
        receipt = self.mesh.client(index, "submit").submit(credentials, data, title, content_type)
        return dict(receipt)

    def release(
        self, index: int, job_id: str, user: str = "alice", password: str | None = None
    ) -> bytes:
        credentials = (user, password or PASSWORDS[user])
        with self.mesh.client(index).release_document(job_id, credentials) as response:
            return response.read()

    def jobs(self, index: int, user: str = "alice") -> list[dict[str, Any]]:
        return [dict(job) for job in self.mesh.client(index).jobs((user, PASSWORDS[user]))]

    def error(self, call: Any, *args: Any, **kwargs: Any) -> RemoteError:
        with pytest.raises(RemoteError) as info:
            call(*args, **kwargs)
        return info.value

    def settings(self, **values: str) -> None:
        """Change site settings on the controller and wait until every node has them."""
        for key, value in values.items():
            self.mesh.cli("settings", key, value, "--data", str(self.mesh.nodes[0].data))
        self.mesh.wait_directory()

    def add_printer(self, name: str, uri: str, *extra: str) -> None:
        self.mesh.cli(
            "printer", "add", name, "--uri", uri, *extra, "--data", str(self.mesh.nodes[0].data)
        )
        self.mesh.wait_directory()

    def start_release(
        self, index: int, job_id: str, printer: str, user: str = "alice", **options: Any
    ) -> dict[str, Any]:
        """Release to a printer; the delivery as the node first answers."""
        request = {"printer": printer, **options}
        return dict(self.mesh.client(index).release(job_id, request, (user, PASSWORDS[user])))

    def release_to(
        self, index: int, job_id: str, printer: str, user: str = "alice", **options: Any
    ) -> dict[str, Any]:
        """Release to a printer and follow the delivery until it settles."""
        delivery = self.start_release(index, job_id, printer, user, **options)
        return wait_for(lambda: self._settled(index, delivery["release_id"]), timeout=60)

    def delivery(self, index: int, release_id: str) -> dict[str, Any]:
        return dict(self.mesh.client(index).release_status(release_id))

    def _settled(self, index: int, release_id: str) -> dict[str, Any] | None:
        delivery = self.delivery(index, release_id)
        return delivery if delivery["stage"] in ("printed", "failed", "unknown") else None

    def node_index(self, node_id: str) -> int:
        return next(n.index for n in self.mesh.nodes if n.id == node_id)

    def peer(self, caller: int, target: int, timeout: float = 5) -> PeerClient:
        """Node `target`'s peer API, called with node `caller`'s certificate and key."""
        tls = self.mesh.nodes[caller].data / "tls"
        context = peer_client_context(tls / "node.pem", tls / "node.key", tls / "ca.pem")
        node = self.mesh.nodes[target]
        http = Client("127.0.0.1", node.peer_port, context, server_name=node.id, timeout=timeout)
        return PeerClient(http)

    def ca_with_key(self) -> SiteCA:
        """The site CA with its key, opened with the recovery key: what a thief has who got
        the CA key anyway (from an appliance of an older version, which kept it in the
        clear, or from memory while an administrator had it unlocked)."""
        directory = open_site(DataDir(self.mesh.nodes[1].data))[1].directory()
        ca = SiteCA(load_cert(self.mesh.ca), None)
        return recovery.open_authority(
            directory.doc["recovery"], ca, directory.site_id, self.mesh.recovery_key
        )

    def admin_site(self) -> SiteState:
        """The controller's site with its authority unlocked by the recovery key (an
        administrator acting, in this test process)."""
        data = DataDir(self.mesh.nodes[0].data)
        site = open_site(data)[1]
        authority.unlock(data, site, RecoveryKey(self.mesh.recovery_key))
        return site

    def release_signer(self) -> ReleaseAuthority:
        """The site's release authority, unlocked with the recovery key (as an admin does)."""
        directory = open_site(DataDir(self.mesh.nodes[1].data))[1].directory()
        return release_authority.unlock(directory.doc, directory.site_id, self.mesh.recovery_key)

    def spare_and_holder(self, receipt: dict[str, Any]) -> tuple[int, int]:
        """Indexes of a node holding no copy of the receipt's job, and of one of its holders
        other than node 0 (the one the tests submit through)."""
        spare = next(n.index for n in self.mesh.nodes if n.id not in receipt["holders"])
        holder = next(self.node_index(h) for h in receipt["holders"] if self.node_index(h) != 0)
        return spare, holder

    def held_on(self, job_id: str) -> list[int]:
        """Indexes of the nodes whose data directory has a sealed copy of the job."""
        return [n.index for n in self.mesh.nodes if (n.data / "jobs" / f"{job_id}.sealed").exists()]


def make_site(tmp: Path, size: int) -> Iterator[Site]:
    mesh = LocalMesh(tmp, size=size)
    try:
        mesh.create()
        yield Site(mesh)
    finally:
        mesh.close()


@pytest.fixture(scope="module")
def site4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Four nodes (so one is never a holder), shared by a module's non-destructive tests."""
    yield from make_site(tmp_path_factory.mktemp("site4"), 4)


@pytest.fixture
def site3(tmp_path: Path) -> Iterator[Site]:
    """A fresh three-node site for a test that kills or reconfigures nodes."""
    yield from make_site(tmp_path, 3)


def wait_for(condition: Any, timeout: float = 30, interval: float = 0.2) -> Any:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def random_bytes(size: int) -> bytes:
    return os.urandom(size)
