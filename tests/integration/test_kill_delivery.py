"""Exactly once under kill -9: the delivering node killed at any moment of a release
leaves no job stuck "delivering" once it is back, and a reprint prints it once; a holder
that was down as a delivery ended catches up; a member cannot claim or release a job in
another node's name."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from appliance.errors import Forbidden, MeshprintError
from bench.kill_delivery import DELIVERING, RCVBUF, READ_DELAY, SETTLE, KillLoop, job_states
from tests.fixtures.rawsink import RawSink
from tests.integration.conftest import PASSWORDS, Site, make_site, random_bytes, wait_for

pytestmark = pytest.mark.integration
TRIALS = 10


@pytest.fixture(scope="module")
def ksite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("kill-delivery"), 3)


def test_kill_9_of_the_delivering_node_at_any_moment_never_sticks_nor_prints_twice(
    ksite: Site,
) -> None:
    with RawSink(read_delay=READ_DELAY, rcvbuf=RCVBUF) as sink:
        KillLoop.printer_for(ksite.mesh, sink)
        loop = KillLoop(ksite.mesh, "alice", ksite.tokens["alice"], PASSWORDS["alice"], sink)
        outcomes = [loop.trial(delay) for delay in loop.delays(TRIALS)]
    report = "\n".join(o.line(n) for n, o in enumerate(outcomes, start=1))
    assert not any(o.stuck for o in outcomes), report
    assert all(o.before <= 1 and o.after == 1 for o in outcomes), report
    # Held again only when nothing had gone to the printer.
    assert all(o.before == o.partial == 0 for o in outcomes if "held" in o.states.values())
    # The loop did cover the moments that matter: before anything was sent (held again),
    # cut off mid-stream (a partial copy, then the reprint) and after the printer had it
    # all (printed and deleted everywhere by the node once back).
    assert any("held" in o.states.values() for o in outcomes), report
    assert any(o.partial and o.reprinted for o in outcomes), report
    assert any(o.before == 1 and not o.states for o in outcomes), report


def test_a_holder_down_as_the_delivery_ends_catches_up_when_back(ksite: Site) -> None:
    mesh = ksite.mesh
    # The printer drops the connection after 1 MB: the delivery ends cut off.
    with RawSink(close_after=1024 * 1024, read_delay=0.02) as sink:
        name = f"drops-{sink.port}"
        ksite.add_printer(name, f"socket://127.0.0.1:{sink.port}", "--pdl", "as-is")
        receipt = ksite.submit(0, random_bytes(4 * 1024 * 1024))
        job_id = receipt["id"]
        wait_for(lambda: len(job_states(mesh, job_id)) == 3)
        errors: list[BaseException] = []

        def release() -> None:
            try:
                ksite.release_to(DELIVERING, job_id, name)
            except (MeshprintError, AssertionError) as err:
                errors.append(err)

        thread = threading.Thread(target=release)
        thread.start()
        wait_for(lambda: job_states(mesh, job_id).get(2) == "delivering", timeout=20)
        mesh.kill(2)  # a holder, away while the delivery ends
        thread.join(60)
        ended = job_states(mesh, job_id)
        assert ended[0] in ("held", "unknown") and ended[2] == "delivering", ended
        mesh.start(2)
        mesh.wait_live(3, index=2)
        wait_for(lambda: job_states(mesh, job_id)[2] == ended[0], timeout=SETTLE)
    # And it releases (reprints) as the others would.
    with RawSink() as fine:
        printer = f"fine-{fine.port}"
        ksite.add_printer(printer, f"socket://127.0.0.1:{fine.port}", "--pdl", "as-is")
        delivery = ksite.release_to(2, job_id, printer, reprint=True)
        assert delivery["stage"] == "printed", delivery
        assert len(fine.wait(1)) == 1


def test_a_member_cannot_claim_or_release_a_job_for_another_node(ksite: Site) -> None:
    job_id = ksite.submit(0, b"claimed by whom?\n")["id"]
    wait_for(lambda: len(job_states(ksite.mesh, job_id)) == 3)
    victim = ksite.mesh.nodes[1].id
    # Node 1's real claim on holder 0.
    claim = {"job": job_id, "release_id": "victim-release"}
    ksite.peer(1, 0).delivery_step(job_id, "claim", claim)
    job = ksite.peer(1, 0).job(job_id)
    assert (job["state"], job["delivery_node"]) == ("delivering", victim)
    # Node 2 (a member) names node 1 to release, or mark unknown, node 1's claim …
    for step in ("unclaim", "unknown"):
        forged = {**claim, "node": victim, "reason": "forged"}
        err = ksite.error(ksite.peer(2, 0).delivery_step, job_id, step, forged)
        assert isinstance(err, Forbidden) and err.status == 403, err
    # … or leaves the name out: the step is then its own, which matches no claim.
    ksite.peer(2, 0).delivery_step(job_id, "unclaim", {**claim, "reason": "mine?"})
    # Nor can it claim in node 1's name to take the job over.
    err = ksite.error(ksite.peer(2, 0).delivery_step, job_id, "claim", {**claim, "node": victim})
    assert isinstance(err, Forbidden), err
    job = ksite.peer(1, 0).job(job_id)
    assert (job["state"], job["delivery_node"], job["release_id"]) == (
        "delivering",
        victim,
        "victim-release",
    ), job
    ksite.peer(1, 0).delivery_step(job_id, "unclaim", {**claim, "reason": ""})
    assert ksite.peer(1, 0).job(job_id)["state"] == "held"
