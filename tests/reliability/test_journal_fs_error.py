"""An append the journal acknowledged survives a filesystem error that strikes during it.

ext4 with errors=remount-ro aborts its own journal on an error; an fsync waiting at that moment
can return success for a transaction that never reached the disk, and after the repair (fsck)
the write is gone. Here a writer appends as fast as it can (as the HJ 212 server and the push
endpoint do under load) while the kernel records an error on the filesystem; after stop, fsck
and mount, every append that returned must be in the journal with its payload. The race is
narrow, so several trials are run, each on a fresh filesystem (before the journal confirmed its
commits, about one trial in five lost the last acknowledged append).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from storage.errors import StorageUnavailable
from storage.journal import Journal, JournalEntry
from tests.reliability.live import ext4, fsck, trigger_fs_error

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem image needs root"),
]

TRIALS = 12


def append_until_refused(journal: Journal, stop: threading.Event) -> dict[int, bytes]:
    """Appends until `stop`; returns offset -> payload of every append that returned."""
    acked: dict[int, bytes] = {}
    k = 0
    while not stop.is_set():
        payload = f"record {k} ".encode() * 40
        k += 1
        try:
            (offset,) = journal.append(0, [JournalEntry("s", "test", payload)])
        except StorageUnavailable:
            time.sleep(0.005)  # a sender re-sends after a refusal
            continue
        acked[offset] = payload
    return acked


@pytest.mark.parametrize("trial", range(TRIALS))
def test_acknowledged_append_survives_a_filesystem_error(tmp_path: Path, trial: int) -> None:
    data, image = tmp_path / "data", tmp_path / "disk.img"
    rng = random.Random(trial)
    with ext4(data, image, 32 << 20):
        journal = Journal(data / "journal", partitions=1)
        stop = threading.Event()
        result: dict[int, bytes] = {}
        writer = threading.Thread(
            target=lambda: result.update(append_until_refused(journal, stop)), daemon=True
        )
        writer.start()
        time.sleep(rng.uniform(0.2, 0.8))
        trigger_fs_error(data)
        time.sleep(0.3)
        stop.set()
        writer.join(timeout=30)
        journal.close()
    assert result, "nothing was acknowledged before the error"

    fsck(image)
    with ext4(data, image, 32 << 20):
        conn = sqlite3.connect(data / "journal" / "p0000.sqlite")
        try:
            stored = dict(conn.execute("SELECT offset, payload FROM records").fetchall())
        finally:
            conn.close()
    lost = sorted(o for o in result if stored.get(o) != result[o])
    assert not lost, f"acknowledged offsets lost by the repair: {lost} (of {len(result)})"
