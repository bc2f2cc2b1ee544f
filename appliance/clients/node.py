"""The client of a node's submit API (port 9265) and release API (9266): one method per
route of `appliance.api.submit` and `appliance.api.release`. One NodeClient talks to one
port; `submit`, `intake`, `ca` and `join` are on the submit port, the rest on the
release port (`health` and `members` on both)."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import urlencode

from appliance.clients.base import ApiClient, path
from appliance.clients.models import DeliveryInfo, JobInfo, Receipt, SignedDirectory
from appliance.errors import RemoteError, Unavailable
from appliance.https.auth import basic_header

Credentials = tuple[str, str]  # a user and their password (release) or submit token


class SessionToken(str):
    """A signed-in release session's token (`NodeClient.sign_in`): sent instead of a
    password, the node opens no key again."""


Auth = Credentials | SessionToken
INTAKE_SECRET_HEADER = "X-Meshprint-Intake"  # the Secure Print backend's key to the door
# A submission's key of the client's choice: the same request again gets the same job.
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_PAUSE = 1.0  # before the one retry of a submission whose answer was lost
Document = bytes | Iterable[bytes]
# A document that can be sent again: bytes, or a callable giving it anew for each attempt.
Resendable = Document | Callable[[], Document]


def new_idempotency_key() -> str:
    """A fresh idempotency key (32 characters of A-Z a-z 0-9 _ -)."""
    return secrets.token_urlsafe(24)


def lost_answer(err: BaseException) -> bool:
    """Whether a call failed without any answer from the node (the connection failed or
    dropped): it may or may not have done what was asked."""
    return isinstance(err, Unavailable) and not isinstance(err, RemoteError)


def _resendable(document: Resendable) -> tuple[Document, Callable[[], Document] | None]:
    """The document for a first attempt, and how to have it again (None: it streams
    once)."""
    if isinstance(document, bytes):
        return document, lambda: document
    if callable(document):
        return document(), document
    return document, None


def _auth(credentials: Auth | None) -> dict[str, str]:
    if isinstance(credentials, SessionToken):
        return {"Authorization": f"Session {credentials}"}
    return {"Authorization": basic_header(*credentials)} if credentials else {}


def _job(job_id: str, *rest: str) -> str:
    return path("/v1/jobs", job_id, *rest)


class NodeClient(ApiClient):
    def _receipt(
        self, path: str, document: Document, headers: dict[str, str], length: int | None
    ) -> Receipt:
        response = self.http.request("POST", path, document, headers, length)
        with response:
            try:
                return cast(Receipt, json.loads(response.read()))
            except (OSError, http.client.HTTPException, ValueError) as err:
                raise Unavailable(f"{self.where} stopped answering: {err}") from None

    def _submission(
        self, path: str, document: Resendable, headers: dict[str, str], length: int | None
    ) -> Receipt:
        """Post a submission carrying an idempotency key; when its answer is lost, post it
        once more with the same key if the document can be sent again: the node answers
        with the job the first attempt made, if it made one, never a second."""
        first, again = _resendable(document)
        try:
            return self._receipt(path, first, headers, length)
        except Unavailable as err:
            if again is None or not lost_answer(err):
                raise
        time.sleep(RETRY_PAUSE)
        return self._receipt(path, again(), headers, length)

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
        document: Resendable,
        title: str,
        content_type: str | None = None,
        length: int | None = None,
        idempotency_key: str | None = None,
    ) -> Receipt:
        """Hand a document in as the user (with their submit token); streamed when it is
        an iterable (with `length` as Content-Length when known). It carries an
        idempotency key (a fresh one unless given) and is retried once when the answer
        is lost and the document can be sent again (bytes, or a callable giving it)."""
        headers = _auth(credentials)
        headers[IDEMPOTENCY_HEADER] = idempotency_key or new_idempotency_key()
        if content_type:
            headers["Content-Type"] = content_type
        path = f"/v1/jobs?{urlencode({'title': title})}"
        return self._submission(path, document, headers, length)

    def intake(
        self,
        secret: str,
        user: str,
        title: str,
        options: dict[str, str],
        document: Document,
        content_type: str = "",
        length: int | None = None,
        idempotency_key: str | None = None,
    ) -> Receipt:
        """The Secure Print backend hands a job in for `user` (loopback only); with an
        idempotency key, the same job again gets the job it made (see `submit`)."""
        headers = {INTAKE_SECRET_HEADER: secret, "Content-Type": content_type}
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        path = f"/v1/intake?{urlencode({'user': user, 'title': title, **options})}"
        return self._submission(path, document, headers, length)

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

    def events(self) -> list[dict[str, Any]]:
        """The node's recent events, newest first (from the same machine only)."""
        answer = cast(dict[str, Any], self.http.json("GET", "/v1/events"))
        return list(answer.get("events", []))

    def sign_in(self, credentials: Credentials) -> SessionToken:
        """Open the user's key once on the node; the session's token."""
        answer = self.http.json("POST", "/v1/sessions", {}, _auth(credentials))
        return SessionToken(answer["session"])

    def sign_out(self, token: SessionToken) -> None:
        """End the session: the node drops the opened key."""
        self.http.json("DELETE", "/v1/sessions", headers=_auth(token))

    def printer_url(self, credentials: Auth) -> dict[str, Any]:
        """The user's personal printer URL on this node: its path and the printer's port."""
        return dict(self.http.json("GET", "/v1/printer-url", headers=_auth(credentials)))

    def jobs(self, credentials: Auth) -> list[JobInfo]:
        answer = self.http.json("GET", "/v1/jobs", headers=_auth(credentials))
        return cast(list[JobInfo], answer["jobs"])

    def job(self, job_id: str, credentials: Auth) -> JobInfo:
        return cast(JobInfo, self.http.json("GET", _job(job_id), headers=_auth(credentials)))

    def usage(self, credentials: Auth) -> dict[str, Any]:
        """The user's pages this month and their quota's balance (`jobs.usage.Balance`)."""
        return cast(dict[str, Any], self.http.json("GET", "/v1/usage", headers=_auth(credentials)))

    def release(
        self, job_id: str, request: dict[str, Any], credentials: Auth | None = None
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

    def delete(self, job_id: str, credentials: Auth) -> str:
        """Delete one of the user's jobs everywhere; its id."""
        return str(self.http.json("DELETE", _job(job_id), headers=_auth(credentials))["deleted"])
