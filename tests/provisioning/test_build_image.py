"""build-image.sh's own checks, without building: arguments, a missing image, a run
that is not root, a second run on the same output directory, and what a run killed
with kill -9 left behind (a real mount and a real loop device), which the next run
releases. The full arm64 build and boot is `make image-test`.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.provisioning

SCRIPT = Path(__file__).resolve().parents[2] / "build-image.sh"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, losetup)")


def build_image(*args: str, user: str | None = None) -> subprocess.CompletedProcess:
    cmd = ["bash", str(SCRIPT), *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def test_help_and_unknown_argument() -> None:
    shown = build_image("--help")
    assert shown.returncode == 0
    assert "--base debian|PATH-TO-RASPIOS.img" in shown.stdout
    wrong = build_image("--colour", "blue")
    assert wrong.returncode == 2
    assert "unknown argument --colour" in wrong.stderr


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    result = build_image("--test", str(tmp_path / "nothing.img.xz"))
    assert result.returncode == 1
    assert f"--test {tmp_path}/nothing.img.xz: no such image" in result.stderr
    base = build_image("--base", str(tmp_path / "raspios.img"), "--out", str(tmp_path / "out"))
    assert base.returncode == 1
    assert f"--base {tmp_path}/raspios.img: no such image file" in base.stderr
    assert not (tmp_path / "out").exists()


@needs_root
def test_not_root_is_refused_before_anything_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    tmp_path.chmod(0o777)
    result = build_image("--out", str(out), user="65534")
    assert result.returncode == 1
    assert "run as root" in result.stderr
    assert not out.exists()


@needs_root
def test_a_second_run_on_the_same_output_directory_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "meshprint-test.img"
    image.write_bytes(b"\0" * 4096)
    with (tmp_path / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = build_image("--test", str(image))
    assert result.returncode == 1
    assert f"another build-image.sh is running with --out {tmp_path}" in result.stderr


@needs_root
def test_what_a_killed_run_left_is_released(tmp_path: Path) -> None:
    stale = tmp_path / ".work.Ab12Cd"
    (tmp_path / ".work.Ef34Gh" / "root").mkdir(parents=True)  # one with nothing mounted
    (stale / "root" / "proc").mkdir(parents=True)
    backing = stale / "meshprint.img"
    backing.write_bytes(b"\0" * 1024 * 1024)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(stale / "root" / "proc")], check=True)
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        image = tmp_path / "meshprint-test.img"
        image.write_bytes(b"\0" * 4096)  # no partition table: the run stops after releasing
        result = build_image("--test", str(image))
        assert f"releasing {stale}, left by a run that was killed" in result.stdout
        assert f"releasing {tmp_path}/.work.Ef34Gh, left by" in result.stdout
        assert result.returncode == 1
        assert "has no partition table" in result.stderr
        assert not mounted(stale / "root" / "proc")
        attached = subprocess.run(["losetup", "-n", "-O", "NAME"], capture_output=True, text=True)
        assert loop not in attached.stdout.split()
        assert not stale.exists()
        assert not list(tmp_path.glob(".work.*"))  # and its own work directory is gone too
    finally:
        subprocess.run(["umount", "-l", str(stale / "root" / "proc")], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def boot_test_function(name: str, *args: str) -> str:
    """Run one of the boot test's shell functions (with `say`) on its own."""
    script = f'source <(sed -n "/^say()/p; /^{name}()/,/^}}/p" "$0"); {name} "$@"'
    result = subprocess.run(
        ["bash", "-c", script, str(SCRIPT), *args],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return result.stdout


# Recorded from a boot of the image under qemu: the serial getty took the console 0.85 s
# after the node began starting, and from then on systemd printed no status lines there,
# so "[ OK ] Started meshprint-node.service" never came (what issue 18's test waited for).
CONSOLE = Path(__file__).resolve().parents[1] / "data" / "boot" / "console-getty-first.log"


def test_node_readiness_comes_from_the_journal_on_the_console(tmp_path: Path) -> None:
    text = CONSOLE.read_text(errors="replace")
    assert "Started serial-getty@ttyAMA0.service" in text
    assert "OK  \x1b[0m] Started \x1b[0;1;39mmeshprint-node" not in text
    assert boot_test_function("ready_seconds", str(CONSOLE), "meshprint-node.service") == "9.0\n"
    # Not ready yet (no "Started" line), or another unit: nothing.
    starting = tmp_path / "starting.log"
    starting.write_text(text.split("[   68.900530]")[0])
    assert boot_test_function("ready_seconds", str(starting), "meshprint-node.service") == ""
    assert boot_test_function("ready_seconds", str(CONSOLE), "meshprint-site.service") == ""


def test_a_failed_boot_reports_the_journal_and_the_last_unit_status(tmp_path: Path) -> None:
    console = tmp_path / "console.log"
    console.write_text(
        CONSOLE.read_text(errors="replace")
        + "[  90.1] meshprint-status[401]: === meshprint units ===\r\n"
        + "[  90.2] meshprint-status[401]: \u25cf meshprint-node.service - old report\r\n"
        + "[ 120.1] meshprint-status[401]: === meshprint units ===\r\n"
        + "[ 120.2] meshprint-status[401]: \u25cf meshprint-node.service - meshprint node\r\n"
        + "[ 120.3] meshprint-status[401]:      Active: activating (start)\r\n"
    )
    report = boot_test_function("boot_report", str(console))
    journal, rest = report.split("systemctl status of the meshprint units")
    status, _end = rest.split("console (last 40 lines)")
    assert "waiting for a site in /var/lib/meshprint" in journal
    assert "meshprint-status" not in journal
    assert "Active: activating (start)" in status and "old report" not in status
