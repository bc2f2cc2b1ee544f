"""update.yml against a live appliance: the provisioned tree (site.yml, see conftest)
booted with systemd-nspawn on a private veth link, reached over SSH with a test key as
`admin`, with a one-node site created on it.

A good release (a new version of this checkout) is installed and `current` moves to
it; a broken release (its node exits at start) fails the health check and is rolled
back: `current` points at the good release again and the node runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.intake import cupsconf
from tests.provisioning.conftest import (
    BIN,
    PROVISIONING,
    REPO,
    SLOW,
    ansible_env,
    apply_site,
    needs_root,
    run,
)

pytestmark = [pytest.mark.provisioning, SLOW]

MACHINE = "mpupdate"
HOST_SIDE = f"ve-{MACHINE}"
HOST_ADDRESS = "10.231.7.1"
APPLIANCE_ADDRESS = "10.231.7.2"
SSH_OPTIONS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


@dataclass
class Appliance:
    root: Path
    key: Path
    work: Path

    def ssh(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run(
            [
                "ssh",
                *SSH_OPTIONS.split(),
                "-i",
                str(self.key),
                f"admin@{APPLIANCE_ADDRESS}",
                command,
            ],
            timeout=timeout,
        )

    def current(self) -> str:
        return os.readlink(self.root / "opt/meshprint/current").removeprefix("releases/")

    def update(self, wheel: Path) -> subprocess.CompletedProcess:
        inventory = self.work / "inventory.ini"
        inventory.write_text(
            f"[appliances]\n{APPLIANCE_ADDRESS} ansible_user=admin "
            f"ansible_ssh_private_key_file={self.key} "
            f"ansible_ssh_common_args='{SSH_OPTIONS}'\n"
        )
        extra = json.dumps({"appliance_wheel": str(wheel), "update_health_retries": 10})
        return run(
            [str(BIN / "ansible-playbook"), "-i", str(inventory), "update.yml", "-e", extra],
            cwd=PROVISIONING,
            env=ansible_env(),
            timeout=900,
        )


def release_wheel(work: Path, version: str, broken: bool = False) -> Path:
    """This checkout as a wheel of another version; `broken`: its node exits at start."""
    source = work / f"source-{version}"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    for path, line in [
        ("pyproject.toml", 'version = "{}"'),
        ("appliance/__init__.py", '__version__ = "{}"'),
    ]:
        text = (source / path).read_text()
        assert line.format("0.1.0") in text, path
        (source / path).write_text(text.replace(line.format("0.1.0"), line.format(version)))
    if broken:
        cli = source / "appliance/cli/site.py"
        text = cli.read_text()
        marker = "def cmd_node(args: argparse.Namespace) -> None:\n"
        assert marker in text
        cli.write_text(text.replace(marker, marker + '    raise SystemExit("broken release")\n'))
    result = run(
        [str(BIN / "python"), "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(source)]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = work.glob(f"meshprint-{version}-*.whl")
    return wheel


def wait_for_ssh(proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the container stopped: " + log.read_text()[-3000:]
        try:
            with socket.create_connection((APPLIANCE_ADDRESS, 22), timeout=2):
                return
        except OSError:
            time.sleep(1)
    pytest.fail("the container's SSH did not answer: " + log.read_text()[-3000:])


def link_host_side(proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not Path(f"/sys/class/net/{HOST_SIDE}").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no veth link appeared"
        time.sleep(0.2)
    subprocess.run(["ip", "addr", "add", f"{HOST_ADDRESS}/30", "dev", HOST_SIDE], check=True)
    subprocess.run(["ip", "link", "set", HOST_SIDE, "up"], check=True)


@pytest.fixture(scope="module")
def appliance(
    provisioned: tuple[Path, list], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Appliance]:
    if Path(f"/sys/class/net/{HOST_SIDE}").exists():
        pytest.fail(f"{HOST_SIDE} exists: another update test is running (or was killed)")
    work = tmp_path_factory.mktemp("update")
    root = work / "root"
    subprocess.run(["cp", "-a", str(provisioned[0]), str(root)], check=True)
    (root / "etc/systemd/system/multi-user.target.wants/bootcheck.service").unlink(missing_ok=True)
    key = work / "admin_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    keys = {"base_admin_keys": [key.with_suffix(".pub").read_text().strip()]}
    apply_site(root, work / "keys.log", "-e", json.dumps(keys))
    # The image's network setup (build-image.sh), with a fixed address on the veth link.
    (root / "etc/systemd/network/10-update-test.network").write_text(
        f"[Match]\nName=host0\n\n[Network]\nAddress={APPLIANCE_ADDRESS}/30\n"
    )
    subprocess.run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"], check=True)
    log = work / "container.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *("systemd-nspawn", "-q", "-D", str(root), "-b", "-M", MACHINE),
                *("--network-veth", "--register=no", "--keep-unit"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        link_host_side(proc)
        wait_for_ssh(proc, log)
        yield Appliance(root, key, work)
    finally:
        proc.terminate()  # nspawn powers the container off
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


@needs_root
def test_update_installs_a_good_release_and_rolls_back_a_broken_one(appliance: Appliance) -> None:
    created = appliance.ssh(
        "sudo -u meshprint /opt/meshprint/current/venv/bin/meshprint site create "
        "--data /var/lib/meshprint --name 'Update test'"
    )
    assert created.returncode == 0, created.stdout + created.stderr
    first = appliance.current()

    good = appliance.update(release_wheel(appliance.work, "0.1.1"))
    assert good.returncode == 0, good.stdout[-6000:]
    second = appliance.current()
    assert second.startswith("0.1.1-") and second != first
    assert "Check the previous release" not in good.stdout

    broken = appliance.update(release_wheel(appliance.work, "0.1.2", broken=True))
    assert broken.returncode != 0, broken.stdout[-6000:]
    assert "the update to 0.1.2-" in broken.stdout, broken.stdout[-6000:]
    assert f"this host runs {second} again" in broken.stdout
    assert appliance.current() == second
    state = appliance.ssh("systemctl is-active meshprint-node.service meshprint-webui.service")
    assert state.stdout.split() == ["active", "active"], state.stdout + state.stderr
    version = appliance.ssh("/opt/meshprint/current/venv/bin/meshprint --version")
    assert "0.1.1" in version.stdout + version.stderr
    printer_moved_in(appliance)


def printer_moved_in(appliance: Appliance) -> None:
    """With the site there, the node is the printer on 631 (systemd's socket), its
    DNS-SD record is written, and CUPS is off the network (meshprint-site-setup ran
    `meshprint intake install`)."""
    record = appliance.root / "etc/avahi/services/meshprint-printer.service"
    deadline = time.time() + 60
    while not record.exists() and time.time() < deadline:
        time.sleep(1)
    text = record.read_text()
    assert "<type>_ipps._tcp</type>" in text and "air=username,password" in text, text
    assert "adminurl=https://meshprint.local:9266/" in text, text
    assert cupsconf.network_listeners((appliance.root / "etc/cups/cupsd.conf").read_text()) == []
    socket_state = appliance.ssh("systemctl is-active meshprint-node.socket")
    assert socket_state.stdout.split() == ["active"], socket_state.stdout + socket_state.stderr
    attrs = appliance.ssh(
        "ipptool -tv ipp://127.0.0.1:631/ipp/print get-printer-attributes.test"
    ).stdout
    assert "printer-make-and-model (textWithoutLanguage) = meshprint Secure Print" in attrs, attrs[
        -3000:
    ]
    uuid = next(x for x in text.split("<txt-record>") if x.startswith("UUID="))
    assert f"urn:uuid:{uuid[5:].split('<')[0]}" in attrs
