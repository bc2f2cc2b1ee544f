"""Nodes dying: release with one holder left, kill -9 during upload, repair, expiry
reaching a node that was off."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import MeshprintError
from tests.integration.conftest import Site, make_site, random_bytes, wait_for

pytestmark = pytest.mark.integration
MB = 1024 * 1024


@pytest.fixture
def site4f(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, 4)


def test_owner_releases_with_two_of_three_holders_killed(site3: Site) -> None:
    data = random_bytes(2 * MB)
    receipt = site3.submit(0, data)
    wait_for(lambda: len(site3.held_on(receipt["id"])) == 3)
    site3.mesh.kill(0)
    site3.mesh.kill(1)
    assert site3.release(2, receipt["id"]) == data
    wait_for(lambda: site3.held_on(receipt["id"]) == [0, 1])  # the live holder deleted its copy
    # The holders that were down learn of the release when they come back.
    site3.mesh.start(0)
    site3.mesh.start(1)
    wait_for(lambda: site3.held_on(receipt["id"]) == [])


def test_authorized_release_needs_two_live_holders(site3: Site, tmp_path: Path) -> None:
    receipt = site3.submit(1, b"admin release")
    wait_for(lambda: len(site3.held_on(receipt["id"])) == 3)
    site3.mesh.kill(1)
    site3.mesh.kill(2)
    node0 = site3.mesh.nodes[0]
    out = tmp_path / "out"
    args = [
        "release",
        receipt["id"],
        "--node",
        node0.release,
        "--ca",
        str(site3.mesh.ca),
        "--data",
        str(node0.data),
        "--key-file",
        str(site3.mesh.recovery_key_file),
        "--to",
        str(out),
    ]
    refused = site3.mesh.cli(*args, check=False)
    assert refused.returncode == 1 and "second holder" in refused.stderr
    assert not out.exists()
    site3.mesh.start(2)
    site3.mesh.wait_live(2)
    site3.mesh.cli(*args)
    assert out.read_bytes() == b"admin release"


def _slow_upload(
    site: Site, index: int, total: int, started: threading.Event, errors: list[BaseException]
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(total // MB):
            yield random_bytes(MB)
            started.set()
            time.sleep(0.05)

    try:
        site.mesh.client(index, "submit").submit(
            ("alice", site.tokens["alice"]), chunks(), "interrupted", length=total
        )
    except MeshprintError as err:
        errors.append(err)


def test_kill_9_during_upload_leaves_no_partial_job_and_loses_none(site3: Site) -> None:
    kept = random_bytes(MB)
    acknowledged = site3.submit(0, kept)
    wait_for(lambda: len(site3.held_on(acknowledged["id"])) == 3)

    started, errors = threading.Event(), []
    upload = threading.Thread(target=_slow_upload, args=(site3, 1, 64 * MB, started, errors))
    upload.start()
    assert started.wait(10)
    time.sleep(0.5)
    site3.mesh.kill(1)  # the node receiving the upload
    upload.join(30)
    assert errors, "the client must not be told the job was accepted"

    site3.mesh.start(1)
    site3.mesh.wait_live(3)
    for node in site3.mesh.nodes:
        wait_for(lambda n=node: not any((n.data / "incoming").iterdir()))
        leftovers = {p.stem for p in (node.data / "jobs").iterdir()}
        assert leftovers == {acknowledged["id"]}, f"partial job on node{node.index}"
    assert [j["id"] for j in site3.jobs(2)] == [acknowledged["id"]]
    assert site3.release(1, acknowledged["id"]) == kept


@pytest.mark.parametrize("victim", [1, 2])
def test_kill_9_of_a_holder_during_upload_still_gets_two_copies(site3: Site, victim: int) -> None:
    """One of the two is the peer whose copy streams in beside node0's: killed midway,
    its place goes to the other, sent the copy committed on node0 before the answer."""
    started, errors = threading.Event(), []
    upload = threading.Thread(target=_slow_upload, args=(site3, 0, 24 * MB, started, errors))
    upload.start()
    assert started.wait(10)
    site3.mesh.kill(victim)
    upload.join(60)
    assert not errors, errors
    other = 3 - victim
    jobs = site3.jobs(0)
    assert len(jobs) == 1
    job_id = jobs[0]["id"]
    assert sorted(site3.held_on(job_id)) == [0, other]
    assert not any((site3.mesh.nodes[victim].data / "jobs").iterdir())
    assert len(site3.release(other, job_id)) == 24 * MB


def test_kill_9_of_the_ingesting_node_after_its_peer_committed_takes_the_copy_back(
    site3: Site,
) -> None:
    """The worst moment for the node taking a job in: the peer whose copy streams beside
    its own has committed it and the node's own commit has not happened. Here its commit
    waits for its database, which the test holds locked, and it is killed then. The
    client is not told the job was held; at start the node tombstones it, and the peer
    drops its copy, so a retry never makes a second job beside it."""
    node0 = site3.mesh.nodes[0]
    peers = site3.mesh.nodes[1:]
    errors: list[BaseException] = []
    lock = sqlite3.connect(node0.data / "meshprint.db", timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # node0's commit waits for this
        submit = threading.Thread(target=_submit_expecting_failure, args=(site3, errors))
        submit.start()
        wait_for(lambda: any(_sealed(p.data) for p in peers), timeout=30)
        (job_id,) = set.union(*(_sealed(p.data) for p in peers))
        time.sleep(0.5)
        # one copy beside node0's; the third follows only an answer, which never came
        assert sorted(len(_sealed(p.data)) for p in peers) == [0, 1]
        assert not _sealed(node0.data)
        assert list((node0.data / "incoming").glob(f"{job_id}.*.intake"))
        site3.mesh.kill(0)
    finally:
        lock.close()
    submit.join(30)
    assert errors, "the client must not be told the job was held"

    site3.mesh.start(0)
    site3.mesh.wait_live(3)
    for node in site3.mesh.nodes:
        wait_for(lambda n=node: not _sealed(n.data), timeout=60)
    assert job_id not in {j["id"] for j in site3.jobs(1)}
    retried = site3.submit(0, random_bytes(MB), title="retried")
    assert [j["id"] for j in site3.jobs(2)] == [retried["id"]]


def _submit_expecting_failure(site: Site, errors: list[BaseException]) -> None:
    try:
        site.submit(0, random_bytes(MB), title="killed")
    except MeshprintError as err:
        errors.append(err)


def _sealed(data: Path) -> set[str]:
    return {p.stem for p in (data / "jobs").glob("*.sealed")}


def test_repair_restores_three_copies_after_the_grace_period(site4f: Site) -> None:
    site = site4f
    site.settings(repair_grace="5s")
    data = random_bytes(3 * MB)
    receipt = site.submit(0, data)
    job_id = receipt["id"]
    wait_for(lambda: len(site.held_on(job_id)) == 3)
    spare, lost = site.spare_and_holder(receipt)
    site.mesh.kill(lost)
    # Not before the grace period …
    time.sleep(3)
    assert spare not in site.held_on(job_id)
    # … but after it, the spare node gets a copy and a share of its own.
    wait_for(lambda: spare in site.held_on(job_id), timeout=30)
    status = site.mesh.status(0)
    assert status["jobs"]["fully_replicated"] == 1, status
    # The repaired job opens with the new holder's share alone plus the owner's.
    for index in {0, 1, 2, 3} - {spare, lost}:
        site.mesh.kill(index)
    assert site.release(spare, job_id) == data


def test_repaired_holder_that_comes_back_drops_its_copy(site4f: Site) -> None:
    site = site4f
    site.settings(repair_grace="5s")
    receipt = site.submit(0, b"moved elsewhere")
    job_id = receipt["id"]
    wait_for(lambda: len(site.held_on(job_id)) == 3)
    spare, lost = site.spare_and_holder(receipt)
    site.mesh.kill(lost)
    wait_for(lambda: spare in site.held_on(job_id), timeout=30)
    site.mesh.start(lost)
    wait_for(lambda: lost not in site.held_on(job_id))
    assert len(site.held_on(job_id)) == 3


def test_a_sleeping_laptop_shows_as_away_is_repaired_and_drops_its_copy_on_waking(
    site4f: Site,
) -> None:
    """A laptop that sleeps is frozen, not gone: its sockets stay open and it answers
    nothing (SIGSTOP of its whole process group). The others must see it away, rebuild
    its copies after the grace period, and when it wakes (SIGCONT) it must drop its
    surplus copy and be up again."""
    site = site4f
    site.settings(repair_grace="5s")
    receipt = site.submit(0, b"held while the laptop sleeps")
    job_id = receipt["id"]
    wait_for(lambda: len(site.held_on(job_id)) == 3)
    spare, laptop = site.spare_and_holder(receipt)
    process = site.mesh.nodes[laptop].process
    assert process is not None
    laptop_id = site.mesh.nodes[laptop].id

    def live(node_id: str) -> bool | None:
        members = site.mesh.status(0)["members"]
        return next(m["live"] for m in members if m["id"] == node_id)

    os.killpg(process.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: live(laptop_id) is False, timeout=30)
        wait_for(lambda: spare in site.held_on(job_id), timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGCONT)
    wait_for(lambda: live(laptop_id) is True, timeout=30)
    wait_for(lambda: laptop not in site.held_on(job_id), timeout=60)
    assert len(site.held_on(job_id)) == 3
    assert site.release(spare, job_id) == b"held while the laptop sleeps"


LIBFAKETIME = next(iter(Path("/usr/lib").glob("*/faketime/libfaketime.so.1")), None)


@pytest.mark.skipif(LIBFAKETIME is None, reason="needs libfaketime (make test installs it)")
def test_expiry_reaches_a_node_that_was_off(site3: Site) -> None:
    site3.settings(retention="30m")
    receipt = site3.submit(0, b"nobody came for this")
    job_id = receipt["id"]
    wait_for(lambda: len(site3.held_on(job_id)) == 3)
    site3.mesh.kill(2, signal.SIGTERM)
    # Two holders live an hour later: they expire the job.
    for index in (0, 1):
        site3.mesh.kill(index, signal.SIGTERM)
        site3.mesh.start(index, env={"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": "+1h"})
    wait_for(lambda: site3.held_on(job_id) == [2])
    # The third still has the real time (its own clock says the job is fresh), yet it
    # deletes its copy from the tombstone as soon as it meets the others.
    site3.mesh.start(2)
    wait_for(lambda: site3.held_on(job_id) == [])
