"""The MQTT control plane against real Mosquitto brokers (site and upstream), real nodes
and a real ippeveprinter, all on loopback: presence and last will, job events, release
commands that print once, refusals, offline mode and the upstream bridge."""

from __future__ import annotations

import base64
import json
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.devtools.localmesh import HOST
from appliance.errors import MeshprintError, RemoteError
from appliance.mqtt import commands, topics
from appliance.site.ca import SiteCA, cert_pem, key_pem, new_key
from appliance.site.release_authority import Signer
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.fixtures.mosquitto import (
    SiteBroker,
    Subscriber,
    UpstreamBroker,
    node_publisher,
    site_broker,
)
from tests.fixtures.snmpagent import snmp_printer
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def msite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from make_site(tmp_path_factory.mktemp("mqtt"), 3)


@pytest.fixture(scope="module")
def broker(msite: Site) -> Iterator[SiteBroker]:
    b = site_broker(msite.mesh).start()
    msite.mesh.wait_directory()  # every node now knows where the broker is
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def bus() -> Iterator[MdnsBus]:
    with MdnsBus() as bus:
        yield bus


@pytest.fixture
def printer(msite: Site, bus: MdnsBus) -> Iterator[VirtualPrinter]:
    with VirtualPrinter(bus) as printer:
        msite.add_printer(f"p{printer.port}", printer.uri)
        yield printer


# Helpers


def site_id(site: Site) -> str:
    return json.loads((site.mesh.nodes[0].data / "node.json").read_text())["site_id"]


def controller_ca(site: Site) -> SiteCA:
    """The CA key (no disk holds it in the clear: see `Site.ca_with_key`)."""
    return site.ca_with_key()


def cmd_topic(site: Site, index: int) -> str:
    return topics.node_topic(site_id(site), site.mesh.nodes[index].id, topics.COMMAND)


def command(
    site: Site,
    job_id: str,
    index: int,
    printer: VirtualPrinter,
    signer: Signer | None = None,
    **kw: Any,
) -> bytes:
    signed = commands.release_command(
        signer or site.release_signer(),
        job_id,
        site.mesh.nodes[index].id,
        f"p{printer.port}",
        **kw,
    )
    return commands.encode(signed)


def release_id(payload: bytes) -> str:
    signed = json.loads(payload)
    return str(json.loads(base64.b64decode(signed["command"]))["release_id"])


def publish(site: Site, broker: SiteBroker, index: int, topic: str, payload: bytes) -> None:
    """Publish as node `index` (node 0 is the controller), waiting for the PUBACK."""
    with node_publisher(site.mesh.nodes[index].data, broker.address) as pub:
        pub.publish(topic, payload)


