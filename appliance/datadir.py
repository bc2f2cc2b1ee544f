"""A node's data directory: where its identity, keys, database and sealed jobs live.

DIR/node.json          node id, site id, role
DIR/tls/               ca.pem, node.pem (chain), node.key; on the controller ca.sealed
                       (the CA key sealed per administrator; ca.key on older ones)
DIR/meshprint.db       SQLite (WAL): the directory, join tokens, jobs, tombstones,
                       releases, deliveries, printer status
DIR/jobs/ID.sealed     sealed job documents (ciphertext only)
DIR/incoming/          documents being received; emptied at start

The rest (intake.json, the web UI's files, the appliance's setup code) is listed in
docs/architecture.md, "Data directory".

Everything in it is the node's alone: directories 0700, files 0600, set explicitly when
they are made (`private_dir`, `create_private`, `touch_private`) rather than left to the
umask, and put right at node start for a directory made by an older version
(`DataDir.tighten`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.errors import ConfigError
from appliance.portable import chmod, fchmod

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Make the directory (and its parents) if missing; in any case make it 0700."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    chmod(path, PRIVATE_DIR)
    return path


def create_private(path: Path) -> BinaryIO:
    """A new file (it must not exist) open for writing, 0600 from its first moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "wb")


def private_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The content of a private file made once and then kept: read it, or write `make()`
    whole to a file of our own and link it into place. Processes starting together (the
    web UI's workers on first boot) all get the first one's content, never a file that
    exists but is still being written."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with create_private(tmp) as f:
            f.write(make())
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process was first: theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def touch_private(path: Path) -> None:
    """Make sure the file exists and is 0600 (before SQLite opens it: SQLite gives its
    WAL and SHM files the mode of the database file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


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
        self.ca_key = self.tls / "ca.key"  # only on a controller from before it was sealed
        self.ca_sealed = self.tls / "ca.sealed"  # the controller's (`site.authority`)
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
            private_dir(path)

    def tighten(self) -> None:
        """At node start: every directory below the data directory 0700, every file
        0600, whatever made them (an older version, a copy, a restore)."""
        for path in (self.root, *self.root.rglob("*")):
            try:
                if path.is_symlink():
                    continue
                mode = PRIVATE_DIR if path.is_dir() else PRIVATE_FILE
                if path.stat().st_mode & 0o777 != mode:
                    chmod(path, mode)
            except FileNotFoundError:
                continue  # removed meanwhile (the web UI shares the directory)

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
        tmp.unlink(missing_ok=True)
        with create_private(tmp) as out:
            out.write((json.dumps(asdict(identity), indent=2) + "\n").encode())
        os.replace(tmp, self.identity_file)

    @property
    def is_controller(self) -> bool:
        return self.ca_sealed.exists() or self.ca_key.exists()
