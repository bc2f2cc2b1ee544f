"""The boot-service definitions of `meshprint edge install`, per platform, and the
platform branches of appliance.portable."""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath

import pytest

from appliance import bootservice, portable
from appliance.errors import ConfigError

DATA = Path("/var/lib/meshprint-edge")
CMD = bootservice.node_command("/opt/venv/bin/python", DATA)


@pytest.mark.parametrize(
    ("sys_platform", "name"),
    [("linux", "linux"), ("darwin", "macos"), ("win32", "windows")],
)
def test_platform_names(sys_platform: str, name: str) -> None:
    assert bootservice.platform_name(sys_platform) == name


def test_an_unsupported_platform_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="Linux, macOS and Windows, not aix"):
        bootservice.platform_name("aix")


def test_data_in_each_platforms_standard_place() -> None:
    assert bootservice.default_data_dir("linux") == Path("/var/lib/meshprint-edge")
    assert bootservice.default_data_dir("macos") == Path("/Library/Application Support/meshprint")
    windows = bootservice.default_data_dir("windows", {"ProgramData": r"D:\ProgramData"})
    assert PureWindowsPath(windows) == PureWindowsPath(r"D:\ProgramData\meshprint")


def test_the_node_runs_as_python_m_with_its_data() -> None:
    assert ["/opt/venv/bin/python", "-m", "appliance.cli", "node", "--data", str(DATA)] == CMD


def test_systemd_unit_is_hardened_and_starts_at_boot(tmp_path: Path) -> None:
    unit = bootservice.systemd_unit(CMD, DATA)
    assert f"ExecStart={' '.join(CMD)}\n" in unit
    assert f"ReadWritePaths={DATA}\n" in unit
    wanted = ["User=meshprint-edge", "ProtectSystem=strict", "NoNewPrivileges=yes"]
    wanted += ["CapabilityBoundingSet=", "WantedBy=multi-user.target", "Type=notify"]
    for line in wanted:
        assert f"\n{line}\n" in unit
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    path = tmp_path / "meshprint-edge.service"
    path.write_text(unit)
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(path)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= 4.0 and match.group(2) == "OK", match.group(0)


def test_systemd_quotes_a_path_with_spaces() -> None:
    unit = bootservice.systemd_unit(["/opt/my venv/python", "-m", "x"], Path("/d 1"))
    assert 'ExecStart="/opt/my venv/python" -m x\n' in unit
    assert 'ReadWritePaths="/d 1"\n' in unit


def test_launchd_plist_parses_as_a_boot_daemon() -> None:
    plist = plistlib.loads(bootservice.launchd_plist(CMD, DATA))
    assert plist["Label"] == "org.meshprint.edge"
    assert plist["ProgramArguments"] == CMD
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["WorkingDirectory"] == str(DATA)
    assert plist["Umask"] == 0o077
    assert "UserName" not in plist  # root's system domain


def test_windows_task_has_what_task_scheduler_requires() -> None:
    program = r"C:\Program Files\Python311\python.exe"
    data = PureWindowsPath(r"C:\ProgramData\meshprint")
    xml = bootservice.windows_task([program, "-m", "appliance.cli", "node", "--data",
                                    str(data)], Path(str(data)))  # fmt: skip
    encoded = xml.encode("utf-16")  # as written for schtasks /XML
    root = ET.fromstring(encoded.decode("utf-16").replace('encoding="UTF-16"', ""))
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert root.get("version") == "1.2"
    assert root.find("t:Triggers/t:BootTrigger/t:Enabled", ns).text == "true"  # type: ignore[union-attr]
    assert root.find("t:Principals/t:Principal/t:UserId", ns).text == "S-1-5-18"  # type: ignore[union-attr]
    settings = root.find("t:Settings", ns)
    assert settings is not None
    assert settings.find("t:ExecutionTimeLimit", ns).text == "PT0S"  # type: ignore[union-attr]
    assert settings.find("t:DisallowStartIfOnBatteries", ns).text == "false"  # type: ignore[union-attr]
    assert settings.find("t:RestartOnFailure/t:Count", ns) is not None
    exec_ = root.find("t:Actions/t:Exec", ns)
    assert exec_ is not None
    assert exec_.find("t:Command", ns).text == program  # type: ignore[union-attr]
    args = exec_.find("t:Arguments", ns).text  # type: ignore[union-attr]
    assert args == r"-m appliance.cli node --data C:\ProgramData\meshprint"