def settled(site: Site, index: int, rid: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        try:
            return site._settled(index, rid)
        except RemoteError:
            return None  # not there yet

    result: dict[str, Any] = wait_for(check, timeout=timeout)
    return result


def log_has(site: Site, index: int, text: str, timeout: float = 20, count: int = 1) -> None:
    log = site.mesh.nodes[index].log
    wait_for(lambda: log.read_text(errors="replace").count(text) >= count, timeout)


def printed_jobs(printer: VirtualPrinter) -> set[str]:
    return {p.name.split("-")[0] for p in printer.spool.iterdir()}


def held_job(site: Site, index: int = 0) -> str:
    receipt = site.submit(index, b"Payroll summary\n" * 1000, content_type="text/plain")
    wait_for(lambda: len(site.held_on(receipt["id"])) == 3)
    return str(receipt["id"])


def wait_online(
    site: Site, broker: SiteBroker, after: float = 0.0, only: int | None = None, timeout: float = 40
) -> None:
    """Every node (or node `only`) has said online on the broker since `after`."""
    filter_ = topics.site_filter(site_id(site), topics.PRESENCE)
    nodes = site.mesh.nodes if only is None else [site.mesh.nodes[only]]
    with Subscriber(site.mesh.nodes[0].data, broker.address, filter_) as seen:
        for node in nodes:
            seen.wait(
                lambda t, p, r, n=node: (
                    p["node"] == n.id and p["state"] == "online" and p["at"] >= after
                ),
                timeout,
            )


# Tests


def test_presence_with_last_will_and_job_events(msite: Site, broker: SiteBroker) -> None:
    wait_online(msite, broker)
    sid = site_id(msite)
    with Subscriber(
        msite.mesh.nodes[1].data, broker.address, topics.site_filter(sid, topics.EVENTS)
    ) as events:
        receipt = msite.submit(0, b"secret salary table\n", title="Salaries")
        _, held, _ = events.wait(lambda t, p, r: p["event"] == "held" and p["job"] == receipt["id"])
        assert held["node"] == msite.mesh.nodes[0].id and held["owner"] == "alice"
        events.wait(lambda t, p, r: p["event"] == "replicated" and p["job"] == receipt["id"])
        raw = json.dumps([m[1] for m in events.messages])
        assert "salary" not in raw.lower() and "Salaries" not in raw  # metadata only

    presence = topics.site_filter(sid, topics.PRESENCE)
    node2 = msite.mesh.nodes[2]
    msite.mesh.kill(2)  # SIGKILL: no goodbye, the broker publishes the last will
    with Subscriber(msite.mesh.nodes[0].data, broker.address, presence) as seen:
        topic, _, retained = seen.wait(
            lambda t, p, r: p["node"] == node2.id and p["state"] == "offline"
        )
        assert topic == topics.node_topic(sid, node2.id, topics.PRESENCE) and retained
    restarted = time.time()
    msite.mesh.start(2)
    msite.mesh.wait_live(3)
    wait_online(msite, broker, after=restarted, only=2)


def test_release_command_prints_once_even_when_delivered_twice(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter
) -> None:
    job_id = held_job(msite, 0)
    payload = command(msite, job_id, 1, printer)
    rid = release_id(payload)
    sid = site_id(msite)
    with Subscriber(
        msite.mesh.nodes[2].data, broker.address, topics.site_filter(sid, topics.EVENTS)
    ) as events:
        publish(msite, broker, 0, cmd_topic(msite, 1), payload)
        publish(msite, broker, 0, cmd_topic(msite, 1), payload)  # delivered twice
        assert settled(msite, 1, rid)["stage"] == "printed"
        events.wait(lambda t, p, r: p["event"] == "released" and p.get("release_id") == rid)
        events.wait(lambda t, p, r: p["event"] == "printed" and p.get("release_id") == rid)
    log_has(msite, 1, f"release {rid} of job {job_id} was already delivered")
    wait_for(lambda: msite.held_on(job_id) == [])
    # The same command replayed to another node's topic is refused there.
    publish(msite, broker, 0, cmd_topic(msite, 2), payload)
    log_has(msite, 2, "release command refused: release command is for node")
    time.sleep(1)
    assert printed_jobs(printer) == {"1"}, "printed more than once"


def test_forged_replayed_and_unknown_commands_print_nothing(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter
) -> None:
    job_id = held_job(msite, 1)
    # A node that is not the controller may not command: the broker refuses (MQTT v5
    # PUBACK "Not authorized"), and the node never sees it.
    with pytest.raises(MeshprintError, match="Not authorized"):
        publish(msite, broker, 1, cmd_topic(msite, 2), command(msite, job_id, 2, printer))

    forged = command(msite, job_id, 2, printer, signer=SiteCA.create("intruder"))
    stolen = command(msite, job_id, 2, printer, signer=controller_ca(msite))  # its disk's
    signed = json.loads(command(msite, job_id, 2, printer))
    inner = json.loads(base64.b64decode(signed["command"]))
    inner["print"]["copies"] = 50  # changed after signing
    signed["command"] = base64.b64encode(json.dumps(inner).encode()).decode()
    tampered = json.dumps(signed).encode()
    expired = command(msite, job_id, 2, printer, ttl=-1)
    unknown = command(msite, "j" + "0" * 24, 2, printer)
    for payload in (forged, stolen, tampered, expired, unknown, b"not json"):
        publish(msite, broker, 0, cmd_topic(msite, 2), payload)
    refused = "release command refused: the release command is not signed by the site's"
    log_has(msite, 2, refused, count=2)
    log_has(msite, 2, "release command refused: release command has expired")
    log_has(msite, 2, f"release command refused: you have no job j{'0' * 24}")
    log_has(msite, 2, "release command refused: release command is not JSON")
    msite.add_printer("nobody-home", "ipp://127.0.0.1:9/ipp/print", "--no-check")
    down = commands.encode(
        commands.release_command(
            msite.release_signer(), job_id, msite.mesh.nodes[2].id, "nobody-home"
        )
    )
    publish(msite, broker, 0, cmd_topic(msite, 2), down)
    log_has(msite, 2, f"mqtt: release {release_id(down)} of job {job_id} not printed")
    assert next(j for j in msite.jobs(2) if j["id"] == job_id)["state"] == "held"

    # A command already used (here: by an HTTPS authorized release on the node it names,
    # the only node that may act on it) is refused as a replay.
    used = command(msite, job_id, 2, printer)
    first = msite.mesh.client(2).release(
        job_id, {**json.loads(used), "printer": f"p{printer.port}"}
    )
    assert settled(msite, 2, first["release_id"])["stage"] == "printed"
    publish(msite, broker, 0, cmd_topic(msite, 2), used)
    log_has(msite, 2, "release command refused")
    time.sleep(1)
    assert printed_jobs(printer) == {"1"}  # only the HTTPS release printed


def test_client_without_a_site_certificate_is_refused(
    msite: Site, broker: SiteBroker, tmp_path: Any
) -> None:
    node1 = msite.mesh.nodes[1]
    tls = node1.data / "tls"
    topic = topics.node_topic(site_id(msite), node1.id, topics.EVENTS)
    base = ["mosquitto_pub", "-h", HOST, "-p", str(broker.port), "-V", "mqttv5", "-q", "1"]
    base += ["--cafile", str(tls / "ca.pem"), "-t", topic, "-m", "{}"]
    other = SiteCA.create("other site")
    key = new_key()
    (tmp_path / "o.pem").write_bytes(cert_pem(other.issue(key.public_key(), node1.id, [HOST])))
    (tmp_path / "o.key").write_bytes(key_pem(key))

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *extra], capture_output=True, text=True, timeout=20)

    assert run().returncode != 0  # no certificate
    assert run("--cert", str(tmp_path / "o.pem"), "--key", str(tmp_path / "o.key")).returncode != 0
    ok = run("--cert", str(tls / "node.pem"), "--key", str(tls / "node.key"))
    assert ok.returncode == 0, ok.stderr  # the same call with the node's own certificate


