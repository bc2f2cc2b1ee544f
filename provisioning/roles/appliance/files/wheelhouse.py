#!/usr/bin/env python3
"""Collect everything a meshprint release needs into one directory, for the target's
architecture, so the appliance installs it with `pip --no-index` (no PyPI access needed
on the appliance, and a rollback never downloads anything).

    wheelhouse.py WHEEL OUTDIR ARCH      (ARCH: x86_64 or aarch64; Python 3.11 targets)

Binary wheels for the target come from the index; a dependency without one (pycups) is
fetched as a source archive and built on the target, with setuptools from here.
Prints "changed" when it added a file.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

EXTRAS = {"appliance"}
SOURCE_ONLY = {"pycups"}
GLIBC = ("2_17", "2_28", "2_31", "2_34", "2_35", "2_36")


def requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    result = []
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        spec, _, marker = line.split(":", 1)[1].partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra and extra.group(1) not in EXTRAS:
            continue
        result.append(spec.strip())
    return result


def project(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower()


def pip_download(out: Path, args: list[str]) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(out), *args]
    subprocess.run(cmd, check=True)


def main() -> None:
    wheel, out, arch = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    reqs = requirements(wheel)
    binary = [r for r in reqs if project(r) not in SOURCE_ONLY]
    source = [r for r in reqs if project(r) in SOURCE_ONLY]
    platforms = [f"manylinux_{g}_{arch}" for g in GLIBC] + [f"manylinux2014_{arch}", "any"]
    target = ["--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:"]
    target += [arg for p in platforms for arg in ("--platform", p)]
    pip_download(out, [*target, *binary, "setuptools>=68", "wheel"])
    if source:
        pip_download(out, ["--no-deps", "--no-binary=:all:", *source])
    if set(out.iterdir()) != before:
        print("changed")


if __name__ == "__main__":
    main()
