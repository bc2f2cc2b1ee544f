"""The site authority (the CA key) at rest: only sealed, opened while an administrator acts.

On the controller the CA key is kept in two sealed forms and never in the clear:

- under the recovery key, in the signed directory (`recovery.seal_authority`: every
  member carries it, none opens it);
- under each administrator's own key, in `DIR/tls/ca.sealed`: each administrator has a
  random 256-bit key of their own (the *admin key*), wrapped under their password with
  the users' KDF (`userkeys.wrap_secret`, Argon2id), and the CA key is sealed under that
  admin key. A password change re-wraps the admin key only (no CA key needed); the web
  console keeps the admin key of a signed-in administrator sealed under a key that only
  the session's cookie carries (`webui.unlocks`).

`unlock` opens the CA key into memory (the `SiteState`'s `ca`) for one administrator's
action; nothing writes it back in the clear. A controller from before this kept the
key in `DIR/tls/ca.key`: the first unlock seals it and removes the file (`retire_clear`:
overwritten, then unlinked; flash storage may keep old blocks, see docs/security.md).

What the controller does on its own needs none of this: addresses are signed by each
node (`addresses`), joins by the grant the invite sealed under the token's secret
(`grants`), key upgrades at sign-in ride on the next version an administrator signs.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from appliance.crypto.userkeys import (
    WrappedKey,
    WrongPassword,
    b64,
    unb64,
    unwrap_secret,
    wrap_secret,
)
from appliance.datadir import DataDir, private_dir
from appliance.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from appliance.site import recovery
from appliance.site.ca import SiteCA, key_pem, write_private
from appliance.site.state import LOCKED, SiteState

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

ADMIN_KEY_CONTEXT = b"meshprint admin key\n"
AUTHORITY_CONTEXT = b"meshprint site authority\n"
ADMIN_NAME_MAX = 64
WRONG = "wrong administrator name or password"


@dataclass(frozen=True)
class AdminPassword:
    """An administrator's name and password."""

    name: str
    password: str


@dataclass(frozen=True)
class RecoveryKey:
    """The site's recovery key (shown once at `site create`)."""

    key: str


Credential = AdminPassword | RecoveryKey


def check_admin_name(name: str) -> str:
    if not name or len(name) > ADMIN_NAME_MAX or not name.isprintable() or name != name.strip():
        raise BadRequest(f"an administrator's name is 1-{ADMIN_NAME_MAX} printable characters")
    return name


# The file


def _read(data: DataDir) -> dict[str, Any]:
    try:
        found = json.loads(data.ca_sealed.read_text())
    except FileNotFoundError:
        return {"admins": {}}
    except ValueError:
        raise Forbidden(f"{data.ca_sealed} is damaged") from None
    if not isinstance(found, dict) or not isinstance(found.get("admins"), dict):
        raise Forbidden(f"{data.ca_sealed} is damaged")
    return found


def _write(data: DataDir, found: dict[str, Any]) -> None:
    private_dir(data.tls)
    write_private(data.ca_sealed, (json.dumps(found, indent=1, sort_keys=True) + "\n").encode())