def test_broker_down_release_still_works_and_nothing_is_lost(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter
) -> None:
    job_id = held_job(msite, 0)
    broker.kill()
    # Offline mode: listing and releasing go by direct HTTPS between the nodes.
    assert job_id in {j["id"] for j in msite.jobs(2)}
    assert msite.release_to(2, job_id, f"p{printer.port}")["stage"] == "printed"
    log_has(msite, 1, "mqtt: lost the broker")

    # A command for a node that is down waits in the broker (persistent session, saved
    # across a broker restart) and prints once when the node comes back.
    restarted = time.time()
    broker.start()
    wait_online(msite, broker, after=restarted)  # the agents reconnected with backoff
    second = held_job(msite, 1)
    msite.mesh.kill(2)
    payload = command(msite, second, 2, printer)
    publish(msite, broker, 0, cmd_topic(msite, 2), payload)
    broker.stop()  # SIGTERM: mosquitto saves its store
    broker.start()
    msite.mesh.start(2)
    assert settled(msite, 2, release_id(payload))["stage"] == "printed"
    time.sleep(1)
    assert printed_jobs(printer) == {"1", "2"}


def test_command_published_upstream_reaches_the_site(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter
) -> None:
    up = UpstreamBroker().start()
    try:
        bridge_cert, bridge_key = up.files["bridge"]
        broker.configure(
            "--upstream",
            f"mqtts://{HOST}:{up.port}",
            "--upstream-ca",
            str(up.ca_file),
            "--upstream-cert",
            str(bridge_cert),
            "--upstream-key",
            str(bridge_key),
            "--upstream-prefix",
            "fleet/office-1/",
        )
        admin = (*up.files["admin"], up.ca_file)
        with Subscriber(None, up.address, "fleet/office-1/node/+/presence", files=admin) as seen:
            broker.stop()
            broker.start()
            seen.wait(lambda t, p, r: p["state"] == "online", timeout=40)  # bridged out
        job_id = held_job(msite, 0)
        payload = command(msite, job_id, 1, printer)
        with up.publisher() as pub:
            pub.publish(f"fleet/office-1/node/{msite.mesh.nodes[1].id}/cmd", payload)
        assert settled(msite, 1, release_id(payload))["stage"] == "printed"
    finally:
        up.close()


def test_broker_release_command_line(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter
) -> None:
    job_id = held_job(msite, 2)
    data = str(msite.mesh.nodes[0].data)
    name = f"p{printer.port}"
    key = str(msite.mesh.recovery_key_file)
    shown = json.loads(
        msite.mesh.cli(
            "broker",
            "release",
            job_id,
            "--data",
            data,
            "--printer",
            name,
            "--print-only",
            "--key-file",
            key,
        ).stdout
    )
    assert shown["topic"].endswith("/cmd") and "signature" in json.loads(shown["payload"])
    out = msite.mesh.cli(
        "broker", "release", job_id, "--data", data, "--printer", name, "--key-file", key
    ).stdout
    assert "published to" in out
    wait_for(lambda: msite.held_on(job_id) == [], timeout=60)
    assert printed_jobs(printer) == {"1"}
    bad = msite.mesh.cli(
        "broker",
        "release",
        job_id,
        "--data",
        str(msite.mesh.nodes[1].data),
        "--printer",
        name,
        check=False,
    )
    assert bad.returncode == 1 and "controller" in bad.stderr


