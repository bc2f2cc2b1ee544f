"""Kill loop: kill -9 of the delivering node at varied moments of a release, then count
stuck jobs and double prints.

Run from the repository root:  .venv/bin/python bench/kill_delivery.py [--trials N] [--quick]

A 3-node LocalMesh, one user, and a slow RAW printer (`--pdl as-is`, a socket server in
this process that reads slowly through a small receive buffer, so a document takes a
second or two to go out and is never all parked in the kernel's buffers). Each trial
submits a fresh 8 MB job (held on all three nodes), releases it through node 1 and kills
node 1 (SIGKILL) after a delay spread over the whole release — before its claims, after
them, mid-stream, after the printer took it all — then starts it again and checks, as
the issue asks:

- stuck: a holder still shows the job "delivering" `SETTLE` seconds after the node is
  back (every release and reprint of it would be refused);
- before: complete copies the printer received before any reprint (must be <= 1), once
  every connection to it has ended;
- after: complete copies once the job is gone everywhere (must be exactly 1). As an
  owner would: with no complete copy at the printer the job is reprinted through node 2
  (`reprint`); with one (the node died after the document had gone out, before it knew:
  "unknown", it may have printed — and it did) the owner deletes the job instead.

The kill moments are spread over 0 .. 1.3 times a release's duration, measured first
with a release nobody kills.

Printed: one line per trial and a last TOTAL line with the stuck and double counts (a
double is a trial with more than one complete copy). The exit status is 1 when any trial
was stuck or printed twice. `tests/integration/test_kill_delivery.py` runs 10 trials of
the same loop.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.fixtures is not part of the installed package
    sys.path.insert(0, str(ROOT))

from appliance.devtools.localmesh import LocalMesh  # noqa: E402
from appliance.errors import MeshprintError  # noqa: E402
from bench.harness import run_in_scratch  # noqa: E402
from tests.fixtures.rawsink import RawSink  # noqa: E402

USER = "kill"
PASSWORD = "granite-falcon-0123456789"  # passes the password policy (not the user name)
PRINTER = "slow-raw"
DELIVERING = 1  # the node the release goes through, and the one killed
REPRINTING = 2
SIZE = 8 * 1024 * 1024  # more than the kernel parks for a socket (4 MiB send buffer)
READ_DELAY = 0.012  # per read (at most 64 KiB) by the printer …
RCVBUF = 64 * 1024  # … whose small receive buffer lets little wait in the kernel
BEYOND = 1.3  # kill moments are spread over 0 .. this times a release's duration
SETTLE = 15.0  # after the node is back, how long a holder may still show "delivering"


@dataclass
class Outcome:
    delay: float
    states: dict[int, str] = field(default_factory=dict)  # after settling, per node
    stuck: bool = False
    before: int = 0  # complete copies before any reprint
    partial: int = 0  # copies cut short before any reprint
    reprinted: bool = False
    deleted: bool = False  # by the owner, who found it printed
    after: int = 0  # complete copies once the job is gone everywhere
    note: str = ""

    @property
    def double(self) -> bool:
        return self.before > 1 or self.after > 1

    def line(self, trial: int) -> str:
        states = " ".join(f"n{i}={s}" for i, s in sorted(self.states.items()))
        return (
            f"trial {trial:3d} kill at {self.delay:4.2f}s: {states or 'gone everywhere'};"
            f" before {self.before} (+{self.partial} partial),"
            f" {'reprinted' if self.reprinted else 'deleted' if self.deleted else 'no reprint'},"
            f" after {self.after}"
            f"{' STUCK' if self.stuck else ''}{' DOUBLE' if self.double else ''}"
            f"{'; ' + self.note if self.note else ''}"
        )


def job_states(mesh: LocalMesh, job_id: str) -> dict[int, str]:
    """The job's state in each node's own database (nodes without it left out)."""
    states: dict[int, str] = {}
    for node in mesh.nodes:
        uri = f"file:{node.data / 'meshprint.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            row = db.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is not None:
            states[node.index] = str(row[0])
    return states


def wait_until(condition: object, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


class KillLoop:
    """Trials of kill -9 during a release on a running mesh with the slow printer."""

    def __init__(self, mesh: LocalMesh, user: str, token: str, password: str, sink: RawSink):
        self.mesh, self.user, self.token, self.password, self.sink = (
            mesh,
            user,
            token,
            password,
            sink,
        )

    @classmethod
    def printer_for(cls, mesh: LocalMesh, sink: RawSink) -> None:
        uri = f"socket://127.0.0.1:{sink.port}"
        data = str(mesh.nodes[0].data)
        mesh.cli("printer", "add", PRINTER, "--uri", uri, "--pdl", "as-is", "--data", data)
        mesh.wait_directory()

    def copies(self, data: bytes) -> tuple[int, int]:
        """(complete, partial) copies of `data` the printer received, once every
        connection to it has ended."""
        self.sink.wait(len(list(self.sink.directory.iterdir())), 30, include_broken=True)
        got = self.sink.received(include_broken=True)
        complete = sum(1 for d in got if d == data)
        partial = sum(1 for d in got if d and d != data and data.startswith(d))
        return complete, partial

    def _held(self, data: bytes) -> str:
        job_id = self.mesh.client(0, "submit").submit((self.user, self.token), data, "kill")["id"]
        if not wait_until(lambda: len(job_states(self.mesh, job_id)) == 3, 30):
            raise MeshprintError(f"job {job_id} did not reach three holders")
        return job_id

    def _release(self, job_id: str, **extra: object) -> dict[str, object]:
        request = {"printer": PRINTER, "release_id": secrets.token_hex(12), **extra}
        client = self.mesh.client(DELIVERING)
        return dict(client.release(job_id, request, (self.user, self.password)))

    def calibrate(self) -> float:
        """Seconds from a release request to its job gone everywhere, nobody killed."""
        job_id = self._held(secrets.token_bytes(SIZE))
        start = time.monotonic()
        self._release(job_id)
        if not wait_until(lambda: not job_states(self.mesh, job_id), 60, 0.02):
            raise MeshprintError("the calibration release did not print")
        return time.monotonic() - start

    def delays(self, trials: int) -> list[float]:
        longest = BEYOND * self.calibrate()
        if trials == 1:
            return [longest / 2]
        return [round(i * longest / (trials - 1), 3) for i in range(trials)]

    def trial(self, delay: float) -> Outcome:
        mesh = self.mesh
        outcome = Outcome(delay)
        data = secrets.token_bytes(SIZE)
        job_id = self._held(data)

        def release_it() -> None:
            with contextlib.suppress(MeshprintError):
                self._release(job_id)

        thread = threading.Thread(target=release_it, daemon=True)
        thread.start()
        time.sleep(delay)
        mesh.kill(DELIVERING)
        thread.join(30)
        mesh.start(DELIVERING)
        mesh.wait_live(len(mesh.nodes), index=DELIVERING)

        def settled() -> bool:
            return "delivering" not in job_states(mesh, job_id).values()

        outcome.stuck = not wait_until(settled, SETTLE)
        outcome.states = job_states(mesh, job_id)
        outcome.before, outcome.partial = self.copies(data)
        try:
            if outcome.states and outcome.before == 0 and not outcome.stuck:
                outcome.reprinted = True
                self.reprint(job_id)
            elif outcome.states and outcome.before:
                outcome.deleted = True
                mesh.client(REPRINTING).delete(job_id, (self.user, self.password))
        except MeshprintError as err:
            outcome.note = f"{type(err).__name__}: {err}"
        wait_until(lambda: not job_states(mesh, job_id), 60)
        outcome.after, _ = self.copies(data)
        if job_states(mesh, job_id):
            outcome.note += " (still held at the end)"
        return outcome

    def reprint(self, job_id: str) -> None:
        """Release the job again through another node with `reprint`, until it settles."""
        client = self.mesh.client(REPRINTING)
        request = {"printer": PRINTER, "reprint": True, "release_id": secrets.token_hex(12)}
        delivery = client.release(job_id, request, (self.user, self.password))
        deadline = time.monotonic() + 60
        while delivery["stage"] not in ("printed", "failed", "unknown"):
            if time.monotonic() > deadline:
                raise MeshprintError(f"the reprint did not settle: {delivery}")
            time.sleep(0.2)
            delivery = client.release_status(delivery["release_id"])
        if delivery["stage"] != "printed":
            raise MeshprintError(f"the reprint ended {delivery['stage']}: {delivery['reason']}")


def run(root: Path, sessions: list[int], trials: int) -> int:
    mesh = LocalMesh(root / "mesh", size=3)
    with RawSink(read_delay=READ_DELAY, rcvbuf=RCVBUF) as sink:
        try:
            mesh.create()
            sessions += [n.process.pid for n in mesh.nodes if n.process is not None]
            token = mesh.add_user(USER, PASSWORD)
            KillLoop.printer_for(mesh, sink)
            loop = KillLoop(mesh, USER, token, PASSWORD, sink)
            outcomes = []
            for number, delay in enumerate(loop.delays(trials), start=1):
                outcome = loop.trial(delay)
                outcomes.append(outcome)
                print(outcome.line(number), flush=True)
                node = mesh.nodes[DELIVERING]
                if node.process is not None and node.process.pid not in sessions:
                    sessions.append(node.process.pid)
        finally:
            mesh.close()
    stuck = sum(o.stuck for o in outcomes)
    double = sum(o.double for o in outcomes)
    missing = sum(o.after == 0 for o in outcomes)
    print(f"TOTAL {len(outcomes)} trials: stuck {stuck}, double {double}, unprinted {missing}")
    return 1 if stuck or double or missing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="3 trials")
    args = parser.parse_args()
    trials = 3 if args.quick else max(1, args.trials)
    return run_in_scratch("meshprint-kill-", lambda root, s: run(root, s, trials))


if __name__ == "__main__":
    sys.exit(main())
