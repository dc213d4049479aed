"""Waiting out a disk that refuses writes, inside the dataflow.

An epoch's results must be stored before the epoch is committed (that is what makes a replay
after a crash safe), so when the disk is full or read-only the flow cannot skip a write, and
failing would only make the supervisor restart it into the same full disk, again and again. So
the worker waits: it retries the write with back-off until the disk takes it. Nothing is read
from the journal meanwhile (the worker is blocked), so memory stays flat, and the lag that builds
up is what /health reports. The journal keeps everything that was acknowledged; the flow goes on
where it stopped once there is space again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TypeVar

from carbonstream.metrics import STORAGE_REFUSED
from storage.errors import StorageUnavailable, check_space, storage_errors
from storage.object_store import ObjectStoreLocation

log = logging.getLogger(__name__)

T = TypeVar("T")

Where = Path | str | ObjectStoreLocation
"""A directory or SQLite file (watched), a PostgreSQL URL or a bucket (not a local disk)."""

FIRST_RETRY_S = 0.2
MAX_RETRY_S = 5.0
"""Short enough that the flow resumes within seconds once space returns."""


def until_stored(component: str, path: Where, write: Callable[[], T]) -> T:
    """Runs `write` until the disk under `path` takes it; other errors propagate. A bucket or a
    PostgreSQL server is not a local disk: its errors propagate as they are."""
    delay = FIRST_RETRY_S
    refused = 0
    while True:
        try:
            with storage_errors(path) if isinstance(path, Path) else nullcontext():
                result = write()
        except StorageUnavailable as exc:
            STORAGE_REFUSED.labels(component, exc.reason).inc()
            if refused == 0:
                log.warning("%s: %s; the flow waits and retries", component, exc)
            refused += 1
            time.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            continue
        if refused:
            log.warning("%s: stored after %d refused attempts", component, refused)
        return result


def wait_for_room(component: str, path: Where, min_free_bytes: int) -> None:
    """Returns once the filesystem of `path` is writable with `min_free_bytes` (at least one
    byte) free: called before an epoch is committed, so that Bytewax's own recovery snapshot,
    written next and outside our reach, is not the write that finds the disk full."""
    if not isinstance(path, Path):
        return  # a bucket: no local filesystem to fill
    delay = FIRST_RETRY_S
    waited = False
    while (refused := check_space(path, max(min_free_bytes, 1), probe=True)) is not None:
        if not waited:
            log.warning("%s: %s; the flow waits before committing the epoch", component, refused)
            waited = True
        time.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_S)
    if waited:
        log.warning("%s: room again on %s; the flow goes on", component, path)
