"""The appliance as a package index: a real `pip install --index-url https://.../simple
--cert appliance.pem meshprint` into a fresh virtual environment, against the web UI over
real TLS serving a wheelhouse built here (meshprint's wheel from this checkout).

The install uses `--no-deps`: the test wheelhouse holds only meshprint's own wheel (the
dependencies' wheels come from provisioning's `office-wheels` download, which needs PyPI),
so what is proven is the index, the hashes, TLS with the offered certificate and pip's
resolution of `meshprint` against it; the rest of the wheelhouse is served the same way."""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from appliance.devtools.processes import free_port
from appliance.devtools.webserver import WebServer, self_signed
from webui import create_app

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


def test_pip_installs_meshprint_from_the_appliance(tmp_path: Path) -> None:
    house = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(house), str(REPO)],
        check=True,
    )
    (wheel,) = house.glob("meshprint-*.whl")
    (house / "README.txt").write_text("not a distribution: never listed\n")
    cert, key = self_signed(tmp_path / "web")
    app = create_app(
        {
            "MESHPRINT_DATA": str(tmp_path / "data"),
            "WHEELHOUSE": str(house),
            "WEB_CERT": str(cert),
        }
    )
    web = WebServer(app, "127.0.0.1", free_port(), cert, key).start()
    try:
        # The certificate pip is told to trust is the one the appliance offers for download.
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(f"{web.url}/appliance.pem", context=context) as r:
            offered = r.read()
        assert offered == cert.read_bytes()
        ca = tmp_path / "appliance.pem"
        ca.write_bytes(offered)
        with urllib.request.urlopen(f"{web.url}/simple/", context=context) as r:
            listing = r.read().decode()
        assert 'href="/simple/meshprint/"' in listing and "README" not in listing

        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # A PC's pip: no configuration of this machine (its extra indexes, PYTHONPATH).
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--isolated"]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        result = subprocess.run(
            [
                *pip,
                "install",
                "--no-deps",
                "--disable-pip-version-check",
                "--no-cache-dir",
                "--index-url",
                f"{web.url}/simple",
                "--cert",
                str(ca),
                "meshprint",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert wheel.name in result.stdout + result.stderr
        shown = subprocess.run([*pip, "show", "meshprint"], capture_output=True, text=True, env=env)
        assert "Name: meshprint" in shown.stdout

        # Without the certificate pip refuses the appliance: the trust is the offered file.
        refused = subprocess.run(
            [
                *pip,
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--no-cache-dir",
                "--retries",
                "0",
                "--index-url",
                f"{web.url}/simple",
                "-d",
                str(tmp_path / "dl"),
                "meshprint",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert refused.returncode != 0
    finally:
        web.stop()
