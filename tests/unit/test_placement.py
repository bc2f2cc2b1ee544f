"""appliance.mesh.placement: which nodes hold a job's copies."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from appliance.mesh.placement import COPIES, choose_holders
from appliance.site.directory import NodeRecord
from appliance.store.jobs import new_job_id

JOB_IDS = [f"j{i:024x}" for i in range(300)]


def node(node_id: str, role: str = "edge", machine: str | None = None) -> NodeRecord:
    return NodeRecord(
        id=node_id,
        name=node_id,
        role=role,
        cert_serial=f"serial-{node_id}",
        machine_id=machine or f"machine-{node_id}",
    )


EDGE_FIRST = node("e0")
SUPERS = [node("s1", "super"), node("s2", "super")]
EDGES = [node(f"e{i}") for i in range(1, 6)]


def ids(nodes: list[NodeRecord]) -> list[str]:
    return [n.id for n in nodes]


def test_first_is_kept_first_and_count_respected() -> None:
    for job_id in JOB_IDS[:50]:
        chosen = choose_holders(job_id, EDGE_FIRST, [EDGE_FIRST, *SUPERS, *EDGES])
        assert len(chosen) == COPIES == 3
        assert chosen[0] == EDGE_FIRST
        assert len(set(ids(chosen))) == len(chosen)


def test_fewer_candidates_than_copies() -> None:
    assert choose_holders("j" + "0" * 24, EDGE_FIRST, []) == [EDGE_FIRST]
    assert choose_holders("j" + "0" * 24, EDGE_FIRST, [EDGE_FIRST]) == [EDGE_FIRST]
    assert ids(choose_holders("j" + "0" * 24, EDGE_FIRST, [EDGES[0]])) == ["e0", "e1"]
    assert len(choose_holders("j" + "0" * 24, EDGE_FIRST, EDGES, count=10)) == 6


def test_super_nodes_come_first() -> None:
    for job_id in JOB_IDS:
        chosen = choose_holders(job_id, EDGE_FIRST, [*EDGES, *SUPERS])
        assert sorted(ids(chosen[1:])) == ["s1", "s2"]


def test_one_super_node_is_always_chosen() -> None:
    for job_id in JOB_IDS:
        chosen = choose_holders(job_id, EDGE_FIRST, [*EDGES, SUPERS[0]])
        assert chosen[1].id == "s1"
        assert chosen[2].role == "edge"


def test_distinct_machines_are_preferred() -> None:
    same_machine = node("e-twin", machine=EDGE_FIRST.machine_id)
    elsewhere = node("e-away")
    for job_id in JOB_IDS[:100]:
        assert ids(choose_holders(job_id, EDGE_FIRST, [same_machine, elsewhere], count=2)) == [
            "e0",
            "e-away",
        ]


def test_distinct_machines_among_candidates_are_preferred() -> None:
    rack = [node("b1", machine="box-b"), node("b2", machine="box-b"), node("b3", machine="box-b")]
    lone = node("c1", machine="box-c")
    for job_id in JOB_IDS:
        chosen = choose_holders(job_id, EDGE_FIRST, [*rack, lone])
        machines = [n.machine_id for n in chosen]
        assert len(set(machines)) == 3, (job_id, ids(chosen))
        assert "c1" in ids(chosen)


def test_same_machine_is_used_when_nothing_else_is_left() -> None:
    twins = [node("t1", machine=EDGE_FIRST.machine_id), node("t2", machine=EDGE_FIRST.machine_id)]
    assert sorted(ids(choose_holders(JOB_IDS[0], EDGE_FIRST, twins))) == ["e0", "t1", "t2"]


def test_super_on_a_shared_machine_still_beats_an_edge() -> None:
    shared_super = node("s-twin", "super", machine=EDGE_FIRST.machine_id)
    for job_id in JOB_IDS[:50]:
        chosen = choose_holders(job_id, EDGE_FIRST, [EDGES[0], shared_super], count=2)
        assert ids(chosen) == ["e0", "s-twin"]


def test_deterministic_per_job_whatever_the_candidate_order() -> None:
    everyone = [*SUPERS, *EDGES, node("e6", machine="machine-e1")]
    rng = random.Random(1)
    for job_id in JOB_IDS[:100]:
        expected = choose_holders(job_id, EDGE_FIRST, everyone)
        shuffled = everyone[:]
        rng.shuffle(shuffled)
        assert choose_holders(job_id, EDGE_FIRST, shuffled) == expected
        assert choose_holders(job_id, EDGE_FIRST, iter(shuffled)) == expected


def test_different_jobs_get_different_holders() -> None:
    placements = {tuple(ids(choose_holders(j, EDGE_FIRST, EDGES))) for j in JOB_IDS}
    assert len(placements) > 1


@pytest.mark.parametrize("first", [EDGE_FIRST, SUPERS[0]])
def test_jobs_spread_across_edge_nodes(first: NodeRecord) -> None:
    candidates = [SUPERS[0], *EDGES, EDGE_FIRST]
    counts: Counter[str] = Counter()
    for job_id in JOB_IDS:
        counts.update(n.id for n in choose_holders(job_id, first, candidates)[1:])
    edges = [n.id for n in [*EDGES, EDGE_FIRST] if n.id != first.id]
    for edge in edges:
        assert counts[edge] > 0, counts
    # Rendezvous hashing spreads evenly: no edge gets more than twice its fair share.
    edge_slots = sum(counts[e] for e in edges)
    fair = edge_slots / len(edges)
    assert max(counts[e] for e in edges) < 2 * fair, counts


def test_random_job_ids_are_spread() -> None:
    counts = Counter(
        choose_holders(new_job_id(), EDGE_FIRST, EDGES, count=2)[1].id for _ in range(300)
    )
    assert set(counts) == {n.id for n in EDGES}


def test_a_full_node_is_passed_over() -> None:
    full = {"s1": 0, "e1": -5}
    for job_id in JOB_IDS[:50]:
        chosen = choose_holders(job_id, EDGE_FIRST, [*SUPERS, *EDGES], room=full)
        assert len(chosen) == COPIES
        assert not {"s1", "e1"} & set(ids(chosen))


def test_a_node_without_room_for_this_job_is_passed_over_a_silent_one_is_not() -> None:
    room = {"s1": 10, "s2": 1000}  # the edges did not say (an older node): not passed over
    for job_id in JOB_IDS[:50]:
        chosen = choose_holders(job_id, EDGE_FIRST, [*SUPERS, *EDGES], room=room, needed=100)
        assert "s1" not in ids(chosen)
        assert chosen[1].id == "s2"  # the super node with room still comes first
        assert len(chosen) == COPIES


def test_every_candidate_full_leaves_only_the_first() -> None:
    room = {n.id: 0 for n in [*SUPERS, *EDGES]}
    assert choose_holders(JOB_IDS[0], EDGE_FIRST, [*SUPERS, *EDGES], room=room) == [EDGE_FIRST]
