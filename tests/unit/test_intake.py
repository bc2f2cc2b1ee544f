"""Secure Print intake pieces that need no CUPS: default options, the backend's argument
and option parsing, the intake door's checks, cupsd.conf editing and the DNS-SD record."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from appliance.clients.node import INTAKE_SECRET_HEADER
from appliance.datadir import DataDir
from appliance.endpoint import Endpoint
from appliance.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    MeshprintError,
    NotFound,
    Unauthorized,
)
from appliance.https.server import Request
from appliance.intake import backend, door
from appliance.jobs.deliver import print_options
from appliance.jobs.intake import ingest_on_behalf
from appliance.jobs.options import from_query
from appliance.jobs.release import FoundJob
from appliance.printoptions import clean_options, describe_options, media_of_size
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
    assert clean_options({"media": "na_letter_8.5x11in"}) == {"media": "na_letter_8.5x11in"}
    assert clean_options({"media": "iso_a3_297x420mm"}) == {}  # not a size we offer


def test_paper_sizes_by_their_dimensions_and_in_words() -> None:
    assert media_of_size(21000, 29700) == "iso_a4_210x297mm"
    assert media_of_size(27940, 21590) == "na_letter_8.5x11in"  # landscape, same paper
    assert media_of_size(21590, 27900) == "na_letter_8.5x11in"  # rounded to 279 mm
    assert media_of_size(10160, 15240) is None  # 4x6 photo paper: not offered
    assert media_of_size("21000", 29700) is None
    assert describe_options({"copies": 2, "media": "iso_a5_148x210mm"}) == (
        "2 copies, one-sided, colour, A5"
    )
    assert describe_options({}) == "1 copy, one-sided, colour"


def test_options_from_an_intake_query() -> None:
    query = {"copies": "3", "sides": "two-sided-short-edge", "color": "0"}
    assert from_query(query) == {"copies": 3, "sides": "two-sided-short-edge", "color": False}
    assert from_query({"copies": "-1", "color": "maybe"}) == {}
    assert from_query({"media": "iso_a4_210x297mm"}) == {"media": "iso_a4_210x297mm"}
    assert from_query({"media": "A4"}) == {}


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
    assert plain.media is None  # the printer's own paper


def test_release_keeps_the_jobs_paper_size_unless_the_owner_chooses(
    make_job: JobFactory,
) -> None:
    meta = FoundJob.from_info(make_job(options={"media": "na_letter_8.5x11in"}).holder_info())
    assert print_options({}, meta).media == "na_letter_8.5x11in"
    assert print_options({"media": "iso_a4_210x297mm"}, meta).media == "iso_a4_210x297mm"
    with pytest.raises(BadRequest, match="media must be one of"):
        print_options({"media": "tabloid"}, meta)


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
    # The paper size as CUPS names it (IPP media, or a PPD PageSize); unknown ones dropped.
    assert backend.job_options("1", "media=iso_a4_210x297mm")["media"] == "iso_a4_210x297mm"
    assert backend.job_options("1", "PageSize=Letter")["media"] == "na_letter_8.5x11in"
    assert "media" not in backend.job_options("1", "media=Tabloid")


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
