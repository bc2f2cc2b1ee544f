"""provisioning/ and systemd/: ansible-lint (production profile), syntax checks, unit
hardening, and site.yml applied twice to a real Debian root filesystem (mmdebstrap,
amd64) through Ansible's chroot connection, then booted with systemd-nspawn.

The base root filesystem is cached in .cache/provisioning/ (git-ignored); delete it to
rebuild. Needs root (chroot, nspawn); `pytest -m provisioning` selects these tests.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from appliance.intake import cupsconf
from tests.provisioning.conftest import (
    BIN,
    PROVISIONING,
    REPO,
    SLOW,
    UNITS,
    ansible_env,
    needs_root,
    run,
)

pytestmark = [pytest.mark.provisioning, SLOW]

# What the roles must leave enabled (socket- and service-level).
ENABLED = {
    "multi-user.target.wants": [
        "meshprint-node.service",
        "meshprint-webui.service",
        "meshprint-firstboot.service",
        "meshprint-console-status.service",
        "cups.service",
        "avahi-daemon.service",
        "mosquitto.service",
    ],
    "sockets.target.wants": [
        "meshprint-webui.socket",
        "meshprint-redirect.socket",
        "meshprint-node.socket",
    ],
    "paths.target.wants": ["meshprint-site.path"],
    "sysinit.target.wants": ["nftables.service"],
}
DESIGN_TCP_PORTS = "22, 80, 443, 631, 8883, 9263, 9264, 9265, 9266"


def test_ansible_lint_production_profile() -> None:
    result = run(
        [str(BIN / "ansible-lint"), "--profile", "production", "--nocolor"],
        cwd=PROVISIONING,
        env=ansible_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


@pytest.mark.parametrize("playbook", ["site.yml", "update.yml"])
def test_playbook_syntax(playbook: str) -> None:
    result = run(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.example.yml", playbook],
        cwd=PROVISIONING,
        env=ansible_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.glob("*.service")))
def test_unit_exposure_is_ok(unit: str) -> None:
    result = run(["systemd-analyze", "security", "--offline=true", str(UNITS / unit)])
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 4.0 and match.group(2) == "OK", match.group(0)


# site.yml in a chroot, twice, then a boot


@needs_root
def test_second_run_changes_nothing(provisioned: tuple[Path, list]) -> None:
    _, (first, second) = provisioned
    assert first["changed"] > 20 and first["failed"] == 0
    assert second["changed"] == 0 and second["failed"] == 0, second


@needs_root
def test_users_paths_and_release_layout(provisioned: tuple[Path, list]) -> None:
    root, _ = provisioned
    passwd = (root / "etc/passwd").read_text()
    line = next(x for x in passwd.splitlines() if x.startswith("meshprint:"))
    fields = line.split(":")
    assert int(fields[2]) < 1000 and fields[5] == "/var/lib/meshprint"
    assert fields[6] == "/usr/sbin/nologin"
    assert "admin:" not in passwd  # no admin account without keys, no default password
    data = root / "var/lib/meshprint"
    assert data.stat().st_mode & 0o777 == 0o700
    current = root / "opt/meshprint/current"
    assert current.is_symlink() and os.readlink(current).startswith("releases/")
    release = root / "opt/meshprint" / os.readlink(current)
    assert (release / "venv/bin/meshprint").exists() and (release / "venv/bin/gunicorn").exists()
    assert (root / "etc/meshprint/meshprint.env").exists()
    assert (root / "etc/machine-id").read_text() == ""  # generalised for first boot
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    sshd = (root / "etc/ssh/sshd_config.d/meshprint.conf").read_text()
    assert "PasswordAuthentication no" in sshd and "PermitRootLogin no" in sshd


@needs_root
def test_units_installed_and_enabled(provisioned: tuple[Path, list]) -> None:
    root, _ = provisioned
    for unit in UNITS.iterdir():
        assert (root / "etc/systemd/system" / unit.name).read_text() == unit.read_text()
    for target, units in ENABLED.items():
        wants = root / "etc/systemd/system" / target
        missing = [u for u in units if not (wants / u).is_symlink()]
        assert not missing, f"not enabled in {target}: {missing}"


@needs_root
def test_cups_is_off_the_network_and_the_node_has_631(provisioned: tuple[Path, list]) -> None:
    """The node's own printer on 631 (bound by systemd), CUPS on its Unix socket only."""
    root, _ = provisioned
    cupsd = (root / "etc/cups/cupsd.conf").read_text()
    assert cupsconf.network_listeners(cupsd) == [], cupsd
    assert cupsconf.local_conf(cupsd) == cupsd  # what `meshprint intake install` wants
    assert "--ipp-port 631" in (root / "etc/meshprint/meshprint.env").read_text()
    socket_unit = (root / "etc/systemd/system/meshprint-node.socket").read_text()
    assert "ListenStream=631" in socket_unit and "FileDescriptorName=ipp" in socket_unit
    node = (root / "etc/systemd/system/meshprint-node.service").read_text()
    assert "CapabilityBoundingSet=\n" in node and "PrivateUsers=yes" in node
    setup = (root / "usr/local/sbin/meshprint-site-setup").read_text()
    assert "intake install" in setup and '--port "$IPP_PORT"' in setup


