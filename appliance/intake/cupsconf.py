"""cupsd.conf for Secure Print: share it on the network, keep no documents around.

`shared_conf(text, listen)` returns cupsd.conf with
- `Listen ADDRESS` for the network (`*:631` on the appliance) unless already there
  (`Port N` counts for `*:N`; loopback listeners on that port go, the wildcard covers
  them); IPPS is served on the same port (CUPS detects TLS),
- `Allow @LOCAL` in `<Location />`, so devices on the local networks may print,
- `Browsing No`: the queue is advertised by our own DNS-SD record (dnssd.py) with the
  AirPrint subtype, not a second time by cupsd under another name,
- `PreserveJobFiles No`: CUPS deletes its spooled copy as soon as the job is done,
- `<Policy meshprint-secure-print>`, the Secure Print queue's operation policy (POLICY).
Everything else is kept as it was. Applied twice, it changes nothing.

Why a policy of its own: the people printing to Secure Print have no Unix account on the
appliance (iOS says `mobile`, Windows `HOST\\user`), and Debian's cupsd since
2.4.2-3+deb12u10 (upstream OpenPrinting/cups#1555) crashes in the `@OWNER` checks of the
default policy when the requesting user or the job's owner has no account: on
Send-Document, Cancel-Job, and on Get-Job-Attributes of such a job, which is how every Mac
and iPhone prints. This policy has no owner check anywhere: anyone on the local networks
may send a job (as with the default policy), a job's private values (name, user, host)
are shown to administrators only, and cancelling, holding or moving jobs and changing the
queue are for administrators (@SYSTEM) only — the backend hands a job to the node within
seconds, so a sender has nothing to cancel at CUPS.
"""

from __future__ import annotations

import re

SETTINGS = {"Browsing": "No", "PreserveJobFiles": "No"}
POLICY = "meshprint-secure-print"
_POLICY_BLOCK = [
    f"<Policy {POLICY}>",
    "  # written by 'meshprint intake install': no owner checks (see meshprint's cupsconf.py)",
    "  JobPrivateAccess @SYSTEM",
    "  JobPrivateValues default",
    "  SubscriptionPrivateAccess @SYSTEM",
    "  SubscriptionPrivateValues default",
    "  <Limit Create-Job Print-Job Print-URI Validate-Job Send-Document Send-URI Close-Job"
    " Create-Job-Subscription Renew-Subscription Cancel-Subscription Get-Notifications>",
    "    Order deny,allow",
    "  </Limit>",
    "  <Limit Hold-Job Release-Job Restart-Job Purge-Jobs Set-Job-Attributes Reprocess-Job"
    " Cancel-Current-Job Suspend-Current-Job Resume-Job Cancel-My-Jobs CUPS-Move-Job"
    " Cancel-Job CUPS-Authenticate-Job CUPS-Get-Document CUPS-Add-Modify-Printer"
    " CUPS-Delete-Printer CUPS-Add-Modify-Class CUPS-Delete-Class CUPS-Set-Default"
    " CUPS-Get-Devices Pause-Printer Resume-Printer Enable-Printer Disable-Printer"
    " Hold-New-Jobs Release-Held-New-Jobs Cancel-Jobs CUPS-Accept-Jobs CUPS-Reject-Jobs>",
    "    AuthType Default",
    "    Require user @SYSTEM",
    "    Order deny,allow",
    "  </Limit>",
    "  <Limit All>",
    "    Order deny,allow",
    "  </Limit>",
    "</Policy>",
]


def _has_listen(lines: list[str], listen: str) -> bool:
    host, _, port = listen.rpartition(":")
    for line in lines:
        words = line.split()
        if len(words) != 2:
            continue
        if words[0].lower() == "listen" and words[1] == listen:
            return True
        if words[0].lower() == "port" and host in ("*", "0.0.0.0") and words[1] == port:
            return True
    return False


def _set(lines: list[str], name: str, value: str) -> list[str]:
    pattern = re.compile(rf"\s*{name}\s", re.IGNORECASE)
    found = [i for i, line in enumerate(lines) if pattern.match(line + " ") and "<" not in line]
    if not found:
        return [*lines, f"{name} {value}"]
    out = [line for i, line in enumerate(lines) if i not in found[1:]]
    out[found[0]] = f"{name} {value}"
    return out


def _allow_local(lines: list[str]) -> list[str]:
    start = next((i for i, line in enumerate(lines) if line.strip() == "<Location />"), None)
    if start is None:
        return [*lines, "<Location />", "  Order allow,deny", "  Allow @LOCAL", "</Location>"]
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "</Location>")
    block = [line.split() for line in lines[start + 1 : end]]
    if any(w[:1] == ["Allow"] and w[-1] in ("@LOCAL", "all") for w in block if w):
        return lines
    return [*lines[:end], "  Allow @LOCAL", *lines[end:]]


def _policy(lines: list[str]) -> list[str]:
    """POLICY's block as _POLICY_BLOCK says, in place of any earlier version of it."""
    opening = f"<Policy {POLICY}>".lower()
    start = next((i for i, line in enumerate(lines) if line.strip().lower() == opening), None)
    if start is None:
        return [*lines, *_POLICY_BLOCK]
    end = next(
        (i for i in range(start, len(lines)) if lines[i].strip().lower() == "</policy>"),
        len(lines) - 1,
    )
    return [*lines[:start], *_POLICY_BLOCK, *lines[end + 1 :]]


def shared_conf(text: str, listen: str) -> str:
    lines = text.splitlines()
    host, _, port = listen.rpartition(":")
    if host in ("*", "0.0.0.0"):
        # The wildcard covers loopback: drop loopback listeners on the same port, which
        # would make binding the wildcard fail.
        loopback = {f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
        lines = [
            line
            for line in lines
            if not (line.split()[:1] == ["Listen"] and line.split()[-1] in loopback)
        ]
    if not _has_listen(lines, listen):
        last = max(
            (i for i, line in enumerate(lines) if line.split()[:1] in (["Listen"], ["Port"])),
            default=-1,
        )
        lines.insert(last + 1, f"Listen {listen}")
    for name, value in SETTINGS.items():
        lines = _set(lines, name, value)
    lines = _allow_local(lines)
    lines = _policy(lines)
    return "\n".join(lines) + "\n"
