"""What people read: IPP keywords in plain words, the nodes' events as lines, a printer's
state from its IPP attributes (no SNMP), display names, and the node's event log."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import BadRequest, NotFound
from appliance.humanize import describe_event, ipp_word, plain
from appliance.printers.ipp.enums import ValueTag
from appliance.printers.ipp.message import Attribute
from appliance.printers.ipp.models import PrinterInfo
from appliance.printers.ippstatus import status_of
from appliance.printers.registry import (
    PrinterRecord,
    add_printer,
    find,
    new_printer,
    printers,
    set_printer,
)
from appliance.site.state import SiteState
from appliance.store import node_events
from appliance.store.db import Database
from tests.unit.test_site_admin import site  # noqa: F401  (the fixture)


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("printed (job-completed-successfully)", "printed"),
        ("failed (job-canceled-at-device)", "failed (cancelled at the printer)"),
        ("media-empty-error, toner-low-warning", "out of paper, toner low (warning)"),
        ("the printer at ipp://front-desk:631 is stopped (media-jam)", None),
        ("front-desk", "front-desk"),  # not a keyword: left alone
        ("", ""),
    ],
)
def test_plain_words_for_ipp_keywords(raw: str, said: str | None) -> None:
    got = plain(raw)
    if said is None:
        assert got == "the printer at ipp://front-desk:631 is stopped (paper jam)"
    else:
        assert got == said
    assert "job-completed" not in got


def test_ipp_word_knows_severity_suffixes() -> None:
    assert ipp_word("media-jam-error") == "paper jam"
    assert ipp_word("marker-supply-low-warning") == "ink or toner low (warning)"
    assert ipp_word("cover-open-report") == "a cover is open"
    assert ipp_word("not-a-keyword") is None


def test_node_events_read_as_lines() -> None:
    names = {"n1": "appliance", "lobby": "Front desk"}
    job = "j0123456789abcdefabcdef12"
    assert describe_event({"kind": "held", "job": job, "size": 2048, "node": "n1"}, names) == (
        "job …cdef12 held (2.0 KB), taken in by appliance"
    )
    assert describe_event({"kind": "printed", "job": job, "printer": "lobby"}, names) == (
        "job …cdef12 printed on Front desk"
    )
    assert "held again" in describe_event({"kind": "failed", "job": job, "printer": "x"})
    assert describe_event({"kind": "node-down", "node": "n1"}, names) == (
        "node appliance is down (not heard from)"
    )
    assert describe_event({"kind": "node-up", "node": "n2"}) == "node n2 is up"
    assert "expired" in describe_event({"kind": "expired", "job": job, "node": "n1"})


def _info(state: int, reasons: list[str], accepting: bool = True) -> PrinterInfo:
    attrs = {
        "printer-state": Attribute("printer-state", ValueTag.ENUM, [state]),
        "printer-state-reasons": Attribute(
            "printer-state-reasons", ValueTag.KEYWORD, list(reasons or ["none"])
        ),
        "printer-is-accepting-jobs": Attribute(
            "printer-is-accepting-jobs", ValueTag.BOOLEAN, [accepting]
        ),
        "marker-names": Attribute("marker-names", ValueTag.NAME_WITHOUT_LANGUAGE, ["Black"]),
        "marker-levels": Attribute("marker-levels", ValueTag.INTEGER, [42]),
        "marker-high-levels": Attribute("marker-high-levels", ValueTag.INTEGER, [100]),
    }
    return PrinterInfo.from_attributes(attrs)


def test_printer_state_from_ipp() -> None:
    idle = status_of(_info(3, []))
    assert idle.ready and idle.reason == ""
    assert idle.details["source"] == "ipp" and idle.details["printer"] == "idle"
    assert idle.details["supplies"] == [{"name": "Black", "percent": 42}]
    low = status_of(_info(4, ["toner-low-warning"]))
    assert low.ready and low.details["alerts"] == ["toner low (warning)"]
    jammed = status_of(_info(5, ["media-jam-error"]))
    assert not jammed.ready and jammed.reason == "paper jam"
    out = status_of(_info(3, ["media-empty-error"]))
    assert not out.ready and out.reason == "out of paper"
    closed = status_of(_info(3, [], accepting=False))
    assert not closed.ready and "not accepting" in closed.reason


def test_display_names(site: SiteState) -> None:  # noqa: F811
    add_printer(site, new_printer("front", "ipp://127.0.0.1:9/ipp/print", label="Front desk"))
    record = find(site.directory().doc, "front")
    assert record.display_name == "Front desk" and record.public()["display_name"] == "Front desk"
    plain_one = new_printer("back", "socket://127.0.0.1:9")
    assert plain_one.display_name == "back" and "label" not in plain_one.to_dict()
    changed = set_printer(site, "front", "  Front   desk, ground floor ", "Hall")
    assert changed.display_name == "Front desk, ground floor" and changed.location == "Hall"
    assert changed.uri == "ipp://127.0.0.1:9/ipp/print"
    cleared = set_printer(site, "front", "")
    assert cleared.display_name == "front" and cleared.location == "Hall"
    before = site.directory().version
    with pytest.raises(BadRequest, match="at most 60"):
        set_printer(site, "front", "x" * 61)
    with pytest.raises(BadRequest, match="printable"):
        new_printer("bad", "socket://127.0.0.1:9", label="bell\x07here")
    with pytest.raises(NotFound):
        set_printer(site, "nope", "Nope")
    assert site.directory().version == before  # a refused change changes nothing
    assert PrinterRecord.from_dict("old", {"uri": "socket://h:9100"}).display_name == "old"
    assert set(printers(site.directory().doc)) == {"front"}


def test_node_event_log_keeps_the_newest(tmp_path: Path) -> None:
    db = Database(tmp_path / "node.db")
    node_events.record(db, "held", job="j1", size=10, node="n1", owner="alice", title="secret")
    node_events.record(db, "no-such-kind", job="j2")
    [event] = node_events.recent(db)
    assert event["kind"] == "held" and event["job"] == "j1" and event["size"] == 10
    assert "owner" not in event and "title" not in event  # metadata only
    for index in range(node_events.KEEP + 5):
        node_events.record(db, "printed", job=f"j{index}", printer="p")
    kept = db.query("SELECT COUNT(*) AS n FROM node_events")[0]["n"]
    assert kept == node_events.KEEP
    assert node_events.recent(db, 1)[0]["job"] == f"j{node_events.KEEP + 4}"


def test_the_event_log_answers_this_machine_only(tmp_path: Path) -> None:
    import io
    import json
    from email.message import Message

    from appliance.api import release as release_api
    from appliance.errors import Forbidden
    from appliance.https.server import Body, Request

    class FakeNode:
        id = "node-a"
        db = Database(tmp_path / "node.db")
        directory = None  # not used by this route

    node_events.record(FakeNode.db, "node-down", node="node-b")
    app = release_api.app(FakeNode())  # type: ignore[arg-type]

    def ask(address: str) -> object:
        body = Body(io.BytesIO(b""), 0, False)
        return app(Request("GET", "/v1/events", {}, Message(), body, (address, 5000)))

    answer = ask("127.0.0.1")
    events = json.loads(answer.body)["events"]  # type: ignore[attr-defined]
    assert [(e["kind"], e["node"]) for e in events] == [("node-down", "node-b")]
    for outside in ("192.0.2.10", "::ffff:192.0.2.10"):
        with pytest.raises(Forbidden, match="this machine only"):
            ask(outside)


def test_a_printer_that_does_not_answer_ipp_is_a_printer_error() -> None:
    from appliance.printers.errors import PrinterUnreachable
    from appliance.printers.ippstatus import read_ipp_status

    with pytest.raises(PrinterUnreachable, match="refused"):
        read_ipp_status(new_printer("gone", "ipp://127.0.0.1:9/ipp/print"), timeout=2)
