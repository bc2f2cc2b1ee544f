"""appliance.mesh.budget: how much more a node may hold (its budget, the free floor)."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.config import SiteSettings
from appliance.errors import InsufficientStorage
from appliance.mesh import budget
from appliance.site.directory import NodeRecord
from appliance.store.jobs import JobStore

from .conftest import JobFactory

K, M, G = 1024, 1024**2, 1024**3


def node(store: JobStore, role: str = "edge", own: int | None = None, **settings: int) -> Any:
    record = NodeRecord("n1", "n1", role, "1", "m1", budget=own)
    directory = SimpleNamespace(settings=SiteSettings(**settings), node={"n1": record}.get)
    return SimpleNamespace(id="n1", store=store, directory=lambda: directory, last_sync={})


def hold(store: JobStore, make_job: JobFactory, size: int) -> None:
    job = make_job(sealed_size=size)
    incoming = store.receive(job.id)
    incoming.write(os.urandom(size))
    incoming.commit(job)


def fake_disk(monkeypatch: pytest.MonkeyPatch, total: int, free: int) -> None:
    usage = shutil._ntuple_diskusage(total, total - free, free)  # type: ignore[attr-defined]
    monkeypatch.setattr(budget.shutil, "disk_usage", lambda path: usage)


def test_an_edge_node_holds_at_most_its_budget(store: JobStore, make_job: JobFactory) -> None:
    hold(store, make_job, 600 * K)
    edge = node(store, own=1 * M, disk_reserve=0)
    assert budget.room(edge) == 1 * M - 600 * K
    budget.check_room(edge, 400 * K)
    with pytest.raises(InsufficientStorage, match="out of space"):
        budget.check_room(edge, 500 * K)
    # Without its own budget, the site's edge_budget.
    assert budget.room(node(store, edge_budget=700 * K, disk_reserve=0)) == 100 * K
    # A super node has no budget, only the reserve.
    assert budget.room(node(store, "super", own=1 * M, disk_reserve=0)) > 1 * M


def test_an_edge_node_keeps_ten_percent_free(
    store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_disk(monkeypatch, total=100 * G, free=11 * G)
    edge = node(store, edge_budget=64 * G, disk_reserve=0)
    assert budget.room(edge) == 1 * G  # down to 10 GB free, not the budget
    fake_disk(monkeypatch, total=100 * G, free=9 * G)
    assert budget.room(edge) < 0
    with pytest.raises(InsufficientStorage):
        budget.check_room(edge, 0)  # a node under the floor takes nothing new
    # The reserve counts for every node.
    assert budget.room(node(store, "super", disk_reserve=1 * G)) == 8 * G


def test_peer_room_reads_what_peers_said(store: JobStore) -> None:
    me = node(store)
    me.last_sync.update({"a": {"room": 5}, "b": {"room": None}, "c": {}, "d": {"room": True}})
    assert budget.peer_room(me) == {"a": 5}
