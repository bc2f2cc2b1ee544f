"""Control-plane benchmark: a release command published on the site broker, against the
same release made by a direct HTTPS call, in the same run.

Run from the repository root:  .venv/bin/python bench/control.py [--quick] [--runs N]

Set up first, not timed: a 3-node LocalMesh, the site broker (`meshprint broker config`
+ a real mosquitto on a free loopback port), one user, and a RAW printer (`--pdl as-is`:
no conversion) that is a socket server inside this process: it notes the moment each
connection arrives, which is when the holder starts delivering (after its checks, claims
and share exchange) — the same end mark for both sides.

Per run, both sides release a fresh 10 KB job held on all three nodes, by the holder
node1, as an authorized (controller-signed) release to that printer:

- MQTT: the controller's signed command is published at QoS 1 on node1's command topic
  over a connection the controller keeps open (as its agent would); timed from the
  publish call to the printer's connection.
- HTTPS: POST /v1/jobs/ID/release to node1's release API (port 9266 role) with the same
  kind of signed command and the printer name, on a fresh TLS connection (as a client
  does); timed from the request to the printer's connection.

Runs alternate (MQTT first, then HTTPS first, ...); each waits until the previous
delivery is printed. One untimed warm-up of each side comes first. Printed: p50 and p99
of each side and their ratios MQTT/HTTPS (target <= 1.0: the broker path should not be
slower than a direct call), marked PASS or MISS. The exit status is 0 either way (1 only
when the benchmark itself could not run). Every process started runs in a session of its
own (the SESSIONS line); all are stopped, the directory is removed, and the last line says
whether anything was left.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.fixtures is not part of the installed package
    sys.path.insert(0, str(ROOT))

from appliance.datadir import DataDir  # noqa: E402
from appliance.devtools.localmesh import LocalMesh  # noqa: E402
from appliance.jobs.release import make_command  # noqa: E402
from appliance.mqtt import commands, topics  # noqa: E402
from appliance.site import release_authority  # noqa: E402
from appliance.site.state import open_site  # noqa: E402
from bench.harness import run_in_scratch  # noqa: E402
from tests.fixtures.mosquitto import SiteBroker, node_publisher, site_broker  # noqa: E402

USER = "bench"
PASSWORD = "granite-falcon-0123456789"
PRINTER = "bench-raw"
SUBMIT_NODE = 0
HOLDER = 1
DOCUMENT = os.urandom(10 * 1024)
RATIO_TARGET = 1.0
RUN_TIMEOUT = 60.0


class TimedPrinter:
    """A RAW printer in this process: notes when each connection arrives, reads it all."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[float] = []
        self._arrived = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            now = time.perf_counter()
            with self._arrived:
                self.arrivals.append(now)
                self._arrived.notify_all()
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while conn.recv(65536):
                pass

    def next_arrival(self, count: int) -> float:
        """The time of connection number `count` (waiting for it)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.arrivals) > count, RUN_TIMEOUT):
                raise TimeoutError("the printer saw no delivery")
            return self.arrivals[count]

    def close(self) -> None:
        self.sock.close()


class Rig:
    def __init__(self, root: Path, sessions: list[int]) -> None:
        self.mesh = LocalMesh(root / "mesh", size=3, name="Bench office")
        self.mesh.create()
        sessions += [n.process.pid for n in self.mesh.nodes if n.process is not None]
        self.token = self.mesh.add_user(USER, PASSWORD)
        self.printer = TimedPrinter()
        data = str(self.mesh.nodes[0].data)
        self.mesh.cli(
            "printer", "add", PRINTER, "--uri", f"socket://127.0.0.1:{self.printer.port}",
            "--pdl", "as-is", "--data", data,
        )  # fmt: skip
        self.broker: SiteBroker = site_broker(self.mesh).start()
        assert self.broker.process is not None
        sessions.append(self.broker.process.pid)
        self.mesh.wait_directory()
        _, site = open_site(DataDir(self.mesh.nodes[0].data))
        directory = site.directory()
        self.signer = release_authority.unlock(
            directory.doc, directory.site_id, self.mesh.recovery_key
        )
        self.site_id = site.site_id
        self.holder_id = self.mesh.nodes[HOLDER].id
        self.topic = topics.node_topic(self.site_id, self.holder_id, topics.COMMAND)
        self.publisher = node_publisher(self.mesh.nodes[0].data, self.broker.address).connect()
        self.wait_agent()

    def wait_agent(self) -> None:
        """Until node1's agent is subscribed: its presence says online."""
        log = self.mesh.nodes[HOLDER].log
        deadline = time.time() + 30
        while "mqtt: connected to" not in log.read_text(errors="replace"):
            if time.time() > deadline:
                raise TimeoutError("node1's agent did not connect to the broker")
            time.sleep(0.1)

    def held_job(self) -> str:
        receipt = self.mesh.client(SUBMIT_NODE, "submit").submit(
            (USER, self.token), DOCUMENT, "bench"
        )
        job_id = receipt["id"]
        deadline = time.time() + RUN_TIMEOUT
        while sum((n.data / "jobs" / f"{job_id}.sealed").exists() for n in self.mesh.nodes) < 3:
            if time.time() > deadline:
                raise TimeoutError(f"job {job_id} was not replicated")
            time.sleep(0.02)
        return job_id

    def wait_printed(self, release_id: str) -> None:
        client = self.mesh.client(HOLDER)
        deadline = time.time() + RUN_TIMEOUT
        while time.time() < deadline:
            try:
                if client.release_status(release_id)["stage"] == "printed":
                    return
            except Exception:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"release {release_id} was not printed")

    def via_mqtt(self) -> float:
        job_id = self.held_job()
        signed = commands.release_command(self.signer, job_id, self.holder_id, PRINTER)
        payload = commands.encode(signed)
        count = len(self.printer.arrivals)
        started = time.perf_counter()
        self.publisher.publish(self.topic, payload)
        elapsed = self.printer.next_arrival(count) - started
        self.wait_printed(_release_id(signed))
        return elapsed

    def via_https(self) -> float:
        job_id = self.held_job()
        signed = make_command(self.signer, job_id, self.holder_id)
        count = len(self.printer.arrivals)
        started = time.perf_counter()
        self.mesh.client(HOLDER).release(job_id, {**signed, "printer": PRINTER})
        elapsed = self.printer.next_arrival(count) - started
        self.wait_printed(_release_id(signed))
        return elapsed

    def close(self) -> None:
        self.publisher.close()
        self.broker.close()
        self.mesh.close()
        self.printer.close()


