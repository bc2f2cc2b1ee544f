"""Tell systemd how the service is doing (sd_notify): READY=1, STATUS=…, WATCHDOG=1.

Plain socket code, no libsystemd: systemd passes the path of an AF_UNIX datagram socket
in `NOTIFY_SOCKET` (a leading "@" means the abstract namespace) and, for a unit with
`WatchdogSec=`, the interval in `WATCHDOG_USEC`. Without `NOTIFY_SOCKET` (run by hand,
in tests, on an office PC) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

from appliance.errors import ConfigError

log = logging.getLogger(__name__)


class Notifier:
    """One service's channel to systemd; `from_env()` reads what systemd passed."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._last_ping = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        watchdog: int | None = None
        text = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if text.isdigit() and int(text) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(text)
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `fields` ("KEY=value") as one datagram; False when there is no socket or
        it fails (a service must never die because systemd did not listen)."""
        if not self.address:
            return False
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]
        message = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(address)
                sock.sendall(message)
        except OSError as err:
            log.debug("sd_notify to %s failed: %s", self.address, err)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        """Ping the watchdog, at most four times per watchdog interval (cheap to call often)."""
        if not self.watchdog_usec:
            return False
        now = time.monotonic()
        if now - self._last_ping < self.watchdog_usec / 4e6:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd wants a ping, or None without a watchdog."""
        return self.watchdog_usec / 1e6 if self.watchdog_usec else None


SD_LISTEN_FDS_START = 3


def listen_socket(
    name: str, port: int, env: Mapping[str, str] | None = None, first: int = SD_LISTEN_FDS_START
) -> socket.socket | None:
    """The listening socket systemd passed for `port` (socket activation: `LISTEN_FDS`,
    `LISTEN_FDNAMES`), named `name` or unnamed, or None when it passed none: a
    privileged port is bound by systemd (meshprint-node.socket), the node needs no
    capability for it."""
    env = os.environ if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        return None
    names = env.get("LISTEN_FDNAMES", "").split(":")
    for index in range(count):
        fd = first + index
        given = names[index] if index < len(names) else ""
        if given not in (name, "", "unknown"):
            continue
        try:
            sock = socket.socket(fileno=fd)
        except OSError as err:
            raise ConfigError(
                f"systemd passed file descriptor {fd} ({given or 'unnamed'}) but it is not a "
                f"socket ({err.strerror}): check the unit's socket (meshprint-node.socket)"
            ) from None
        bound = sock.getsockname()
        if isinstance(bound, tuple) and bound[1] == port:
            return sock
        sock.detach()
    return None
