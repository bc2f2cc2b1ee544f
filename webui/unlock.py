"""The web console's unlock of the site authority, for a signed-in administrator.

At sign-in the administrator's password opens their admin key (`appliance.site.authority`),
which opens the CA key. The admin key is then kept for the session sealed under a fresh
256-bit key that only the session's cookie carries (`session["unlock"]`), in the web UI's
database so that every gunicorn worker can open it for that session's requests: each
request that changes the site opens the CA key into memory for itself
(`webui.context.site`). Sign-out deletes the row; when the session ends (idle or too
old) the cookie's key is gone with it, and the row, useless without it, is dropped at
the next sign-in. The appliance's disk alone opens nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from flask import current_app, session

from appliance.crypto.userkeys import b64, unb64
from webui.store import Store

_CONTEXT = b"meshprint console unlock\n"


def _id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()


def keep(store: Store, name: str, admin_key: bytes) -> None:
    """Keep `name`'s admin key for this session (call after `security.new_session`)."""
    key, nonce = os.urandom(32), os.urandom(12)
    sealed = nonce + ChaCha20Poly1305(key).encrypt(nonce, admin_key, _CONTEXT + name.encode())
    expires = time.time() + float(current_app.config["SESSION_MAX_AGE"])
    store.keep_unlock(_id(key), b64(sealed), expires)
    session["unlock"] = b64(key)


def admin_key(store: Store) -> tuple[str, bytes] | None:
    """The signed-in administrator's name and admin key, if this session has them."""
    name, text = session.get("admin"), session.get("unlock")
    if not name or not text:
        return None
    try:
        key = unb64(str(text))
        sealed = store.unlock(_id(key))
        if sealed is None:
            return None
        raw = unb64(sealed)
        return str(name), ChaCha20Poly1305(key).decrypt(
            raw[:12], raw[12:], _CONTEXT + str(name).encode()
        )
    except (ValueError, InvalidTag):
        return None


def forget(store: Store) -> None:
    """At sign-out: the session's sealed admin key goes."""
    text = session.get("unlock")
    if text:
        with contextlib.suppress(ValueError):
            store.drop_unlock(_id(unb64(str(text))))
