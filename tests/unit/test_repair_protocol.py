"""appliance.mesh.repair end to end in one process: real job stores, the real domain
functions of each node, and a wire that records everything each node receives. The
claim under test: during a repair no node ever receives a second share of the job (the
coordinator receives nothing share-like at all), and the new holder's share is the one
`shamir.derive` would give."""

from __future__ import annotations

import base64
import io
import json
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.crypto import shamir
from appliance.crypto.stream import decrypt_stream, encrypt_stream
from appliance.errors import Forbidden, Unavailable
from appliance.mesh import holders, repair, replicate
from appliance.mesh.placement import USER_X
from appliance.site.directory import NodeRecord
from appliance.store.db import Database
from appliance.store.jobs import Holder, Job, JobStore, holders_to_list, new_job_id

IDS = ("n1", "n2", "n3", "n4")  # n1 coordinates (smallest live holder id)


class Wire:
    """What each node received: (receiver, sender, what) for requests and answers."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str, Any]] = []

    def got(self, receiver: str, sender: str, what: str, value: Any) -> None:
        self.received.append((receiver, sender, what, json.loads(json.dumps(value))))

    def of(self, receiver: str) -> list[tuple[str, str, str, Any]]:
        return [r for r in self.received if r[0] == receiver]


class Body:
    def __init__(self, data: bytes) -> None:
        self._io = io.BytesIO(data)
        self.length: int | None = len(data)

    def read(self, n: int = 65536) -> bytes:
        return self._io.read(n)


class Client:
    """A PeerClient stand-in: calls the target node's domain function as the API would,
    recording what the target receives and what the caller gets back."""

    def __init__(self, mesh: Mesh, caller: str, target: str) -> None:
        self.mesh, self.caller, self.target = mesh, caller, target
        self.node = mesh.nodes[target]

    def _answer(self, what: str, value: Any) -> Any:
        self.mesh.wire.got(self.caller, self.target, what, value)
        return value

    def job(self, job_id: str) -> Any:
        return self._answer("job", self.node.store.require(job_id).holder_info())

    def register_repair(self, job_id: str, request: dict[str, Any]) -> None:
        self.mesh.wire.got(self.target, self.caller, "register", request)
        repair.register(self.node, self.node.store.require(job_id), self.caller, request)
        self._answer("register-answer", {"ok": True})

    def repair_share(self, job_id: str) -> Any:
        part = repair.part_for(self.node, self.node.store.require(job_id), self.caller)
        return self._answer("repair-share", part)

    def put_replica(self, job_id: str, meta: str, sealed: Any, length: int | None) -> None:
        self.mesh.wire.got(self.target, self.caller, "replica", replicate.decode_meta(meta))
        finish = partial(repair.finish_replica, self.node)
        replicate.store_replica(
            self.node, job_id, self.caller, meta, Body(b"".join(sealed)), finish
        )

    def set_holders(self, job_id: str, listed: list[list[Any]], version: int) -> None:
        self.mesh.wire.got(self.target, self.caller, "holders", listed)
        holders.adopt_holders(self.node, job_id, self.caller, listed, version)


class Peers:
    def __init__(self, mesh: Mesh, me: str) -> None:
        self.mesh, self.me = mesh, me

    def is_live(self, node_id: str) -> bool:
        return node_id in self.mesh.up

    def gone_for(self, node_id: str) -> float:
        return 0.0 if self.is_live(node_id) else 10**6

    def live(self) -> list[NodeRecord]:
        return [self.mesh.records[n] for n in sorted(self.mesh.up)]

    def client(self, node_id: str, timeout: float = 10.0) -> Client:
        if node_id not in self.mesh.up:
            raise Unavailable(f"{node_id} is down")
        return Client(self.mesh, self.me, node_id)


class Mesh:
    def __init__(self, root: Path) -> None:
        self.wire = Wire()
        self.up = set(IDS)
        self.records = {
            n: NodeRecord(n, n, "edge", "1", f"m-{n}", "127.0.0.1", 1, 2, 3, point=i)
            for i, n in enumerate(IDS, start=1)
        }
        directory = SimpleNamespace(
            settings=SimpleNamespace(repair_grace=5, disk_reserve=0, edge_budget=1024**3),
            nodes=self.records,
            node=self.records.get,
            user=lambda name: None,
            doc={"nodes": {n: {"id": n} for n in IDS}},
        )
        self.since: dict[str, float] = {}  # when each node came, in every node's view (else 0)
        self.nodes: dict[str, Any] = {}
        for n in IDS:
            (root / n).mkdir()
            self.nodes[n] = SimpleNamespace(
                id=n,
                store=JobStore(root / n, Database(root / n / "node.db")),
                peers=Peers(self, n),
                last_sync={},
                directory=lambda d=directory: d,
                site=SimpleNamespace(member_since=lambda m: self.since.get(m, 0.0)),
            )

    def hold(self, node_id: str, job: Job, sealed: bytes) -> None:
        incoming = self.nodes[node_id].store.receive(job.id)
        incoming.write(sealed)
        incoming.commit(job)


@pytest.fixture
def mesh(tmp_path: Path) -> Mesh:
    return Mesh(tmp_path)


def _job(mesh: Mesh, document: bytes) -> tuple[bytes, dict[int, bytes], Job, bytes]:
    """A job held by n1, n2, n3 at points 1, 2, 3, its key and the owner's share."""
    key = bytes(range(32))
    job_id = new_job_id()
    sealed = b"".join(encrypt_stream(io.BytesIO(document).read, key, job_id.encode()))
    shares = shamir.split(key, (1, 2, 3, USER_X))
    listed = [Holder("n1", 1), Holder("n2", 2), Holder("n3", 3)]
    template = Job(
        id=job_id,
        owner="alice",
        title="t",
        size=len(document),
        sealed_size=len(sealed),
        created_at=time.time() - 60,
        expires_at=time.time() + 3600,
        holders=listed,
        holders_version=1,
        share_x=0,
        share=b"",
        user_share=b"sealed-for-alice",
    )
    for h in listed:
        template.share_x, template.share = h.x, shares[h.x]
        mesh.hold(h.node, template, sealed)
    return key, shares, mesh.nodes["n1"].store.require(job_id), sealed