class Recorder:
    def __init__(self, fail: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        code = 1 if self.fail and self.fail in argv else 0
        return subprocess.CompletedProcess(list(argv), code, "active\n", "boom\n" if code else "")


@pytest.mark.parametrize(
    ("platform", "registers"),
    [
        ("linux", [["systemctl", "daemon-reload"],
                   ["systemctl", "enable", "--now", "meshprint-edge.service"]]),
        ("macos", [["launchctl", "bootstrap", "system"]]),
    ],
)  # fmt: skip
def test_install_writes_the_definition_and_registers_it(
    tmp_path: Path, platform: str, registers: list[list[str]]
) -> None:
    runner = Recorder()
    service = bootservice.BootService(platform, runner, root=tmp_path)
    service.install(CMD, DATA)
    assert service.definition_path.is_relative_to(tmp_path)
    assert service.definition_path.read_bytes() == service.definition(CMD, DATA)
    for want, got in zip(registers, runner.calls, strict=True):
        assert got[: len(want)] == want
    service.remove()
    assert not service.definition_path.exists()


def test_a_failing_system_tool_is_a_clear_error(tmp_path: Path) -> None:
    service = bootservice.BootService("linux", Recorder(fail="enable"), root=tmp_path)
    with pytest.raises(
        ConfigError, match=r"systemctl enable --now meshprint-edge\.service failed: boom"
    ):
        service.install(CMD, DATA)


def test_windows_registers_a_task_with_schtasks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bootservice, "default_data_dir", lambda platform: tmp_path / "meshprint")
    runner = Recorder()
    service = bootservice.BootService("windows", runner)
    service.install(CMD, DATA)
    assert runner.calls[0][:3] == ["schtasks", "/Create", "/TN"]
    assert runner.calls[0][3:] == ["meshprint-edge", "/XML", str(service.definition_path), "/F"]
    assert runner.calls[1] == ["schtasks", "/Run", "/TN", "meshprint-edge"]
    assert service.definition_path.read_bytes().decode("utf-16").startswith("<?xml")


def test_a_missing_tool_is_reported_not_raised() -> None:
    result = bootservice.run(["no-such-tool-meshprint"])
    assert result.returncode == 127


# appliance.portable


def test_windows_skips_modes_and_directory_fsync(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(portable.os, "name", "nt")
    calls: list[str] = []
    monkeypatch.setattr(portable.os, "fchmod", lambda *a: calls.append("fchmod"), raising=False)
    monkeypatch.setattr(portable.os, "chmod", lambda *a: calls.append("chmod"))
    monkeypatch.setattr(portable.os, "open", lambda *a: calls.append("open"))
    portable.fchmod(3, 0o600)
    portable.chmod(tmp_path, 0o700)
    portable.fsync_dir(tmp_path)
    assert calls == []


def test_posix_sets_modes_and_fsyncs_the_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if os.name == "nt":
        pytest.skip("POSIX only")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(portable.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    portable.fsync_dir(tmp_path)
    assert len(synced) == 1
    f = tmp_path / "f"
    f.write_text("x")
    fd = os.open(f, os.O_RDONLY)
    try:
        portable.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    assert f.stat().st_mode & 0o777 == 0o600


def test_no_posix_only_module_on_the_edge_nodes_import_path() -> None:
    """What an edge node imports (the node, its APIs, RAW delivery) runs with fcntl, pwd,
    grp, termios and resource unimportable, as on Windows."""
    code = (
        "import sys\n"
        "for m in ('fcntl', 'pwd', 'grp', 'termios', 'resource'):\n"
        "    sys.modules[m] = None\n"
        "import appliance.node, appliance.api.peer, appliance.api.release, appliance.api.submit\n"
        "import appliance.printers.delivery.raw, appliance.cli.edge, appliance.cli.client\n"
        "from appliance.https.connections import fit_to_fd_limit\n"
        "fit_to_fd_limit(servers=3)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
