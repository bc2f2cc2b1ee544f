"""The web UI's own state, in DIR/webui.db beside the node's database (SQLite, WAL), so
every gunicorn worker and the node's release page see the same thing:

- admins: web console accounts (scrypt password hashes)
- settings: setup progress, time zone, upstream broker URL
- attempts: failed sign-ins and setup-code guesses, for rate limiting
- events: what happened (admin actions, releases), shown on the dashboard
- unlocks: signed-in administrators' admin keys, sealed under their session's key
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

from appliance.errors import BadRequest
from appliance.store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS admins (name TEXT PRIMARY KEY, hash TEXT NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key, at);
-- release sessions live in the node's memory now (appliance/jobs/sessions.py): passwords
-- sealed here by earlier versions go
DROP TABLE IF EXISTS release_sessions;
-- a signed-in administrator's admin key, sealed under a key only the session cookie
-- carries (webui/unlock.py); gone at sign-out, useless after the session's end
CREATE TABLE IF NOT EXISTS unlocks (
    id TEXT PRIMARY KEY, sealed TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL);
"""
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
ADMIN_NAME_MAX = 32
_DUMMY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 32


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(stored: str, password: str) -> bool:
    _, salt, digest = stored.split("$")
    candidate = hash_password(password, bytes.fromhex(salt)).split("$")[2]
    return hmac.compare_digest(candidate, digest)


class Store(Database):
    """The web UI's own database (`DIR/webui.db`): settings, admins, sessions, events."""

    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(Path(path), SCHEMA, ())

    # Settings

    def get(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM settings WHERE key=?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def put(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?,?)",
                (key, json.dumps(value)),
            )

    # Admin accounts

    def has_admin(self) -> bool:
        return bool(self.query("SELECT 1 FROM admins LIMIT 1"))

    def admins(self) -> list[str]:
        return [row["name"] for row in self.query("SELECT name FROM admins ORDER BY name")]

    def add_admin(self, name: str, password: str) -> None:
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM admins WHERE name=?", (name,)).fetchone():
                raise BadRequest(f"an administrator {name} already exists")
            conn.execute(
                "INSERT INTO admins (name, hash, created_at) VALUES (?,?,?)",
                (name, hash_password(password), time.time()),
            )

    def check_admin(self, name: str, password: str) -> bool:
        """Whether name + password are right; about the same time for an unknown name."""
        rows = self.query("SELECT hash FROM admins WHERE name=?", (name,))
        stored = rows[0]["hash"] if rows else _DUMMY_HASH
        ok = verify_password(stored, password)
        return ok and bool(rows)

    def set_admin_password(self, name: str, password: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE admins SET hash=? WHERE name=?", (hash_password(password), name))

    # Session unlocks (webui/unlock.py)

    def keep_unlock(self, unlock_id: str, sealed: str, expires_at: float) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM unlocks WHERE expires_at<?", (time.time(),))
            conn.execute(
                "INSERT OR REPLACE INTO unlocks (id, sealed, expires_at) VALUES (?,?,?)",
                (unlock_id, sealed, expires_at),
            )

    def unlock(self, unlock_id: str) -> str | None:
        rows = self.query(
            "SELECT sealed FROM unlocks WHERE id=? AND expires_at>=?", (unlock_id, time.time())
        )
        return str(rows[0]["sealed"]) if rows else None

    def drop_unlock(self, unlock_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM unlocks WHERE id=?", (unlock_id,))

    # Rate limiting

    def failures(self, key: str, window: float) -> tuple[int, float]:
        """How many failures `key` had in the last `window` seconds, and the oldest one's time."""
        rows = self.query(
            "SELECT COUNT(*) AS n, MIN(at) AS first FROM attempts WHERE key=? AND at>?",
            (key, time.time() - window),
        )
        return int(rows[0]["n"]), float(rows[0]["first"] or 0)

    def fail(self, key: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO attempts (key, at) VALUES (?,?)", (key, time.time()))
            conn.execute("DELETE FROM attempts WHERE at<?", (time.time() - 86400,))

    def forget(self, key: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM attempts WHERE rowid=(SELECT MAX(rowid) FROM attempts WHERE key=?)",
                (key,),
            )

    def clear(self, key: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM attempts WHERE key=?", (key,))

    # Events

    def event(self, kind: str, text: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO events (at, kind, text) VALUES (?,?,?)", (time.time(), kind, text)
            )
            conn.execute("DELETE FROM events WHERE id <= (SELECT MAX(id) - 500 FROM events)")

    def events(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.query("SELECT at, kind, text FROM events ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(row) for row in rows]
