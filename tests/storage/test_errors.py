"""Every way the disk says no becomes one typed error with its reason; nothing else does."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.errors import PROBE_PREFIX, StorageUnavailable, classify, probe_write


def sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (sqlite_error(sqlite3.SQLITE_FULL, "database or disk is full"), "full"),
        (
            sqlite_error(sqlite3.SQLITE_READONLY, "attempt to write a readonly database"),
            "read_only",
        ),
        (sqlite_error(8 | (1 << 8), "readonly: cannot lock"), "read_only"),  # extended code
        (sqlite3.OperationalError("database or disk is full"), "full"),  # no code attached
        (sqlite3.OperationalError("attempt to write a readonly database"), "read_only"),
        (OSError(errno.ENOSPC, "No space left on device"), "full"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "full"),
        (OSError(errno.EROFS, "Read-only file system"), "read_only"),
    ],
)
def test_refusals_of_the_disk_are_typed(exc: BaseException, reason: str, tmp_path: Path) -> None:
    got = classify(exc, tmp_path / "x.sqlite")
    assert isinstance(got, StorageUnavailable)
    assert got.reason == reason
    assert str(exc) in str(got) and str(tmp_path) in str(got)


def test_an_io_error_on_a_healthy_disk_stays_an_io_error(tmp_path: Path) -> None:
    got = classify(sqlite_error(sqlite3.SQLITE_IOERR | (3 << 8), "disk I/O error"), tmp_path / "x")
    assert got is not None and got.reason == "io_error"


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.OperationalError("no such table: records"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        OSError(errno.ENOENT, "No such file or directory"),
        ValueError("not storage at all"),
    ],
)
def test_other_errors_are_left_alone(exc: BaseException, tmp_path: Path) -> None:
    assert classify(exc, tmp_path) is None


def test_a_probe_left_by_a_killed_process_is_removed_by_the_next_probe(tmp_path: Path) -> None:
    """A process killed between creating and removing its write probe left the file in the
    store's root, among the data (a crash-recovery test compared stores and found it)."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    left = tmp_path / f"{PROBE_PREFIX}{int(dead.stdout)}-140000000000000"
    left.touch()
    alive = tmp_path / f"{PROBE_PREFIX}{os.getppid()}-140000000000000"  # a running process's
    alive.touch()
    data = tmp_path / "zarr.json"
    data.write_text("{}")
    assert probe_write(tmp_path) is None
    assert not left.exists()
    assert alive.exists() and data.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, data.name])
