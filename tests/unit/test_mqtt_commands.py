"""appliance.mqtt.commands: what a node accepts from its command topic, and events."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.errors import BadRequest, Conflict, Forbidden, NotFound
from appliance.mqtt import commands
from appliance.mqtt.events import Watcher
from appliance.site.ca import SiteCA
from appliance.store.db import Database
from appliance.store.deliveries import DeliveryLog
from appliance.store.jobs import Holder, JobStore

from .conftest import JobFactory


@pytest.fixture
def node(ca: SiteCA, db: Database, store: JobStore) -> Any:
    return SimpleNamespace(
        id="n1",
        site=SimpleNamespace(ca=ca),
        directory=lambda: SimpleNamespace(
            doc={}
        ),  # a site without a release authority: the CA signs
        store=store,
        db=db,
        deliveries=DeliveryLog(db),
        peers=SimpleNamespace(live=lambda: []),
    )


@pytest.fixture
def delivered(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calls that reached the delivery path (faked: these tests are about the checks)."""
    calls: list[dict[str, Any]] = []

    def fake(node: Any, job: Any, printer: str, options: Any,
             release_id: str, reprint: bool, open_plaintext: Any) -> Any:  # fmt: skip
        calls.append({"job": job.id, "printer": printer, "options": options, "rid": release_id})
        node.deliveries.start(release_id, job.id, printer)
        return node.deliveries.get(release_id)

    monkeypatch.setattr(commands.deliver, "deliver", fake)
    return calls


def held(store: JobStore, make_job: JobFactory) -> str:
    job = make_job()
    incoming = store.receive(job.id)
    incoming.write(b"x" * job.sealed_size)
    incoming.commit(job)
    return job.id


def payload(ca: SiteCA, job_id: str, node_id: str = "n1", **kw: Any) -> bytes:
    return commands.encode(commands.release_command(ca, job_id, node_id, "lobby", **kw))


def test_a_good_command_is_delivered_with_its_signed_print_request(
    node: Any, ca: SiteCA, store: JobStore, make_job: JobFactory, delivered: list[Any]
) -> None:
    job_id = held(store, make_job)
    outcome = commands.act_on(node, payload(ca, job_id, copies=2, sides="two-sided-long-edge"))
    assert not outcome.repeated
    (call,) = delivered
    assert call["job"] == job_id and call["printer"] == "lobby"
    assert (call["options"].copies, call["options"].sides) == (2, "two-sided-long-edge")


def test_the_same_command_twice_is_answered_from_the_delivery_log(
    node: Any, ca: SiteCA, store: JobStore, make_job: JobFactory, delivered: list[Any]
) -> None:
    message = payload(ca, held(store, make_job))
    commands.act_on(node, message)
    again = commands.act_on(node, message)
    assert again.repeated and len(delivered) == 1


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda ca, other, job: payload(other, job), Forbidden, "not the site controller's"),
        (lambda ca, other, job: payload(ca, job, ttl=-1), Forbidden, "expired"),
        (lambda ca, other, job: payload(ca, job, node_id="n2"), Forbidden, "for node 'n2'"),
        (lambda ca, other, job: payload(ca, "j" + "0" * 24), NotFound, "no job"),
        (lambda ca, other, job: b"{not json", BadRequest, "not JSON"),
        (lambda ca, other, job: b"[1]", BadRequest, "malformed"),
        (lambda ca, other, job: b'{"command": "e30=", "signature": ""}', Forbidden, "signature"),
        (lambda ca, other, job: b"{}" + b" " * 20000, BadRequest, "larger"),
    ],
)
def test_bad_commands_are_refused_and_print_nothing(
    node: Any,
    ca: SiteCA,
    other_ca: SiteCA,
    store: JobStore,
    make_job: JobFactory,
    delivered: list[Any],
    make: Any,
    error: type[Exception],
    message: str,
) -> None:
    job_id = held(store, make_job)
    with pytest.raises(error, match=message):
        commands.act_on(node, make(ca, other_ca, job_id))
    assert delivered == []


def test_a_command_changed_after_signing_is_refused(
    node: Any, ca: SiteCA, store: JobStore, make_job: JobFactory, delivered: list[Any]
) -> None:
    signed = json.loads(payload(ca, held(store, make_job)))
    inner = json.loads(base64.b64decode(signed["command"]))
    inner["print"]["printer"] = "somewhere-else"
    signed["command"] = base64.b64encode(json.dumps(inner).encode()).decode()
    with pytest.raises(Forbidden, match="not the site controller's"):
        commands.act_on(node, json.dumps(signed).encode())
    assert delivered == []


def test_a_release_id_reused_for_another_job_is_refused(
    node: Any, ca: SiteCA, store: JobStore, make_job: JobFactory, delivered: list[Any]
) -> None:
    message = payload(ca, held(store, make_job))
    commands.act_on(node, message)
    rid = delivered[0]["rid"]
    node.deliveries.db.connection().execute(
        "UPDATE deliveries SET job_id='jffffffffffffffffffffffff' WHERE release_id=?", (rid,)
    )
    with pytest.raises(Conflict, match="another job"):
        commands.act_on(node, message)


def test_events_are_metadata_only(node: Any, store: JobStore, make_job: JobFactory) -> None:
    watcher = Watcher(node)
    assert watcher.changes() == []  # the baseline
    mine = make_job(title="Secret plans", holders=[Holder("n1", 1), Holder("n2", 2)])
    incoming = store.receive(mine.id)
    incoming.write(b"x" * 100)
    incoming.commit(mine)
    copy = make_job(holders=[Holder("n2", 1), Holder("n1", 2)], share_x=2)
    incoming = store.receive(copy.id)
    incoming.write(b"x" * 100)
    incoming.commit(copy)
    node.deliveries.start("rel-00000001", mine.id, "lobby")
    events = {(e["event"], e["job"]) for e in watcher.changes()}
    assert events == {("held", mine.id), ("replicated", copy.id), ("released", mine.id)}
    node.deliveries.update("rel-00000001", "printed")
    store.delete(copy.id, "expired")
    later = watcher.changes()
    assert {(e["event"], e["job"]) for e in later} == {("printed", mine.id), ("expired", copy.id)}
    assert "Secret" not in json.dumps(later) and watcher.changes() == []


def test_agent_sockets_get_tcp_nodelay() -> None:
    import socket

    from appliance.mqtt.agent import nodelay

    with socket.socket() as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        nodelay(None, None, sock)  # type: ignore[arg-type]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_a_failed_delivery_is_reported_as_not_delivered(
    node: Any, ca: SiteCA, store: JobStore, make_job: JobFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.errors import Unavailable

    def down(*args: Any) -> Any:
        raise Unavailable("printer lobby is not ready: jammed")

    monkeypatch.setattr(commands.deliver, "deliver", down)
    job_id = held(store, make_job)
    with pytest.raises(commands.NotDelivered, match="jammed") as info:
        commands.act_on(node, payload(ca, job_id))
    assert info.value.status == 503 and info.value.job_id == job_id
