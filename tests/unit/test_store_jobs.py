"""appliance.store.jobs: held jobs on disk and in SQLite, atomically."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from appliance import portable
from appliance.errors import BadRequest, Gone, InsufficientStorage, NotFound
from appliance.store import jobs as store_jobs
from appliance.store.db import Database
from appliance.store.jobs import (
    Holder,
    Job,
    JobStore,
    check_job_id,
    new_job_id,
)

from .conftest import JobFactory


def listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def put(store: JobStore, job: Job, data: bytes | None = None) -> bytes:
    """Receive, write in two pieces and commit a job; returns its sealed bytes."""
    data = os.urandom(job.sealed_size) if data is None else data
    incoming = store.receive(job.id)
    incoming.write(data[:10])
    incoming.write(data[10:])
    incoming.commit(job)
    return data


def test_commit_makes_the_job_visible_with_its_file(store: JobStore, make_job: JobFactory) -> None:
    job = make_job(sealed_size=1000)
    incoming = store.receive(job.id)
    incoming.write(b"")
    assert store.get(job.id) is None  # not visible while being written
    assert listing(store.jobs) == []
    assert len(listing(store.incoming)) == 1
    data = os.urandom(1000)
    incoming.write(data[:300])
    incoming.write(data[300:])
    assert incoming.written == 1000
    incoming.commit(job)

    assert store.get(job.id) == job
    assert store.require(job.id) == job
    assert listing(store.incoming) == []
    assert listing(store.jobs) == [f"{job.id}.sealed"]
    with store.open_sealed(job.id) as f:
        assert f.read() == data
    assert store.all() == [job]
    assert store.all(owner="alice") == [job]
    assert store.all(owner="bob") == []


def test_job_fields_survive_the_database(store: JobStore, make_job: JobFactory) -> None:
    job = make_job(
        title="Ünïcode ✓",
        holders=[Holder("n-a", 1), Holder("n-b", 255)],
        holders_version=7,
        share_x=255,
        share=bytes(range(32)),
        user_share=b"\x00" * 5,
    )
    put(store, job)
    stored = store.require(job.id)
    assert stored == job
    assert stored.holders == [Holder("n-a", 1), Holder("n-b", 255)]
    public = stored.public()
    assert "share" not in public
    assert "user_share" not in public
    assert public["holders"] == ["n-a", "n-b"]


def test_abort_leaves_nothing(store: JobStore, db: Database, make_job: JobFactory) -> None:
    job = make_job()
    incoming = store.receive(job.id)
    incoming.write(os.urandom(job.sealed_size))
    incoming.abort()
    assert store.get(job.id) is None
    assert listing(store.incoming) == []
    assert listing(store.jobs) == []
    assert db.query("SELECT count(*) AS n FROM jobs")[0]["n"] == 0
    incoming.abort()  # twice is harmless


@pytest.mark.parametrize("written", [0, 99, 101])
def test_commit_of_the_wrong_size_is_refused_and_leaves_nothing(
    store: JobStore, make_job: JobFactory, written: int
) -> None:
    job = make_job(sealed_size=100)
    incoming = store.receive(job.id)
    incoming.write(os.urandom(written))
    with pytest.raises(BadRequest, match=f"got {written} of 100 bytes"):
        incoming.commit(job)
    assert store.get(job.id) is None
    assert listing(store.incoming) == []
    assert listing(store.jobs) == []


def test_a_data_sync_that_fails_commits_nothing(
    store: JobStore, make_job: JobFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_job(sealed_size=100)
    incoming = store.receive(job.id)
    incoming.write(os.urandom(100))

    def fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(InsufficientStorage, match="Input/output error"):
        incoming.commit(job)
    monkeypatch.undo()
    assert store.get(job.id) is None
    assert listing(store.incoming) == []
    assert listing(store.jobs) == []


@pytest.mark.parametrize("kernel_writeback", [True, False])
def test_what_is_written_is_pushed_to_the_disk_while_more_arrives(
    store: JobStore, make_job: JobFactory, monkeypatch: pytest.MonkeyPatch, kernel_writeback: bool
) -> None:
    """Linux is asked to start writing each stretch as it is written (no thread, no
    journal commit); elsewhere a background thread syncs. Either way the job is whole."""
    started: list[tuple[int, int]] = []

    def start_writeback(fd: int, offset: int, length: int) -> bool:
        if kernel_writeback:
            started.append((offset, length))
            assert os.fstat(fd).st_size == offset + length  # flushed to the kernel first
        return kernel_writeback

    monkeypatch.setattr(store_jobs, "start_writeback", start_writeback)
    piece = store_jobs.WRITEBACK_FIRST // 2
    data = os.urandom(6 * piece)
    job = make_job(sealed_size=len(data))
    incoming = store.receive(job.id)
    for at in range(0, len(data), piece):
        incoming.write(data[at : at + piece])
    if kernel_writeback:
        # each stretch once, in order, from the start (after 2 pieces, then 4: the
        # schedule doubles); the commit's fsync writes the rest
        assert started == [(0, 2 * piece), (2 * piece, 2 * piece)]
        assert incoming._writeback is None
    else:
        assert incoming._writeback is not None  # the thread that syncs
    incoming.commit(job)
    with store.open_sealed(job.id) as sealed:
        assert sealed.read() == data


def test_a_full_disk_met_while_pushing_is_a_clear_error_and_leaves_nothing(
    store: JobStore, make_job: JobFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_jobs, "start_writeback", full)
    job = make_job(sealed_size=store_jobs.WRITEBACK_FIRST)
    incoming = store.receive(job.id)
    with pytest.raises(InsufficientStorage, match="No space left on device"):
        incoming.write(os.urandom(store_jobs.WRITEBACK_FIRST))
    assert listing(store.incoming) == [] and store.get(job.id) is None


def test_the_kernel_can_be_asked_to_start_writing_a_file(tmp_path: Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        f.write(b"x" * 100_000)
        f.flush()
        assert portable.start_writeback(f.fileno(), 0, 100_000) == sys.platform.startswith("linux")


def test_a_delete_heard_before_the_copy_refuses_it_when_a_holder_said_it(
    store: JobStore, make_job: JobFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job's third copy follows its answer: it can arrive after the job was released
    and deleted everywhere else. A holder's word heard before is kept for a while; a
    non-holder's word is not enough, and old words are forgotten."""
    job = make_job(sealed_size=10)  # holders n1, n2, n3
    assert store.get_or_hear_delete(job.id, "n2", "released") is None
    assert store.get_or_hear_delete(job.id, "n-stranger", "released") is None  # hides nothing
    with pytest.raises(Gone, match="already released or deleted"):
        put(store, job)
    assert store.get(job.id) is None and store.tombstoned([job.id]) == {job.id: "released"}
    assert listing(store.incoming) == [] and listing(store.jobs) == []

    other = make_job(sealed_size=10)
    assert store.get_or_hear_delete(other.id, "n-stranger", "deleted") is None
    put(store, other)  # not a holder's word: kept, and no tombstone in its way
    assert store.get(other.id) is not None

    late = make_job(sealed_size=10)
    store.get_or_hear_delete(late.id, "n2", "released")
    now = time.time()
    monkeypatch.setattr(store_jobs.time, "time", lambda: now + store_jobs.HEARD_FOR + 1)
    put(store, late)  # heard too long ago: the holders' tombstones reach it by sync
    assert store.get(late.id) is not None
    held = store.get_or_hear_delete(late.id, "n2", "released")  # held: the job itself
    assert held is not None and held.id == late.id