def _share_like(value: Any, shares: dict[int, bytes]) -> bool:
    """Whether a recorded value carries a share (or a part/mask that completes one)."""
    text = json.dumps(value)
    return any(base64.b64encode(s).decode() in text for s in shares.values()) or any(
        key in text for key in ('"share"', '"part"', '"mask"')
    )


def test_repair_gives_the_new_holder_its_share_and_nobody_a_second(mesh: Mesh) -> None:
    document = b"payslip " * 5000
    key, shares, job, _ = _job(mesh, document)
    mesh.up.discard("n3")  # n3 is gone (past the grace period)
    assert repair.repair_job(mesh.nodes["n1"], job)

    new = mesh.nodes["n4"].store.require(job.id)
    assert new.share == shamir.derive({1: shares[1], 2: shares[2]}, new.share_x)
    assert shamir.combine({new.share_x: new.share, USER_X: shares[USER_X]}) == key
    with mesh.nodes["n4"].store.open_sealed(job.id) as sealed:
        assert b"".join(decrypt_stream(sealed.read, key, job.id.encode())) == document
    expected = {("n1", 1), ("n2", 2), ("n4", new.share_x)}
    for n in ("n1", "n2", "n4"):
        kept = mesh.nodes[n].store.require(job.id)
        assert {(h.node, h.x) for h in kept.holders} == expected
        assert kept.holders_version == 2

    # The coordinator received nothing share-like: only acknowledgements and job records.
    for _, sender, what, value in mesh.wire.of("n1"):
        assert not _share_like(value, shares), (sender, what)
    # H2 received the mask, never a share or a part.
    h2 = mesh.wire.of("n2")
    assert {w for _, _, w, _ in h2} <= {"register", "holders", "job"}
    assert base64.b64encode(shares[1]).decode() not in json.dumps(h2)
    # The new holder received two masked parts, each useless alone, whose sum is its share.
    from_c = next(v for _, s, w, v in mesh.wire.of("n4") if w == "replica")
    from_h2 = next(v for _, s, w, v in mesh.wire.of("n4") if w == "repair-share")
    parts = [base64.b64decode(from_c["share"]), base64.b64decode(from_h2["part"])]
    assert shamir.sum_parts(parts) == new.share
    for piece in parts:
        assert piece not in shares.values()
        for x in (1, 2, new.share_x):
            assert shamir.combine({x: piece, USER_X: shares[USER_X]}) != key
            if x != new.share_x:
                assert shamir.combine({new.share_x: new.share, x: piece}) != key


