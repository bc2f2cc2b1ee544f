"""A node's data directory: where its identity, keys, database and sealed jobs live.

DIR/node.json          node id, site id, role
DIR/tls/               ca.pem, node.pem (chain), node.key, ca.key (controller only)
DIR/meshprint.db       SQLite (WAL): the directory, join tokens, jobs, tombstones,
                       releases, deliveries, printer status
DIR/jobs/ID.sealed     sealed job documents (ciphertext only)
DIR/incoming/          documents being received; emptied at start

The rest (intake.json, the web UI's files, the appliance's setup code) is listed in
docs/architecture.md, "Data directory".
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.errors import ConfigError


@dataclass(frozen=True)
class Identity:
    node_id: str
    site_id: str
    role: str


class DataDir:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.tls = self.root / "tls"
        self.ca_cert = self.tls / "ca.pem"
        self.ca_key = self.tls / "ca.key"
        self.node_cert = self.tls / "node.pem"
        self.node_key = self.tls / "node.key"
        self.db = self.root / "meshprint.db"
        self.jobs = self.root / "jobs"
        self.incoming = self.root / "incoming"
        self.identity_file = self.root / "node.json"

    def exists(self) -> bool:
        return self.identity_file.exists()

    def prepare_new(self) -> None:
        """Create the layout for a new node; refuse to overwrite a node's identity."""
        if self.exists():
            raise ConfigError(f"{self.root} already holds a meshprint node")
        for path in (self.root, self.tls, self.jobs, self.incoming):
            path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        os.chmod(self.tls, 0o700)

    def identity(self) -> Identity:
        try:
            data = json.loads(self.identity_file.read_text())
            return Identity(data["node_id"], data["site_id"], data["role"])
        except FileNotFoundError:
            raise ConfigError(
                f"{self.root} is not a meshprint node: run 'meshprint site create' or "
                "'meshprint join' first"
            ) from None
        except (ValueError, KeyError) as err:
            raise ConfigError(f"{self.identity_file} is damaged: {err}") from None

    def write_identity(self, identity: Identity) -> None:
        tmp = self.identity_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(identity), indent=2) + "\n")
        os.replace(tmp, self.identity_file)

    @property
    def is_controller(self) -> bool:
        return self.ca_key.exists()
