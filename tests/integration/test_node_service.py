"""`meshprint node` as systemd runs it: a fresh data directory, sd_notify on a real socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from appliance.sessions import free_port


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
    proc = subprocess.Popen(
        [*cli, "node", "--data", str(data), "--host", "127.0.0.1", *port_args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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
        proc.send_signal(signal.SIGTERM)
        while messages(sock) != ["STOPPING=1"]:
            pass
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
