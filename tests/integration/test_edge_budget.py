"""An edge node's disk budget (issue 16): a node over its budget holds nothing new, and
jobs still get their three copies on the other nodes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Site, make_site, random_bytes, wait_for

pytestmark = pytest.mark.integration
K = 1024


@pytest.fixture
def site5(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, 5)


def test_a_node_over_its_budget_holds_nothing_new(site5: Site) -> None:
    site = site5
    mesh = site.mesh
    small = mesh.nodes[4]  # an edge node (node 1 is the super node)
    controller = str(mesh.nodes[0].data)
    out = mesh.cli("member", "budget", small.id, "1M", "--data", controller).stdout
    assert "at most 1.0 MB" in out
    mesh.wait_directory()

    # Its own intake refuses a job that would take it over its budget: 507, nothing kept.
    err = site.error(site.submit, 4, random_bytes(1100 * K))
    assert err.status == 507 and "out of space" in str(err), err
    assert not any((small.data / "incoming").iterdir())
    assert not any((small.data / "jobs").iterdir())

    # Jobs handed in elsewhere get three copies, none of them on the full node.
    jobs = {site.submit(i % 4, random_bytes(1100 * K))["id"] for i in range(6)}
    for job_id in jobs:
        wait_for(lambda j=job_id: len(site.held_on(j)) == 3, timeout=60)
        assert 4 not in site.held_on(job_id)
    assert not any((small.data / "jobs").iterdir())
    assert not any((small.data / "incoming").iterdir())

    def listed_on_three_others() -> bool:
        listed = {j["id"]: set(j["holders"]) for j in site.jobs(0)}
        return all(len(listed[j]) == 3 and small.id not in listed[j] for j in jobs)

    wait_for(listed_on_three_others, timeout=60)

    # Back to the site's budget (2G): the same node takes jobs again.
    mesh.cli("member", "budget", small.id, "site", "--data", controller)
    mesh.wait_directory()
    assert site.submit(4, random_bytes(1100 * K))["id"]
