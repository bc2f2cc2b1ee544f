"""The client of a node's submit API (port 9265) and release API (9266): one method per
route of `appliance.api.submit` and `appliance.api.release`. One NodeClient talks to one
port; `submit`, `intake`, `ca` and `join` are on the submit port, the rest on the
release port (`health` and `members` on both)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlencode

from appliance.clients.base import ApiClient, path
from appliance.clients.models import DeliveryInfo, JobInfo, Receipt, SignedDirectory
from appliance.https.auth import basic_header

Credentials = tuple[str, str]  # a user and their password (release) or submit token
INTAKE_SECRET_HEADER = "X-Meshprint-Intake"  # the Secure Print backend's key to the door
Document = bytes | Iterable[bytes]


def _auth(credentials: Credentials | None) -> dict[str, str]:
    return {"Authorization": basic_header(*credentials)} if credentials else {}


def _job(job_id: str, *rest: str) -> str:
    return path("/v1/jobs", job_id, *rest)


class NodeClient(ApiClient):
    def _receipt(
        self, path: str, document: Document, headers: dict[str, str], length: int | None
    ) -> Receipt:
        response = self.http.request("POST", path, document, headers, length)
        with response:
            return cast(Receipt, json.loads(response.read()))

    # Both ports

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.http.json("GET", "/v1/health"))

    def members(self) -> SignedDirectory:
        """The node's newest signed member list (`Membership`; verify it before use)."""
        return cast(SignedDirectory, self.http.json("GET", "/v1/members"))

    # The submit API

    def submit(
        self,
        credentials: Credentials | None,
        document: Document,
        title: str,
        content_type: str | None = None,
        length: int | None = None,
    ) -> Receipt:
        """Hand a document in as the user (with their submit token); streamed when it is
        an iterable (with `length` as Content-Length when known)."""
        headers = _auth(credentials)
        if content_type:
            headers["Content-Type"] = content_type
        path = f"/v1/jobs?{urlencode({'title': title})}"
        return self._receipt(path, document, headers, length)

    def intake(
        self,
        secret: str,
        user: str,
        title: str,
        options: dict[str, str],
        document: Document,
        content_type: str = "",
        length: int | None = None,
    ) -> Receipt:
        """The Secure Print backend hands a job in for `user` (loopback only)."""
        headers = {INTAKE_SECRET_HEADER: secret, "Content-Type": content_type}
        path = f"/v1/intake?{urlencode({'user': user, 'title': title, **options})}"
        return self._receipt(path, document, headers, length)

    def recovery(self, proof: str) -> dict[str, Any]:
        """The site CA (PEM) and signed directory, for a node restoring the controller
        role that shows the recovery key's proof (`appliance.site.restore`)."""
        return cast(dict[str, Any], self.http.json("POST", "/v1/recovery", {"proof": proof}))

    def ca(self) -> bytes:
        """The site CA certificate (PEM), for a joining node to check against its token."""
        with self.http.request("GET", "/v1/ca") as response:
            return response.read()

    def join(self, request: dict[str, Any]) -> dict[str, Any]:
        return cast(dict[str, Any], self.http.json("POST", "/v1/join", request))

    # The release API

    def status(self) -> dict[str, Any]:
        """Members, liveness, printers and held jobs, as this node sees them."""
        return cast(dict[str, Any], self.http.json("GET", "/v1/status"))

    def jobs(self, credentials: Credentials) -> list[JobInfo]:
        answer = self.http.json("GET", "/v1/jobs", headers=_auth(credentials))
        return cast(list[JobInfo], answer["jobs"])

    def job(self, job_id: str, credentials: Credentials) -> JobInfo:
        return cast(JobInfo, self.http.json("GET", _job(job_id), headers=_auth(credentials)))

    def release(
        self, job_id: str, request: dict[str, Any], credentials: Credentials | None = None
    ) -> DeliveryInfo:
        """Release to the printer `request` names, as the owner (`credentials`) or with
        the controller-signed command `request` carries; the delivery as it starts."""
        path = _job(job_id, "release")
        return cast(DeliveryInfo, self.http.json("POST", path, request, _auth(credentials)))

    def release_document(
        self,
        job_id: str,
        credentials: Credentials | None = None,
        command: dict[str, Any] | None = None,
    ) -> http.client.HTTPResponse:
        """The decrypted document (streamed), released to the owner or for a command."""
        body = json.dumps(command or {}).encode()
        headers = {"Content-Type": "application/json", **_auth(credentials)}
        return self.http.request("POST", _job(job_id, "release"), body, headers)

    def release_status(self, release_id: str) -> DeliveryInfo:
        return cast(DeliveryInfo, self.http.json("GET", path("/v1/releases", release_id)))

    def delete(self, job_id: str, credentials: Credentials) -> str:
        """Delete one of the user's jobs everywhere; its id."""
        return str(self.http.json("DELETE", _job(job_id), headers=_auth(credentials))["deleted"])
