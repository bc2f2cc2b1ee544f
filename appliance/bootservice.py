"""An office PC's node as a service that starts at boot: the definition for each platform
and the system's own tool to register, start, stop and remove it.

- Linux: a systemd unit, /etc/systemd/system/meshprint-edge.service, running as the
  system user meshprint-edge, sandboxed like the appliance's node unit.
- macOS: a launchd daemon, /Library/LaunchDaemons/org.meshprint.edge.plist (root's
  domain: it runs before anyone logs in), loaded with `launchctl bootstrap system`.
- Windows: a scheduled task at start-up as SYSTEM (Task Scheduler XML, registered with
  `schtasks /Create /XML`): no service wrapper is needed for a console program, it
  restarts on failure and is not stopped on battery.

Data goes in the platform's place for a machine-wide service: /var/lib/meshprint-edge,
/Library/Application Support/meshprint, %ProgramData%\\meshprint.

Only the standard library: the tools are run through `Runner`, which a test replaces.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from xml.sax.saxutils import escape

from appliance.errors import ConfigError

NAME = "meshprint-edge"
LAUNCHD_LABEL = "org.meshprint.edge"
LINUX_USER = "meshprint-edge"

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a system tool and return what it said (never raises for a failed tool)."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found")


def platform_name(sys_platform: str | None = None) -> str:
    """linux, macos or windows; ConfigError for anything else."""
    p = sys.platform if sys_platform is None else sys_platform
    if p.startswith("linux"):
        return "linux"
    if p == "darwin":
        return "macos"
    if p in ("win32", "cygwin"):
        return "windows"
    raise ConfigError(f"meshprint edge supports Linux, macOS and Windows, not {p}")


def default_data_dir(platform: str, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if platform == "linux":
        return Path("/var/lib/meshprint-edge")
    if platform == "macos":
        return Path("/Library/Application Support/meshprint")
    program_data = env.get("ProgramData") or r"C:\ProgramData"
    return Path(PureWindowsPath(program_data, "meshprint"))


def node_command(executable: str, data: Path) -> list[str]:
    """The command the service runs: this install's meshprint, as `python -m`, so it
    needs no script wrapper (and on Windows no .exe launcher)."""
    return [executable, "-m", "appliance.cli", "node", "--data", str(data)]


# Linux

_SANDBOX = """\
# Sandbox: no privileges, read-only system, its own data directory only.
CapabilityBoundingSet=
AmbientCapabilities=
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
ProtectHostname=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
DevicePolicy=closed
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources @mount @obsolete
SystemCallErrorNumber=EPERM
"""


def systemd_unit(command: list[str], data: Path, user: str = LINUX_USER) -> str:
    """The unit: as `user`, writable only `data`; a good guest: low CPU and I/O priority,
    a memory ceiling. ProtectHome=read-only, not yes: a venv under /home still runs."""
    exec_start = " ".join(_systemd_quote(a) for a in command)
    return (
        "# meshprint edge node on this PC: written by `meshprint edge install`.\n"
        "[Unit]\n"
        "Description=meshprint edge node (holds encrypted print jobs for the office)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        "Type=notify\n"
        "NotifyAccess=main\n"
        f"User={user}\n"
        f"Group={user}\n"
        f"ExecStart={exec_start}\n"
        f"ReadWritePaths={_systemd_quote(str(data))}\n"
        f"WorkingDirectory={_systemd_quote(str(data))}\n"
        "WatchdogSec=60\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "TimeoutStopSec=30\n"
        "UMask=0077\n"
        "LimitNOFILE=4096\n"
        "Nice=10\n"
        "CPUWeight=20\n"
        "IOWeight=20\n"
        "MemoryHigh=200M\n\n"
        f"{_SANDBOX}\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _systemd_quote(arg: str) -> str:
    if arg and not any(c in arg for c in " \t\"'\\$%;"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


# macOS


def launchd_plist(command: list[str], data: Path) -> bytes:
    """The daemon: at boot, kept alive after a crash (not after a clean exit), low
    priority, logs in /Library/Logs."""
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": command,
            "WorkingDirectory": str(data),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ProcessType": "Background",
            "LowPriorityIO": True,
            "Nice": 10,
            "Umask": 0o077,
            "ThrottleInterval": 5,
            "ExitTimeOut": 30,
            "StandardOutPath": "/Library/Logs/meshprint-edge.log",
            "StandardErrorPath": "/Library/Logs/meshprint-edge.log",
        }
    )


# Windows


def windows_task(command: list[str], data: Path) -> str:
    """Task Scheduler XML (schema 1.2): at boot, as SYSTEM, no time limit, restarted on
    failure, kept running on battery, one instance."""
    program, *arguments = command
    args = " ".join(_windows_quote(a) for a in arguments)
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>meshprint edge node (holds encrypted print jobs for the office)</Description>
    <URI>\\{NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger>
      <Enabled>true</Enabled>
    </BootTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>S-1-5-18</UserId>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(program)}</Command>
      <Arguments>{escape(args)}</Arguments>
      <WorkingDirectory>{escape(str(data))}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""


def _windows_quote(arg: str) -> str:
    return subprocess.list2cmdline([arg])


# Registering, per platform


@dataclass(frozen=True)
class State:
    registered: bool
    running: bool
    detail: str  # what the system tool said, one line


class BootService:
    """The service on this platform: `install` writes the definition and starts it."""

    def __init__(self, platform: str, runner: Runner = run, root: Path = Path("/")) -> None:
        self.platform = platform
        self.run = runner
        self.root = root  # a test writes the definition under a temporary directory

    @property
    def definition_path(self) -> Path:
        if self.platform == "linux":
            return self.root / "etc/systemd/system" / f"{NAME}.service"
        if self.platform == "macos":
            return self.root / "Library/LaunchDaemons" / f"{LAUNCHD_LABEL}.plist"
        return default_data_dir("windows").parent / "meshprint" / f"{NAME}-task.xml"

    def definition(self, command: list[str], data: Path) -> bytes:
        if self.platform == "linux":
            return systemd_unit(command, data).encode()
        if self.platform == "macos":
            return launchd_plist(command, data)
        return windows_task(command, data).encode("utf-16")

    def install(self, command: list[str], data: Path) -> None:
        path = self.definition_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.definition(command, data))
        if self.platform == "linux":
            self._check(["systemctl", "daemon-reload"])
            self._check(["systemctl", "enable", "--now", f"{NAME}.service"])
        elif self.platform == "macos":
            self._check(["launchctl", "bootstrap", "system", str(path)])
        else:
            self._check(["schtasks", "/Create", "/TN", NAME, "/XML", str(path), "/F"])
            self._check(["schtasks", "/Run", "/TN", NAME])

    def stop(self) -> None:
        if self.platform == "linux":
            self.run(["systemctl", "stop", f"{NAME}.service"])
        elif self.platform == "macos":
            self.run(["launchctl", "bootout", f"system/{LAUNCHD_LABEL}"])
        else:
            self.run(["schtasks", "/End", "/TN", NAME])

    def remove(self) -> None:
        self.stop()
        if self.platform == "linux":
            self.run(["systemctl", "disable", f"{NAME}.service"])
        elif self.platform == "windows":
            self.run(["schtasks", "/Delete", "/TN", NAME, "/F"])
        self.definition_path.unlink(missing_ok=True)
        if self.platform == "linux":
            self.run(["systemctl", "daemon-reload"])

    def state(self) -> State:
        if self.platform == "linux":
            enabled = self.run(["systemctl", "is-enabled", f"{NAME}.service"])
            active = self.run(["systemctl", "is-active", f"{NAME}.service"])
            return State(
                enabled.returncode == 0,
                active.returncode == 0,
                f"{enabled.stdout.strip() or 'not installed'}, "
                f"{active.stdout.strip() or _first_line(active.stderr) or 'not running'}",
            )
        if self.platform == "macos":
            out = self.run(["launchctl", "print", f"system/{LAUNCHD_LABEL}"])
            running = "state = running" in out.stdout
            return State(out.returncode == 0, running, "running" if running else "not running")
        out = self.run(["schtasks", "/Query", "/TN", NAME, "/FO", "CSV", "/NH"])
        running = out.returncode == 0 and "Running" in out.stdout
        return State(out.returncode == 0, running, out.stdout.strip() or out.stderr.strip())

    def _check(self, argv: list[str]) -> None:
        result = self.run(argv)
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            raise ConfigError(
                f"{' '.join(argv)} failed: {said[-1] if said else f'exit {result.returncode}'}"
            )


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
