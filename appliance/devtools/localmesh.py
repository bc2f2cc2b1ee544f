"""A mesh of real node processes on loopback, for `make demo`, the tests and benchmarks.

Node 0 creates the site (super node, controller), node 1 joins as a super node and the
rest as edge nodes; each listens on its own free ports on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.clients.node import NodeClient
from appliance.devtools.processes import free_port
from appliance.errors import MeshprintError
from appliance.https.client import Client
from appliance.site.tls import client_context

HOST = "127.0.0.1"


@dataclass
class LocalNode:
    index: int
    data: Path
    peer_port: int = field(default_factory=free_port)
    submit_port: int = field(default_factory=free_port)
    release_port: int = field(default_factory=free_port)
    ipp_port: int = field(default_factory=free_port)  # the printer, on the super nodes
    process: subprocess.Popen[bytes] | None = None
    id: str = ""
    python: str = sys.executable  # another install's interpreter (a plain edge install)

    @property
    def submit(self) -> str:
        return f"{HOST}:{self.submit_port}"

    @property
    def release(self) -> str:
        return f"{HOST}:{self.release_port}"

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def process_id(self) -> int | None:
        """The node process's id while it runs (what `kill` takes)."""
        return self.process.pid if self.running and self.process is not None else None


class LocalMesh:
    def __init__(
        self,
        root: Path,
        size: int = 3,
        name: str = "Local office",
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.name = name
        # The command line's per-user cache (the member lists it has seen) stays here.
        cache = {"XDG_CACHE_HOME": str(self.root / ".cache")}
        self.env = {**os.environ, **cache, **(env or {})}
        self.nodes = [LocalNode(i, self.root / f"node{i}") for i in range(size)]
        self.recovery_key = ""  # printed by `site create`, kept for restore tests

    @property
    def ca(self) -> Path:
        """The site CA certificate, from the first node that still has a data directory."""
        paths = [n.data / "tls" / "ca.pem" for n in self.nodes]
        return next((p for p in paths if p.exists()), paths[0])

    @property
    def recovery_key_file(self) -> Path:
        """Where `create` keeps the recovery key, for commands that take --key-file."""
        return self.root / ".recovery-key"

    def add_node(self) -> LocalNode:
        """One more node slot (its data directory is made by `cli`, e.g. `site restore`)."""
        node = LocalNode(len(self.nodes), self.root / f"node{len(self.nodes)}")
        self.nodes.append(node)
        return node

    def cli(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run `meshprint ARGS` (with `env` added to the environment)."""
        result = subprocess.run(
            [sys.executable, "-m", "appliance.cli", *args],
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise MeshprintError(f"meshprint {args[0]} failed: {result.stderr.strip()}")
        return result

    def create(self) -> LocalMesh:
        first = self.nodes[0]
        created = self.cli(
            "site", "create", "--data", str(first.data), "--name", self.name, "--host", HOST
        )
        self.recovery_key = created.stdout.split("Recovery key: ", 1)[1].split()[0]
        self.recovery_key_file.write_text(self.recovery_key + "\n")
        self.recovery_key_file.chmod(0o600)
        # The administrator's credential for every command that changes the site (the CA
        # key is kept sealed): the recovery key, from here on
        self.env["MESHPRINT_KEY_FILE"] = str(self.recovery_key_file)
        self.start(0)
        for node in self.nodes[1:]:
            token = self.cli("invite", "--data", str(first.data)).stdout.strip()
            role = "super" if node.index == 1 else "edge"
            self.cli(
                "join",
                token,
                "--data",
                str(node.data),
                "--role",
                role,
                "--name",
                f"node{node.index}",
                "--host",
                HOST,
            )
            self.start(node.index)
        self.wait_live(len(self.nodes))
        return self

    def start(
        self, index: int, timeout: float = 20, env: dict[str, str] | None = None
    ) -> LocalNode:
        """Start node `index` in a session of its own, with `env` added to its environment."""
        node = self.nodes[index]
        if node.running:
            return node
        log = node.log.open("ab")
        node.process = subprocess.Popen(
            [
                node.python,
                "-m",
                "appliance.cli",
                "node",
                "--data",
                str(node.data),
                "--host",
                HOST,
                "--peer-port",
                str(node.peer_port),
                "--submit-port",
                str(node.submit_port),
                "--release-port",
                str(node.release_port),
                "--ipp-port",
                str(node.ipp_port if node.index <= 1 else 0),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.env, **(env or {})},
            start_new_session=True,
        )
        log.close()
        node.id = json.loads((node.data / "node.json").read_text())["node_id"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            if node.process.poll() is not None:
                raise MeshprintError(f"node{index} exited: {node.log.read_text()[-2000:]}")
            try:
                self.client(index).health()
                return node
            except MeshprintError:
                time.sleep(0.1)
        raise MeshprintError(f"node{index} did not come up within {timeout}s")

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        node = self.nodes[index]
        if node.process is not None and node.process.poll() is None:
            os.killpg(node.process.pid, sig)
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=30)

    def client(self, index: int, api: str = "release", keep_alive: bool = False) -> NodeClient:
        """Node `index`'s release API (or, `api="submit"`, its submit API)."""
        node = self.nodes[index]
        port = node.release_port if api == "release" else node.submit_port
        return NodeClient(
            Client(HOST, port, client_context(self.ca), timeout=120, keep_alive=keep_alive)
        )

    def status(self, index: int = 0) -> dict[str, Any]:
        return self.client(index).status()

    def wait_live(self, count: int, index: int = 0, timeout: float = 30) -> dict[str, Any]:
        """Wait until node `index` sees `count` live members with announced addresses."""
        deadline = time.time() + timeout
        status: dict[str, Any] = {}
        while time.time() < deadline:
            try:
                status = self.status(index)
                live = [m for m in status["members"] if m["live"] and m["address"]]
                if len(live) >= count:
                    return status
            except MeshprintError:
                pass
            time.sleep(0.2)
        raise MeshprintError(f"only {status.get('members')} after {timeout}s")

    def wait_directory(self, timeout: float = 30) -> None:
        """Wait until every running node has the controller's newest directory."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            versions = {self.status(n.index)["directory_version"] for n in self.nodes if n.running}
            if len(versions) == 1:
                return
            time.sleep(0.1)
        raise MeshprintError(f"directory did not converge within {timeout}s")

    def add_user(self, name: str, password: str) -> str:
        secret = self.root / f".{name}.password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        token = self.cli(
            "user", "add", name, "--data", str(self.nodes[0].data), "--password-file", str(secret)
        ).stdout.strip()
        self.wait_directory()
        return token

    def close(self) -> None:
        for node in self.nodes:
            self.kill(node.index, signal.SIGTERM)