def test_a_broker_that_never_answers_is_survived(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter, tmp_path: Any
) -> None:
    data = str(msite.mesh.nodes[0].data)
    with socket.socket() as hole:  # accepts TCP connections, never says a word
        hole.bind((HOST, 0))
        hole.listen(16)
        port = hole.getsockname()[1]
        msite.mesh.cli(
            "broker", "config", "--data", data, "--out", str(tmp_path / "hole"),
            "--port", str(port), "--bind", HOST, "--address", HOST,
        )  # fmt: skip
        msite.mesh.wait_directory()
        log_has(msite, 1, f"mqtt: cannot reach the site broker at {HOST}:{port}", timeout=40)
        job_id = held_job(msite, 0)
        assert msite.release_to(1, job_id, f"p{printer.port}")["stage"] == "printed"
    back = time.time()
    broker.configure()  # the real broker again
    broker.stop()
    broker.start()
    msite.mesh.wait_directory()
    wait_online(msite, broker, after=back)


def test_broker_config_runs_again_without_a_new_directory_version(
    msite: Site, broker: SiteBroker
) -> None:
    before = msite.mesh.status(0)["directory_version"]
    broker.configure()  # as a broker service would at every start (fresh CRL)
    assert msite.mesh.status(0)["directory_version"] == before
    key = broker.directory / "broker.key"
    assert key.stat().st_mode & 0o077 == 0
    assert pwd.getpwuid(key.stat().st_uid).pw_name == "mosquitto"  # it drops to that user


def test_printer_status_is_published_retained(
    msite: Site, broker: SiteBroker, printer: VirtualPrinter, tmp_path: Any
) -> None:
    with snmp_printer(tmp_path / "snmp") as agent:
        name = f"p{printer.port}-snmp"
        msite.add_printer(
            name, printer.uri, "--snmp", f"{HOST}:{agent.port}", "--community", agent.community
        )
        filter_ = topics.site_filter(site_id(msite), topics.PRINTERS)
        controller = msite.mesh.nodes[0].id
        with Subscriber(msite.mesh.nodes[1].data, broker.address, filter_) as seen:
            _, status, _ = seen.wait(
                lambda t, p, r: p["node"] == controller and name in p["printers"], timeout=40
            )
        assert status["printers"][name]["ready"] is True
        assert status["printers"][name]["pages"] == 12345
        agent.jam()
        with Subscriber(msite.mesh.nodes[1].data, broker.address, filter_) as seen:
            seen.wait(
                lambda t, p, r: (
                    p["node"] == controller and p["printers"].get(name, {}).get("ready") is False
                ),
                timeout=60,
            )


def test_broker_off_disconnects_the_agents(msite: Site, broker: SiteBroker) -> None:
    node1 = msite.mesh.nodes[1]
    presence = topics.site_filter(site_id(msite), topics.PRESENCE)
    with Subscriber(msite.mesh.nodes[0].data, broker.address, presence) as seen:
        off = time.time()
        msite.mesh.cli("broker", "off", "--data", str(msite.mesh.nodes[0].data))
        seen.wait(
            lambda t, p, r: p["node"] == node1.id and p["state"] == "offline" and p["at"] >= off
        )
    on = time.time()
    broker.configure()
    wait_online(msite, broker, after=on)


def test_a_removed_member_is_refused_by_the_broker(msite: Site, broker: SiteBroker) -> None:
    """Last in this module: it removes node 2 from the site."""
    node2 = msite.mesh.nodes[2]
    msite.mesh.cli("member", "remove", node2.id, "--data", str(msite.mesh.nodes[0].data))
    broker.configure()  # writes the revocation list
    broker.stop()
    broker.start()
    topic = topics.node_topic(site_id(msite), node2.id, topics.EVENTS)
    with pytest.raises(MeshprintError, match=r"cannot reach|did not answer|refused"):
        publish(msite, broker, 2, topic, b"{}")
    publish(
        msite, broker, 1, topics.node_topic(site_id(msite), msite.mesh.nodes[1].id, "events"), b"{}"
    )
    log_has(msite, 2, "mqtt: cannot reach the site broker", timeout=40)
