"""`make demo` as a new user follows it: the printed tour works line by line. It prints to
the node's own Secure Print printer with the ipptool line it shows, lists the job, kills
the two node processes it names, still releases the job with `release --to` from the
one node left, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
MESHPRINT = f"{shlex.quote(sys.executable)} -m appliance.cli"
REPO = Path(__file__).resolve().parents[2]


def run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One of the demo's printed command lines, as a shell runs it."""
    line = line.replace(".venv/bin/meshprint", MESHPRINT)
    return subprocess.run(
        line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_demo_tour_works_as_printed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    demo = subprocess.Popen(
        [sys.executable, "-m", "appliance.devtools.demo"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert demo.stdout is not None
    said: list[str] = []
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            said.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(said)
        assert "Press Ctrl-C" in text, text
        # Lines with a trailing backslash continue on the next line.
        lines = text.replace("\\\n", " ").splitlines()
        ca = next(line for line in lines if "export MESHPRINT_CA=" in line)
        env["MESHPRINT_CA"] = ca.split("=", 1)[1].strip()
        ipptool = next(line.strip() for line in lines if line.strip().startswith("ipptool"))
        printed = run(ipptool, tmp_path, env)
        assert printed.returncode == 0, printed.stdout + printed.stderr
        jobs_line = next(line.strip() for line in lines if " jobs --node" in line)
        listed = run(jobs_line, tmp_path, env)
        assert listed.returncode == 0, listed.stderr
        job_id = re.search(r"\bj[0-9a-z]{20,}\b", listed.stdout)
        assert job_id, listed.stdout
        kill = next(line.strip() for line in lines if line.strip().startswith("kill "))
        pids = [int(p) for p in re.findall(r"\b\d+\b", kill.split("#")[0])]
        assert len(pids) == 2, kill
        assert run(kill.split("#")[0], tmp_path, env).returncode == 0
        status_line = next(line.strip() for line in lines if " status --node" in line)
        status_line = status_line.split("#")[0]
        deadline = time.time() + 30
        while time.time() < deadline:
            status = run(status_line, tmp_path, env).stdout
            if status.count(" down ") >= 2:
                break
            time.sleep(1)
        assert status.count(" down ") >= 2, status
        release = next(
            line.strip()
            for line in lines
            if " release JOB_ID" in line and "--user demo" in line and "--to out.txt" in line
        )
        released = run(release.replace("JOB_ID", job_id.group(0)), tmp_path, env)
        assert released.returncode == 0, released.stderr
        assert (tmp_path / "out.txt").read_bytes().startswith(b"%PDF")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            rest = demo.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            rest = demo.communicate()[0]
    assert "Stopping the demo mesh" in rest
    assert demo.returncode == 0
