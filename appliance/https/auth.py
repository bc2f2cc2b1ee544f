"""HTTP Basic credentials (user + submit token, or user + password) for the client APIs."""

from __future__ import annotations

import base64
import binascii

from appliance.errors import Unauthorized
from appliance.https.server import Request


def basic_credentials(request: Request) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized("sign in: this needs a user name and a password or token")
    try:
        user, sep, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed credentials") from None
    if not sep or not user or not secret:
        raise Unauthorized("sign in: this needs a user name and a password or token")
    return user, secret


def basic_header(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
