"""One-time join tokens: `mp1.` + base64url(JSON{site, controller, ca, secret, expires}).

The token carries what a new node needs to trust the controller (the CA certificate's
fingerprint) and to prove it was invited (a secret whose hash only the controller keeps).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass

from appliance.errors import BadRequest

PREFIX = "mp1."


@dataclass(frozen=True)
class JoinToken:
    site: str
    controller: str  # host:port of the controller's submit API
    ca: str  # SHA-256 fingerprint of the site CA certificate
    secret: str
    expires: float

    @classmethod
    def new(cls, site: str, controller: str, ca: str, expires: float) -> JoinToken:
        return cls(site, controller, ca, secrets.token_urlsafe(24), expires)

    def encode(self) -> str:
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> JoinToken:
        text = text.strip()
        if not text.startswith(PREFIX):
            raise BadRequest("this is not a meshprint join token (it should start with 'mp1.')")
        body = text[len(PREFIX) :]
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            return cls(
                site=str(data["site"]),
                controller=str(data["controller"]),
                ca=str(data["ca"]),
                secret=str(data["secret"]),
                expires=float(data["expires"]),
            )
        except (ValueError, KeyError, TypeError):
            raise BadRequest(
                "the join token is damaged: copy it again from 'meshprint invite'"
            ) from None
