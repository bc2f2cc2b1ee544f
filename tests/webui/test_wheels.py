"""The simple index (PEP 503) over a wheelhouse directory, and the certificate download."""

from __future__ import annotations

import hashlib
from pathlib import Path

from webui import create_app
from webui.wheelhouse import Wheelhouse, normalize, project_of


def test_names_follow_pep_503() -> None:
    assert normalize("Flask_SQL.alchemy") == "flask-sql-alchemy"
    assert project_of("meshprint-0.1.0-py3-none-any.whl") == "meshprint"
    assert project_of("cryptography-44.0.0-cp39-abi3-win_amd64.whl") == "cryptography"
    assert project_of("zope.interface-7.0-1-cp311-cp311-macosx_11_0_arm64.whl") == "zope-interface"
    assert project_of("pycups-2.0.4.tar.gz") == "pycups"
    assert project_of("README.txt") is None
    assert project_of("broken.whl") is None


def _app(tmp_path: Path, house: Path | None, cert: Path | None = None):  # type: ignore[no-untyped-def]
    return create_app(
        {
            "MESHPRINT_DATA": str(tmp_path / "data"),
            "WHEELHOUSE": str(house) if house else None,
            "WEB_CERT": str(cert) if cert else None,
        }
    )


def test_index_lists_projects_and_files_with_hashes(tmp_path: Path) -> None:
    house = tmp_path / "wheels"
    house.mkdir()
    wheel = house / "Segno-1.6.1-py3-none-any.whl"
    wheel.write_bytes(b"not really a zip")
    (house / "notes.txt").write_text("x")
    client = _app(tmp_path, house).test_client()
    index = client.get("/simple/", base_url="https://localhost")
    assert index.status_code == 200
    assert '<a href="/simple/segno/">segno</a>' in index.get_data(as_text=True)
    assert "notes" not in index.get_data(as_text=True)
    redirected = client.get("/simple/Segno/", base_url="https://localhost")
    assert redirected.status_code == 301 and redirected.location.endswith("/simple/segno/")
    page = client.get("/simple/segno/", base_url="https://localhost").get_data(as_text=True)
    digest = hashlib.sha256(b"not really a zip").hexdigest()
    assert f'href="/simple/files/{wheel.name}#sha256={digest}"' in page
    got = client.get(f"/simple/files/{wheel.name}", base_url="https://localhost")
    assert got.status_code == 200 and got.data == b"not really a zip"
    assert client.get("/simple/files/notes.txt", base_url="https://localhost").status_code == 404
    escape = client.get("/simple/files/..%2Fdata", base_url="https://localhost")
    assert escape.status_code == 404
    assert client.get("/simple/nothing/", base_url="https://localhost").status_code == 404


def test_no_wheelhouse_no_index_and_no_certificate(tmp_path: Path) -> None:
    client = _app(tmp_path, None).test_client()
    missing = client.get("/simple/", base_url="https://localhost")
    assert missing.status_code == 404
    assert client.get("/appliance.pem", base_url="https://localhost").status_code == 404


def test_certificate_download(tmp_path: Path) -> None:
    cert = tmp_path / "device.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    client = _app(tmp_path, None, cert).test_client()
    got = client.get("/appliance.pem", base_url="https://localhost")
    assert got.status_code == 200 and got.data == cert.read_bytes()
    assert "appliance.pem" in got.headers["Content-Disposition"]


def test_wheelhouse_missing_directory_is_empty(tmp_path: Path) -> None:
    assert Wheelhouse(tmp_path / "none").projects() == []
