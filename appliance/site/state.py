"""This node's copy of the site: the newest verified directory and, on the controller,
the join tokens it has handed out. Kept in the node's SQLite database so the running
node and the command line see the same state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.datadir import DataDir
from appliance.errors import Forbidden, Gone, Unauthorized
from appliance.site import addresses, printer_urls, release_authority
from appliance.site.addresses import Announcement
from appliance.site.ca import SiteCA, load_cert, load_key, sha256_hex
from appliance.site.directory import Directory, give_point
from appliance.store.db import Database

LOCKED = (
    "the site authority is locked: an administrator's credential unlocks it (on the "
    "command line --admin NAME with --admin-password-file, or --key-file with the "
    "recovery key; in the web console, sign in again)"
)


def open_site(data: DataDir) -> tuple[Database, SiteState]:
    """The database and site state of a data directory (used by the node, the command
    line and the web UI)."""
    identity = data.identity()
    db = Database(data.db)
    # The CA key in the clear only on a controller from before it was kept sealed
    # (`appliance.site.authority` seals it and removes the file at the next unlock).
    ca = SiteCA(load_cert(data.ca_cert), load_key(data.ca_key) if data.ca_key.exists() else None)
    return db, SiteState(db, ca, identity.site_id)


class SiteState:
    def __init__(self, db: Database, ca: SiteCA, site_id: str) -> None:
        self.db = db
        self.ca = ca
        self.site_id = site_id
        self._cached: Directory | None = None
        self._cached_key: tuple[int, str] | None = None

    def directory(self) -> Directory:
        """The newest directory this node holds, with the members' address announcements
        (re-read only when its version or an announcement changed)."""
        rows = self.db.query(
            "SELECT version, (SELECT group_concat(node_id || ':' || at) FROM addresses) AS a "
            "FROM directory WHERE id=1"
        )
        if not rows:
            raise Forbidden("this node has no site directory yet")
        key = (int(rows[0]["version"]), str(rows[0]["a"]))
        if self._cached is None or self._cached_key != key:
            row = self.db.query("SELECT raw, signature FROM directory WHERE id=1")[0]
            self._cached = Directory(bytes(row["raw"]), bytes(row["signature"]), self._announced())
            self._cached_key = key
        return self._cached

    def controller_here(self, node_id: str) -> bool:
        """Whether `node_id` (this node) is the site's controller."""
        return self.directory().controller_id == node_id

    # Address announcements (`appliance.site.addresses`)

    def _announced(self) -> dict[str, Announcement]:
        rows = self.db.query("SELECT raw, signature, cert FROM addresses")
        found = {}
        for row in rows:  # each verified when it was stored
            one = addresses._parse(bytes(row["raw"]), bytes(row["signature"]), bytes(row["cert"]))
            found[one.node_id] = one
        return found

    def _store_address(self, conn: Any, one: Announcement) -> bool:
        row = conn.execute("SELECT at FROM addresses WHERE node_id=?", (one.node_id,)).fetchone()
        if row is not None and float(row["at"]) >= one.at:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO addresses (node_id, at, raw, signature, cert) "
            "VALUES (?,?,?,?,?)",
            (one.node_id, one.at, one.raw, one.signature, one.cert),
        )
        return True

    def record_addresses(self, wire: Any) -> int:
        """Keep the announcements in `wire` that verify as current members' own and are
        newer than what this node has; how many were new."""
        found = self.directory().verified_addresses(wire, self.ca)
        with self.db.transaction() as conn:
            return sum(self._store_address(conn, one) for one in found.values())

    def announce(
        self,
        node_id: str,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        address: dict[str, Any],
    ) -> bool:
        """Sign and keep this node's own address, when it is not the one announced."""
        directory = self.directory()
        mine = directory.announced.get(node_id)
        if mine is not None and mine.fields == addresses.check_fields(address):
            return False
        at = max(time.time(), (mine.at + 0.001) if mine else 0.0)
        one = addresses.sign(self.site_id, node_id, cert, key, address, at)
        addresses.verify(one.to_wire(), self.ca, self.site_id, directory.doc["nodes"], [])
        with self.db.transaction() as conn:
            return self._store_address(conn, one)

    def adopt(self, raw: bytes, signature: bytes, announced: Any = None) -> bool:
        """Store a directory from a peer when it verifies and is newer, and the address
        announcements beside it that verify. True if the directory was adopted."""
        adopted = self._adopt(raw, signature)
        if announced:
            self.record_addresses(announced)
        return adopted

    def _adopt(self, raw: bytes, signature: bytes) -> bool:
        incoming = Directory.verify(raw, signature, self.ca, self.site_id)
        with self.db.transaction() as conn:
            row = conn.execute("SELECT raw, signature FROM directory WHERE id=1").fetchone()
            before: set[str] = set()
            if row is not None:
                current = Directory(bytes(row["raw"]), bytes(row["signature"]))
                release_authority.check_kept(current.doc, incoming.doc)
                incoming.check_follows(current)
                if current.version >= incoming.version:
                    return False
                before = set(current.nodes)
            conn.execute(
                "INSERT OR REPLACE INTO directory (id, version, raw, signature) VALUES (1,?,?,?)",
                (incoming.version, raw, signature),
            )
            _seen(conn, before, set(incoming.nodes), time.time())
        return True

    def initialise(self, directory: Directory) -> None:
        """Start from `directory` (a new site, a join, a restore): its members count as
        members since always."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO directory (id, version, raw, signature) VALUES (1,?,?,?)",
                (directory.version, directory.raw, directory.signature),
            )
            _seen(conn, set(), set(directory.nodes), 0.0)
            for one in directory.announced.values():  # verified where they came in
                self._store_address(conn, one)

    def member_since(self, node_id: str) -> float:
        """Since when this node knows `node_id` as a member (0: since it joined, or from
        before this was recorded). A member added later counts from when this node first
        saw it, whatever the directory claims: so a member the CA key adds (a stolen
        controller's) is never taken for one that was there when a job came."""
        rows = self.db.query("SELECT since FROM members_seen WHERE node_id=?", (node_id,))
        return float(rows[0]["since"]) if rows else 0.0

    def edit(self, change: Callable[[dict[str, Any]], None], ca: SiteCA | None = None) -> Directory:
        """Controller only: sign (with `ca`, by default the CA this state was opened with)
        and store the next directory version made by `change`. It also carries the key
        upgrades sign-ins queued (`queue_rewrap`) whose user record is still the one they
        upgrade."""
        if (ca or self.ca).key is None:
            raise Forbidden(LOCKED)
        with self.db.transaction() as conn:
            row = conn.execute("SELECT raw, signature FROM directory WHERE id=1").fetchone()
            current = Directory(bytes(row["raw"]), bytes(row["signature"]))
            pending = conn.execute("SELECT name, old, new FROM pending_rewraps").fetchall()

            def change_and_upgrade(doc: dict[str, Any]) -> None:
                change(doc)
                for record in doc["nodes"].values():
                    if record.get("point") is None:  # members from before member points
                        give_point(doc, record)
                for user in doc["users"].values():  # users from before personal URLs
                    if printer_urls.FIELD not in user:  # (a revoked one is None: stays)
                        user[printer_urls.FIELD] = printer_urls.new_entry(user["public_key"])[0]
                for queued in pending:
                    record = doc["users"].get(queued["name"])
                    if record is not None and record.get("wrapped_key") == json.loads(
                        queued["old"]
                    ):
                        record["wrapped_key"] = json.loads(queued["new"])

            new = current.edited(ca or self.ca, change_and_upgrade)
            conn.execute("DELETE FROM pending_rewraps")
            conn.execute(
                "UPDATE directory SET version=?, raw=?, signature=? WHERE id=1",
                (new.version, new.raw, new.signature),
            )
            _seen(conn, set(current.nodes), set(new.nodes), time.time())
        return self.directory()

    # Key upgrades waiting for the next signed version (controller only)

    def queue_rewrap(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Remember that `name`'s wrapped key `old` is to become `new` (the same private
        key wrapped at the current KDF cost) in the next version this node signs. Both are
        password-wrapped, as every member's directory copy holds them."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pending_rewraps (name, old, new) VALUES (?,?,?)",
                (name, json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True)),
            )

    def queued_rewrap(self, name: str) -> dict[str, Any] | None:
        """The wrapped key `queue_rewrap` last queued for `name` to replace, if any."""
        rows = self.db.query("SELECT old FROM pending_rewraps WHERE name=?", (name,))
        return dict(json.loads(rows[0]["old"])) if rows else None

    # Join tokens (controller only)

    def add_token(self, secret: str, expires_at: float, grant: str | None = None) -> None:
        """Keep a new token's secret hash and its join grant (`grants.seal`); grants of
        expired tokens are erased meanwhile."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO join_tokens (secret_hash, expires_at, join_grant) VALUES (?,?,?)",
                (sha256_hex(secret.encode()), expires_at, grant),
            )
            conn.execute(
                "UPDATE join_tokens SET join_grant=NULL WHERE expires_at<?", (time.time(),)
            )

    def redeem_token(self, secret: str, node_id: str) -> str | None:
        """Mark a token used, once, erasing its join grant; the grant (None for a token
        made before grants). Unauthorized for an unknown token, Gone for a spent or
        expired one."""
        digest = sha256_hex(secret.encode())
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT expires_at, used_at, join_grant FROM join_tokens WHERE secret_hash=?",
                (digest,),
            ).fetchone()
            if row is None:
                raise Unauthorized("this join token is not valid for this site")
            if row["used_at"] is not None:
                raise Gone("this join token was already used: ask for a new one (meshprint invite)")
            expired = row["expires_at"] < time.time()
            if expired:  # erased, and the transaction kept: the error comes after it
                conn.execute(
                    "UPDATE join_tokens SET join_grant=NULL WHERE secret_hash=?", (digest,)
                )
            else:
                conn.execute(
                    "UPDATE join_tokens SET used_at=?, used_by=?, join_grant=NULL "
                    "WHERE secret_hash=?",
                    (time.time(), node_id, digest),
                )
        if expired:
            raise Gone("this join token has expired: ask for a new one (meshprint invite)")
        return None if row["join_grant"] is None else str(row["join_grant"])


def _seen(conn: Any, before: set[str], after: set[str], now: float) -> None:
    """Record when members appear (from `now`) and forget those that left (one that comes
    back counts as new)."""
    for node_id in after - before:
        conn.execute(
            "INSERT OR IGNORE INTO members_seen (node_id, since) VALUES (?,?)", (node_id, now)
        )
    for node_id in before - after:
        conn.execute("DELETE FROM members_seen WHERE node_id=?", (node_id,))