def _release_id(signed: dict[str, str]) -> str:
    return str(json.loads(base64.b64decode(signed["command"]))["release_id"])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(args: argparse.Namespace, root: Path, sessions: list[int]) -> int:
    runs = args.runs or (5 if args.quick else 40)
    print(f"meshprint control-plane benchmark{' (quick)' if args.quick else ''}", flush=True)
    print("\nstarting a 3-node mesh, the site broker (mosquitto) and a RAW printer ...")
    started = time.perf_counter()
    rig = Rig(root, sessions)
    try:
        print(f"  up in {time.perf_counter() - started:.1f}s; broker port {rig.broker.port}")
        print(f"  SESSIONS {' '.join(str(s) for s in sessions)}", flush=True)
        rig.via_mqtt()  # warm-up, not counted
        rig.via_https()
        mqtt_times: list[float] = []
        https_times: list[float] = []
        for n in range(runs):
            order = [("mqtt", rig.via_mqtt), ("https", rig.via_https)]
            for name, side in order if n % 2 == 0 else order[::-1]:
                (mqtt_times if name == "mqtt" else https_times).append(side())
        print(f"\n{runs} runs per side, order alternating; seconds to delivery start\n")
        print("=" * 72)
        for name, times in (("MQTT command", mqtt_times), ("direct HTTPS", https_times)):
            print(
                f"{name:>14}: p50 {percentile(times, 50) * 1000:7.1f} ms   "
                f"p99 {percentile(times, 99) * 1000:7.1f} ms   "
                f"min {min(times) * 1000:7.1f} ms   mean {statistics.mean(times) * 1000:7.1f} ms"
            )
        print("-" * 72)
        for label, p in (("p50", 50), ("p99", 99)):
            ratio = percentile(mqtt_times, p) / percentile(https_times, p)
            print(
                f"RATIO control {label} MQTT/HTTPS = {ratio:.2f}  "
                f"(target <= {RATIO_TARGET:.1f})  {verdict(ratio <= RATIO_TARGET)}"
            )
        load = os.getloadavg()[0]
        if load > (os.cpu_count() or 1):
            print(f"NOTE: load average {load:.2f} during the run: figures may be noisy")
        print("=" * 72, flush=True)
    finally:
        rig.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per side (smoke test)")
    parser.add_argument("--runs", type=int, help="runs per side (default 40, quick 5)")
    args = parser.parse_args()
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return run_in_scratch(
        "meshprint-bench-control-", lambda root, sessions: run(args, root, sessions)
    )


if __name__ == "__main__":
    sys.exit(main())
