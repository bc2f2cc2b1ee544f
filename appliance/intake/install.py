"""`meshprint intake install`: move this machine to the node's own printer.

The node serves the printer itself (`ipp(s)://HOST:631/ipp/print`, appliance/intake/ipp);
earlier releases set up a CUPS queue "Secure Print" for intake instead. This brings a
machine from either state to the node's printer:

1. the old queue `Secure_Print`: it stops accepting jobs, the jobs it still has go to the
   node (its backend hands each over within seconds; up to `drain` seconds), then it is
   deleted, and its `meshprint` backend script with it;
2. cupsd.conf: CUPS keeps delivering but listens on its Unix socket only: no network, and
   port 631 free for the node (cupsconf.py); cupsd restarts when it changes;
3. the avahi service file advertising the node's printer (dnssd.py), TXT keys computed
   from the printer's own attributes; the old queue's service file goes.

Each step compares what is there with what should be and changes only what differs, so a
second run changes nothing; `install` returns the list of changes made.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.datadir import DataDir
from appliance.endpoint import DEFAULT_IPP_PORT, DEFAULT_RELEASE_PORT
from appliance.errors import ConfigError, MeshprintError
from appliance.intake import cupsconf, dnssd
from appliance.printers.delivery.cups import CUPS_LOCK, _alive, _call, _connect

OLD_QUEUE = "Secure_Print"
OLD_BACKEND = "meshprint"
BACKEND_DIR = "/usr/lib/cups/backend"
CUPSD_CONF = "/admin/conf/cupsd.conf"
DRAIN = 60.0


@dataclass(frozen=True)
class Settings:
    data: DataDir
    server: str | None = None  # CUPS server (a socket path); None: the default
    backend_dir: Path = Path(BACKEND_DIR)
    service_file: Path = Path(dnssd.SERVICE_FILE)
    old_service_file: Path = Path(dnssd.OLD_SERVICE_FILE)
    port: int = DEFAULT_IPP_PORT  # the node's printer (--ipp-port of `meshprint node`)
    host: str = ""  # the name in adminurl; "" = this machine's .local name
    release_port: int = DEFAULT_RELEASE_PORT
    name: str = dnssd.NAME  # the DNS-SD service name people see
    location: str = ""
    drain: float = DRAIN  # how long the old queue's jobs may take to reach the node

    @property
    def address(self) -> str:
        return self.host or f"{socket.gethostname().split('.')[0]}.local"


def printer_site(settings: Settings) -> dnssd.PrinterSite:
    return dnssd.printer_site(
        settings.data.identity(),
        settings.address,
        settings.port,
        settings.release_port,
        settings.name,
        settings.location,
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


def _remove(path: Path, what: str) -> list[str]:
    try:
        path.unlink()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise ConfigError(f"cannot remove {what} {path}: {err.strerror} (run as root)") from None
    return [f"removed {what} {path}"]


def _pending(settings: Settings, conn: Any) -> int:
    jobs = _call(
        settings.server,
        "listing the old queue's jobs",
        conn.getJobs,
        which_jobs="not-completed",
        requested_attributes=["job-printer-uri"],
    )
    return sum(1 for j in jobs.values() if str(j.get("job-printer-uri", "")).endswith(OLD_QUEUE))


def remove_old_queue(settings: Settings) -> list[str]:
    with CUPS_LOCK:
        conn = _connect(settings.server)
        if OLD_QUEUE not in _call(settings.server, "listing CUPS queues", conn.getPrinters):
            return []
        _call(settings.server, "stopping the old queue", conn.rejectJobs, OLD_QUEUE)
    deadline = time.monotonic() + settings.drain
    while True:
        with CUPS_LOCK:
            left = _pending(settings, _connect(settings.server))
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    with CUPS_LOCK:
        conn = _connect(settings.server)
        _call(settings.server, "deleting the old queue", conn.deletePrinter, OLD_QUEUE)
    note = (
        f" ({left} job(s) it still had after {settings.drain:g} s were cancelled)" if left else ""
    )
    return [f"removed the old CUPS queue {OLD_QUEUE}{note}"]


def ensure_local_cups(settings: Settings) -> list[str]:
    """cupsd on its Unix socket only (cupsconf.py); cupsd restarts when it changes."""
    with tempfile.TemporaryDirectory(prefix="meshprint-cupsd-") as tmp:
        current = Path(tmp) / "cupsd.conf"
        with CUPS_LOCK, current.open("wb") as out:
            conn = _connect(settings.server)
            _call(settings.server, "reading cupsd.conf", conn.getFile, CUPSD_CONF, file=out)
        text = current.read_text()
        wanted = cupsconf.local_conf(text)
        if wanted == text:
            return []
        gone = cupsconf.network_listeners(text)
        current.write_text(wanted)
        with CUPS_LOCK, current.open("rb") as source:
            conn = _connect(settings.server)
            _call(settings.server, "writing cupsd.conf", conn.putFile, CUPSD_CONF, file=source)
    _wait_for_cups(settings)
    listeners = f" (no more {', '.join(gone)})" if gone else ""
    return [f"CUPS listens on its Unix socket only{listeners}; Browsing No, PreserveJobFiles No"]


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


def ensure_service(settings: Settings) -> list[str]:
    xml = dnssd.service_xml(settings.name, settings.port, dnssd.printer_txt(printer_site(settings)))
    # The old record goes first: it has the same name, and avahi renames the later of two
    # records it sees at once ("Secure Print #2", which is what phones would show).
    changes = []
    if settings.old_service_file != settings.service_file:
        changes += _remove(settings.old_service_file, "the old queue's DNS-SD record")
    try:
        changed = _write_if_changed(settings.service_file, xml, 0o644)
    except OSError as err:
        raise ConfigError(
            f"cannot write the DNS-SD record {settings.service_file}: {err.strerror}"
        ) from None
    if changed:
        changes.append(f"wrote the DNS-SD record {settings.service_file}")
    return changes


def install(settings: Settings) -> list[str]:
    """Move this machine to the node's printer (again: bring it back in line); the
    changes made."""
    if not settings.data.exists():
        raise ConfigError(
            f"{settings.data.root} has no meshprint node: give the node's data directory "
            "(where 'meshprint node --data' runs), after the site is created or joined"
        )
    if not 0 < settings.port < 65536:
        raise ConfigError(
            f"--port must be the node's printer port (1 to 65535), not {settings.port}"
        )
    printer_site(settings)  # the identity is readable, the names are fine: before any change
    dnssd.printer_txt(printer_site(settings))
    changes = remove_old_queue(settings)
    changes += _remove(settings.backend_dir / OLD_BACKEND, "the old queue's CUPS backend")
    changes += ensure_local_cups(settings)
    changes += ensure_service(settings)
    return changes