def _repair_request(job: Job) -> dict[str, Any]:
    """n1 asks for n3's copy to be rebuilt on n4 (at n4's point)."""
    return {
        "gone": ["n3"],
        "new": "n4",
        "new_x": 4,
        "holders_version": job.holders_version,
        "mask": base64.b64encode(bytes(len(job.share))).decode(),
    }


def test_the_part_goes_only_to_the_registered_new_holder_once(mesh: Mesh) -> None:
    _, _, job, _ = _job(mesh, b"x" * 100)
    mesh.up.discard("n3")
    n2 = mesh.nodes["n2"]
    request = _repair_request(job)
    repair.register(n2, n2.store.require(job.id), "n1", request)
    for thief in ("n1", "n3"):  # the coordinator itself, or anyone else
        with pytest.raises(Forbidden):
            repair.part_for(n2, n2.store.require(job.id), thief)
    repair.part_for(n2, n2.store.require(job.id), "n4")
    with pytest.raises(Forbidden):
        repair.part_for(n2, n2.store.require(job.id), "n4")  # once


def test_a_holder_that_is_up_and_has_its_copy_is_not_replaced(mesh: Mesh) -> None:
    _, _, job, _ = _job(mesh, b"x" * 100)
    n2 = mesh.nodes["n2"]
    request = _repair_request(job)
    with pytest.raises(Forbidden, match="does not agree"):
        repair.register(n2, n2.store.require(job.id), "n1", request)
    with pytest.raises(Forbidden):
        repair.register(n2, n2.store.require(job.id), "n4", request)  # not a holder
    listed = holders_to_list([Holder("n1", 1), Holder("n2", 2), Holder("n4", 4)])
    with pytest.raises(Forbidden, match="lost"):
        holders.adopt_holders(n2, job.id, "n1", listed, 2)
    with pytest.raises(Forbidden, match="does not hold"):
        holders.adopt_holders(n2, job.id, "n4", listed, 2)
    assert n2.store.require(job.id).holders_version == 1


def test_a_holder_without_a_copy_takes_back_only_the_share_it_had(mesh: Mesh) -> None:
    key, shares, job, _ = _job(mesh, b"y" * 1000)
    mesh.nodes["n3"].store.drop(job.id)  # listed, up, but no copy
    mesh.up.discard("n4")  # the only other node is the one without a copy
    for n in ("n1", "n2"):
        mesh.nodes[n].last_sync["n3"] = {"at": time.time(), "missing": {job.id}}
    assert repair.repair_job(mesh.nodes["n1"], job)
    back = mesh.nodes["n3"].store.require(job.id)
    # Back at its own point, with the very share it had: it learns nothing new (a holder
    # that threw its copy away, or pretends to, must not gain a second share).
    assert back.share_x == 3 and back.share == shares[3]
    assert shamir.combine({3: back.share, USER_X: shares[USER_X]}) == key
    assert mesh.nodes["n2"].store.require(job.id).holders_version == 2


def test_no_repair_gives_a_node_a_share_at_another_point(mesh: Mesh) -> None:
    """A coordinator (say, compromised) that asks H2 for a part at any point but the new
    holder's own member point is refused: that would be a second share of the job."""
    _, _, job, _ = _job(mesh, b"z" * 1000)
    mesh.up.discard("n3")
    n2 = mesh.nodes["n2"]
    request = _repair_request(job)
    for wrong in (5, 9, 3):  # fresh points, and the lost holder's
        with pytest.raises(Forbidden, match="own member point"):
            repair.register(n2, n2.store.require(job.id), "n1", {**request, "new_x": wrong})
    repair.register(n2, n2.store.require(job.id), "n1", {**request, "new_x": 4})


def test_a_member_that_came_after_the_job_gets_no_copy_of_it(mesh: Mesh) -> None:
    """The stolen controller's way in: the CA key adds a member of its own and removes a
    holder; the remaining holders must not rebuild the copy on the newcomer."""
    _, _, job, _ = _job(mesh, b"w" * 1000)
    mesh.since["n4"] = job.created_at + 1  # n4 joined after the job came
    mesh.up.discard("n3")
    assert not repair.repair_job(mesh.nodes["n1"], job)  # no candidate: n4 may not take it
    n2 = mesh.nodes["n2"]
    request = _repair_request(job)
    with pytest.raises(Forbidden, match="became a member after"):
        repair.register(n2, n2.store.require(job.id), "n1", request)
    assert mesh.nodes["n4"].store.get(job.id) is None
