"""SQLite in WAL mode with full fsync on commit: a committed row survives kill -9 and power loss.

One connection per thread; `transaction()` takes the write lock up front so
read-modify-write sequences from the node and the command line never interleave.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.datadir import PRIVATE_FILE, touch_private
from appliance.portable import chmod

SCHEMA = """
CREATE TABLE IF NOT EXISTS directory (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    raw BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS members_seen (
    node_id TEXT PRIMARY KEY,
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS addresses (
    node_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    raw BLOB NOT NULL,
    signature BLOB NOT NULL,
    cert BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_rewraps (
    name TEXT PRIMARY KEY,
    old TEXT NOT NULL,
    new TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS join_tokens (
    secret_hash TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    used_at REAL,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'application/octet-stream',
    size INTEGER NOT NULL,
    sealed_size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    holders TEXT NOT NULL,
    holders_version INTEGER NOT NULL,
    share_x INTEGER NOT NULL,
    share BLOB NOT NULL,
    user_share BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'held',
    release_id TEXT,
    delivery_node TEXT,
    reason TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL DEFAULT '{}',
    pages INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner);
CREATE INDEX IF NOT EXISTS jobs_expires ON jobs(expires_at);
CREATE TABLE IF NOT EXISTS tombstones (
    id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    release_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    printer TEXT NOT NULL,
    stage TEXT NOT NULL,
    printer_job TEXT,
    reason TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS printer_status (
    name TEXT PRIMARY KEY,
    checked_at REAL NOT NULL,
    ready INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS releases (
    release_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    job_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE TABLE IF NOT EXISTS usage (
    job_id TEXT NOT NULL,
    release_id TEXT NOT NULL,
    user TEXT NOT NULL,
    printer TEXT NOT NULL,
    node TEXT NOT NULL,
    at REAL NOT NULL,
    copies INTEGER NOT NULL,
    duplex INTEGER NOT NULL,
    color INTEGER NOT NULL,
    doc_pages INTEGER,
    pages INTEGER NOT NULL DEFAULT 0,
    sheets INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending',
    forwarded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, release_id)
);
CREATE INDEX IF NOT EXISTS usage_at ON usage(at);
CREATE INDEX IF NOT EXISTS usage_user ON usage(user, at);
CREATE TABLE IF NOT EXISTS node_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    fields TEXT NOT NULL DEFAULT '{}'
);
"""
# Columns added after a release: (table, column, definition), added to older databases.
ADDED_COLUMNS = (
    ("jobs", "options", "TEXT NOT NULL DEFAULT '{}'"),
    ("jobs", "pages", "INTEGER"),  # pages counted at intake (jobs/pages.py)
    ("join_tokens", "join_grant", "TEXT"),  # the CA key sealed under the token (site/grants.py)
)


class Database:
    """A SQLite database in WAL mode, one connection per thread; `schema` is applied at
    open and `added_columns` added to older databases."""

    def __init__(
        self,
        path: Path,
        schema: str = SCHEMA,
        added_columns: tuple[tuple[str, str, str], ...] = ADDED_COLUMNS,
    ) -> None:
        self.path = path
        self._local = threading.local()
        for own in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm"))):
            # 0600: SQLite would make them 0644 (less the umask). A file that exists is
            # changed by its path, never opened: closing any descriptor of a file drops
            # every POSIX lock this process holds on it, so opening and closing the
            # database while another connection of this process has it open (the release
            # page opens the site per request, in the node's own process) would take that
            # connection's locks away and end in "disk I/O error".
            if own.exists():
                chmod(own, PRIVATE_FILE)
            elif own == path:
                touch_private(own)
        conn = self.connection()
        conn.executescript(schema)
        for table, column, definition in added_columns:
            have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            # deleted and overwritten rows (a spent join grant, a deleted job's share) are
            # zeroed, whatever this SQLite build's default (Debian's is on already)
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        return self.connection().execute(sql, params).fetchall()
