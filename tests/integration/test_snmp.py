"""Printer status over SNMP against a real agent: snmpsim serving a printer recording."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.printers import snmp
from appliance.printers.errors import PrinterNotReady, PrinterUnreachable
from appliance.printers.snmp import SnmpV3User, preflight, read_status, sweep
from tests.fixtures.snmpagent import (
    MODEL,
    SYS_DESCR_TEXT,
    V3_USER,
    SnmpPrinterAgent,
    free_udp_port,
    snmp_printer,
)

pytestmark = [
    pytest.mark.integration,
    # pysnmp 7.1 calls pysmi's deprecated camelCase names when it loads its MIBs.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pysnmp.smi.compiler"),
]


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpPrinterAgent]:
    with snmp_printer(tmp_path_factory.mktemp("snmpagent"), v3=True) as running:
        yield running


@pytest.fixture(autouse=True)
def idle_printer(agent: SnmpPrinterAgent) -> Iterator[None]:
    yield
    agent.reset()


def not_ready(agent: SnmpPrinterAgent) -> str:
    with pytest.raises(PrinterNotReady) as info:
        preflight(agent.target())
    assert info.value.status == 503
    return str(info.value)


def test_idle_printer_is_printable(agent: SnmpPrinterAgent) -> None:
    status = preflight(agent.target())
    assert status.printable and status.blocking_reason() is None
    assert (status.device_status, status.printer_status, status.errors) == ("running", "idle", ())
    assert status.page_count == 12345
    toner = status.supplies[0]
    assert (toner.description, toner.percent) == ("Black Toner Cartridge", 42)
    assert status.supplies[1].remaining == "some remaining"
    assert (status.description, status.model) == (SYS_DESCR_TEXT, MODEL)
    assert status.alerts == ()


def test_answers_are_fast_once_warm(agent: SnmpPrinterAgent) -> None:
    read_status(agent.target())
    started = time.monotonic()
    for _ in range(5):
        read_status(agent.target())
    assert (time.monotonic() - started) / 5 < 0.1  # one shared engine: no warm-up per call


def test_jammed_printer(agent: SnmpPrinterAgent) -> None:
    agent.jam("Paper jam in tray 2")
    reason = not_ready(agent)
    assert "paper jam" in reason
    assert "Paper jam in tray 2" in reason  # the printer's own alert text
    assert read_status(agent.target()).errors == ("jammed",)


def test_toner_level_zero(agent: SnmpPrinterAgent) -> None:
    agent.set_toner(0)
    assert not_ready(agent) == "Black Toner Cartridge is empty — replace it"


def test_no_toner_bit(agent: SnmpPrinterAgent) -> None:
    agent.set_errors("noToner")
    assert not_ready(agent) == "out of toner — replace the toner cartridge"


def test_low_toner_and_paper_only_warn(agent: SnmpPrinterAgent) -> None:
    agent.set_errors("lowPaper", "lowToner")
    agent.set_toner(5)
    status = preflight(agent.target())
    assert status.warnings() == [
        "paper is low",
        "toner is low",
        "Black Toner Cartridge is low (5%)",
    ]


def test_device_down(agent: SnmpPrinterAgent) -> None:
    agent.set_device_status("down")
    assert "down" in not_ready(agent)


def test_printing_printer_takes_jobs(agent: SnmpPrinterAgent) -> None:
    agent.set_printer_status("printing")
    agent.set_pages(12346)
    status = preflight(agent.target())
    assert (status.printer_status, status.page_count) == ("printing", 12346)


def test_dead_port_is_unreachable_within_the_timeout(agent: SnmpPrinterAgent) -> None:
    read_status(agent.target())  # the engine's one-off warm-up is not what is timed here
    port = free_udp_port()  # nothing listens there
    target = snmp.SnmpTarget("127.0.0.1", port, "printer", timeout=0.5, retries=0)
    started = time.monotonic()
    with pytest.raises(PrinterUnreachable) as info:
        preflight(target)
    elapsed = time.monotonic() - started
    assert 0.35 <= elapsed < 1.0  # pysnmp counts the timeout in 0.1 s timer ticks
    assert str(info.value) == (
        f"no SNMP answer from 127.0.0.1:{port} within 0.5 s — is the printer on? "
        "(community/credentials right?)"
    )
    assert info.value.status == 503


def test_retries_multiply_the_wait() -> None:
    target = snmp.SnmpTarget("127.0.0.1", free_udp_port(), timeout=0.3, retries=2)
    started = time.monotonic()
    with pytest.raises(PrinterUnreachable):
        read_status(target)
    assert 0.7 <= time.monotonic() - started < 1.5


def test_wrong_community_is_unreachable_with_the_hint(agent: SnmpPrinterAgent) -> None:
    with pytest.raises(PrinterUnreachable) as info:
        read_status(agent.target(community="public", timeout=0.3, retries=0))
    assert "(community/credentials right?)" in str(info.value)
    assert f"127.0.0.1:{agent.port}" in str(info.value)


def test_snmp_v3_auth_priv(agent: SnmpPrinterAgent) -> None:
    v2c = read_status(agent.target())
    v3 = read_status(agent.target(v3=V3_USER))
    assert v3 == v2c and v3.supplies[0].percent == 42


def test_snmp_v3_wrong_key(agent: SnmpPrinterAgent) -> None:
    wrong = SnmpV3User(V3_USER.user, "not-the-auth-key", V3_USER.priv_key, context="printer")
    with pytest.raises(PrinterUnreachable) as info:
        read_status(agent.target(v3=wrong, timeout=0.5, retries=0))
    assert "refused" in str(info.value) and "v3 user and keys" in str(info.value)


def test_threads_share_the_engine(agent: SnmpPrinterAgent) -> None:
    agent.set_errors("lowPaper")
    results: list[object] = []

    def read() -> None:
        try:
            results.append(read_status(agent.target()))
        except Exception as exc:  # collected, then checked below
            results.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 8
    assert all(isinstance(r, snmp.PrinterStatus) and r.errors == ("lowPaper",) for r in results)


def test_sweep_finds_the_printer(agent: SnmpPrinterAgent) -> None:
    found = sweep("127.0.0.1/32", "printer", port=agent.port, timeout=0.5)
    assert found == [("127.0.0.1", SYS_DESCR_TEXT, MODEL)]
    assert found[0].model == MODEL
    assert sweep("127.0.0.1/32", "printer", v3=V3_USER, port=agent.port, timeout=0.5) == found
    assert sweep("127.0.0.1/32", "wrong", port=agent.port, timeout=0.3) == []


def test_sweep_of_a_small_network_is_bounded(agent: SnmpPrinterAgent) -> None:
    # 127.0.0.0/28: 14 hosts, only 127.0.0.1 answers; 4 at a time -> 4 rounds of 0.3 s.
    started = time.monotonic()
    found = sweep("127.0.0.0/28", "printer", port=agent.port, timeout=0.3, concurrency=4)
    elapsed = time.monotonic() - started
    assert [item.host for item in found] == ["127.0.0.1"]
    assert 0.8 <= elapsed < 3


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    agent = SnmpPrinterAgent(tmp_path).start()
    assert agent.process is not None
    pgid = agent.process.pid
    agent.stop()
    left = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    assert left.stdout == "" and left.returncode == 1
