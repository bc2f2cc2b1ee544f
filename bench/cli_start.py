"""What one `meshprint` call costs before it does anything: `meshprint --help`, and the
parser of a client command (`meshprint jobs --help`), against `python -c pass` in the
same run (the interpreter's own start), with the machine's load beside it.

Run from the repository root:  .venv/bin/python bench/cli_start.py [--reps N]

Each figure is the best of N runs under /usr/bin/time -v (user + system CPU seconds and
peak RSS), as a ratio to the baseline. Targets (issue 15): --help <= 0.1 CPU-s and
<= 30 MB peak RSS. The exit status is 0 either way (1 only when /usr/bin/time is absent).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME = "/usr/bin/time"
TARGET_CPU, TARGET_MB = 0.1, 30.0


def measure(argv: list[str]) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS in MB of one run."""
    out = subprocess.run(
        [TIME, "-v", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stderr
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1))  # type: ignore[union-attr]
    return user + system, rss / 1024


def best(argv: list[str], reps: int) -> tuple[float, float]:
    runs = [measure(argv) for _ in range(reps)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    if not shutil.which(TIME):
        print(f"{TIME} is not installed (apt-get install time)")
        return 1
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  ({os.cpu_count()} cores)")
    py = sys.executable
    base_cpu, base_mb = best([py, "-c", "pass"], args.reps)
    print(f"{'what':28} {'CPU-s':>6} {'x base':>7} {'peak MB':>8} {'x base':>7}  target")
    print(f"{'python -c pass (baseline)':28} {base_cpu:6.3f} {1:7.2f} {base_mb:8.1f} {1:7.2f}")
    for label, argv in (
        ("meshprint --help", [py, "-m", "appliance.cli", "--help"]),
        ("meshprint jobs --help", [py, "-m", "appliance.cli", "jobs", "--help"]),
        ("meshprint node --help", [py, "-m", "appliance.cli", "node", "--help"]),
    ):
        cpu, mb = best(argv, args.reps)
        verdict = ""
        if label == "meshprint --help":
            ok = cpu <= TARGET_CPU and mb <= TARGET_MB
            verdict = f"<= {TARGET_CPU} CPU-s, <= {TARGET_MB:.0f} MB: {'PASS' if ok else 'MISS'}"
        ratio_cpu = cpu / base_cpu if base_cpu else float("inf")
        print(f"{label:28} {cpu:6.3f} {ratio_cpu:7.2f} {mb:8.1f} {mb / base_mb:7.2f}  {verdict}")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
