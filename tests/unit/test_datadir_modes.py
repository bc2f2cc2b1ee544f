"""The data directory is the node's alone: 0700 directories, 0600 files (the database, its
WAL and SHM, sealed and incoming documents), set explicitly whatever the umask, and put
right at start for what an older version left looser."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.datadir import DataDir, Identity, create_private, private_dir, touch_private
from appliance.store.db import Database
from appliance.store.jobs import JobStore
from tests.unit.conftest import JobFactory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most permissive umask: modes must not depend on it."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_helpers_set_modes_whatever_the_umask(tmp_path: Path, loose_umask: None) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    assert mode(folder) == 0o700
    with create_private(folder / "f") as out:
        out.write(b"x")
    assert mode(folder / "f") == 0o600
    with pytest.raises(FileExistsError):
        create_private(folder / "f")
    (folder / "g").write_bytes(b"")
    (folder / "g").chmod(0o666)
    touch_private(folder / "g")
    assert mode(folder / "g") == 0o600


def test_database_wal_and_shm_are_0600(tmp_path: Path, loose_umask: None) -> None:
    db = Database(tmp_path / "meshprint.db")
    with db.transaction() as conn:
        conn.execute("INSERT INTO tombstones (id, reason, at) VALUES ('x', 'test', 0)")
    for name in ("meshprint.db", "meshprint.db-wal", "meshprint.db-shm"):
        assert mode(tmp_path / name) == 0o600, name


def test_an_existing_loose_database_is_tightened_at_open(tmp_path: Path) -> None:
    Database(tmp_path / "meshprint.db").query("SELECT 1")
    for name in ("meshprint.db", "meshprint.db-wal", "meshprint.db-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o644)
    Database(tmp_path / "meshprint.db")
    assert mode(tmp_path / "meshprint.db") == 0o600


def test_sealed_and_incoming_files_are_0600(
    tmp_path: Path, loose_umask: None, make_job: JobFactory
) -> None:
    db = Database(tmp_path / "meshprint.db")
    store = JobStore(tmp_path, db)
    assert mode(store.jobs) == 0o700 and mode(store.incoming) == 0o700
    made = make_job(sealed_size=5)
    incoming = store.receive(made.id)
    assert mode(incoming.path) == 0o600
    incoming.write(b"12345")
    incoming.commit(made)
    assert mode(store.path(made.id)) == 0o600


def test_prepare_new_and_tighten(tmp_path: Path, loose_umask: None) -> None:
    data = DataDir(tmp_path / "node")
    data.prepare_new()
    data.write_identity(Identity("n1", "s1", "edge"))
    for path in (data.root, data.tls, data.jobs, data.incoming):
        assert mode(path) == 0o700
    assert mode(data.identity_file) == 0o600
    # what an older version left: world-readable files and directories
    (data.jobs / "old.sealed").write_bytes(b"x")
    (data.jobs / "old.sealed").chmod(0o644)
    data.jobs.chmod(0o755)
    data.ca_cert.write_bytes(b"pem")
    data.ca_cert.chmod(0o644)
    (data.root / "link").symlink_to("/etc/hostname")
    data.tighten()
    assert mode(data.jobs) == 0o700
    assert mode(data.jobs / "old.sealed") == 0o600
    assert mode(data.ca_cert) == 0o600
    assert mode(Path("/etc/hostname")) != 0o600  # a symlink's target is left alone


def test_opening_a_database_again_keeps_this_process_s_locks(tmp_path: Path) -> None:
    """A second `Database` on the same file in the same process (the release page opens
    the site per request inside the node) must not open and close the files SQLite has
    open: that drops this process's POSIX locks, and another writer could then write
    under a transaction that is still open (SQLite then says "disk I/O error")."""
    import subprocess
    import sys

    from appliance.store.db import Database

    path = tmp_path / "meshprint.db"
    first = Database(path)
    conn = first.connection()
    conn.execute("BEGIN IMMEDIATE")  # this process holds the write lock
    try:
        Database(path)  # opened again, as a request would
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0);"
                " c.execute('PRAGMA journal_mode=WAL'); c.execute('BEGIN IMMEDIATE')",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert other.returncode != 0 and "locked" in other.stderr, other
    finally:
        conn.execute("ROLLBACK")
