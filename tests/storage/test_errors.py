"""Every way the disk says no becomes one typed error with its reason; nothing else does."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from storage.errors import StorageUnavailable, classify


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
