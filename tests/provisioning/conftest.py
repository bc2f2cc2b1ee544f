"""Shared by the provisioning tests: Ansible's environment, the cached Debian base
root filesystem, and `provisioned`, that tree after site.yml ran on it twice through the
chroot connection (once per test session; the boot test then boots it).

Needs root (chroot, nspawn); `pytest -m provisioning` selects these tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "provisioning"
UNITS = REPO / "systemd"
CACHE = REPO / ".cache" / "provisioning"
BASE_TAR = CACHE / "debian-bookworm-amd64-minbase.tar"
BIN = Path(sys.executable).parent
MIRRORS = [
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, nspawn)")
# These tests run Ansible against whole Debian trees: the first one also waits for the
# session's `provisioned` tree (site.yml twice, ~5 min here), an update test runs the
# roles twice over SSH (~4 min). The suite's 300 s is for everything else.
SLOW = pytest.mark.timeout(1500)


def ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(PROVISIONING / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }


def run(cmd: list[str], timeout: float = 900, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def base_rootfs() -> Path:
    """The cached minimal Debian (python3 for Ansible, systemd to boot it)."""
    if not BASE_TAR.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        part = BASE_TAR.with_suffix(".part")
        result = run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--format=tar",
                "--include=python3,systemd-sysv,dbus,udev,ca-certificates",
                "bookworm",
                str(part),
                *MIRRORS,
            ],
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        part.rename(BASE_TAR)
    return BASE_TAR


def apply_site(root: Path, log: Path, *extra: str) -> dict[str, int]:
    """site.yml through the chroot connection; `extra`: more ansible-playbook arguments."""
    inventory = root.parent / "inventory.ini"
    inventory.write_text(
        f"[appliances]\n{root} ansible_connection=community.general.chroot "
        "ansible_python_interpreter=/usr/bin/python3\n"
    )
    result = run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "site.yml", *extra],
        cwd=PROVISIONING,
        env=ansible_env(),
    )
    log.write_text(result.stdout + result.stderr)
    recap = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert result.returncode == 0 and recap, result.stdout[-5000:] + result.stderr[-2000:]
    return dict(
        zip(("ok", "changed", "unreachable", "failed"), map(int, recap.groups()), strict=True)
    )


@pytest.fixture(scope="session")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list]]:
    for tool in ("mmdebstrap", "systemd-nspawn", "nft"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: run scripts/setup.sh")
    work = tmp_path_factory.mktemp("chroot")
    root = work / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(base_rootfs())], check=True)
    runs = [apply_site(root, work / "first.log"), apply_site(root, work / "second.log")]
    try:
        yield root, runs
    finally:
        shutil.rmtree(work, ignore_errors=True)
