"""Idle-cost benchmark: what a mesh that does nothing costs, per node, as it grows.

Run from the repository root:  .venv/bin/python bench/idle.py [--quick] [--sizes 3,10,30]
                                                              [--settle S] [--window S]

For each size a LocalMesh of real node processes on loopback is created (node 0 the
controller, node 1 a super node, the rest edge nodes), left to settle (`--settle`, so the
joins' directory changes are over and back-off, where the sync has one, is in effect;
by default 30 s, or two gossip cycles, 2 x (N - 1) x GOSSIP_INTERVAL, when that is longer:
until then members still meet some peers for the first time, with a TLS handshake each,
which is the cost of a mesh starting, not of one idling), and then watched for
`--window` seconds: each node's CPU time (utime + stime from /proc/PID/stat) at the start
and the end of the window, and its RSS (VmRSS) at the end.

Printed per size: CPU-s per node per minute (mean and the busiest node), the whole
mesh's CPU-s per minute, mean RSS, and the machine's load average over the window (the
machine is shared: read the figures beside it). Then the growth per added node between
consecutive sizes (the increase of the per-node figure divided by the nodes added, and
the ratio of the per-node figures: flat is ~0 and ~1.0), and a PASS/MISS line against the
target (<= 0.1 CPU-s per node per minute at 10 nodes and more). The exit status is 0
either way (1 only when the benchmark itself could not run). Every node runs in a session
of its own (the SESSIONS line); all are stopped and the directory removed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from appliance.devtools.localmesh import LocalMesh  # noqa: E402
from appliance.errors import MeshprintError  # noqa: E402
from appliance.mesh.peers import GOSSIP_INTERVAL  # noqa: E402
from bench.harness import run_in_scratch  # noqa: E402

TARGET = 0.1  # CPU-s per node per minute, at 10 nodes and more
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Figures:
    nodes: int
    cpu_mean: float  # CPU-s per node per minute
    cpu_max: float
    rss_mb: float
    load: float  # 1-minute load average at the end of the window
    load_before: float


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the name may hold spaces: cut after it
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def measure(root: Path, sessions: list[int], size: int, settle: float, window: float) -> Figures:
    mesh = LocalMesh(root / f"mesh{size}", size=size)
    try:
        try:
            mesh.create()
        finally:
            sessions += [n.process.pid for n in mesh.nodes if n.process is not None]
        print(f"  SESSIONS {' '.join(str(s) for s in sessions)}", flush=True)
        time.sleep(settle)
        pids = [n.process.pid for n in mesh.nodes if n.process is not None]
        load_before = load_average()
        start = {pid: cpu_seconds(pid) for pid in pids}
        began = time.monotonic()
        time.sleep(window)
        elapsed = time.monotonic() - began
        used = [(cpu_seconds(pid) - start[pid]) * 60 / elapsed for pid in pids]
        rss = [rss_mb(pid) for pid in pids]
        running = [n for n in mesh.nodes if n.running]
        if len(running) != size:
            raise RuntimeError(f"only {len(running)} of {size} nodes still run")
        return Figures(
            size,
            sum(used) / len(used),
            max(used),
            sum(rss) / len(rss),
            load_average(),
            load_before,
        )
    finally:
        mesh.close()


def report(figures: list[Figures]) -> None:
    print()
    print("nodes  CPU-s/node/min  busiest  mesh CPU-s/min  RSS MB/node  load (before→after)")
    for f in figures:
        print(
            f"{f.nodes:5d}  {f.cpu_mean:14.3f}  {f.cpu_max:7.3f}  {f.cpu_mean * f.nodes:14.2f}"
            f"  {f.rss_mb:11.1f}  {f.load_before:.2f}→{f.load:.2f}"
        )
    for a, b in itertools.pairwise(figures):
        per_node = (b.cpu_mean - a.cpu_mean) / (b.nodes - a.nodes)
        ratio = b.cpu_mean / a.cpu_mean if a.cpu_mean > 0 else float("inf")
        print(
            f"GROWTH {a.nodes}→{b.nodes} nodes: {per_node:+.4f} CPU-s/node/min per added node"
            f" (per-node ratio {ratio:.2f})"
        )
    for f in figures:
        if f.nodes >= 10:
            verdict = "PASS" if f.cpu_mean <= TARGET else "MISS"
            print(f"TARGET {f.nodes} nodes: {f.cpu_mean:.3f} CPU-s/node/min <= {TARGET} {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 nodes, short settle and window")
    parser.add_argument("--sizes", default=None, help="comma-separated mesh sizes (3,10,30)")
    parser.add_argument("--settle", type=float, default=None, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=None, help="seconds measured")
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("3" if args.quick else "3,10,30")).split(",")]
    least = 5.0 if args.quick else 30.0

    def settle_for(size: int) -> float:
        if args.settle is not None:
            return float(args.settle)
        return least if args.quick else max(least, 2 * (size - 1) * GOSSIP_INTERVAL)

    window = args.window if args.window is not None else (10.0 if args.quick else 60.0)
    print(
        f"idle mesh: sizes {sizes}, settle {', '.join(f'{settle_for(n):.0f}' for n in sizes)}s, "
        f"window {window:.0f}s, "
        f"{os.cpu_count()} cores, load {load_average():.2f}",
        flush=True,
    )

    def run(root: Path, sessions: list[int]) -> int:
        figures = []
        for size in sizes:
            try:
                figures.append(measure(root, sessions, size, settle_for(size), window))
            except MeshprintError as err:  # e.g. a free port taken meanwhile by another run
                print(f"  {size} nodes: {err}; once more", flush=True)
                figures.append(measure(root / "again", sessions, size, settle_for(size), window))
            f = figures[-1]
            print(
                f"  {size} nodes: {f.cpu_mean:.3f} CPU-s/node/min, {f.rss_mb:.0f} MB",
                flush=True,
            )
        report(figures)
        return 0

    return run_in_scratch("meshprint-idle-", run, logs=("mesh*/node*.log",))


if __name__ == "__main__":
    sys.exit(main())
