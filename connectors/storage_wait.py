"""Waiting out a disk that refuses writes, for connectors that keep their data until it is stored.

A simulator, a poller or a file reader has nobody to send a 503 to: what it read is in its hands
only. When the journal refuses (`StorageUnavailable`: disk full, below the reserve, read-only),
it keeps the batch and tries again with back-off, instead of dropping it or ending the ingest
role (which would make the supervisor restart it in a loop while the disk stays full).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from carbonstream.metrics import STORAGE_REFUSED
from storage.errors import StorageUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 5.0
"""Short enough that appending resumes within seconds once space returns."""


async def until_stored(source: str, write: Callable[[], T]) -> T:
    """Runs the blocking `write` (a journal append) in a thread until the disk takes it."""
    delay = FIRST_RETRY_S
    refused = 0
    while True:
        try:
            result = await asyncio.to_thread(write)
        except StorageUnavailable as exc:
            STORAGE_REFUSED.labels(source, exc.reason).inc()
            if refused == 0:
                log.warning("%s: %s; keeping the data and retrying", source, exc)
            refused += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_S)
            continue
        if refused:
            log.warning("%s: stored again after %d refused attempts", source, refused)
        return result
