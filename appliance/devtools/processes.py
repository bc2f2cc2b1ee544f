"""Processes the project starts for itself (local mesh nodes, the virtual printer, test
daemons): each runs in a session of its own, so stopping it never leaves a child behind."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

from appliance.errors import MeshprintError

HOST = "127.0.0.1"


class ProcessesLeft(MeshprintError):
    """Processes of a stopped session survived SIGKILL."""

    status = 500


LOWEST_PORT = 20000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A TCP (or, with SOCK_DGRAM, UDP) port on 127.0.0.1 that nothing uses right now, for
    a server started a moment later.

    Chosen below the kernel's ephemeral range: a port from that range (what binding to
    port 0 gives) can be taken meanwhile as the local end of some outgoing connection,
    and the server then fails with "address already in use". Ports already handed out by
    this process are not handed out again."""
    top = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(LOWEST_PORT, top) if top > LOWEST_PORT + 100 else 0
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            port = int(probe.getsockname()[1])
        _handed_out.add(port)
        return port
    raise MeshprintError("no free port on 127.0.0.1")


def session_members(sid: int) -> list[int]:
    """Ids of the live (not zombie) processes whose session id is `sid`: a process started
    with `start_new_session=True` and all its descendants share it."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may contain spaces and parentheses.
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 3 and fields[3] == str(sid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def stop_session(process: subprocess.Popen[bytes], timeout: float = 5.0) -> list[int]:
    """SIGTERM the session, SIGKILL what is left after `timeout`. Returns the ids that had
    to be killed; raises ProcessesLeft if any survive that."""
    sid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)
    grace = time.monotonic() + 2
    while session_members(sid) and time.monotonic() < grace:
        time.sleep(0.05)
    killed = session_members(sid)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    deadline = time.monotonic() + 5
    while left := session_members(sid):
        if time.monotonic() > deadline:
            raise ProcessesLeft(f"processes of session {sid} survived SIGKILL: {left}")
        time.sleep(0.05)
    return killed


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (say, a temp directory)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def unix_socket_answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket `path` (a daemon is up)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True
