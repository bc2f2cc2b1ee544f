"""The peer API's client (node to node, mutual TLS): one method per route of
`appliance.api.peer`. `appliance.mesh.peers.Peers.client(node_id)` gives one that checks
the answering member and records that it is alive."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlencode

from appliance.clients.base import ApiClient, path
from appliance.clients.models import (
    DeliveryInfo,
    HolderJobInfo,
    JobInfo,
    RepairPart,
    ShareInfo,
    SignedDirectory,
)

META_HEADER = "X-Meshprint-Job"  # a replica's metadata (base64 JSON) beside its sealed body
SHARE_HEADER = "X-Meshprint-Share"  # a holder's share (base64 JSON) beside its sealed body
SIZE_HEADER = "X-Meshprint-Size"  # the document's size beside its sealed body
JSON = {"Content-Type": "application/json"}


def _job(job_id: str, *rest: str) -> str:
    return path("/peer/jobs", job_id, *rest)


class PeerClient(ApiClient):
    def _post(self, path: str, data: Any) -> Any:
        return self.http.json("POST", path, data)

    # The mesh

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.http.json("GET", "/peer/health"))

    def sync(self, request: dict[str, Any]) -> dict[str, Any]:
        """Exchange job lists, tombstones and directory versions (`mesh.sync`)."""
        return cast(dict[str, Any], self._post("/peer/sync", request))

    def directory(self) -> SignedDirectory:
        return cast(SignedDirectory, self.http.json("GET", "/peer/directory"))

    def offer_directory(self, signed: SignedDirectory) -> bool:
        """Hand over a newer signed directory; whether the peer adopted it."""
        return bool(self._post("/peer/directory", signed)["adopted"])

    # Replicas

    def put_replica(
        self, job_id: str, meta: str, sealed: Iterable[bytes], length: int | None
    ) -> None:
        """Store a sealed replica (streamed) with its encoded metadata `meta`."""
        self.http.exchange("PUT", _job(job_id), sealed, {META_HEADER: meta}, length)

    def jobs(self, owner: str | None = None) -> list[JobInfo]:
        query = f"?{urlencode({'owner': owner})}" if owner else ""
        return cast(list[JobInfo], self.http.json("GET", f"/peer/jobs{query}")["jobs"])

    def job(self, job_id: str) -> HolderJobInfo:
        return cast(HolderJobInfo, self.http.json("GET", _job(job_id)))

    def set_pages(self, job_id: str, pages: int) -> None:
        """Tell a holder the document's pages, counted once the whole document was in."""
        self._post(_job(job_id, "pages"), {"pages": pages})

    def set_holders(self, job_id: str, holders: list[list[Any]], version: int) -> None:
        self._post(_job(job_id, "holders"), {"holders": holders, "version": version})

    def delete(self, job_id: str, reason: str, proof: str | None = None) -> bool:
        """Delete the peer's copy (leaving a tombstone); whether it held one. `proof`:
        the opened `delete_challenge`, when the owner asked through a non-holder."""
        data: dict[str, Any] = {"reason": reason}
        if proof is not None:
            data["proof"] = proof
        return bool(self._post(_job(job_id, "delete"), data)["held"])

    def delete_challenge(self, job_id: str) -> bytes:
        """A random value the peer sealed to the job's owner (to prove the owner asks)."""
        answer = self._post(_job(job_id, "delete-challenge"), {})
        return base64.b64decode(str(answer["challenge"]))

    def register_repair(self, job_id: str, request: dict[str, Any]) -> None:
        """As a repair's coordinator: have a second holder agree to the repair."""
        self._post(_job(job_id, "repair"), request)

    def repair_share(self, job_id: str) -> RepairPart:
        """As a repair's new holder: the helping holder's masked part of our share."""
        return cast(RepairPart, self._post(_job(job_id, "repair-share"), {}))

    # Releases

    def share(self, job_id: str, command: dict[str, Any]) -> ShareInfo:
        """The peer's share, against a controller-signed release command."""
        return cast(ShareInfo, self._post(_job(job_id, "share"), command))

    def open(self, job_id: str, x: int, share: str) -> http.client.HTTPResponse:
        """The document, decrypted by the peer with the owner's opened share (streamed)."""
        body = json.dumps({"x": x, "share": share}).encode()
        return self.http.request("POST", _job(job_id, "open"), body, JSON)

    def release(self, job_id: str, command: dict[str, Any]) -> http.client.HTTPResponse:
        """The sealed document (streamed) with the peer's share (`SHARE_HEADER`), for the
        node a controller-signed release command names."""
        return self.http.request(
            "POST", _job(job_id, "release"), json.dumps(command).encode(), JSON
        )

    def deliver(self, job_id: str, request: dict[str, Any]) -> DeliveryInfo:
        """Hand a release to the node whose CUPS has the printer's queue."""
        return cast(DeliveryInfo, self._post(_job(job_id, "deliver"), request))

    def delivery_step(self, job_id: str, step: str, payload: dict[str, Any]) -> None:
        """claim, unclaim or unknown: a delivering node keeps a holder informed."""
        self._post(_job(job_id, step), payload)

    def deliveries(self, job_id: str) -> list[DeliveryInfo]:
        return cast(list[DeliveryInfo], self.http.json("GET", _job(job_id, "deliveries")))

    def release_status(self, release_id: str) -> DeliveryInfo:
        return cast(DeliveryInfo, self.http.json("GET", path("/peer/releases", release_id)))

    # Usage records (to the controller)

    def usage(self, records: list[dict[str, Any]]) -> dict[str, int]:
        """Hand the controller this node's printed jobs' records (`jobs.usage.forward`)."""
        return cast(dict[str, int], self._post("/peer/usage", {"records": records}))

    def usage_of(self, user: str, month: str) -> dict[str, int]:
        """A user's pages and colour pages in a month (YYYY-MM), as the controller has them."""
        query = urlencode({"user": user, "month": month})
        return cast(dict[str, int], self.http.json("GET", f"/peer/usage?{query}"))
