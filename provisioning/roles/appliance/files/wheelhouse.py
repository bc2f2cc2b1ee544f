#!/usr/bin/env python3
"""Collect everything a meshprint release needs into one directory, for the target's
architecture, so the appliance installs it with `pip --no-index` (no PyPI access needed
on the appliance, and a rollback never downloads anything).

    wheelhouse.py WHEEL OUTDIR ARCH      (ARCH: x86_64 or aarch64; Python 3.11 targets)
    wheelhouse.py WHEEL OUTDIR office    (the office PCs' wheels, see below)

Binary wheels for the target come from the index; a dependency without one (pycups) is
fetched as a source archive and built on the target, with setuptools from here.
Prints "changed" when it added a file.

`office` collects what an office PC needs to install a plain (edge) node from the
appliance's /simple/ index: the meshprint wheel and binary wheels of its core
dependencies (no extras) for Windows, macOS and Linux PCs, x86_64 and arm64, Python
3.11 to 3.13. The appliance can only serve what is collected here: a PC of any other
kind installs from PyPI instead.
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


OFFICE_PYTHONS = ("3.11", "3.12", "3.13")
MACOS = [f"10_{m}" for m in range(9, 16)] + [f"{m}_0" for m in range(11, 15)]
OFFICE_PLATFORMS = (
    ("win_amd64",),
    tuple(f"macosx_{v}_{a}" for v in MACOS[7:] for a in ("arm64", "universal2")),
    tuple(f"macosx_{v}_{a}" for v in MACOS for a in ("x86_64", "universal2")),
    (*tuple(f"manylinux_{g}_x86_64" for g in GLIBC), "manylinux2014_x86_64"),
    (*tuple(f"manylinux_{g}_aarch64" for g in GLIBC), "manylinux2014_aarch64"),
)


def core_requirements(wheel: Path) -> list[str]:
    """The dependencies of the plain install (no extras): what an edge node needs."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(name).decode()
    return [
        line.split(":", 1)[1].partition(";")[0].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra" not in line.partition(";")[2]
    ]


def office(wheel: Path, out: Path) -> None:
    """One resolution per (Python, platform): pip download picks a single wheel per
    project for the tags it is given, so each PC kind is asked for on its own."""
    reqs = core_requirements(wheel)
    for version in OFFICE_PYTHONS:
        for platforms in OFFICE_PLATFORMS:
            target = ["--python-version", version, "--implementation", "cp"]
            target += ["--only-binary=:all:", *[a for p in platforms for a in ("--platform", p)]]
            pip_download(out, [*target, "--platform", "any", *reqs])
    copy = out / wheel.name
    if not copy.exists():
        copy.write_bytes(wheel.read_bytes())


def main() -> None:
    wheel, out, arch = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    if arch == "office":
        out.mkdir(parents=True, exist_ok=True)
        before = set(out.iterdir())
        office(wheel, out)
        if set(out.iterdir()) != before:
            print("changed")
        return
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
