"""sd_notify over a real AF_UNIX datagram socket, and waiting for a site."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.datadir import DataDir, Identity
from appliance.sdnotify import Notifier
from appliance.service import wait_for_site


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_and_status_arrive_as_one_datagram(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.ready("serving\non 9266")
    assert received(sock) == ["READY=1", "STATUS=serving on 9266"]
    assert notifier.status("draining")
    assert received(sock) == ["STATUS=draining"]
    assert notifier.stopping()
    assert received(sock) == ["STOPPING=1"]


def test_abstract_socket_address() -> None:
    name = f"meshprint-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1"]


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()


def test_a_missing_socket_is_not_fatal(tmp_path: Path) -> None:
    assert not Notifier(str(tmp_path / "gone.sock")).ready()


def test_watchdog_pings_only_with_an_interval_and_not_too_often(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    assert not Notifier.from_env({"NOTIFY_SOCKET": path}).watchdog()
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"})
    assert notifier.watchdog_interval == 60
    assert notifier.watchdog()
    assert received(sock) == ["WATCHDOG=1"]
    assert not notifier.watchdog()  # within a quarter of the interval


def test_watchdog_meant_for_another_process_is_ignored() -> None:
    env = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_env(env).watchdog_usec is None


def test_wait_for_site_reports_waiting_then_returns_when_the_site_appears(
    tmp_path: Path, listener: tuple[str, socket.socket]
) -> None:
    path, sock = listener
    data = DataDir(tmp_path / "data")
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})
    result: list[bool] = []
    waiter = threading.Thread(
        target=lambda: result.append(wait_for_site(data, notifier, poll=0.01))
    )
    waiter.start()
    first = received(sock)
    assert first[0] == "READY=1" and "waiting for a site" in first[1]
    assert received(sock) == ["WATCHDOG=1"]
    data.prepare_new()
    data.write_identity(Identity("n1", "s1", "super"))
    waiter.join(5)
    assert result == [True]


def test_wait_for_site_stops_on_request(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    assert not wait_for_site(DataDir(tmp_path / "empty"), Notifier(None), stop, poll=0.01)
    assert wait_for_site(DataDir(tmp_path / "empty"), Notifier(None), stop) is False


def test_listen_socket_is_the_one_systemd_passed_for_the_port() -> None:
    import os
    import socket

    from appliance.sdnotify import listen_socket

    def unused(fd: int) -> bool:
        try:
            os.fstat(fd)
        except OSError:
            return True
        return False

    # Two consecutive descriptors, as systemd passes them: placed where both are free
    # (what a long test run has open elsewhere leaves gaps in the lowest ones).
    first = next(fd for fd in range(200, 1000) if unused(fd) and unused(fd + 1))
    with (
        socket.create_server(("127.0.0.1", 0)) as a,
        socket.create_server(("127.0.0.1", 0)) as b,
    ):
        os.dup2(a.fileno(), first)
        os.dup2(b.fileno(), first + 1)
        try:
            port = b.getsockname()[1]
            env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:ipp"}
            got = listen_socket("ipp", port, env, first=first)
            assert got is not None and got.fileno() == first + 1
            got.detach()
            assert listen_socket("web", port, env, first=first) is None  # wrong name
            assert listen_socket("ipp", port, {**env, "LISTEN_PID": "1"}, first=first) is None
            assert listen_socket("ipp", port, {}, first=first) is None
            assert not unused(first) and not unused(first + 1)  # both still open
        finally:
            os.close(first)
            os.close(first + 1)


def test_a_passed_descriptor_that_is_not_a_socket_is_a_clear_error(tmp_path: Path) -> None:
    import os

    import pytest

    from appliance.errors import ConfigError
    from appliance.sdnotify import listen_socket

    with open(tmp_path / "f", "w") as f:
        env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "ipp"}
        with pytest.raises(ConfigError, match="not a socket"):
            listen_socket("ipp", 631, env, first=f.fileno())