@needs_root
def test_firewall_ruleset_allows_only_the_design_ports(provisioned: tuple[Path, list]) -> None:
    root, _ = provisioned
    ruleset = root / "etc/nftables.conf"
    check = run(["nft", "-c", "-f", str(ruleset)])
    assert check.returncode == 0, check.stderr
    text = ruleset.read_text()
    assert "policy drop" in text
    assert re.findall(r"tcp dport \{ ([^}]*) \} accept", text) == [DESIGN_TCP_PORTS]
    assert re.findall(r"udp dport \{ ([^}]*) \} accept", text) == ["5353"]


@needs_root
def test_boots_with_services_up(provisioned: tuple[Path, list]) -> None:
    """Boot the provisioned tree (first boot) in a container without network access and
    check the services as systemd reports them, over loopback inside it."""
    root, _ = provisioned
    here = Path(__file__).parent
    shutil.copy(here / "bootcheck.sh", root / "usr/local/sbin/bootcheck")
    (root / "usr/local/sbin/bootcheck").chmod(0o755)
    shutil.copy(here / "bootcheck.service", root / "etc/systemd/system/bootcheck.service")
    wants = root / "etc/systemd/system/multi-user.target.wants/bootcheck.service"
    wants.symlink_to("/etc/systemd/system/bootcheck.service")
    boot = run(
        [
            "systemd-nspawn",
            *("-q", "-D", str(root), "-b", "--private-network", "--register=no", "--keep-unit"),
        ],
        timeout=240,
    )
    report = root / "root/bootcheck.txt"
    assert report.exists(), boot.stdout[-4000:] + boot.stderr[-2000:]
    lines = report.read_text().splitlines()
    facts = dict(line.split(" ", 1) for line in lines if " " in line and line[0] != "\t")
    units = {line.split()[1]: line.split()[2] for line in lines if line.startswith("unit ")}
    assert all(state == "active" for state in units.values()), units
    assert not [line for line in lines if line.startswith("failed ")], report.read_text()
    assert facts["health"].strip() == '{"ok":true}', facts["health"] + facts["webuilog"]
    assert facts["setup"] == "200"  # the setup wizard's first page
    assert facts["redirect"] == "301 https://meshprint.local/setup"
    assert facts["nodestatus"].startswith("waiting for a site in /var/lib/meshprint")
    assert re.fullmatch(r"[0-9a-f]{32}", facts["machineid"])
    assert int(facts["hostkeys"]) >= 3
    assert "Set it up at https://meshprint.local/" in facts["issue"]
    assert f"tcp dport {{ {DESIGN_TCP_PORTS} }} accept" in report.read_text()
    # 631 is systemd's (meshprint-node.socket), passed on to the node (and briefly to
    # whatever systemd forks meanwhile); cupsd listens on no TCP port.
    owners = facts["ipp631"].split()
    assert "systemd" in owners and "cupsd" not in owners, owners
    assert facts["cupstcp"].strip() == "0", facts["cupstcp"]


def test_wheel_carries_every_package_file(tmp_path: Path) -> None:
    """The appliance installs the wheel, not the checkout: templates and static files must
    be in it (an editable install hides their absence)."""
    result = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("meshprint-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        packaged = set(zf.namelist())
    tracked = run(["git", "-C", str(REPO), "ls-files", "appliance", "webui"]).stdout.split()
    wanted = {f for f in tracked if not f.endswith((".pyc", ".md")) and "__pycache__" not in f}
    assert wanted - packaged == set()
