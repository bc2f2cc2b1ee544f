"""`meshprint intake install`: the Secure Print queue on this machine's CUPS.

1. the `meshprint` backend script in CUPS' backend directory (mode 0700: CUPS runs it
   as root, so it can read the node's intake secret),
2. cupsd.conf shared on the network with no spooled copies kept, and the queue's
   operation policy without owner checks (cupsconf.py says why),
3. the queue `Secure_Print` ("Secure Print"): our pass-through PPD (ppd.py), device URI
   `meshprint:///DATA?wait=…`, enabled, accepting, shared, error policy retry-job,
   operation policy `meshprint-secure-print`,
4. the avahi service file advertising it for AirPrint, Mopria, Windows (dnssd.py), with
   TXT values read back from the queue over IPP.

Each step compares what is there with what should be and changes only what differs, so a
second run changes nothing; `install` returns the list of changes made.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cups

from appliance.datadir import DataDir
from appliance.errors import ConfigError, MeshprintError
from appliance.intake import backend, cupsconf, dnssd
from appliance.intake.ppd import ppd_text
from appliance.printers.delivery.cups import CUPS_LOCK, _alive, _call, _connect

QUEUE = "Secure_Print"
INFO = "Secure Print"
BACKEND_DIR = "/usr/lib/cups/backend"
CUPSD_CONF = "/admin/conf/cupsd.conf"
IPP_ATTRIBUTES = [
    "document-format-supported",
    "urf-supported",
    "color-supported",
    "sides-supported",
    "printer-uuid",
    "printer-type",
    "printer-make-and-model",
    "printer-location",
    "mopria-certified",
]


@dataclass(frozen=True)
class Settings:
    data: DataDir
    server: str | None = None  # CUPS server (a socket path); None: the default
    backend_dir: Path = Path(BACKEND_DIR)
    service_file: Path = Path(dnssd.SERVICE_FILE)
    listen: str = "*:631"  # where cupsd serves IPP/IPPS to the network
    name: str = INFO  # the DNS-SD service name people see
    location: str = ""
    wait: float = backend.DEFAULT_WAIT  # how long the backend waits for the node

    @property
    def port(self) -> int:
        try:
            return int(self.listen.rpartition(":")[2])
        except ValueError:
            raise ConfigError(f"--listen must be ADDRESS:PORT, not {self.listen!r}") from None

    @property
    def device_uri(self) -> str:
        return f"{backend.SCHEME}://{self.data.root}?wait={self.wait:g}"


def backend_script() -> str:
    """The executable CUPS runs: this Python (isolated mode) calling backend.main."""
    return (
        f"#!{sys.executable} -I\n"
        "# meshprint CUPS backend, written by 'meshprint intake install'.\n"
        "import sys\n\n"
        "from appliance.intake.backend import main\n\n"
        "sys.exit(main(sys.argv))\n"
    )


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    try:
        same = path.read_text() == text and (path.stat().st_mode & 0o7777) == mode
    except OSError:
        same = False
    if same:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def install_backend(settings: Settings) -> list[str]:
    path = settings.backend_dir / backend.SCHEME
    try:
        changed = _write_if_changed(path, backend_script(), 0o700)
    except OSError as err:
        raise ConfigError(
            f"cannot install the backend {path}: {err.strerror} (run as root; "
            "--backend-dir is CUPS' ServerBin/backend)"
        ) from None
    if not changed:
        return []
    return [f"installed the backend {path}"]


def _connection(settings: Settings) -> Any:
    return _connect(settings.server)


def _queue_state(settings: Settings) -> dict[str, Any] | None:
    with CUPS_LOCK:
        conn = _connection(settings)
        printers = _call(settings.server, "listing CUPS queues", conn.getPrinters)
        if QUEUE not in printers:
            return None
        state = dict(printers[QUEUE])
        attrs = _call(
            settings.server,
            "reading the Secure Print queue",
            conn.getPrinterAttributes,
            QUEUE,
            requested_attributes=[
                "printer-error-policy",
                "printer-op-policy",
                "printer-is-accepting-jobs",
            ],
        )
        state.update(attrs)
        try:
            ppd = conn.getPPD(QUEUE)
        except cups.IPPError:
            ppd = ""
    if ppd:
        try:
            state["ppd"] = Path(ppd).read_text(errors="replace")
        finally:
            os.unlink(ppd)
    return state


def ensure_queue(settings: Settings) -> list[str]:
    state = _queue_state(settings)
    wanted = {
        "device-uri": settings.device_uri,
        "printer-info": INFO,
        "printer-location": settings.location,
        "printer-is-shared": True,
        "printer-is-accepting-jobs": True,
        "printer-error-policy": "retry-job",
        "printer-op-policy": cupsconf.POLICY,
        "ppd": ppd_text(),
    }
    if state is not None and state.get("printer-state") != cups.IPP_PRINTER_STOPPED:
        differ = [k for k, v in wanted.items() if state.get(k) != v]
        if not differ:
            return []
    else:
        differ = ["new" if state is None else "printer-state"]
    with tempfile.NamedTemporaryFile("w", suffix=".ppd", delete=False) as out:
        out.write(ppd_text())
    what = "setting up the Secure Print queue"
    try:
        with CUPS_LOCK:
            conn = _connection(settings)
            _call(
                settings.server,
                what,
                conn.addPrinter,
                QUEUE,
                filename=out.name,
                info=INFO,
                location=settings.location,
                device=settings.device_uri,
            )
            _call(settings.server, what, conn.setPrinterShared, QUEUE, True)
            _call(settings.server, what, conn.setPrinterErrorPolicy, QUEUE, "retry-job")
            _call(settings.server, what, conn.setPrinterOpPolicy, QUEUE, cupsconf.POLICY)
            _call(settings.server, what, conn.enablePrinter, QUEUE)
            _call(settings.server, what, conn.acceptJobs, QUEUE)
    finally:
        os.unlink(out.name)
    if state is None:
        return [f"created the CUPS queue {QUEUE} ({INFO!r})"]
    return [f"updated the CUPS queue {QUEUE} ({', '.join(differ)})"]


def ensure_sharing(settings: Settings) -> list[str]:
    """Share cupsd on the network (cupsconf.py); cupsd restarts when it changes."""
    what = "reading cupsd.conf"
    with tempfile.TemporaryDirectory(prefix="meshprint-cupsd-") as tmp:
        current = Path(tmp) / "cupsd.conf"
        with CUPS_LOCK, current.open("wb") as out:
            conn = _connection(settings)
            _call(settings.server, what, conn.getFile, CUPSD_CONF, file=out)
        text = current.read_text()
        wanted = cupsconf.shared_conf(text, settings.listen)
        if wanted == text:
            return []
        current.write_text(wanted)
        with CUPS_LOCK, current.open("rb") as source:
            conn = _connection(settings)
            _call(settings.server, "writing cupsd.conf", conn.putFile, CUPSD_CONF, file=source)
    _wait_for_cups(settings)
    return [
        f"shared CUPS on {settings.listen} (cupsd.conf: Listen, Allow @LOCAL, Browsing No, "
        f"PreserveJobFiles No, Policy {cupsconf.POLICY})"
    ]


def _wait_for_cups(settings: Settings, timeout: float = 30.0) -> None:
    """cupsd restarts after a new cupsd.conf: wait until it answers again."""
    time.sleep(0.5)
    deadline = time.monotonic() + timeout
    while not _alive(settings.server):
        if time.monotonic() > deadline:
            raise MeshprintError(
                f"CUPS did not come back within {timeout:g} s after its configuration changed"
            )
        time.sleep(0.2)


def queue_attributes(settings: Settings) -> dict[str, Any]:
    with CUPS_LOCK:
        conn = _connection(settings)
        return dict(
            _call(
                settings.server,
                "reading the Secure Print queue",
                conn.getPrinterAttributes,
                QUEUE,
                requested_attributes=IPP_ATTRIBUTES,
            )
        )


def ensure_service(settings: Settings) -> list[str]:
    txt = dnssd.txt_record(QUEUE, queue_attributes(settings))
    xml = dnssd.service_xml(settings.name, settings.port, txt)
    try:
        changed = _write_if_changed(settings.service_file, xml, 0o644)
    except OSError as err:
        raise ConfigError(
            f"cannot write the DNS-SD record {settings.service_file}: {err.strerror}"
        ) from None
    return [f"wrote the DNS-SD record {settings.service_file}"] if changed else []


def install(settings: Settings) -> list[str]:
    """Set up (or bring back in line) the Secure Print queue; the changes made."""
    if not settings.data.root.is_dir():
        raise ConfigError(
            f"{settings.data.root} does not exist: give the node's data directory "
            "(where 'meshprint node --data' runs)"
        )
    if settings.data.exists():
        settings.data.identity()  # readable (ConfigError if damaged)
    _ = settings.port
    changes = install_backend(settings)
    changes += ensure_sharing(settings)  # first: it defines the queue's policy
    changes += ensure_queue(settings)
    changes += ensure_service(settings)
    return changes
