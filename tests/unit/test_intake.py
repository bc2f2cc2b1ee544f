"""Secure Print intake pieces that need no CUPS: default options, the backend's argument
and option parsing, the intake door's checks, cupsd.conf editing and the DNS-SD record."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from xml.dom import minidom

import pytest

from appliance.clients.node import INTAKE_SECRET_HEADER
from appliance.datadir import DataDir
from appliance.endpoint import Endpoint
from appliance.errors import ConfigError, Forbidden, MeshprintError, NotFound, Unauthorized
from appliance.https.server import Request
from appliance.intake import backend, cupsconf, dnssd, door
from appliance.intake.ppd import PASS_THROUGH, ppd_text
from appliance.jobs.deliver import print_options
from appliance.jobs.intake import ingest_on_behalf
from appliance.jobs.options import from_query
from appliance.jobs.release import FoundJob
from appliance.printoptions import clean_options
from appliance.store.db import SCHEMA, Database
from appliance.store.jobs import JobStore

from .conftest import JobFactory

# Default options


def test_clean_options_keeps_only_valid_values() -> None:
    assert clean_options({"copies": 2, "sides": "two-sided-long-edge", "color": False}) == {
        "copies": 2,
        "sides": "two-sided-long-edge",
        "color": False,
    }
    assert clean_options({"copies": 0, "sides": "sideways", "color": "no", "x": 1}) == {}
    assert clean_options({"copies": True}) == {} and clean_options({"copies": 100}) == {}
    assert clean_options("copies=2") == {} and clean_options(None) == {}


def test_options_from_an_intake_query() -> None:
    query = {"copies": "3", "sides": "two-sided-short-edge", "color": "0"}
    assert from_query(query) == {"copies": 3, "sides": "two-sided-short-edge", "color": False}
    assert from_query({"copies": "-1", "color": "maybe"}) == {}


def test_release_uses_the_job_defaults_unless_the_owner_chooses(make_job: JobFactory) -> None:
    meta = FoundJob.from_info(
        make_job(
            options={"copies": 2, "sides": "two-sided-long-edge", "color": False}
        ).holder_info()
    )
    options = print_options({}, meta)
    assert (options.copies, options.sides, options.color) == (2, "two-sided-long-edge", False)
    chosen = print_options({"copies": 1, "sides": "one-sided", "mono": False}, meta)
    assert (chosen.copies, chosen.sides, chosen.color) == (1, "one-sided", True)
    plain = print_options({}, FoundJob.from_info(make_job().holder_info()))
    assert (plain.copies, plain.sides, plain.color) == (1, "one-sided", True)


def test_options_are_stored_and_sent_to_replicas(store: JobStore, make_job: JobFactory) -> None:
    job = make_job(options={"copies": 2, "color": False})
    incoming = store.receive(job.id)
    incoming.write(b"x" * job.sealed_size)
    incoming.commit(job)
    assert store.require(job.id).options == {"copies": 2, "color": False}
    meta = job.replica_meta(job.holders, 1, job.share_x, job.share)
    assert meta["options"] == {"copies": 2, "color": False}
    meta["options"] = {"copies": 2, "evil": "yes"}
    assert type(job).from_replica_meta(meta, 0, 0).options == {"copies": 2}


def test_an_older_database_gains_the_options_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    old_jobs = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS jobs") :]
    old_jobs = old_jobs[: old_jobs.index(");") + 2].replace(
        ",\n    options TEXT NOT NULL DEFAULT '{}'", ""
    )
    assert "options" not in old_jobs
    conn.execute(old_jobs)
    conn.execute(
        "INSERT INTO jobs (id, owner, title, size, sealed_size, created_at, expires_at, holders,"
        " holders_version, share_x, share, user_share) VALUES"
        " ('j1', 'alice', 't', 1, 1, 0, 0, '[]', 1, 1, x'00', x'00')"
    )
    conn.commit()
    conn.close()
    db = Database(path)
    assert db.query("SELECT options FROM jobs WHERE id='j1'")[0]["options"] == "{}"
    Database(path)  # a second open adds nothing twice


# The backend


def test_backend_without_arguments_prints_its_device_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert backend.main(["meshprint"]) == 0
    assert capsys.readouterr().out.strip() == 'network meshprint "Unknown" "meshprint Secure Print"'


def test_backend_with_wrong_arguments_says_how_to_call_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert backend.main(["meshprint", "1", "alice"]) == backend.CUPS_BACKEND_FAILED
    assert "Usage: meshprint job-id user title copies options [file]" in capsys.readouterr().err


def test_device_uri_names_the_data_directory_and_the_wait() -> None:
    data, wait = backend.parse_device_uri("meshprint:///var/lib/meshprint?wait=5")
    assert data.root == Path("/var/lib/meshprint") and wait == 5
    assert backend.parse_device_uri("meshprint:///d")[1] == backend.DEFAULT_WAIT
    for bad in ("ipp://printer/x", "meshprint:relative", "meshprint:///d?wait=soon"):
        with pytest.raises(MeshprintError):
            backend.parse_device_uri(bad)


def test_job_options_from_cups_arguments() -> None:
    assert backend.job_options("2", "sides=two-sided-long-edge print-color-mode=monochrome") == {
        "copies": "2",
        "sides": "two-sided-long-edge",
        "color": "0",
    }
    # What a PPD option says when the IPP one is missing; quoted values are fine.
    assert backend.job_options("1", "Duplex=DuplexTumble ColorModel=Gray title='a b'") == {
        "copies": "1",
        "sides": "two-sided-short-edge",
        "color": "0",
    }
    assert backend.job_options("0", "print-color-mode=color") == {"copies": "1", "color": "1"}
    assert backend.job_options("x", "unbalanced='quote") == {"copies": "1"}


def test_backend_without_a_node_asks_cups_to_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = tmp_path / "doc.pdf"
    document.write_bytes(b"%PDF-1.4 hello")
    monkeypatch.setenv("DEVICE_URI", f"meshprint://{tmp_path / 'no-node'}?wait=0")
    code = backend.main(["meshprint", "1", "alice", "doc", "1", "", str(document)])
    assert code == backend.CUPS_BACKEND_RETRY
    assert "ERROR:" in capsys.readouterr().err


# The intake door


class _Node(SimpleNamespace):
    pass


def _request(client: str, secret: str, user: str = "alice") -> Request:
    return Request(
        method="POST",
        path="/v1/intake",
        query={"user": user},
        headers={INTAKE_SECRET_HEADER: secret},
        body=None,  # type: ignore[arg-type]
        client=(client, 40000),
    )


def test_door_is_closed_to_the_network_and_to_wrong_secrets(directory: Any) -> None:
    with pytest.raises(Forbidden):
        door.check_caller("s" * 43, "192.168.1.20", "s" * 43)
    with pytest.raises(Unauthorized):
        door.check_caller("s" * 43, "127.0.0.1", "wrong")
    with pytest.raises(Unauthorized):
        door.check_caller("", "127.0.0.1", "")
    door.check_caller("s" * 43, "::1", "s" * 43)
    node = _Node(directory=lambda: directory)
    with pytest.raises(NotFound, match="unknown user mallory"):
        ingest_on_behalf(node, {"user": "mallory"}, "", None)  # type: ignore[arg-type]


def test_loopback_addresses() -> None:
    assert door.is_loopback("127.0.0.1") and door.is_loopback("::1")
    assert door.is_loopback("::ffff:127.0.0.1") and door.is_loopback("127.8.9.10")
    assert not door.is_loopback("10.0.0.1") and not door.is_loopback("nonsense")


def test_door_file_is_private_and_keeps_its_secret(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    first = door.prepare(data, Endpoint(bind="127.0.0.1", submit_port=9265))
    again = door.prepare(data, Endpoint(bind="0.0.0.0", submit_port=19265))
    assert first == again and len(first) >= 32
    path = tmp_path / door.INTAKE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = door.load(data)
    assert (config.host, config.port, config.secret) == ("127.0.0.1", 19265, first)
    assert config.ca == data.ca_cert
    path.write_text("{")
    with pytest.raises(ConfigError, match="damaged"):
        door.load(data)
    path.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        door.load(data)


# cupsd.conf, the PPD and the DNS-SD record

CUPSD_CONF = """\
LogLevel warn
Listen localhost:631
Listen /run/cups/cups.sock
Browsing Yes
BrowseLocalProtocols dnssd
<Location />
  Order allow,deny
