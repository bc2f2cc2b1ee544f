"""Secure Print, the driverless intake: a real private cupsd whose backend directory holds
our `meshprint` backend (installed by `meshprint intake install`), a real three-node site,
and a real avahi on loopback that publishes the queue's AirPrint record.

`lp` and an IPP Print-Job from `ipptool` (what a phone sends) both end up held for their
user on three holders with the sender's title, copies, sides and colour as the job's
defaults; an unknown user's job is cancelled with "unknown user …" in its CUPS state and
nothing is held; with the node down CUPS keeps the job and it is held once the node is
back; a held job released to a virtual printer prints with the defaults it came with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.devtools.virtual_printer import VirtualPrinterError
from appliance.intake import queue
from appliance.printers.delivery.cups import CUPS_LOCK, _connect
from tests.fixtures.cups import PrivateCups
from tests.fixtures.ippeve import MdnsBus, VirtualPrinter
from tests.integration.conftest import Site, make_site, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="cupsd runs backends as root only for root"),
]

# A small PDF (CUPS types it by its content; the queue passes PDF through untouched).
PDF = (
    (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    + b"%"
    + b"quarterly figures " * 2000
    + b"\n"
)

# An Apple raster (URF) document, what an iPhone may send: file header, page count, one
# page header (8-bit sRGB, 1x1 at 300 dpi) and its run-length data.
URF = (
    b"UNIRAST\x00"
    + (1).to_bytes(4, "big")
    + bytes([24, 1, 0, 4, 0, 0, 0, 0])
    + (1).to_bytes(4, "big")
    + (1).to_bytes(4, "big")
    + (300).to_bytes(4, "big")
    + bytes(8)
    + bytes([0, 0, 0xFF, 0xFF, 0xFF])
)


def ipp_test(name: str, operation: str, rest: str) -> str:
    """One ipptool test: the operation attributes every request carries (as the phone's
    user), then `rest` (more attributes, FILE, STATUS, EXPECT), one per line."""
    lines = [
        f'NAME "{name}"',
        f"OPERATION {operation}",
        "GROUP operation-attributes-tag",
        "ATTR charset attributes-charset utf-8",
        "ATTR naturalLanguage attributes-natural-language en",
        "ATTR uri printer-uri $uri",
        "ATTR name requesting-user-name $phone_user",
        *rest.strip().splitlines(),
    ]
    return "{\n" + "".join(f"    {line.strip()}\n" for line in lines) + "}\n"


PHONE_TEST = ipp_test(
    "Print-Job as a phone sends it",
    "Print-Job",
    """
    ATTR name job-name $title
    ATTR mimeMediaType document-format $format
    GROUP job-attributes-tag
    ATTR integer copies 3
    ATTR keyword sides two-sided-short-edge
    ATTR keyword print-color-mode color
    FILE $filename
    STATUS successful-ok
    EXPECT job-id
    """,
)

# How macOS and iOS print: Create-Job, then Send-Document, then Get-Job-Attributes, as a
# user without a Unix account; and Cancel-Job (CANCEL_TEST).
APPLE_TEST = (
    ipp_test(
        "Create-Job",
        "Create-Job",
        """
        ATTR name job-name $title
        GROUP job-attributes-tag
        ATTR integer copies 2
        STATUS successful-ok
        EXPECT job-id
        """,
    )
    + ipp_test(
        "Send-Document",
        "Send-Document",
        """
        ATTR integer job-id $job-id
        ATTR name document-name "$docname"
        ATTR mimeMediaType document-format $format
        ATTR boolean last-document true
        FILE $filename
        STATUS successful-ok
        """,
    )
    + ipp_test(
        "Get-Job-Attributes",
        "Get-Job-Attributes",
        """
        ATTR integer job-id $job-id
        STATUS successful-ok
        EXPECT job-state
        """,
    )
)
CANCEL_TEST = ipp_test("Cancel-Job", "Cancel-Job", "ATTR integer job-id $job\nSTATUS successful-ok")


@dataclass
class SecurePrint:
    site: Site
    cupsd: PrivateCups
    bus: MdnsBus
    root: Path
    install_args: list[str]

    @property
    def uri(self) -> str:
        return f"ipp://127.0.0.1:{self.cupsd.port}/printers/{queue.QUEUE}"

    @property
    def service_file(self) -> Path:
        return self.root / "avahi-services" / "meshprint-secure-print.service"

    def install(self) -> subprocess.CompletedProcess[str]:
        return self.site.mesh.cli("intake", "install", *self.install_args)

    def lp(self, user: str, document: Path, *options: str) -> int:
        result = self.cupsd.run("lp", "-U", user, "-d", queue.QUEUE, *options, str(document))
        found = re.search(rf"{queue.QUEUE}-(\d+)", result.stdout)
        assert found, result
        return int(found.group(1))

    def job(self, job_id: int) -> dict[str, Any]:
        with CUPS_LOCK:
            conn = _connect(self.cupsd.server, "root")
            return dict(conn.getJobAttributes(job_id))

    def finished(self, job_id: int, timeout: float = 60) -> dict[str, Any]:
        """The CUPS job once it is completed (9), canceled (7) or aborted (8)."""
        return wait_for(
            lambda: (a := self.job(job_id))["job-state"] in (7, 8, 9) and a, timeout=timeout
        )

    def held(self, user: str = "alice") -> dict[str, dict[str, Any]]:
        return {j["title"]: j for j in self.site.jobs(1, user)}

    def sealed_files(self) -> set[str]:
        return {p.name for n in self.site.mesh.nodes for p in (n.data / "jobs").glob("*.sealed")}


def _server_bin(root: Path) -> Path:
    """A CUPS ServerBin: the standard filters and backends, with room for ours."""
    lib = root / "cups-bin"
    (lib / "backend").mkdir(parents=True)
    for sub in ("filter", "cgi-bin", "daemon", "monitor", "notifier", "driver"):
        if Path("/usr/lib/cups", sub).exists():
            os.symlink(f"/usr/lib/cups/{sub}", lib / sub)
    for backend in Path("/usr/lib/cups/backend").iterdir():
        os.symlink(backend, lib / "backend" / backend.name)
    return lib


@pytest.fixture(scope="module")
def sp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurePrint]:
    root = tmp_path_factory.mktemp("secure-print")
    os.chmod(root, 0o755)
    services = root / "avahi-services"
    services.mkdir()
    try:
        bus = MdnsBus(services=services).start()
    except VirtualPrinterError as err:
        pytest.skip(f"no private avahi with its own service files here: {err}")
    cups_root = Path(tempfile.mkdtemp(prefix="meshprint-cups-"))
    lib = _server_bin(cups_root)
    cupsd = PrivateCups(cups_root, server_bin=lib)
    sites = make_site(root / "site", 3)
    try:
        site = next(sites)
        cupsd.start()
        args = [
            "--data",
            str(site.mesh.nodes[1].data),  # the super node that is not the controller
            "--cups-server",
            cupsd.server,
            "--backend-dir",
            str(lib / "backend"),
            "--service-file",
            str(services / "meshprint-secure-print.service"),
            "--listen",
            f"127.0.0.1:{cupsd.port}",
            "--wait",
            "2",
        ]
        yield SecurePrint(site, cupsd, bus, root, args)
    finally:
        cupsd.stop()
        shutil.rmtree(cups_root, ignore_errors=True)
        next(sites, None)
        bus.stop()


@pytest.fixture(scope="module")
def installed(sp: SecurePrint) -> SecurePrint:
    first = sp.install()
    assert "created the CUPS queue Secure_Print" in first.stdout, first
    assert "installed the backend" in first.stdout and "DNS-SD record" in first.stdout
    return sp


@pytest.fixture(scope="module")
def pdf(sp: SecurePrint) -> Path:
    path = sp.root / "report.pdf"
    path.write_bytes(PDF)
    return path


def test_install_again_changes_nothing(installed: SecurePrint) -> None:
    before = installed.service_file.stat().st_mtime_ns
    again = installed.install()
    assert "nothing changed" in again.stdout, again
    assert installed.service_file.stat().st_mtime_ns == before
    # The backend lists itself for `lpinfo -v`.
    devices = installed.cupsd.run("lpinfo", "-v").stdout
    assert "network meshprint" in devices


def test_install_wants_an_existing_data_directory(sp: SecurePrint) -> None:
    result = sp.site.mesh.cli(
        "intake",
        "install",
        "--data",
        str(sp.root / "nothing"),
        "--cups-server",
        sp.cupsd.server,
        check=False,
    )
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_intake_door_wants_the_secret_of_this_machine(installed: SecurePrint) -> None:
    client = installed.site.mesh.client(1, "submit")
    err = installed.site.error(client.intake, "guess", "alice", "doc", {}, b"%PDF-1.4")
    assert err.status == 401
    secret = json.loads((installed.site.mesh.nodes[1].data / "intake.json").read_text())["secret"]
    elsewhere = installed.site.mesh.client(0, "submit")  # another node: another secret
    err = installed.site.error(elsewhere.intake, secret, "alice", "doc", {}, b"%PDF-1.4")
    assert err.status == 401


def test_queue_answers_driverless_clients_over_ipp_and_ipps(installed: SecurePrint) -> None:
    for uri in (installed.uri, installed.uri.replace("ipp://", "ipps://")):
        result = installed.cupsd.run(
            "ipptool", "-tv", uri, "get-printer-attributes.test", check=False
        )
        assert result.returncode == 0, result.stdout[-2000:]
        out = result.stdout
        formats = re.search(r"document-format-supported \(1setOf mimeMediaType\) = (\S+)", out)
        assert formats, out[-3000:]
        for wanted in ("application/pdf", "image/urf", "image/pwg-raster", "image/jpeg"):
            assert wanted in formats.group(1).split(",")
        assert re.search(r"urf-supported \(1setOf keyword\) = V1\.4,.*DM1", out)
        assert "printer-is-shared (boolean) = true" in out
        assert "sides-supported (1setOf keyword) = one-sided,two-sided-long-edge" in out
        assert "print-color-mode-supported (1setOf keyword) = monochrome,color" in out


def test_dns_sd_record_has_the_airprint_subtype_and_formats(installed: SecurePrint) -> None:
    env = {**installed.bus.env}

    def browse() -> str | None:
        result = subprocess.run(
            ["avahi-browse", "-rtp", "_universal._sub._ipp._tcp"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        resolved = [line for line in result.stdout.splitlines() if line.startswith("=")]
        return "\n".join(resolved) if resolved else None

    found = wait_for(browse, timeout=30, interval=1)
    assert "Secure Print" in found.replace("\\032", " ")
    assert f";{installed.cupsd.port};" in found
    for txt in (
        '"pdl=application/pdf,image/urf,image/pwg-raster,image/jpeg"',
        '"rp=printers/Secure_Print"',
        '"kind=document"',
        '"Duplex=T"',
        '"Color=T"',
    ):
        assert txt in found, found
    assert re.search(r'"URF=V1\.4,[^"]*DM1', found)
    # ippfind (what CUPS' own tools use) finds the same printer through the subtype and TLS.
    result = subprocess.run(
        ["ippfind", "-T", "5", "_ipps._tcp,_universal", "--txt-pdl", "image/urf", "--print-name"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Secure Print" in result.stdout, result


def test_lp_job_is_held_for_its_user_on_three_holders(installed: SecurePrint, pdf: Path) -> None:
    job = installed.lp(
        "alice",
        pdf,
        "-t",
        "Quarterly report",
        "-n",
        "2",
        "-o",
        "sides=two-sided-long-edge",
        "-o",
        "print-color-mode=monochrome",
    )
    attrs = installed.finished(job)
    assert attrs["job-state"] == 9, attrs
    held = wait_for(lambda: installed.held().get("Quarterly report"))
    assert held["owner"] == "alice" and held["format"] == "application/pdf"
    assert held["size"] == len(PDF)
    assert held["options"] == {"copies": 2, "sides": "two-sided-long-edge", "color": False}
    wait_for(lambda: len(installed.site.held_on(held["id"])) == 3)
    # CUPS keeps no copy of the document once the job is done (PreserveJobFiles No).
    spooled = [p.name for p in (installed.cupsd.root / "spool").glob(f"d{job:05d}-*")]
    assert spooled == []


def test_ipp_print_job_from_a_phone_is_held(installed: SecurePrint, pdf: Path) -> None:
    test = installed.root / "phone.test"
    test.write_text(PHONE_TEST)
    result = installed.cupsd.run(
        "ipptool",
        "-tv",
        "-d",
        "phone_user=alice",
        "-d",
        "title=From my phone",
        "-d",
        "format=application/pdf",
        "-f",
        str(pdf),
        installed.uri,
        str(test),
        check=False,
    )
    assert result.returncode == 0 and "[PASS]" in result.stdout, result
    job = re.search(r"job-id \(integer\) = (\d+)", result.stdout)
    assert job, result.stdout
    attrs = installed.finished(int(job.group(1)))
    assert attrs["job-state"] == 9, attrs
    held = wait_for(lambda: installed.held().get("From my phone"))
    assert held["options"] == {"copies": 3, "sides": "two-sided-short-edge", "color": True}
    wait_for(lambda: len(installed.site.held_on(held["id"])) == 3)


def test_create_job_and_send_document_from_users_without_an_account(
    installed: SecurePrint, pdf: Path
) -> None:
    # Debian's cupsd 2.4.2-3+deb12u10 crashed here under the default policy (owner checks
    # of a user with no Unix account, OpenPrinting/cups#1555): the queue's own policy
    # has none, so cupsd stays up, the job is held, and nobody else can cancel it. (A
    # document-name with a space crashes that cupsd on any queue: docs/architecture.md.)
    test = installed.root / "apple.test"
    test.write_text(APPLE_TEST)
    cancel_test = installed.root / "cancel.test"
    cancel_test.write_text(CANCEL_TEST)
    for user, title in (("alice", "From a Mac"), ("mobile", "From an iPhone")):
        result = installed.cupsd.run(
            "ipptool", "-tv", "-d", f"phone_user={user}", "-d", f"title={title}",
            "-d", "docname=Quarterly-report.pdf",  # with a space it crashes cupsd anyway
            "-d", "format=application/pdf", "-f", str(pdf), installed.uri, str(test),
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:]
        assert installed.cupsd.running, installed.cupsd.log()
        job = re.search(r"job-id \(integer\) = (\d+)", result.stdout)
        assert job, result.stdout
        # Nobody but an administrator cancels at CUPS: the job is the node's in seconds.
        for canceller in ("mobile", user):
            cancel = installed.cupsd.run(
                "ipptool", "-tv", "-d", f"phone_user={canceller}", "-d", f"job={job.group(1)}",
                installed.uri, str(cancel_test), check=False,
            )  # fmt: skip
            assert cancel.returncode == 1 and "not-authenticated" in cancel.stdout, cancel
            assert installed.cupsd.running, installed.cupsd.log()
        attrs = installed.finished(int(job.group(1)))
        if user == "alice":
            assert attrs["job-state"] == 9, attrs
        else:  # not a site user: cancelled with the reason, nothing held
            assert attrs["job-state"] in (7, 8), attrs
            assert "unknown user mobile" in str(attrs.get("job-printer-state-message"))
    held = wait_for(lambda: installed.held().get("From a Mac"))
    assert held["owner"] == "alice" and held["options"]["copies"] == 2
    assert "From an iPhone" not in installed.held()
    assert installed.cupsd.running, installed.cupsd.log()


def test_apple_raster_from_a_phone_reaches_the_printer_unchanged(installed: SecurePrint) -> None:
    urf = installed.root / "photo.urf"
    urf.write_bytes(URF)
    test = installed.root / "phone.test"
    test.write_text(PHONE_TEST)
    result = installed.cupsd.run(
        "ipptool",
        "-tv",
        "-d",
        "phone_user=alice",
        "-d",
        "title=Photo",
        "-d",
        "format=image/urf",
        "-f",
        str(urf),
        installed.uri,
        str(test),
        check=False,
    )
    assert result.returncode == 0 and "[PASS]" in result.stdout, result
    held = wait_for(lambda: installed.held().get("Photo"))
    assert held["format"] == "image/urf" and held["size"] == len(URF)
    with VirtualPrinter(installed.bus) as printer:
        installed.site.add_printer("photo-printer", printer.uri)
        delivery = installed.site.release_to(2, held["id"], "photo-printer", copies=1)
        assert delivery["stage"] == "printed", delivery
        assert printer.document(int(delivery["printer_job"])).read_bytes() == URF


def test_unknown_user_is_told_and_nothing_is_held(installed: SecurePrint, pdf: Path) -> None:
    before = installed.sealed_files()
    job = installed.lp("mallory", pdf, "-t", "Not mine")
    attrs = installed.finished(job)
    assert attrs["job-state"] in (7, 8), attrs
    message = str(attrs.get("job-printer-state-message", ""))
    assert "unknown user mallory" in message, attrs
    assert installed.sealed_files() - before == set()  # (earlier jobs may go meanwhile)
    assert "Not mine" not in installed.held()


def test_a_users_alias_or_other_case_is_matched_for_the_local_queue(
    installed: SecurePrint, pdf: Path
) -> None:
    """A Windows `HOST\\user` the administrator gave alice as an alias, and `Alice`."""
    mesh = installed.site.mesh
    mesh.cli("user", "alias", "alice", "OFFICE-PC\\alice", "--data", str(mesh.nodes[0].data))
    mesh.wait_directory()
    for user, title in (("office-pc\\ALICE", "From Windows"), ("Alice", "Capitalised")):
        attrs = installed.finished(installed.lp(user, pdf, "-t", title))
        assert attrs["job-state"] == 9, attrs
        held = wait_for(lambda t=title: installed.held().get(t))
        assert held["owner"] == "alice"


def test_held_job_prints_with_the_options_it_came_with(installed: SecurePrint) -> None:
    held = wait_for(lambda: installed.held().get("Quarterly report"))
    with VirtualPrinter(installed.bus) as printer:
        installed.site.add_printer("lobby", printer.uri)
        delivery = installed.site.release_to(0, held["id"], "lobby")
        assert delivery["stage"] == "printed", delivery
        at_printer = printer.client().get_job_attributes(int(delivery["printer_job"]))
        assert (at_printer.copies, at_printer.sides) == (2, "two-sided-long-edge")
        assert at_printer.print_color_mode == "monochrome"
        assert at_printer.user == "alice" and at_printer.name == "Quarterly report"
        assert printer.document(int(delivery["printer_job"])).read_bytes() == PDF


def test_node_down_the_job_waits_in_cups_and_is_held_once_it_is_back(
    installed: SecurePrint, pdf: Path
) -> None:
    mesh = installed.site.mesh
    mesh.kill(1)  # the node the backend hands jobs to
    try:
        job = installed.lp("alice", pdf, "-t", "While the node was down")
        # The backend waits (--wait 2), then CUPS keeps the job and tries again later.
        wait_for(
            lambda: "meshprint node" in str(installed.job(job).get("job-printer-state-message")),
            timeout=30,
        )
        time.sleep(5)
        attrs = installed.job(job)
        assert attrs["job-state"] in (3, 4, 5), attrs  # pending, held for retry, processing
    finally:
        mesh.start(1)
    attrs = installed.finished(job, timeout=90)
    assert attrs["job-state"] == 9, attrs
    held = wait_for(lambda: installed.held().get("While the node was down"), timeout=30)
    assert held["owner"] == "alice"
