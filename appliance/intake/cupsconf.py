"""cupsd.conf once the node is the printer: CUPS delivers (`cups:` queues, filters) and
no longer listens on the network; the node binds port 631 itself.

`local_conf(text, socket)` returns cupsd.conf with
- no `Port` line and no `Listen` on an address: only the Unix socket `Listen` lines stay
  (`Listen /run/cups/cups.sock` is added when none is there), so nothing of CUPS is
  reachable from the network and port 631 is free for the node (a loopback listener
  would keep the node's wildcard bind from succeeding);
- `Browsing No`: cupsd advertises nothing (the node's record, dnssd.py, is the printer),
- `PreserveJobFiles No`: CUPS deletes a delivery's spooled copy as soon as it is done,
- no `<Policy meshprint-secure-print>` block: the old Secure Print queue's operation
  policy (written by earlier releases of `meshprint intake install`, whose queue took
  jobs from users without a Unix account) goes with the queue.
Everything else is kept as it was. Applied twice, it changes nothing.
"""

from __future__ import annotations

import re

SOCKET = "/run/cups/cups.sock"
SETTINGS = {"Browsing": "No", "PreserveJobFiles": "No"}
OLD_POLICY = "meshprint-secure-print"


def _set(lines: list[str], name: str, value: str) -> list[str]:
    pattern = re.compile(rf"\s*{name}\s", re.IGNORECASE)
    found = [i for i, line in enumerate(lines) if pattern.match(line + " ") and "<" not in line]
    if not found:
        return [*lines, f"{name} {value}"]
    out = [line for i, line in enumerate(lines) if i not in found[1:]]
    out[found[0]] = f"{name} {value}"
    return out


def _without_old_policy(lines: list[str]) -> list[str]:
    opening = f"<policy {OLD_POLICY}>"
    start = next((i for i, line in enumerate(lines) if line.strip().lower() == opening), None)
    if start is None:
        return lines
    end = next(
        (i for i in range(start, len(lines)) if lines[i].strip().lower() == "</policy>"),
        len(lines) - 1,
    )
    return [*lines[:start], *lines[end + 1 :]]


def network_listeners(text: str) -> list[str]:
    """The `Port`/`Listen` lines of `text` that listen on the network (or loopback)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) != 2:
            continue
        key = words[0].lower()
        if key in ("port", "sslport") or (
            key in ("listen", "ssllisten") and not words[1].startswith("/")
        ):
            out.append(line.strip())
    return out


def local_conf(text: str, socket: str = SOCKET) -> str:
    network = set(network_listeners(text))
    lines = [line for line in text.splitlines() if line.strip() not in network]
    sockets = [
        i
        for i, line in enumerate(lines)
        if line.split()[:1] == ["Listen"] and len(line.split()) == 2
    ]
    if not sockets:
        lines.insert(0, f"Listen {socket}")
    for name, value in SETTINGS.items():
        lines = _set(lines, name, value)
    lines = _without_old_policy(lines)
    return "\n".join(lines) + "\n"
