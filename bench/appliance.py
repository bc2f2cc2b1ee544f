"""The appliance's budget: what its services cost together when nothing happens.

Run from the repository root:  .venv/bin/python bench/appliance.py [--quick]
                                       [--settle S] [--window S] [--workers N]

Starts on loopback what the appliance runs: the node (super node and controller, with
its Secure Print printer), the web UI under gunicorn as the systemd unit starts it
(gthread workers), the site's Mosquitto (`meshprint broker config`; the node connects
to it), a CUPS daemon of its own (tests/fixtures/cups.py) and avahi-daemon on a private
D-Bus (appliance/devtools: MdnsBus). After `--settle` seconds it watches them for
`--window` seconds: each service's CPU time (every process of its session, utime +
stime) and, at the end, its memory: RSS summed over its processes, and PSS (shared
pages split between the processes that share them: gunicorn's forked workers share the
master's, so PSS is what they really add). D-Bus is listed but not counted (the
appliance's system bus runs anyway).

Printed: a table per service, the total, the machine's load, and a verdict against the
budget (all together <= 150 MB and <= 1 % of a core; memory judged on the RSS sum, which
counts pages shared between processes once per process, PSS beside it). The exit status
is 0 either way (1 only when the benchmark itself could not run).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from appliance.devtools.localmesh import LocalMesh  # noqa: E402
from appliance.devtools.processes import HOST, free_port, session_members, stop_session  # noqa: E402
from appliance.devtools.virtual_printer import MdnsBus  # noqa: E402
from appliance.devtools.webserver import self_signed  # noqa: E402
from bench.harness import run_in_scratch  # noqa: E402
from bench.idle import cpu_seconds, load_average, rss_mb  # noqa: E402
from tests.fixtures.cups import PrivateCups  # noqa: E402
from tests.fixtures.mosquitto import site_broker  # noqa: E402

BUDGET_MB = 150.0
BUDGET_CORE = 0.01  # of one core
GUNICORN = Path(sys.executable).with_name("gunicorn")
NOT_COUNTED = {"dbus"}


@dataclass
class Usage:
    name: str
    processes: int
    cpu_share: float  # of one core, over the window
    rss_mb: float
    pss_mb: float


def pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start_webui(
    root: Path, data: Path, release: str, workers: int, preload: bool
) -> subprocess.Popen[bytes]:
    """gunicorn with the systemd unit's options, on a free loopback port."""
    cert, key = self_signed(root / "web")
    port = free_port()
    env = {
        **os.environ,
        "MESHPRINT_DATA": str(data),
        "MESHPRINT_RELEASE_API": release,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(GUNICORN),
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--timeout",
        "90",
        "--certfile",
        str(cert),
        "--keyfile",
        str(key),
        "--bind",
        f"{HOST}:{port}",
        *(["--preload"] if preload else []),
        "webui.wsgi:app",
    ]
    with (root / "gunicorn.log").open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {(root / 'gunicorn.log').read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return process
        time.sleep(0.1)
    stop_session(process)
    raise RuntimeError("gunicorn did not listen within 30 s")


def measure(services: dict[str, int], window: float) -> list[Usage]:
    """CPU over `window` and memory at its end, per service (its session id)."""
    members = {name: session_members(sid) for name, sid in services.items()}
    start = {pid: cpu_seconds(pid) for pids in members.values() for pid in pids}
    began = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - began
    out = []
    for name, sid in services.items():
        pids = [p for p in session_members(sid) if p in start]
        used = sum(cpu_seconds(p) - start[p] for p in pids)
        out.append(
            Usage(
                name,
                len(pids),
                used / elapsed,
                sum(rss_mb(p) for p in pids),
                sum(pss_mb(p) for p in pids),
            )
        )
    return out


def report(usage: list[Usage], load_before: float, load_after: float) -> None:
    print()
    print("service      procs  CPU % of a core  RSS MB  PSS MB")
    for u in usage:
        note = "  (not counted)" if u.name in NOT_COUNTED else ""
        print(
            f"{u.name:12s} {u.processes:5d}  {100 * u.cpu_share:15.3f}"
            f"  {u.rss_mb:6.1f}  {u.pss_mb:6.1f}{note}"
        )
    counted = [u for u in usage if u.name not in NOT_COUNTED]
    cpu = sum(u.cpu_share for u in counted)
    rss = sum(u.rss_mb for u in counted)
    pss = sum(u.pss_mb for u in counted)
    print(f"{'total':12s} {sum(u.processes for u in counted):5d}  {100 * cpu:15.3f}"
          f"  {rss:6.1f}  {pss:6.1f}")  # fmt: skip
    print(f"load {load_before:.2f}→{load_after:.2f} (the machine is shared)")
    mem = "PASS" if rss <= BUDGET_MB else "MISS"  # RSS double-counts shared pages: strict
    core = "PASS" if cpu <= BUDGET_CORE else "MISS"
    print(f"TARGET memory: {rss:.1f} MB RSS (PSS {pss:.1f}) <= {BUDGET_MB:.0f} MB {mem}")
    print(f"TARGET CPU: {100 * cpu:.3f} % of a core <= {100 * BUDGET_CORE:.0f} % {core}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short settle and window")
    parser.add_argument("--settle", type=float, default=None, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=None, help="seconds measured")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (the unit: 1)")
    parser.add_argument("--preload", action="store_true", help="gunicorn --preload")
    args = parser.parse_args()
    settle = args.settle if args.settle is not None else (3.0 if args.quick else 15.0)
    window = args.window if args.window is not None else (10.0 if args.quick else 60.0)
    print(
        f"appliance idle: settle {settle:.0f}s, window {window:.0f}s, {args.workers} web "
        f"workers, {os.cpu_count()} cores, load {load_average():.2f}",
        flush=True,
    )

    def run(root: Path, sessions: list[int]) -> int:
        mesh = LocalMesh(root / "mesh", size=1)
        cups = PrivateCups(root / "cups")
        bus = MdnsBus(root / "mdns")
        broker = None
        web = None
        try:
            try:
                mesh.create()
            finally:
                sessions += [n.process.pid for n in mesh.nodes if n.process is not None]
            node = mesh.nodes[0]
            broker = site_broker(mesh).start()
            assert broker.process is not None
            sessions.append(broker.process.pid)
            cups.start()
            assert cups.process is not None
            sessions.append(cups.process.pid)
            bus.start()
            assert bus.avahi is not None and bus.dbus is not None
            sessions += [bus.avahi.pid, bus.dbus.pid]
            web = start_webui(root, node.data, node.release, args.workers, args.preload)
            sessions.append(web.pid)
            print(f"  SESSIONS {' '.join(str(s) for s in sessions)}", flush=True)
            time.sleep(settle)
            services = {
                "node": sessions[0],
                "webui": web.pid,
                "mosquitto": broker.process.pid,
                "cups": cups.process.pid,
                "avahi": bus.avahi.pid,
                "dbus": bus.dbus.pid,
            }
            before = load_average()
            usage = measure(services, window)
            report(usage, before, load_average())
            return 0
        finally:
            if web is not None:
                stop_session(web)
            bus.stop()
            cups.stop(remove=False)
            if broker is not None:
                broker.close()
            mesh.close()

    return run_in_scratch("meshprint-appliance-", run, logs=("mesh/node*.log", "gunicorn.log"))


if __name__ == "__main__":
    sys.exit(main())