@contextmanager
def _editing(data: DataDir) -> Iterator[dict[str, Any]]:
    """The file's content to change in place, written back when the block ends; one
    change at a time across processes (the CLI and the console's workers), so none is
    lost. (No lock where there is no fcntl: a controller is a Linux appliance.)"""
    private_dir(data.tls)
    with open(data.ca_sealed.with_name("ca.sealed.lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        found = _read(data)
        yield found
        _write(data, found)


def keep_sealed(data: DataDir) -> None:
    """Mark `data` a controller whose CA key is kept sealed (`site create`, restore)."""
    if not data.ca_sealed.exists():
        _write(data, {"admins": {}})


def admins(data: DataDir) -> list[str]:
    """The administrators who have a key to the site authority (or will have, once the
    site exists)."""
    return sorted(_read(data)["admins"])


def _admin_context(name: str) -> bytes:
    return ADMIN_KEY_CONTEXT + name.encode()


def _authority_context(site_id: str, ca: SiteCA, name: str) -> bytes:
    return AUTHORITY_CONTEXT + f"{site_id}\n{ca.fingerprint}\n{name}".encode()


def _seal_authority(admin_key: bytes, site_id: str, ca: SiteCA, name: str) -> dict[str, str]:
    assert ca.key is not None
    nonce = os.urandom(12)
    sealed = ChaCha20Poly1305(admin_key).encrypt(
        nonce, key_pem(ca.key), _authority_context(site_id, ca, name)
    )
    return {"nonce": b64(nonce), "sealed": b64(sealed)}


# Administrators


def add_admin(
    data: DataDir, name: str, password: str, ca: SiteCA | None = None, site_id: str = ""
) -> bytes:
    """A new administrator: their admin key wrapped under `password`, and (with an
    unlocked `ca`) the CA key sealed under it; the admin key (for a session to keep)."""
    name = check_admin_name(name)
    if name in _read(data)["admins"]:  # said before the KDF runs
        raise Conflict(f"an administrator {name} already exists")
    admin_key = secrets.token_bytes(32)
    entry: dict[str, Any] = {
        "key": wrap_secret(admin_key, password, _admin_context(name)).to_dict()
    }
    if ca is not None and ca.key is not None:
        entry["authority"] = _seal_authority(admin_key, site_id, ca, name)
    with _editing(data) as found:
        if name in found["admins"]:
            raise Conflict(f"an administrator {name} already exists")
        found["admins"][name] = entry
    return admin_key


def give_authority(data: DataDir, name: str, admin_key: bytes, site: SiteState) -> None:
    """Seal the (unlocked) CA key of `site` under administrator `name`'s admin key."""
    if site.ca.key is None:
        raise Forbidden(LOCKED)
    with _editing(data) as found:
        entry = found["admins"].get(name)
        if entry is None:
            raise NotFound(f"no administrator {name}")
        entry["authority"] = _seal_authority(admin_key, site.site_id, site.ca, name)
    retire_clear(data, site)


def remove_admin(data: DataDir, name: str) -> None:
    with _editing(data) as found:
        if found["admins"].pop(name, None) is None:
            raise NotFound(f"no administrator {name}")


def open_admin_key(data: DataDir, name: str, password: str) -> bytes:
    """Administrator `name`'s admin key, opened with their password (Unauthorized
    otherwise)."""
    entry = _read(data)["admins"].get(name)
    if entry is None:
        raise Unauthorized(WRONG)
    try:
        return unwrap_secret(WrappedKey.from_dict(entry["key"]), password, _admin_context(name))
    except (WrongPassword, KeyError, TypeError):
        raise Unauthorized(WRONG) from None


def change_password(data: DataDir, name: str, current: str, new: str) -> None:
    """Wrap administrator `name`'s admin key under `new` (what it seals stays)."""
    admin_key = open_admin_key(data, name, current)
    wrapped = wrap_secret(admin_key, new, _admin_context(name)).to_dict()
    with _editing(data) as found:
        if name not in found["admins"]:
            raise NotFound(f"no administrator {name}")
        found["admins"][name]["key"] = wrapped


# Unlocking


def _load(pem: bytes, ca: SiteCA) -> SiteCA:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != ca.public_key:
        raise Forbidden("the sealed site authority does not match this site's CA")
    return SiteCA(ca.cert, key)


def unlock_with_admin_key(data: DataDir, site: SiteState, name: str, admin_key: bytes) -> SiteCA:
    """Open the CA key into `site` with administrator `name`'s admin key. A CA key still
    in the clear (an older controller) is sealed under it and the clear file retired."""
    found = _read(data)
    entry = found["admins"].get(name)
    if entry is None:
        raise Unauthorized(WRONG)
    if site.ca.key is not None and data.ca_key.exists():  # the migration
        if "authority" not in entry:
            give_authority(data, name, admin_key, site)
        retire_clear(data, site)
        return site.ca
    sealed = entry.get("authority")
    if not isinstance(sealed, dict):
        raise Forbidden(
            f"administrator {name} has no key to the site authority yet: another "
            "administrator, or the recovery key, gives one (meshprint admin grant)"
        )
    try:
        pem = ChaCha20Poly1305(admin_key).decrypt(
            unb64(str(sealed["nonce"])),
            unb64(str(sealed["sealed"])),
            _authority_context(site.site_id, site.ca, name),
        )
    except (InvalidTag, KeyError, ValueError):
        raise Unauthorized(WRONG) from None
    site.ca = _load(pem, site.ca)
    return site.ca


def unlock(data: DataDir, site: SiteState, credential: Credential) -> SiteCA:
    """Open the CA key into `site` (its `ca`) with an administrator's credential, for the
    action at hand; Unauthorized when the credential does not open it."""
    if isinstance(credential, RecoveryKey):
        entry = site.directory().doc.get("recovery")
        if entry is None and site.ca.key is not None:
            raise Forbidden(
                "this site has no recovery key yet: make one first (meshprint site recovery-key)"
            )
        site.ca = recovery.open_authority(entry, site.ca, site.site_id, credential.key)
        retire_clear(data, site)
        return site.ca
    name = check_admin_name(credential.name)
    if name not in _read(data)["admins"] and site.ca.key is not None and data.ca_key.exists():
        # an older controller, its key in the clear: the first administrator names
        # themselves (whoever reads this disk has the key anyway until it is sealed)
        add_admin(data, name, credential.password, site.ca, site.site_id)
    admin_key = open_admin_key(data, name, credential.password)
    return unlock_with_admin_key(data, site, name, admin_key)


def unlock_once(data: DataDir, site: SiteState, credential: Credential) -> SiteCA:
    """`unlock`, unless `site` already has the CA key open (then that)."""
    if site.ca.key is not None and not data.ca_key.exists():
        return site.ca
    return unlock(data, site, credential)


def lock(site: SiteState) -> None:
    """Forget the opened CA key (the action is over)."""
    site.ca = SiteCA(site.ca.cert, None)


def sealed_somewhere(data: DataDir, site: SiteState) -> bool:
    """Whether the CA key is kept sealed under a credential (so the clear copy can go)."""
    found = _read(data)["admins"].values()
    return "recovery" in site.directory().doc or any("authority" in e for e in found)


def retire_clear(data: DataDir, site: SiteState) -> bool:
    """Remove a CA key kept in the clear once it is sealed somewhere: overwritten with
    random bytes, flushed, then unlinked. Whether the file is gone."""
    if not data.ca_key.exists():
        return True
    if not sealed_somewhere(data, site):
        return False
    keep_sealed(data)
    shred(data.ca_key)
    return True


def shred(path: Any) -> None:
    """Overwrite a file with random bytes (flushed to the disk), then unlink it. On an SD
    card or SSD the controller may have kept the old blocks: this is best effort."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(os.urandom(max(size, 1)))
        f.flush()
        os.fsync(f.fileno())
    os.unlink(path)