def test_two_receives_of_one_job_do_not_collide(store: JobStore, make_job: JobFactory) -> None:
    job = make_job()
    first, second = store.receive(job.id), store.receive(job.id)
    assert first.path != second.path
    second.write(b"x" * job.sealed_size)
    second.commit(job)
    first.abort()
    with store.open_sealed(job.id) as f:
        assert f.read() == b"x" * job.sealed_size


def test_recover_sweeps_partial_and_orphaned_files(store: JobStore, make_job: JobFactory) -> None:
    kept = make_job()
    data = put(store, kept)
    half = store.receive(new_job_id())
    half.write(b"half a document")
    half.file.flush()
    orphan = store.jobs / f"{new_job_id()}.sealed"
    orphan.write_bytes(b"no row points here")
    (store.jobs / f"{kept.id}.sealed.tmp").write_bytes(b"junk")
    (store.jobs / f"{kept.id}.tmp").write_bytes(b"junk")  # a known id, but not a sealed file
    (store.incoming / "leftover.part").write_bytes(b"junk")

    store.recover()

    assert listing(store.incoming) == []
    assert listing(store.jobs) == [f"{kept.id}.sealed"]
    with store.open_sealed(kept.id) as f:
        assert f.read() == data
    assert store.require(kept.id) == kept


def test_recover_tombstones_a_job_this_node_was_taking_in(
    store: JobStore, make_job: JobFactory
) -> None:
    """Killed while taking a job in, the node had not committed it, but its peers may
    have (they commit beside it): the tombstone tells them to drop their copies. A copy a
    peer was sending us is only swept: the job is held elsewhere."""
    taken_in, replica, kept = new_job_id(), new_job_id(), make_job()
    taking = store.receive(taken_in, taking_in=True)
    taking.write(b"sealed bytes")
    taking.wait_recorded()
    store.receive(replica).write(b"a peer's copy")
    put(store, kept)
    (store.incoming / f"{kept.id}.0000.intake").write_bytes(b"a second try of a held job")
    (store.incoming / "not-a-job.intake").write_bytes(b"junk")

    store.recover()

    assert listing(store.incoming) == []
    assert store.tombstoned([taken_in, replica, kept.id]) == {
        taken_in: "not taken in: the node stopped before it held the job"
    }
    assert store.require(kept.id) == kept


def test_a_commit_under_way_counts_as_receiving(store: JobStore, make_job: JobFactory) -> None:
    """A sync answer asks after looking for the row: from the intake file's creation
    until the row shows, one of the job's two files is there."""
    job = make_job()
    assert not store.is_receiving(job.id)
    incoming = store.receive(job.id, taking_in=True)
    assert store.is_receiving(job.id)
    incoming.write(b"x" * job.sealed_size)
    incoming.file.flush()
    os.replace(incoming.path, store.path(job.id))  # the commit's move, its row not yet in
    assert store.is_receiving(job.id)


