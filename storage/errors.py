"""One typed error for "the disk cannot take this write", whatever layer noticed it.

SQLite says "database or disk is full" or "attempt to write a readonly database", the OS says
ENOSPC or EROFS, and a nearly full disk is noticed before either (`check_space`). Callers should
not have to know which: they get `StorageUnavailable` with a `reason` and map it once: the API to
503, the HJ 212 server to "no answer" (the logger re-sends), the dataflow to "wait and retry".
Anything else stays the exception it was, so real bugs are not mistaken for a full disk.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Reason = Literal["full", "read_only", "io_error"]

_ERRNO_REASON: dict[int, Reason] = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "read_only",
    errno.EIO: "io_error",
}
_SQLITE_REASON: dict[int, Reason] = {
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_IOERR: "io_error",
    sqlite3.SQLITE_CANTOPEN: "io_error",
}
_TEXT = {
    "full": "storage full",
    "read_only": "storage read-only",
    "io_error": "storage I/O error",
}


class StorageUnavailable(Exception):
    """A write the disk refused (or would refuse): nothing of it is stored, so do not acknowledge.

    `reason` is "full", "read_only" or "io_error"; `path` is where the write went."""

    def __init__(self, reason: Reason, path: Path, detail: str) -> None:
        super().__init__(f"{_TEXT[reason]}: {detail} ({path})")
        self.reason: Reason = reason
        self.path = path
        self.detail = detail

    @property
    def title(self) -> str:
        """Short human text naming the reason, e.g. "storage full"."""
        return _TEXT[self.reason]


@dataclass(frozen=True)
class DiskState:
    """What the filesystem holding `path` says now (statvfs), for refusing early and /health."""

    path: Path
    total_bytes: int
    free_bytes: int
    read_only: bool


def disk_state(path: Path) -> DiskState:
    """statvfs of `path`, or of its nearest existing parent (a store not yet created)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    st = os.statvfs(path)
    return DiskState(
        path,
        st.f_blocks * st.f_frsize,
        st.f_bavail * st.f_frsize,
        bool(st.f_flag & os.ST_RDONLY),
    )


PROBE_PREFIX = ".write-probe-"
_swept: set[Path] = set()
"""Directories this process has removed stale probes from."""


def _remove_stale_probes(d: Path) -> None:
    """Removes the probes of processes that no longer run: a process killed between creating
    and removing its probe left it in the directory (the store's root, among the data).

    Once per directory and process: the journal probes after every commit, and a probe left
    by a killed process is swept by the first probe of the process that replaces it."""
    if d in _swept:
        return
    _swept.add(d)
    for stale in d.glob(f"{PROBE_PREFIX}*"):
        pid = stale.name.removeprefix(PROBE_PREFIX).split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            stale.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def probe_write(path: Path) -> StorageUnavailable | None:
    """Creates and removes an empty file next to `path`. A filesystem turned read-only by an
    error (ext4 errors=remount-ro) still says read-write to statvfs; only a write tells."""
    d = path if path.is_dir() else path.parent
    while not d.exists() and d.parent != d:
        d = d.parent
    probe = d / f"{PROBE_PREFIX}{os.getpid()}-{threading.get_ident()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        os.unlink(probe)
        _remove_stale_probes(d)
    except OSError as exc:
        reason = _ERRNO_REASON.get(exc.errno or 0)
        if reason is None:
            raise
        return StorageUnavailable(reason, path, str(exc))
    return None


def confirm_committed(path: Path) -> StorageUnavailable | None:
    """The error to report instead of an acknowledgement, or None: called after a commit's fsync
    returned, before the data is acknowledged.

    A filesystem error (ext4 errors=remount-ro) that strikes while an fsync waits can make that
    fsync return success although its transaction never reached the disk: the kernel aborts the
    filesystem journal, ends the open transaction as aborted, and the waiting fsync sees it as
    finished. After the repair (fsck) the write is gone. A read-only test cannot tell (statvfs
    still says read-write at that moment), but creating a file can: it needs a new transaction
    of the filesystem journal, which an aborted journal refuses. The abort is flagged before the
    transaction that fsync waits on is ended, so a probe made after the fsync returned fails
    whenever that fsync may have lied; the commit's outcome is then unknown and the caller must
    not acknowledge (the sender re-sends, and re-sends are deduplicated).
    """
    return probe_write(path)


def check_space(path: Path, min_free_bytes: int, probe: bool = False) -> StorageUnavailable | None:
    """The error a write to `path` should get now, or None: read-only, or less free space than
    `min_free_bytes` (a reserve kept so that what was already acknowledged can still be
    processed and stored). `probe`: also try a write (see `probe_write`)."""
    d = disk_state(path)
    if d.read_only:
        return StorageUnavailable("read_only", path, "the filesystem is mounted read-only")
    if probe and (refused := probe_write(path)) is not None:
        return refused
    if min_free_bytes and d.free_bytes < min_free_bytes:
        return StorageUnavailable(
            "full", path, f"{d.free_bytes} bytes free of {d.total_bytes} (reserve {min_free_bytes})"
        )
    return None


def classify(exc: BaseException, path: Path) -> StorageUnavailable | None:
    """`exc` as a StorageUnavailable when it means the disk refused a write, else None.

    SQLite reports a failed write(2) or fsync(2) as a generic I/O error without the errno, so an
    I/O error is looked at again (statvfs and a probe write): a read-only or full filesystem is
    named as such.
    """
    if isinstance(exc, StorageUnavailable):
        return exc
    reason: Reason | None = None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            reason = _SQLITE_REASON.get(code & 0xFF)
        elif "disk is full" in str(exc):
            reason = "full"
        elif "readonly database" in str(exc):
            reason = "read_only"
    elif isinstance(exc, OSError) and exc.errno is not None:
        reason = _ERRNO_REASON.get(exc.errno)
    if reason is None:
        return None
    if reason == "io_error":
        try:
            found = check_space(path, 1, probe=True)
        except OSError:
            found = None
        if found is not None:
            reason = found.reason
    return StorageUnavailable(reason, path, str(exc))


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Re-raises the disk's refusals inside the block as `StorageUnavailable` (the original
    chained as its cause); every other error passes unchanged."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        storage = classify(exc, path)
        if storage is None:
            raise
        raise storage from exc
