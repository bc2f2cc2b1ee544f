"""An office PC's edge node as a real systemd service: the plain install (no extras) in a
virtual environment inside a booted Debian container (systemd-nspawn, sharing the host's
network), `meshprint edge install TOKEN` against a real mesh on the host, the node
holding replicas as the systemd service, and `meshprint edge uninstall` leaving every job
on three copies. Needs root (chroot, nspawn) and the cached Debian base (conftest)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.devtools.localmesh import LocalMesh
from tests.integration.conftest import Site, wait_for
from tests.provisioning.conftest import REPO, SLOW, base_rootfs, needs_root, run

pytestmark = [pytest.mark.provisioning, SLOW, needs_root]
VENV = "/opt/meshprint-edge/venv"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"  # Debian bookworm's Python

SCRIPT = f"""#!/bin/sh
# Runs once the container has booted: install, report, wait for the host, uninstall.
M="{VENV}/bin/python -m appliance.cli"
$M edge install "$(cat /root/edge-token)" --name pc1 > /root/install.txt 2>&1
echo "rc $?" >> /root/install.txt
for i in $(seq 60); do systemctl is-active -q meshprint-edge && break; sleep 1; done
systemctl show -p ActiveState -p User -p MainPID meshprint-edge >> /root/install.txt
touch /root/installed
while [ ! -e /root/go-uninstall ]; do sleep 1; done
$M edge status > /root/status.txt 2>&1
$M edge uninstall --timeout 240 --poll 1 > /root/uninstall.txt 2>&1
echo "rc $?" >> /root/uninstall.txt
systemctl is-enabled meshprint-edge >> /root/uninstall.txt 2>&1
touch /root/done
systemctl poweroff
"""

UNIT = """[Unit]
Description=edge service check
After=network.target

[Service]
Type=exec
ExecStart=/usr/local/sbin/edgecheck

[Install]
WantedBy=multi-user.target
"""


def test_edge_node_as_a_systemd_service(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert run(["tar", "-xf", str(base_rootfs()), "-C", str(root)]).returncode == 0
    venv = run(["chroot", str(root), "python3", "-m", "venv", "--without-pip", VENV])
    assert venv.returncode == 0, venv.stderr
    wheels = tmp_path / "wheels"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)]
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("meshprint-*.whl")
    # pip of this machine installs into the container's venv (it has no pip of its own):
    # the wheel and its core dependencies only, as `pip install meshprint` would.
    target = root / SITE_PACKAGES.lstrip("/")
    installed = run(
        [sys.executable, "-m", "pip", "install", "-q", "--target", str(target),
         "--python-version", "3.11", "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
         "--platform", "manylinux_2_17_x86_64", "--platform", "linux_x86_64", str(wheel)]
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    for extra in ("cups", "pysnmp", "paho", "gunicorn"):
        assert not (target / extra).exists()

    mesh = LocalMesh(tmp_path / "mesh", size=4)
    boot: subprocess.Popen[str] | None = None
    try:
        mesh.create()
        site = Site(mesh)
        token = mesh.cli("invite", "--data", str(mesh.nodes[0].data)).stdout.strip()
        (root / "root/edge-token").write_text(token + "\n")
        (root / "usr/local/sbin/edgecheck").write_text(SCRIPT)
        (root / "usr/local/sbin/edgecheck").chmod(0o755)
        (root / "etc/systemd/system/edgecheck.service").write_text(UNIT)
        wants = root / "etc/systemd/system/multi-user.target.wants/edgecheck.service"
        wants.parent.mkdir(parents=True, exist_ok=True)
        wants.symlink_to("/etc/systemd/system/edgecheck.service")
        boot = subprocess.Popen(
            ["systemd-nspawn", "-q", "-D", str(root), "-b", "--register=no", "--keep-unit"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        report = root / "root/install.txt"
        wait_for(lambda: (root / "root/installed").exists() or boot.poll() is not None, timeout=240)
        text = report.read_text() if report.exists() else "(no report)"
        assert "rc 0" in text and "ActiveState=active" in text and "User=meshprint-edge" in text, (
            text
        )
        mesh.wait_live(5, timeout=60)

        jobs = [site.submit(0, f"page {i}\n".encode() * 100)["id"] for i in range(8)]
        edge_jobs = root / "var/lib/meshprint-edge/jobs"
        for job_id in jobs:
            wait_for(lambda j=job_id: len(_holders(mesh, edge_jobs, j)) == 3, timeout=60)
        held_by_pc = [j for j in jobs if (edge_jobs / f"{j}.sealed").exists()]
        assert held_by_pc, "placement put no job on the edge service"

        site.settings(repair_grace="5s")
        (root / "root/go-uninstall").touch()
        wait_for(lambda: (root / "root/done").exists(), timeout=300, interval=1)
        status = (root / "root/status.txt").read_text()
        assert "service: registered" in status and "running: yes" in status, status
        assert "live in the mesh: yes" in status, status
        left = (root / "root/uninstall.txt").read_text()
        assert "Every job is on three other members." in left and "rc 0" in left, left
        assert not (root / "etc/systemd/system/meshprint-edge.service").exists()
        assert not (root / "var/lib/meshprint-edge").exists()
        for job_id in jobs:
            holders = _holders(mesh, edge_jobs, job_id)
            assert len(holders) == 3 and "pc" not in holders, (job_id, holders)
        assert site.release(0, held_by_pc[0]).startswith(b"page")
    finally:
        if boot is not None:
            try:
                boot.wait(timeout=60)
            except subprocess.TimeoutExpired:
                boot.kill()
        mesh.close()
        time.sleep(0.5)
        shutil.rmtree(root, ignore_errors=True)


def _holders(mesh: LocalMesh, edge_jobs: Path, job_id: str) -> list[str]:
    found = [str(n.index) for n in mesh.nodes if (n.data / "jobs" / f"{job_id}.sealed").exists()]
    return found + (["pc"] if (edge_jobs / f"{job_id}.sealed").exists() else [])
