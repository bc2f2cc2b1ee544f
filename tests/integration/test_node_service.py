"""`meshprint node` as systemd runs it: a fresh data directory, sd_notify on a real socket."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from appliance.devtools.processes import free_port


def messages(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_node_waits_for_the_site_then_serves_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(30)
    ports = [str(free_port()) for _ in range(3)]
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "4000000"}
    port_args = ["--peer-port", ports[0], "--submit-port", ports[1], "--release-port", ports[2]]
    cli = [sys.executable, "-m", "appliance.cli"]
    log = (tmp_path / "node.log").open("w")
    proc = subprocess.Popen(
        [*cli, "node", "--data", str(data), "--host", "127.0.0.1", *port_args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        first = messages(sock)
        assert first[0] == "READY=1" and "waiting for a site" in first[1], first
        assert messages(sock) == ["WATCHDOG=1"]
        subprocess.run(
            [*cli, "site", "create", "--data", str(data), "--name", "Test office"], check=True
        )
        while True:
            got = messages(sock)
            if got[0] == "READY=1":
                break
        assert got[1] == f"STATUS=serving: peer {ports[0]}, submit {ports[1]}, release {ports[2]}"
        with socket.create_connection(("127.0.0.1", int(ports[2])), timeout=5):
            pass
        # The "ready" line comes just before the node installs its signal handlers.
        deadline = time.monotonic() + 30
        while "ready: peer" not in (tmp_path / "node.log").read_text():
            assert time.monotonic() < deadline, "no ready line"
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        sock.setblocking(False)
        rest = []
        with contextlib.suppress(BlockingIOError):
            while True:
                rest += messages(sock)
        assert "STOPPING=1" in rest
    except BaseException:
        print((tmp_path / "node.log").read_text())
        raise
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
