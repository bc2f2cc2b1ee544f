"""What differs between Linux, macOS and Windows for the node's files, in one place.

- File modes: POSIX gives the data directory 0700 and its files 0600 (`os.fchmod` on the
  open descriptor, so there is no moment with a wider mode). Windows has no POSIX modes
  (`os.chmod` only sets the read-only flag) and no `os.fchmod`: there the data directory
  under %ProgramData% is protected by its ACL, which `meshprint edge install` sets
  (SYSTEM and Administrators only), and the mode calls are skipped.
- Directory fsync: POSIX makes a rename durable by fsyncing the directory. Windows cannot
  open a directory as a file; NTFS journals the rename itself, so the step is skipped
  there, knowingly. The rename stays atomic on every platform (`os.replace`).
- The open-file limit: RLIMIT_NOFILE is POSIX; Windows has no such limit to raise.
- The allocator: on glibc a node sets fixed malloc thresholds (`tune_malloc`); other C
  libraries and Windows keep their own.
- Early writeback: Linux starts writing a file's new pages to the disk without waiting
  and without a journal commit (`sync_file_range`, `start_writeback`); elsewhere the
  store syncs on a background thread instead.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any


def is_windows() -> bool:
    return os.name == "nt"


def fchmod(fd: int, mode: int) -> None:
    """`os.fchmod` where the platform has POSIX modes; nothing on Windows."""
    if not is_windows():
        os.fchmod(fd, mode)


def chmod(path: Path, mode: int) -> None:
    """`os.chmod` where the platform has POSIX modes; nothing on Windows (where it would
    only toggle the read-only flag)."""
    if not is_windows():
        os.chmod(path, mode)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable: fsync the directory on POSIX;
    skipped on Windows (no directory handles for fsync; NTFS journals the rename)."""
    if is_windows():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_file_range() -> Any:
    """glibc's sync_file_range(fd, offset, nbytes, flags), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writing the dirty pages of the range; do not wait


def start_writeback(fd: int, offset: int, length: int) -> bool:
    """Have the kernel start writing `length` bytes of `fd` from `offset` to the disk,
    neither waiting for them nor committing the journal, so the fsync that makes the file
    durable later finds them written. False where there is no such call (the caller then
    syncs in the background itself); an error is left to that fsync to report."""
    if _SYNC_FILE_RANGE is None:
        return False
    _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)
    return True


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 1024 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024


def tune_malloc() -> bool:
    """On glibc, allocations up to `MMAP_THRESHOLD` come from the heap, which keeps up to
    `TRIM_THRESHOLD` free: a job streams in pieces of a few hundred KiB, and glibc's
    defaults map and unmap each of them (page faults and TLB flushes: about a fifth of a
    node's CPU per job). Left alone where the environment sets them (glibc's
    MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_), and off glibc. Whether it was set."""
    chosen = {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
    if not sys.platform.startswith("linux") or chosen:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
