"""A directory of wheels seen as a PEP 503 simple index: project names (normalized) to the
files that belong to them, each with its SHA-256 (computed once per file version)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

SUFFIXES = (".whl", ".tar.gz", ".zip")
_hashes: dict[tuple[str, int, int], str] = {}


def normalize(name: str) -> str:
    """PEP 503: runs of '-', '_' and '.' become one '-', lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project_of(filename: str) -> str | None:
    """The normalized project a distribution file belongs to, None for anything else."""
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        return normalize(parts[0]) if len(parts) in (5, 6) else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            name, sep, _version = filename[: -len(suffix)].rpartition("-")
            return normalize(name) if sep and name else None
    return None


@dataclass(frozen=True)
class Dist:
    filename: str
    sha256: str


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _hashes:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


class Wheelhouse:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p for p in self.directory.iterdir() if p.is_file() and p.name.endswith(SUFFIXES)
        )

    def projects(self) -> list[str]:
        return sorted({p for f in self._files() if (p := project_of(f.name))})

    def dists(self, project: str) -> list[Dist]:
        wanted = normalize(project)
        return [Dist(f.name, _sha256(f)) for f in self._files() if project_of(f.name) == wanted]

    def path(self, filename: str) -> Path | None:
        """The file called `filename` if it is one of the index's distributions."""
        for f in self._files():
            if f.name == filename and project_of(f.name):
                return f
        return None