def test_recover_on_an_empty_store(store: JobStore) -> None:
    store.recover()
    assert listing(store.jobs) == listing(store.incoming) == []


def test_delete_leaves_a_tombstone(store: JobStore, make_job: JobFactory) -> None:
    job = make_job()
    put(store, job)
    assert store.delete(job.id, "released")
    assert store.get(job.id) is None
    assert listing(store.jobs) == []
    assert store.is_tombstoned(job.id)
    assert store.tombstoned([job.id, new_job_id()]) == {job.id: "released"}
    with pytest.raises(NotFound):
        store.open_sealed(job.id)
    with pytest.raises(NotFound):
        store.require(job.id)
    assert not store.delete(job.id, "again")  # no longer held, tombstone stays
    assert store.tombstoned([job.id]) == {job.id: "released"}


def test_receive_of_a_tombstoned_job_is_gone(store: JobStore, make_job: JobFactory) -> None:
    job = make_job()
    assert not store.delete(job.id, "expired")  # never held here, still tombstoned
    with pytest.raises(Gone):
        store.receive(job.id)
    assert listing(store.incoming) == []


def test_commit_after_a_delete_is_gone_and_leaves_nothing(
    store: JobStore, make_job: JobFactory
) -> None:
    job = make_job()
    incoming = store.receive(job.id)
    incoming.write(os.urandom(job.sealed_size))
    store.delete(job.id, "released")
    with pytest.raises(Gone):
        incoming.commit(job)
    assert store.get(job.id) is None
    assert listing(store.incoming) == []
    assert listing(store.jobs) == []


def test_drop_forgets_without_a_tombstone(store: JobStore, make_job: JobFactory) -> None:
    job = make_job()
    put(store, job)
    store.drop(job.id)
    assert store.get(job.id) is None
    assert listing(store.jobs) == []
    assert not store.is_tombstoned(job.id)
    put(store, job)  # it may come back
    assert store.get(job.id) == job


def test_set_holders_adopts_only_newer_versions(store: JobStore, make_job: JobFactory) -> None:
    job = make_job(holders_version=3)
    put(store, job)
    newer = [Holder("n1", 1), Holder("n4", 4)]
    assert not store.set_holders(job.id, [Holder("x", 9)], 2)
    assert not store.set_holders(job.id, [Holder("x", 9)], 3)
    assert store.require(job.id).holders == job.holders
    assert store.set_holders(job.id, newer, 4)
    stored = store.require(job.id)
    assert (stored.holders, stored.holders_version) == (newer, 4)
    assert not store.set_holders(job.id, job.holders, 4)
    assert store.require(job.id).holders == newer
    assert not store.set_holders(new_job_id(), newer, 99)  # unknown job


def test_record_release_refuses_a_replay(store: JobStore) -> None:
    job_id = new_job_id()
    assert store.record_release("r-1", job_id)
    assert not store.record_release("r-1", job_id)
    assert not store.record_release("r-1", new_job_id())
    assert store.record_release("r-2", job_id)


def test_expired(store: JobStore, make_job: JobFactory) -> None:
    old = make_job(expires_at=100.0)
    fresh = make_job(expires_at=10_000.0)
    put(store, old)
    put(store, fresh)
    assert store.expired(100.0) == [old.id]
    assert sorted(store.expired(10_000.0)) == sorted([old.id, fresh.id])
    assert store.expired(99.0) == []


def test_new_job_ids_are_valid_and_unique() -> None:
    ids = {new_job_id() for _ in range(100)}
    assert len(ids) == 100
    for job_id in ids:
        assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    "job_id",
    [
        "../x",
        "..",
        "",
        "j" + "0" * 23,
        "j" + "0" * 25,
        "J" + "0" * 24,
        "j" + "A" * 24,
        "j" + "g" * 24,
        "../j" + "0" * 24,
        "j" + "0" * 24 + "/../../etc/passwd",
        "j" + "0" * 24 + "\x00",
        "/tmp/j" + "0" * 24,
        " j" + "0" * 24,
    ],
)
def test_check_job_id_rejects_path_tricks(store: JobStore, job_id: str) -> None:
    with pytest.raises(NotFound, match="job ids look like"):
        check_job_id(job_id)
    with pytest.raises(NotFound):
        store.receive(job_id)
    with pytest.raises(NotFound):
        store.path(job_id)
    with pytest.raises(NotFound):
        store.delete(job_id, "x")
    assert listing(store.incoming) == []


def test_check_job_id_message_is_bounded() -> None:
    with pytest.raises(NotFound) as err:
        check_job_id("x" * 10_000)
    assert len(str(err.value)) < 200


def test_check_job_id_rejects_a_trailing_newline() -> None:
    job_id = "j" + "0" * 24 + "\n"
    with pytest.raises(NotFound):
        check_job_id(job_id)
