"""What the typed clients share: the HTTPS transport and how a path is written."""

from __future__ import annotations

from urllib.parse import quote

from appliance.https.client import Client


def path(base: str, *parts: str) -> str:
    """`base` with each of `parts` appended as one quoted path segment."""
    return "/".join([base, *(quote(p, safe="") for p in parts)])


class ApiClient:
    def __init__(self, http: Client) -> None:
        self.http = http

    @property
    def where(self) -> str:
        """Who is called, for messages: the node's name and address."""
        return self.http.where
