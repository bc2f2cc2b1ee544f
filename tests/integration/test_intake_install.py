"""`meshprint intake install` moves a machine off the old CUPS "Secure Print" queue to the
node's own printer, and the printer's DNS-SD record, read back from a real avahi-daemon
(avahi-browse, ippfind), carries what its IPP attributes say.

Real components: a private cupsd (holding the old queue, its `meshprint` backend, its
operation policy and network listener as earlier releases set them up), a three-node
site whose super node 1 serves the printer, and avahi on loopback publishing the service
files `intake install` writes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.devtools.virtual_printer import VirtualPrinterError
from appliance.intake import cupsconf
from appliance.printers.delivery.cups import CUPS_LOCK, _connect
from tests.fixtures.cups import PrivateCups
from tests.fixtures.ippeve import MdnsBus
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="cupsd runs backends as root only for root"),
]

# The old queue's backend as CUPS saw it: lists itself, takes a job in about a second.
OLD_BACKEND = """#!/bin/sh
if [ $# -eq 0 ]; then echo 'network meshprint "Unknown" "meshprint Secure Print"'; exit 0; fi
sleep 1
cat > /dev/null
exit 0
"""
OLD_POLICY = """
<Policy meshprint-secure-print>
  JobPrivateAccess @SYSTEM
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""


@dataclass
class Machine:
    site: Site
    cupsd: PrivateCups
    bus: MdnsBus
    backend_dir: Path
    services: Path
    args: list[str]

    @property
    def node(self) -> int:
        return 1  # the super node that is not the controller

    def install(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.site.mesh.cli("intake", "install", *self.args, *extra, check=check)

    def cupsd_conf(self) -> str:
        out = self.services.parent / "cupsd.conf.read"
        with CUPS_LOCK, out.open("wb") as f:
            _connect(self.cupsd.server, "root").getFile("/admin/conf/cupsd.conf", file=f)
        return out.read_text()

    def queues(self) -> dict[str, object]:
        with CUPS_LOCK:
            return dict(_connect(self.cupsd.server, "root").getPrinters())

    def browse(self, kind: str) -> list[str]:
        result = subprocess.run(
            ["avahi-browse", "-rtp", kind],
            env=self.bus.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return [line for line in result.stdout.splitlines() if line.startswith("=")]


def _server_bin(root: Path) -> Path:
    """A CUPS ServerBin: the standard filters and backends, with room for the old one."""
    lib = root / "cups-bin"
    (lib / "backend").mkdir(parents=True)
    for sub in ("filter", "cgi-bin", "daemon", "monitor", "notifier", "driver"):
        if Path("/usr/lib/cups", sub).exists():
            os.symlink(f"/usr/lib/cups/{sub}", lib / sub)
    for backend in Path("/usr/lib/cups/backend").iterdir():
        os.symlink(backend, lib / "backend" / backend.name)
    return lib


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    root = tmp_path_factory.mktemp("intake-install")
    os.chmod(root, 0o755)
    services = root / "avahi-services"
    services.mkdir()
    try:
        bus = MdnsBus(services=services).start()
    except VirtualPrinterError as err:
        pytest.skip(f"no private avahi with its own service files here: {err}")
    cups_root = Path(tempfile.mkdtemp(prefix="meshprint-cups-"))
    lib = _server_bin(cups_root)
    cupsd = PrivateCups(cups_root, server_bin=lib, extra_conf=OLD_POLICY)
    sites = make_site(root / "site", 3)
    try:
        site = next(sites)
        node = site.mesh.nodes[1]
        cupsd.start()
        args = [
            *("--data", str(node.data), "--cups-server", cupsd.server),
            *("--backend-dir", str(lib / "backend")),
            *("--service-file", str(services / "meshprint-printer.service")),
            *("--port", str(node.ipp_port), "--host", "127.0.0.1"),
            *("--release-port", str(node.release_port), "--drain", "30"),
        ]
        yield Machine(site, cupsd, bus, lib / "backend", services, args)
    finally:
        cupsd.stop()
        shutil.rmtree(cups_root, ignore_errors=True)
        next(sites, None)
        bus.stop()


def _old_state(m: Machine) -> None:
    """What an earlier release left: backend, queue on the network, its record."""
    backend = m.backend_dir / "meshprint"
    backend.write_text(OLD_BACKEND)
    backend.chmod(0o700)
    m.cupsd.run(
        "lpadmin",
        *("-p", "Secure_Print", "-E", "-v", "meshprint:///var/lib/meshprint?wait=30"),
        *("-m", "raw", "-o", "printer-is-shared=true"),
        *("-o", "printer-op-policy=meshprint-secure-print"),
    )
    (m.services / "meshprint-secure-print.service").write_text(
        '<?xml version="1.0" standalone="no"?>\n<service-group><name>Secure Print</name>'
        "<service><type>_ipp._tcp</type><port>631</port>"
        "<txt-record>mopria-certified=1.3</txt-record></service></service-group>\n"
    )


@pytest.fixture(scope="module")
def migrated(machine: Machine) -> tuple[Machine, subprocess.CompletedProcess[str]]:
    _old_state(machine)
    assert "Secure_Print" in machine.queues()
    assert cupsconf.network_listeners(machine.cupsd_conf())  # CUPS on TCP, as it was
    # A job still in the old queue goes out through its backend before the queue goes.
    pdf = machine.services.parent / "late.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    machine.cupsd.run("lp", "-d", "Secure_Print", str(pdf))
    return machine, machine.install()


def test_bad_input_changes_nothing(machine: Machine, tmp_path: Path) -> None:
    _old_state(machine)
    before = machine.cupsd_conf()
    nowhere = machine.install("--data", str(tmp_path), check=False)
    assert nowhere.returncode == 1 and "has no meshprint node" in nowhere.stderr, nowhere
    port = machine.install("--port", "0", check=False)
    assert port.returncode == 1 and "--port" in port.stderr, port
    long = machine.install("--location", "x" * 300, check=False)
    assert long.returncode == 1 and "longer than 255" in long.stderr, long
    assert "Secure_Print" in machine.queues() and machine.cupsd_conf() == before
    assert not (machine.services / "meshprint-printer.service").exists()


def test_old_queue_backend_and_record_are_gone_and_cups_is_off_the_network(
    migrated: tuple[Machine, subprocess.CompletedProcess[str]],
) -> None:
    m, first = migrated
    out = first.stdout
    assert "removed the old CUPS queue Secure_Print" in out and "cancelled" not in out, out
    assert "removed the old queue's CUPS backend" in out, out
    assert "CUPS listens on its Unix socket only" in out and "wrote the DNS-SD record" in out
    assert "removed the old queue's DNS-SD record" in out, out
    assert "Secure_Print" not in m.queues()
    assert not (m.backend_dir / "meshprint").exists()
    assert not (m.services / "meshprint-secure-print.service").exists()
    conf = m.cupsd_conf()
    assert cupsconf.network_listeners(conf) == [] and "meshprint-secure-print" not in conf
    assert f"Listen {m.cupsd.socket}" in conf
    assert m.cupsd.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", m.cupsd.port), 2):
        pass


def test_install_again_changes_nothing(
    migrated: tuple[Machine, subprocess.CompletedProcess[str]],
) -> None:
    m, _ = migrated
    record = m.services / "meshprint-printer.service"
    before = record.stat().st_mtime_ns
    again = m.install()
    assert "nothing changed" in again.stdout, again
    assert record.stat().st_mtime_ns == before


def _printer_attributes(m: Machine) -> str:
    node = m.site.mesh.nodes[m.node]
    result = m.cupsd.run(
        "ipptool",
        "-tv",
        f"ipp://127.0.0.1:{node.ipp_port}/ipp/print",
        "get-printer-attributes.test",
        check=False,
    )
    assert "printer-uuid" in result.stdout, result.stdout[-2000:]
    return result.stdout


def _txt(line: str) -> dict[str, str]:
    return dict(t.split("=", 1) for t in re.findall(r'"([^"]*)"', line.split(";", 9)[-1]))


def test_record_read_back_from_avahi_matches_the_printer(
    migrated: tuple[Machine, subprocess.CompletedProcess[str]],
) -> None:
    m, _ = migrated
    node = m.site.mesh.nodes[m.node]
    found = wait_for(lambda: m.browse("_universal._sub._ipps._tcp") or None, timeout=30, interval=1)
    line = next(x for x in found if x.split(";")[2] == "IPv4")
    fields = line.split(";")
    assert fields[3].replace("\\032", " ") == "Secure Print" and fields[8] == str(node.ipp_port)
    txt = _txt(line)
    answer = _printer_attributes(m)
    uuid = re.search(r"printer-uuid \(uri\) = urn:uuid:(\S+)", answer)
    formats = re.search(r"document-format-supported \(1setOf mimeMediaType\) = (\S+)", answer)
    more_info = re.search(r"printer-more-info \(uri\) = (\S+)", answer)
    assert uuid and formats and more_info, answer[-3000:]
    assert txt["UUID"] == uuid.group(1)
    assert txt["pdl"].split(",") == [f for f in formats.group(1).split(",") if "octet" not in f]
    assert txt["adminurl"] == more_info.group(1)
    urf = re.search(r"urf-supported \(1setOf keyword\) = (\S+)", answer)
    assert urf and txt["URF"] == urf.group(1)
    assert txt["rp"] == "ipp/print" and txt["air"] == "username,password" and txt["TLS"] == "1.2"
    assert (txt["kind"], txt["PaperMax"], txt["Color"], txt["Duplex"]) == (
        "document",
        "legal-A4",
        "T",
        "T",
    )
    assert "ty" in txt and "note" in txt
    assert not [k for k in txt if "certified" in k]
    # The same record under the other type and subtype, and the LPD placeholder.
    assert wait_for(lambda: m.browse("_print._sub._ipp._tcp") or None, timeout=15, interval=1)
    placeholder = wait_for(lambda: m.browse("_printer._tcp") or None, timeout=15, interval=1)
    assert all(x.split(";")[8] == "0" for x in placeholder), placeholder


def test_ippfind_finds_the_printer_by_its_keys(
    migrated: tuple[Machine, subprocess.CompletedProcess[str]],
) -> None:
    m, _ = migrated
    result = subprocess.run(
        [
            *("ippfind", "-T", "5", "_ipps._tcp,_universal"),
            *("--txt-rp", "^ipp/print$", "--txt-air", "^username,password$"),
            *("--txt-pdl", "image/urf", "--txt", "UUID", "--txt", "adminurl"),
            *("--txt-kind", "document", "--print-name", "--print"),
        ],
        env=m.bus.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Secure Print" in result.stdout, result
    assert "/ipp/print" in result.stdout, result


def test_unicast_records_carry_the_same_txt(
    migrated: tuple[Machine, subprocess.CompletedProcess[str]],
) -> None:
    m, _ = migrated
    node = m.site.mesh.nodes[m.node]
    zone = m.site.mesh.cli(
        *("dnssd", "records", "--data", str(node.data)),
        *("--host", "meshprint.office.example.com", "--port", str(node.ipp_port)),
    ).stdout
    uuid = re.search(r"printer-uuid \(uri\) = urn:uuid:(\S+)", _printer_attributes(m))
    assert uuid and f'"UUID={uuid.group(1)}"' in zone
    assert (
        f"Secure\\032Print._ipps._tcp.office.example.com.\t3600\tIN\tSRV\t0 0 {node.ipp_port} "
        "meshprint.office.example.com." in zone
    )
    assert "_universal._sub._ipp._tcp.office.example.com." in zone
    bad = m.site.mesh.cli("dnssd", "records", "--data", str(node.data), "--host", "x", check=False)
    assert bad.returncode == 1 and "--domain" in bad.stderr


# What systemd does for meshprint-node.socket: bind the port, exec the node with the
# socket as fd 3 and LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES set (the pid survives exec).
SYSTEMD_LIKE = """#!{python}
import os, socket, sys
args = sys.argv[1:]
port = int(args[args.index("--ipp-port") + 1])
sock = socket.create_server(("127.0.0.1", port))
if sock.fileno() != 3:
    os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="ipp")
os.execv(sys.executable, [sys.executable, *args])
"""


def test_the_node_serves_its_printer_on_the_socket_systemd_passes(
    migrated: tuple[Machine, subprocess.CompletedProcess[str]],
) -> None:
    m, _ = migrated
    mesh = m.site.mesh
    node = mesh.nodes[m.node]
    wrapper = m.services.parent / "systemd-like"
    wrapper.write_text(SYSTEMD_LIKE.replace("{python}", sys.executable))
    wrapper.chmod(0o755)
    mesh.kill(m.node, signal.SIGTERM)
    node.python = str(wrapper)
    try:
        # Had the node bound the port itself, it would have failed (the port is taken).
        mesh.start(m.node)
        answer = _printer_attributes(m)
        assert "printer-make-and-model (textWithoutLanguage) = meshprint Secure Print" in answer
        assert node.running
    finally:
        node.python = sys.executable
