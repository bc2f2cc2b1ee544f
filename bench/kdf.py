"""KDF and sign-in storm benchmark: what a password guess costs, and what a storm of bad
sign-ins costs a node.

Run from the repository root:  .venv/bin/python bench/kdf.py [--quick] [--storm N]

1. KDF cost, in this process, one thread: the current wrapping (Argon2id, the cost in
   `appliance.crypto.userkeys.ARGON2_COST`) and the old one (scrypt n=2^15, r=8, p=1,
   which keys made before Argon2id still use until they are re-wrapped). Best of the
   reps; guesses per second per core = 1 / best. An attacker with a copy of a node's
   directory pays this per guess per core (more with a GPU, where Argon2id's memory
   cost is what holds them back). The Raspberry Pi 4 figure is an estimate: its cores
   are taken as PI_SLOWDOWN (3-4x) slower than this machine's.
2. Sign-in storm, against a real one-node LocalMesh on 127.0.0.1: N concurrent bad
   sign-ins (GET /v1/jobs with a wrong password, each its own TLS connection, all
   started at once), in two shapes: all from one address (an attacker's PC), and from
   N/5 addresses, 5 each (as many as the per-address limit lets in: the KDF gate alone
   bounds that one). Meanwhile a normal client (another user, another address) signs in
   with the right password, waiting out Retry-After on a 503. The node's RSS is sampled
   every 10 ms against its idle RSS; the growth is compared with the target (<= 200 MB)
   and marked PASS or MISS. The machine's load is shown before and after.

The exit status is 0 either way (1 only when the benchmark itself could not run). Every
process started runs in a session of its own (the SESSIONS line); all are stopped, the
directory is removed, and the last line says whether anything was left.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import ssl
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from appliance.crypto.userkeys import (  # noqa: E402
    ARGON2_COST,
    ARGON2ID,
    KDF_CONCURRENCY,
    KDF_QUEUE,
    SCRYPT,
    SCRYPT_COST,
    derive,
)
from appliance.devtools.localmesh import LocalMesh  # noqa: E402
from appliance.devtools.signinstorm import (  # noqa: E402
    Answer,
    Storm,
    loopback_sources,
    sign_in,
    watching,
)
from appliance.site.tls import client_context  # noqa: E402
from bench.harness import run_in_scratch  # noqa: E402

MB = 2**20
USER, PASSWORD = "bench", "granite-falcon-0123456789"
NORMAL_ADDRESS = "127.0.200.7"
PI_SLOWDOWN = (3.0, 4.0)
GROWTH_TARGET_MB = 200.0
NORMAL_PATIENCE = 10.0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def kdf_seconds(kdf: str, cost: dict[str, int], reps: int) -> float:
    """Best of `reps`: seconds for one derivation."""
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        derive(kdf, cost, "a guess", os.urandom(16))
        best = min(best, time.perf_counter() - started)
    return best


def report_kdf(reps: int) -> None:
    print(f"KDF cost (one thread, best of {reps}; nproc {len(os.sched_getaffinity(0))})")
    for label, kdf, cost in (
        ("current", ARGON2ID, ARGON2_COST),
        ("old", SCRYPT, SCRYPT_COST),
    ):
        seconds = kdf_seconds(kdf, cost, reps)
        params = " ".join(f"{k}={v}" for k, v in cost.items())
        memory = cost["m"] * 1024 if kdf == ARGON2ID else 128 * cost["n"] * cost["r"]
        pi = " to ".join(f"{seconds * f:.2f}" for f in PI_SLOWDOWN)
        print(
            f"KDF {label:>7} {kdf:<8} {params:<18} {memory / MB:4.0f} MiB: {seconds * 1000:6.1f} ms"
            f" = {1 / seconds:5.1f} guesses/s per core here; Pi 4 estimate {pi} s per guess"
        )


def normal_sign_ins(
    context: ssl.SSLContext, port: int, answers: list[Answer], halt: threading.Event
) -> None:
    """The normal client: the right password from its own address, again and again while
    the storm lasts, and then until it has been served once (at most NORMAL_PATIENCE s);
    on a 503 it waits Retry-After before trying again."""
    time.sleep(0.3)
    deadline: float | None = None
    while True:
        answer = sign_in("127.0.0.1", port, context, USER, PASSWORD, NORMAL_ADDRESS)
        answers.append(answer)
        if halt.is_set():
            deadline = deadline or time.monotonic() + NORMAL_PATIENCE
            if answer.status == 200 and any(a.status == 200 for a in answers):
                return
            if time.monotonic() > deadline:
                return
        time.sleep(float(answer.retry_after or 0.5) if answer.status == 503 else 0.2)


def storm(mesh: LocalMesh, label: str, sources: list[str], per_source: int) -> bool:
    node = mesh.nodes[0]
    assert node.process is not None
    context = client_context(mesh.ca)
    time.sleep(1)  # let the previous storm's connections wind down
    answers: list[Answer] = []
    halt = threading.Event()
    normal = threading.Thread(
        target=normal_sign_ins, args=(context, node.release_port, answers, halt), daemon=True
    )
    before = load()
    with watching(node.process.pid) as memory:
        normal.start()
        started = time.perf_counter()
        counts = Storm("127.0.0.1", node.release_port, mesh.ca, sources, per_source).run()
        took = time.perf_counter() - started
        halt.set()
        normal.join()
    total = len(sources) * per_source
    ok_normal = [a for a in answers if a.status == 200]
    waited = 0.0  # from the client's first try to its first success
    if ok_normal:
        first = answers.index(ok_normal[0])
        waited = sum(a.seconds for a in answers[: first + 1])
    growth = memory.growth / MB
    print(f"\nstorm: {label}: {total} concurrent bad sign-ins, done in {took:.1f} s")
    print(
        f"  answers: {dict(sorted(counts.items()))}"
        " (0 = closed unanswered by the HTTPS server's connection caps)"
    )
    print(
        f"  normal client: {len(ok_normal)}/{len(answers)} sign-ins served, first after "
        f"{waited:.2f} s (+ Retry-After waits), slowest served "
        f"{max((a.seconds for a in ok_normal), default=float('nan')):.2f} s, statuses "
        f"{sorted({a.status for a in answers})}"
    )
    print(f"  load average before {before}, after {load()}")
    ok = growth <= GROWTH_TARGET_MB and bool(ok_normal)
    print(
        f"MEMORY storm {label}: idle {memory.idle / MB:.0f} MiB, peak {memory.peak / MB:.0f} MiB,"
        f" growth {growth:.0f} MiB (target <= {GROWTH_TARGET_MB:.0f}, normal client served)"
        f"  {verdict(ok)}",
        flush=True,
    )
    return ok


def run(args: argparse.Namespace, root: Path, sessions: list[int]) -> int:
    size = args.storm or (100 if args.quick else 1000)
    report_kdf(3 if args.quick else 10)
    print(f"\nKDF gate: {KDF_CONCURRENCY} at once, {KDF_QUEUE} waiting; the rest 503 at once")
    mesh = LocalMesh(root / "mesh", size=1, name="Bench office")
    try:
        mesh.create()
        sessions += [n.process.pid for n in mesh.nodes if n.process is not None]
        print(f"  SESSIONS {' '.join(str(s) for s in sessions)}", flush=True)
        mesh.add_user(USER, PASSWORD)
        context = client_context(mesh.ca)
        port = mesh.nodes[0].release_port
        warm = sign_in("127.0.0.1", port, context, USER, PASSWORD, NORMAL_ADDRESS)
        if warm.status != 200:
            raise RuntimeError(f"the warm-up sign-in got {warm.status}")
        storm(mesh, "one address", loopback_sources(1), size)
        storm(mesh, f"{size // 5} addresses x 5", loopback_sources(size // 5, 10), 5)
    finally:
        with contextlib.suppress(Exception):
            mesh.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 KDF reps, storms of 100")
    parser.add_argument("--storm", type=int, help="bad sign-ins per storm (default 1000)")
    args = parser.parse_args()
    if args.storm is not None and args.storm < 5:
        parser.error("--storm must be at least 5")
    return run_in_scratch("meshprint-bench-kdf-", lambda root, sessions: run(args, root, sessions))


if __name__ == "__main__":
    sys.exit(main())
