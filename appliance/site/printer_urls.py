"""Personal printer URLs: `ipps://HOST:P/ipp/print/SECRET`, one per user, for the clients
that cannot sign in (Windows' IPP class driver ignores 401; ChromeOS and CUPS' `lp` never
prompt).

The secret is 192 random bits. The signed directory keeps, in the user's record, only its
SHA-256 (which every super node serving IPP checks it against, with the controller down
too) and the secret sealed to the user's own public key (which only the user's password
opens: the release page shows it to them after sign-in). No node can read it. Making a new
one (`--rotate`, or a new password: a new key pair) replaces the old one at once.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto.userkeys import b64, open_sealed, seal, unb64
from appliance.errors import NotFound, Unauthorized
from appliance.site.ca import sha256_hex
from appliance.site.directory import Directory

FIELD = "printer_url"  # in a user's directory record: {"hash": HEX, "sealed": B64}
SECRET_BYTES = 24  # 192 bits
CONTEXT = b"meshprint personal printer url v1\n"
SECRET_LENGTH = 32  # characters of token_urlsafe(SECRET_BYTES)


def new_entry(public_key: str) -> tuple[dict[str, str], str]:
    """A fresh secret for the user whose public key (base64) is `public_key`: their
    record's entry and the secret."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    sealed = seal(unb64(public_key), secret.encode(), CONTEXT)
    return {"hash": sha256_hex(secret.encode()), "sealed": b64(sealed)}, secret


def looks_like_secret(text: str) -> bool:
    return len(text) == SECRET_LENGTH and all(c.isalnum() or c in "-_" for c in text)


def owner_of(directory: Directory, secret: str) -> str | None:
    """The user whose personal URL carries `secret`, or None. Compared with every user's
    hash in constant time, so the time taken says nothing about which hash came close."""
    given = sha256_hex(secret.encode())
    found = None
    for name, record in sorted(directory.doc["users"].items()):
        entry = record.get(FIELD) or {}
        expected = str(entry.get("hash", "")) or sha256_hex(b"no personal url")
        if hmac.compare_digest(given, expected) and entry:
            found = name
    return found


def open_secret(directory: Directory, name: str, private: X25519PrivateKey) -> str:
    """The user's own secret, opened with their key (NotFound: they have none)."""
    record = directory.doc["users"].get(name) or {}
    entry: dict[str, Any] = record.get(FIELD) or {}
    if not entry:
        raise NotFound(
            f"{name} has no personal printer URL: the administrator makes one "
            f"(meshprint user printer-url {name} --rotate)"
        )
    try:
        return open_sealed(private, unb64(str(entry["sealed"])), CONTEXT).decode()
    except (Unauthorized, KeyError, ValueError):
        raise NotFound(
            f"{name}'s personal printer URL was made for an older key: the administrator "
            f"makes a new one (meshprint user printer-url {name} --rotate)"
        ) from None


PATH = "/ipp/print"  # the printer's path (`appliance.intake.ipp.printer.PATH`)


def url(host: str, port: int, secret: str) -> str:
    """The personal printer URL on the printer at `host`:`port`."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"ipps://{host}:{port}{PATH}/{secret}"
