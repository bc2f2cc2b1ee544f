"""A quiet mesh is quiet, and still quick: once the sync has backed off (nothing changed
for a while), a change made on one node still reaches every node within a few seconds,
and a killed holder is still noticed and repaired after the grace period."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.errors import RemoteError
from appliance.mesh.peers import LIVE_WINDOW, MAX_SYNC_INTERVAL
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = pytest.mark.integration

SETTLE = 3 * MAX_SYNC_INTERVAL  # every pair has backed off to the longest interval
REACH = 2 * MAX_SYNC_INTERVAL + 2  # a bound, not a measurement: a push takes about a tick


@pytest.fixture
def site4q(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path, 4)


def versions(site: Site, but: int | None) -> set[int]:
    nodes = [n for n in site.mesh.nodes if n.running and n.index != but]
    return {site.mesh.status(n.index)["directory_version"] for n in nodes}


def reaches_everyone(site: Site, but: int | None = None) -> None:
    """After a quiet spell, the controller's newest directory is on every running node
    (but node `but`) within REACH seconds."""
    wait_for(lambda: len(versions(site, but)) == 1, timeout=REACH, interval=0.1)


def test_changes_reach_every_node_with_back_off_in_effect(site4q: Site, tmp_path: Path) -> None:
    site, mesh = site4q, site4q.mesh
    controller = str(mesh.nodes[0].data)

    time.sleep(SETTLE)
    mesh.cli(
        "printer",
        "add",
        "quiet-printer",
        "--uri",
        "ipp://127.0.0.1:1/ipp/print",
        "--no-check",  # no printer is there
        "--data",
        controller,
    )
    reaches_everyone(site)

    time.sleep(SETTLE)
    secret = tmp_path / "carol.password"
    secret.write_text("amber-signal-4711\n")
    mesh.cli("user", "add", "carol", "--data", controller, "--password-file", str(secret))
    reaches_everyone(site)

    # A new job: its holders have it at once (intake), and every node lists it.
    time.sleep(SETTLE)
    receipt = site.submit(3, b"a job after a quiet spell")
    for node in mesh.nodes:
        wait_for(
            lambda i=node.index: receipt["id"] in {j["id"] for j in site.jobs(i)}, timeout=REACH
        )

    # A new member: every node sees it live.
    time.sleep(SETTLE)
    newcomer = mesh.add_node()
    token = mesh.cli("invite", "--data", controller).stdout.strip()
    mesh.cli(
        "join",
        token,
        "--data",
        str(newcomer.data),
        "--role",
        "edge",
        "--name",
        "newcomer",
        "--host",
        "127.0.0.1",
    )
    mesh.start(newcomer.index)
    for node in mesh.nodes:
        mesh.wait_live(5, index=node.index, timeout=REACH)

    # A revoked member, still running with its kept-alive connections to the others:
    # every node has the removal and refuses it.
    time.sleep(SETTLE)
    mesh.cli("member", "remove", newcomer.id, "--data", controller)
    reaches_everyone(site, but=newcomer.index)
    for node in mesh.nodes[:4]:
        members = {m["id"] for m in mesh.status(node.index)["members"]}
        assert newcomer.id not in members, node.index

    def refused(target: int) -> bool:
        try:
            site.peer(newcomer.index, target).health()
        except RemoteError as err:
            return err.status == 403
        return False

    for index in range(4):
        assert refused(index), index
    log = newcomer.log.read_text()
    assert "Traceback" not in log, log[-3000:]


def test_killed_holder_is_noticed_and_repaired_after_a_quiet_spell(site4q: Site) -> None:
    site = site4q
    site.settings(repair_grace="5s")
    receipt = site.submit(0, b"kept at three copies")
    job_id = receipt["id"]
    wait_for(lambda: len(site.held_on(job_id)) == 3)
    time.sleep(SETTLE)  # back-off in effect before the holder dies
    spare, lost = site.spare_and_holder(receipt)
    site.mesh.kill(lost)
    # Noticed (no longer live for the others) within the live window …
    wait_for(
        lambda: (
            not next(
                m for m in site.mesh.status(0)["members"] if m["id"] == site.mesh.nodes[lost].id
            )["live"]
        ),
        timeout=LIVE_WINDOW + MAX_SYNC_INTERVAL + 2,
    )
    # … and repaired once the grace period is over.
    wait_for(lambda: spare in site.held_on(job_id), timeout=30)
    assert site.mesh.status(0)["jobs"]["fully_replicated"] == 1
