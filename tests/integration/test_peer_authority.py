"""Per-job authority on the peer API, played as the attacker with a member's own
certificate and key (an office laptop): membership is not permission. A member gets a
job's share, sealed copy or plaintext only as what the job's holders agree it is, holder
lists change only when the receiving holder itself sees the change as justified, and a
job whose copy is missing on a listed holder is repaired to three."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from appliance.errors import Conflict, Forbidden, RemoteError, Unauthorized
from appliance.jobs.release import make_command
from appliance.mesh.replicate import encode_meta
from tests.integration.conftest import PASSWORDS, Site, random_bytes, wait_for

pytestmark = pytest.mark.integration
MB = 1024 * 1024


def _refused(call: Callable[..., Any], *args: Any, kind: type[Exception] = Forbidden) -> None:
    with pytest.raises(RemoteError) as info:
        result = call(*args)
        if hasattr(result, "read"):  # a streamed answer must not even start
            result.read()
    assert isinstance(info.value, kind), f"{call.__name__}: {info.value!r}"


def _row(site: Site, index: int, job_id: str) -> tuple[str, int, int, bytes] | None:
    db = sqlite3.connect(site.mesh.nodes[index].data / "meshprint.db")
    try:
        row = db.execute(
            "SELECT holders, holders_version, share_x, share FROM jobs WHERE id=?", (job_id,)
        ).fetchone()
    finally:
        db.close()
    return None if row is None else (row[0], row[1], row[2], row[3])


def _snapshot(site: Site, job_id: str) -> dict[int, Any]:
    return {n.index: _row(site, n.index, job_id) for n in site.mesh.nodes}


def _settled(site: Site, job_id: str) -> None:
    """Wait until three holders have the job recorded (its sealed file lands first)."""
    wait_for(lambda: sum(row is not None for row in _snapshot(site, job_id).values()) == 3)


def test_a_non_holder_member_gets_no_share_copy_or_plaintext(site4: Site) -> None:
    data = random_bytes(MB + 3)
    receipt = site4.submit(1, data)
    job_id = receipt["id"]
    _settled(site4, job_id)
    holders = [site4.node_index(h) for h in receipt["holders"]]
    outsider = next(n.index for n in site4.mesh.nodes if n.index not in holders)
    before = _snapshot(site4, job_id)
    info = site4.peer(outsider, holders[0]).job(job_id)  # metadata only: that is allowed
    points = {str(node): int(x) for node, x in info["holders_x"]}
    version = before[holders[0]][1]
    ca = site4.release_signer()

    for target in holders:
        peer = site4.peer(outsider, target)
        others = [site4.mesh.nodes[i].id for i in holders if i != target]
        # The measured attack: rewrite the holder list to add ourselves …
        me = site4.mesh.nodes[target].id
        mine = [[site4.mesh.nodes[outsider].id, 9], *[[n, points[n]] for n in others]]
        beside = [
            [me, points[me]],
            [site4.mesh.nodes[outsider].id, 9],
            [others[0], points[others[0]]],
        ]
        for listed in (mine, beside):
            _refused(peer.set_holders, job_id, listed, version + 1)
        # … then ask for a share for a repair, or register one ourselves.
        _refused(peer.repair_share, job_id)
        repair = {
            "gone": [others[0]],
            "new": site4.mesh.nodes[outsider].id,
            "new_x": 9,
            "holders_version": version,
            "mask": base64.b64encode(bytes(32)).decode(),
        }
        _refused(peer.register_repair, job_id, repair)
        # A holder's share passed as if it were the owner's: refused before any key use.
        fake = base64.b64encode(bytes(32)).decode()
        _refused(peer.open, job_id, points[others[0]], fake)
        _refused(peer.open, job_id, 255, fake, kind=Unauthorized)  # not the owner's share
        # A genuine command, but naming another node (stolen off the broker, say).
        stolen = make_command(ca, job_id, others[0])
        _refused(peer.share, job_id, stolen)
        _refused(peer.release, job_id, make_command(ca, job_id, others[0]))
        # A replica over the job it holds: neither share nor list may be swapped.
        meta = {
            "id": job_id,
            "owner": "alice",
            "title": "mine now",
            "created_at": time.time(),
            "expires_at": time.time() + 3600,
            "holders": [[site4.mesh.nodes[target].id, points[site4.mesh.nodes[target].id]]],
            "holders_version": version + 5,
            "user_share": fake,
            "share_x": points[site4.mesh.nodes[target].id],
            "share": fake,
        }
        _refused(peer.put_replica, job_id, encode_meta(meta), iter([b"x" * 64]), 64)
        meta["holders"].append([site4.mesh.nodes[outsider].id, 7])
        _refused(peer.put_replica, job_id, encode_meta(meta), iter([b"x" * 64]), 64, kind=Conflict)
        # Deleting it (denial of service) is refused too, also as "the owner" unproven.
        _refused(peer.delete, job_id, "deleted")
        _refused(peer.delete, job_id, "deleted by owner", base64.b64encode(b"guess").decode())

    assert _snapshot(site4, job_id) == before, "a refused call changed a holder"
    assert len(site4.held_on(job_id)) == 3
    assert site4.release(outsider, job_id) == data  # the owner still releases it


def test_a_holder_cannot_make_a_repair_the_others_do_not_agree_with(site4: Site) -> None:
    receipt = site4.submit(0, b"three copies, all up")
    job_id = receipt["id"]
    _settled(site4, job_id)
    h1, h2, h3 = (site4.node_index(h) for h in receipt["holders"])
    spare = next(n.index for n in site4.mesh.nodes if n.index not in (h1, h2, h3))
    before = _snapshot(site4, job_id)
    ids = {i: site4.mesh.nodes[i].id for i in (h1, h2, h3, spare)}
    x = {str(node): int(p) for node, p in site4.peer(h1, h2).job(job_id)["holders_x"]}
    version = before[h2][1]
    helper = site4.peer(h1, h2)  # a holder (say, compromised) asks another holder
    request = {
        "gone": [ids[h3]],  # h3 is up: h2 sees it alive
        "new": ids[spare],
        "new_x": max(x.values()) + 1,
        "holders_version": version,
        "mask": base64.b64encode(bytes(32)).decode(),
    }
    _refused(helper.register_repair, job_id, request)
    _refused(helper.register_repair, job_id, {**request, "gone": []})  # enough copies
    _refused(helper.register_repair, job_id, {**request, "holders_version": 7})
    _refused(helper.repair_share, job_id)  # no repair registered; and h1 is no new holder
    # Nor can it swap the live h3 for the spare (or for itself twice) in h2's list.
    swapped = [[ids[h1], x[ids[h1]]], [ids[h2], x[ids[h2]]], [ids[spare], 9]]
    _refused(helper.set_holders, job_id, swapped, version + 1)
    # A command for h1 gets h1 its second share, once; one for another node gets nothing.
    ca = site4.release_signer()
    _refused(helper.share, job_id, make_command(ca, job_id, ids[spare]))
    assert _snapshot(site4, job_id) == before


def test_owner_delete_through_a_non_holder_proves_the_owner(site4: Site) -> None:
    receipt = site4.submit(1, b"delete me")
    job_id = receipt["id"]
    _settled(site4, job_id)
    outsider = next(n.index for n in site4.mesh.nodes if n.id not in receipt["holders"])
    holder = site4.node_index(receipt["holders"][0])
    # The challenge is sealed to the owner: the member alone cannot answer it.
    peer = site4.peer(outsider, holder)
    sealed = peer.delete_challenge(job_id)
    _refused(peer.delete, job_id, "deleted by owner", base64.b64encode(sealed[:32]).decode())
    assert len(site4.held_on(job_id)) == 3
    client = site4.mesh.client(outsider)
    assert client.delete(job_id, ("alice", PASSWORDS["alice"])) == job_id
    wait_for(lambda: site4.held_on(job_id) == [])


def test_a_listed_holder_without_a_copy_is_repaired(site3: Site) -> None:
    """The ingesting node killed between storing the replicas and its own commit: it is
    listed as a holder but has no copy. With all three nodes up, it is given one back."""
    site = site3
    site.settings(repair_grace="5s")
    data = random_bytes(MB)
    receipt = site.submit(0, data)
    job_id = receipt["id"]
    wait_for(lambda: len(site.held_on(job_id)) == 3)
    before = _row(site, 0, job_id)
    assert before is not None
    site.mesh.kill(0)
    db = sqlite3.connect(site.mesh.nodes[0].data / "meshprint.db")
    db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
    db.commit()
    db.close()
    (site.mesh.nodes[0].data / "jobs" / f"{job_id}.sealed").unlink()
    site.mesh.start(0)
    site.mesh.wait_live(3)
    wait_for(lambda: 0 in site.held_on(job_id), timeout=60)
    rows = wait_for(
        lambda: (r := _snapshot(site, job_id)) and len({row[0] for row in r.values()}) == 1 and r
    )
    holders = json.loads(rows[0][0])
    assert sorted(n for n, _ in holders) == sorted(n.id for n in site.mesh.nodes)
    # Back at its own point with the share it had: a holder that loses (or throws away)
    # its copy never gains a second share of the job.
    assert (rows[0][2], rows[0][3]) == (before[2], before[3])
    assert len({row[2] for row in rows.values()}) == 3
    status = site.mesh.status(1)
    assert status["jobs"]["fully_replicated"] == 1, status
    # Its new share is a real one: with the owner's, it opens the job alone.
    site.mesh.kill(1)
    site.mesh.kill(2)
    assert site.release(0, job_id) == data