</Location>
<Location /admin>
  Order allow,deny
</Location>
"""


def test_shared_conf_opens_cups_to_the_local_network_once() -> None:
    shared = cupsconf.shared_conf(CUPSD_CONF, "*:631")
    lines = shared.splitlines()
    assert "Listen *:631" in lines and "Listen localhost:631" not in lines
    assert "Listen /run/cups/cups.sock" in lines
    assert "Browsing No" in lines and "Browsing Yes" not in lines
    assert "PreserveJobFiles No" in lines
    root = lines[lines.index("<Location />") : lines.index("<Location />") + 4]
    assert "  Allow @LOCAL" in root
    admin = lines[lines.index("<Location /admin>") :]
    assert "  Allow @LOCAL" not in admin
    assert cupsconf.shared_conf(shared, "*:631") == shared


def test_shared_conf_gives_secure_print_a_policy_without_owner_checks() -> None:
    # cupsd 2.4.2-3+deb12u10 crashes in @OWNER checks for users without a Unix account.
    shared = cupsconf.shared_conf(CUPSD_CONF, "*:631")
    lines = shared.splitlines()
    start = lines.index(f"<Policy {cupsconf.POLICY}>")
    block = lines[start : lines.index("</Policy>", start) + 1]
    assert "@OWNER" not in "\n".join(block)
    assert "  JobPrivateAccess @SYSTEM" in block
    assert shared.count(f"<Policy {cupsconf.POLICY}>") == 1
    # An older version of the block is replaced, not kept beside the new one.
    old = CUPSD_CONF + f"<Policy {cupsconf.POLICY}>\n  JobPrivateAccess default\n</Policy>\n"
    replaced = cupsconf.shared_conf(old, "*:631")
    assert replaced.count("<Policy ") == 1 and "JobPrivateAccess default" not in replaced
    assert "\n".join(block) in replaced


def test_shared_conf_keeps_an_existing_listener() -> None:
    text = "Port 631\nListen 127.0.0.1:8631\n"
    assert cupsconf.shared_conf(text, "*:631").count("631\n") == 2
    assert "Listen 127.0.0.1:8631" in cupsconf.shared_conf(text, "127.0.0.1:8631")
    assert "<Location />" in cupsconf.shared_conf(text, "127.0.0.1:8631")


def test_ppd_passes_driverless_formats_through() -> None:
    text = ppd_text()
    for mime in PASS_THROUGH:
        assert re.search(rf'\*cupsFilter2: "{mime} {mime} \d+ -"', text)
    assert "*cupsManualCopies: False" in text and "*DefaultDuplex: None" in text


QUEUE_ATTRS = {
    "document-format-supported": ["application/octet-stream", "application/pdf", "image/urf"],
    "urf-supported": ["V1.4", "CP1", "W8", "DM1"],
    "color-supported": True,
    "sides-supported": ["one-sided", "two-sided-long-edge"],
    "printer-uuid": "urn:uuid:0a1b2c3d-0000-4000-8000-000000000001",
    "printer-type": 4188,
    "printer-make-and-model": "meshprint Secure Print",
    "printer-location": "Lobby & stairs",
}


def test_txt_record_is_what_airprint_clients_read() -> None:
    txt = dnssd.txt_record("Secure_Print", QUEUE_ATTRS)
    assert txt["rp"] == "printers/Secure_Print"
    assert txt["pdl"] == "application/pdf,image/urf"
    assert txt["URF"] == "V1.4,CP1,W8,DM1"
    assert (txt["Color"], txt["Duplex"], txt["kind"]) == ("T", "T", "document")
    assert txt["UUID"] == "0a1b2c3d-0000-4000-8000-000000000001"
    assert txt["printer-type"] == "0x105C" and txt["air"] == "none"
    assert all(len(f"{k}={v}".encode()) <= 255 for k, v in txt.items())


def test_service_file_has_both_services_with_the_universal_subtype() -> None:
    text = dnssd.service_xml("Secure Print", 631, dnssd.txt_record("Secure_Print", QUEUE_ATTRS))
    for kind in ("_ipp._tcp", "_ipps._tcp"):
        assert f"<type>{kind}</type>" in text
        assert f"<subtype>_universal._sub.{kind}</subtype>" in text
    assert text.count("<port>631</port>") == 2
    assert "note=Lobby &amp; stairs" in text
    minidom.parseString(text.encode())  # well-formed
