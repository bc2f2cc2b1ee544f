"""Exactly once across nodes: a holder's refusal of a claim reaches the node that asked
with its type (409 Conflict), and two releases of one job through two nodes at the same
moment print it once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from appliance.errors import Conflict, MeshprintError, NotFound
from appliance.store.db import Database
from appliance.store.deliveries import DeliveryLog
from appliance.store.states import Stage
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = pytest.mark.integration
RACES = 20


@pytest.fixture(scope="module")
def osite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("exactly-once"), 3)


@pytest.fixture(scope="module")
def printer(osite: Site) -> Iterator[VirtualPrinter]:
    with MdnsBus() as bus, VirtualPrinter(bus) as printer:
        osite.add_printer(f"p{printer.port}", printer.uri)
        yield printer


def _printed(printer: VirtualPrinter) -> set[str]:
    return {p.name.split("-")[0] for p in printer.spool.iterdir()}


def _held_everywhere(site: Site, data: bytes) -> str:
    receipt = site.submit(0, data)
    wait_for(lambda: len(site.held_on(receipt["id"])) == 3)
    return receipt["id"]


def test_a_holder_that_refuses_the_claim_stops_the_delivery(
    osite: Site, printer: VirtualPrinter
) -> None:
    job_id = _held_everywhere(osite, b"claimed elsewhere\n")
    holders = [osite.node_index(h) for h in osite.jobs(0)[0]["holders"]]
    releaser, other, refuser = holders[0], holders[1], holders[-1]
    # Another member's delivery already has the job on the last holder in line (and that
    # member has it on record, so the holder's check with it keeps the claim standing).
    log = DeliveryLog(Database(osite.mesh.nodes[other].data / "meshprint.db"))
    log.start("other-release", job_id, f"p{printer.port}")
    log.update("other-release", Stage.DELIVERING)
    claim = {"job": job_id, "release_id": "other-release", "node": osite.mesh.nodes[other].id}
    osite.peer(other, refuser).delivery_step(job_id, "claim", claim)
    before = _printed(printer)

    err = osite.error(osite.start_release, releaser, job_id, f"p{printer.port}")
    assert isinstance(err, Conflict) and err.status == 409, err
    assert "already being printed" in str(err)
    assert _printed(printer) == before
    # What the releasing node had claimed on the way is held again.
    for index in holders[:-1]:
        assert osite.peer(other, index).job(job_id)["state"] == "held"
    assert osite.peer(other, refuser).job(job_id)["state"] == "delivering"

    log.update("other-release", Stage.FAILED, reason="given up")
    osite.peer(other, refuser).delivery_step(job_id, "unclaim", {**claim, "reason": ""})
    assert osite.peer(other, refuser).job(job_id)["state"] == "held"
    osite.release_to(releaser, job_id, f"p{printer.port}")
    assert len(_printed(printer) - before) == 1


def _race(
    site: Site, printer: VirtualPrinter, job_id: str, release_ids: dict[int, str]
) -> list[object]:
    """Release the job through each node in `release_ids` at the same moment; what each
    node answered (a delivery or the error)."""
    start = threading.Barrier(len(release_ids))
    answers: dict[int, object] = {}

    def release(index: int) -> None:
        start.wait()
        try:
            answers[index] = site.start_release(
                index, job_id, f"p{printer.port}", release_id=release_ids[index]
            )
        except MeshprintError as err:
            answers[index] = err

    threads = [threading.Thread(target=release, args=(i,)) for i in release_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return list(answers.values())


def test_concurrent_releases_through_two_nodes_print_once(
    osite: Site, printer: VirtualPrinter
) -> None:
    before = _printed(printer)
    for trial in range(RACES):
        job_id = _held_everywhere(osite, f"race {trial}\n".encode() * 100)
        # Half the trials with one release id (a release retried elsewhere), half with two.
        same = trial % 2 == 1
        ids = {i: f"race-trial-{trial:02d}" + ("" if same else f"-node{i}") for i in (1, 2)}
        answers = _race(osite, printer, job_id, ids)
        refused = [a for a in answers if isinstance(a, MeshprintError)]
        assert all(isinstance(a, Conflict | NotFound) for a in refused), answers
        assert len(refused) < 2, answers
        wait_for(lambda job_id=job_id: osite.held_on(job_id) == [], timeout=60)
        assert len(_printed(printer) - before) == trial + 1, f"trial {trial}: {answers}"
