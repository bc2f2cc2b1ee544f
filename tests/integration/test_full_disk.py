"""A node whose disk really fills up (a small tmpfs as its data directory)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Site, make_site, random_bytes, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root"),
]
MB = 1024 * 1024


@pytest.fixture
def small_disk_site(tmp_path: Path) -> Iterator[Site]:
    small = tmp_path / "node2"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(small)], check=True)
    try:
        yield from make_site(tmp_path, 3)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_disk_filling_up_mid_upload_gets_507_and_keeps_held_jobs(small_disk_site: Site) -> None:
    site = small_disk_site
    site.settings(disk_reserve="0")
    kept = random_bytes(2 * MB)
    first = site.submit(2, kept)
    # Declared size larger than the free space: refused before anything is written.
    err = site.error(site.submit, 2, random_bytes(16 * MB))
    assert err.status == 507 and "out of space" in str(err)
    # Unknown size (chunked): the disk fills while writing.
    chunks = iter([random_bytes(MB)] * 16)
    err = site.error(
        site.mesh.client(2, "submit").submit, ("alice", site.tokens["alice"]), chunks, "doc"
    )
    assert err.status == 507, err
    for node in site.mesh.nodes:
        wait_for(lambda n=node: not any((n.data / "incoming").iterdir()))
    assert [j["id"] for j in site.jobs(0)] == [first["id"]]
    assert site.release(2, first["id"]) == kept
    # Space is back: the node takes jobs again.
    assert site.submit(2, random_bytes(MB))["id"]
