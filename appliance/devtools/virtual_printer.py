"""Virtual IPP Everywhere printers for the demo and tests: `ippeveprinter` on loopback.

ippeveprinter needs D-Bus and a running avahi-daemon (/work/shared/FIXTURES.md).
`MdnsBus` starts a private dbus-daemon and an avahi-daemon on `lo` that talks to it;
several printers can share one. `VirtualPrinter` starts one ippeveprinter on a free
127.0.0.1 port with its own spool (documents kept: `-k`) and TLS keys, and waits until
it answers Get-Printer-Attributes. The same port serves ipp:// and ipps:// (self-signed).

    with MdnsBus() as bus, VirtualPrinter(bus, duplex=True) as printer:
        IppClient(printer.uri).get_printer_attributes()
        printer.document(job_id)        # the spooled document, byte for byte

Every process runs in a session of its own; stopping ends the whole session and checks
nothing is left. `VirtualPrinter.stop()` / `start()` switch a printer off and on again
(same port and certificate); `close()` (or leaving the `with`) also removes its files.

avahi-daemon insists on one instance per machine (its pid file is in /run/avahi-daemon):
where the kernel allows, it gets a private mount namespace with its own /run/avahi-daemon,
so a system avahi or another test run does not get in the way.

Used by `make demo` (a printer that really takes jobs) and by the tests
(tests/fixtures/ippeve.py wraps these in pytest fixtures).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from appliance.devtools.processes import free_port, stop_session, unix_socket_answers
from appliance.errors import MeshprintError
from appliance.printers.ipp.client import IppClient
from appliance.printers.ipp.exceptions import IppError
from appliance.printers.ipp.models import PrinterInfo


class VirtualPrinterError(MeshprintError):
    """The virtual printer (or its D-Bus/avahi) could not be started, used or stopped."""

    status = 500


HOST = "127.0.0.1"
DEFAULT_FORMATS = ("application/pdf", "image/pwg-raster", "image/urf", "image/jpeg", "text/plain")
AVAHI_CONF = """\
[server]
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
"""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _can_unshare_mounts() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    return result.returncode == 0


class _Root:
    """A working directory: the one given, or a temporary one removed at stop."""

    def __init__(self, root: Path | None, prefix: str) -> None:
        self.owned = root is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if root is None else Path(root)
        self.path.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


class MdnsBus:
    """A private dbus-daemon (as the 'system' bus of the processes given `env`) and an
    avahi-daemon on loopback registered on it."""

    def __init__(self, root: Path | None = None, services: Path | None = None) -> None:
        self._root = _Root(root, "meshprint-mdns-")
        # A directory of avahi service files that this avahi publishes (bind-mounted over
        # /etc/avahi/services in its mount namespace; needs `isolated`).
        self.services = services
        self.root = self._root.path
        # Unix socket paths are limited to 108 bytes: keep the bus socket short.
        self._sock_dir = Path(tempfile.mkdtemp(prefix="mp-dbus-"))
        self.socket = self._sock_dir / "bus"
        self.address = f"unix:path={self.socket}"
        self.dbus: subprocess.Popen[bytes] | None = None
        self.avahi: subprocess.Popen[bytes] | None = None
        self.isolated = False  # avahi in its own mount namespace

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that must find this bus (ippeveprinter, cupsd …)."""
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    def __enter__(self) -> MdnsBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> MdnsBus:
        try:
            self._start_dbus(timeout)
            self._start_avahi(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_dbus(self, timeout: float) -> None:
        log = self.root / "dbus.log"
        with log.open("wb") as out:
            self.dbus = subprocess.Popen(
                [
                    "dbus-daemon",
                    "--session",
                    "--nofork",
                    "--nopidfile",
                    f"--address={self.address}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not unix_socket_answers(self.socket):
            if self.dbus.poll() is not None or time.monotonic() > deadline:
                raise VirtualPrinterError(f"dbus-daemon did not start:\n{_tail(log)}")
            time.sleep(0.02)

    def _start_avahi(self, timeout: float) -> None:
        conf = self.root / "avahi.conf"
        conf.write_text(AVAHI_CONF)
        log = self.root / "avahi.log"
        avahi = [
            "avahi-daemon",
            "-f",
            str(conf),
            "--no-drop-root",
            "--no-chroot",
            "--no-rlimits",
            "--no-proc-title",
        ]
        self.isolated = _can_unshare_mounts()
        if self.isolated:
            # Its own /run/avahi-daemon (pid file, socket): no clash with another avahi.
            script = (
                "mkdir -p /run/avahi-daemon && "
                "mount -t tmpfs -o size=1m,mode=755 meshprint-avahi /run/avahi-daemon && "
                + (
                    f"mount --bind {shlex.quote(str(self.services))} /etc/avahi/services && "
                    if self.services is not None
                    else ""
                )
                + 'exec "$@"'
            )
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
            command += avahi
        elif self.services is not None:
            raise VirtualPrinterError(
                "a private avahi with its own service files needs a mount namespace "
                "(root and unshare)"
            )
        else:
            command = avahi
        with log.open("wb") as out:
            self.avahi = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while "Server startup complete" not in log.read_text(errors="replace"):
            if self.avahi.poll() is not None or time.monotonic() > deadline:
                raise VirtualPrinterError(f"avahi-daemon did not start:\n{_tail(log)}")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in (self.avahi, self.dbus):
            if process is not None:
                stop_session(process)
        self.avahi = self.dbus = None
        shutil.rmtree(self._sock_dir, ignore_errors=True)
        self._root.cleanup()


class VirtualPrinter:
    """One ippeveprinter on a free 127.0.0.1 port (ipp:// and ipps:// on the same port).

    command     run on each job's file (`-c`); /bin/true finishes a job in under 1 s,
                a slower script makes the printer busy for longer
    formats     document-format-supported (`-f`); application/octet-stream is added
    duplex      advertise two-sided printing (`-2`)
    """

    def __init__(
        self,
        bus: MdnsBus,
        root: Path | None = None,
        *,
        name: str | None = None,
        formats: Sequence[str] = DEFAULT_FORMATS,
        duplex: bool = True,
        command: str = "/bin/true",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.bus = bus
        self._root = _Root(root, "meshprint-ippeve-")
        self.root = self._root.path
        self.spool = self.root / "spool"
        self.keys = self.root / "keys"
        self.log = self.root / "ippeveprinter.log"
        self.name = name or f"Test Printer {os.getpid()}-{id(self) % 100000}"
        self.formats = tuple(formats)
        self.duplex = duplex
        self.command = command
        self.extra_args = tuple(extra_args)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"ipp://{HOST}:{self.port}/ipp/print"

    @property
    def ipps_uri(self) -> str:
        return f"ipps://{HOST}:{self.port}/ipp/print"

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self, timeout: float = 15.0) -> VirtualPrinter:
        """Start the printer. Started again after `stop()`, it comes back like a printer
        switched back on: same port, same certificate, spool kept (job ids restart at 1)."""
        self.spool.mkdir(parents=True, exist_ok=True)
        self.keys.mkdir(parents=True, exist_ok=True)
        if self.port:
            try:
                self._start_once(self.port, timeout)
            except BaseException:
                self._stop_process()
                raise
            return self
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            try:
                self._start_once(free_port(), timeout)
                return self
            except BaseException:
                self._stop_process()
                self.port = 0
                if attempt == 2:
                    raise
        raise VirtualPrinterError("unreachable")

    def _start_once(self, port: int, timeout: float) -> None:
        self.port = port
        args = ["ippeveprinter", "-p", str(port), "-n", "localhost"]
        args += ["-K", str(self.keys), "-d", str(self.spool), "-k", "-c", self.command]
        args += ["-f", ",".join(self.formats)]
        if self.duplex:
            args.append("-2")
        args += [*self.extra_args, self.name]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args,
                env=self.bus.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        client = IppClient(self.uri, timeout=2, busy_timeout=0)
        while True:
            try:
                client.get_printer_attributes(("printer-state",))
                return
            except IppError as err:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise VirtualPrinterError(
                        f"ippeveprinter on port {port} did not come up ({err}):\n{_tail(self.log)}"
                    ) from None
            time.sleep(0.05)

    def _stop_process(self) -> None:
        if self.process is not None:
            stop_session(self.process)
            self.process = None

    def stop(self) -> None:
        """Switch the printer off (its spool, keys and log stay; `start()` brings it back)."""
        self._stop_process()

    def close(self) -> None:
        """Stop it and remove its directory (if it made a temporary one)."""
        self._stop_process()
        self._root.cleanup()

    # --- helpers for tests

    def client(self, tls: bool = False, **kwargs: object) -> IppClient:
        """An IppClient for this printer; over ipps:// it accepts the self-signed
        certificate by pinning it unless told otherwise."""
        if tls and not kwargs:
            kwargs = {"pin_sha256": self.fingerprint()}
        return IppClient(self.ipps_uri if tls else self.uri, **kwargs)  # type: ignore[arg-type]

    def info(self) -> PrinterInfo:
        return self.client().get_printer_attributes()

    def certificate(self) -> bytes:
        """The DER certificate the printer presents on ipps:// (read with `ssl`, untrusted)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection((HOST, self.port), 10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            der = sock.getpeercert(binary_form=True)
        assert der, "the printer presented no certificate"
        return der

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the printer's DER certificate, what `pin_sha256` takes."""
        return hashlib.sha256(self.certificate()).hexdigest()

    def spool_files(self, job_id: int) -> list[Path]:
        return sorted(self.spool.glob(f"{job_id}-*"))

    def document(self, job_id: int, timeout: float = 10.0) -> Path:
        """The document of a job as the printer received and kept it (not the `-c`
        command's output, the .prn file)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [p for p in self.spool_files(job_id) if p.suffix != ".prn"]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise VirtualPrinterError(f"no spool file for job {job_id} in {self.spool}")
            time.sleep(0.05)
