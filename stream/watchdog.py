"""Exits the flow process when its Bytewax workers stop making progress.

Bytewax 0.21 runs its workers as Rust threads. When one panics (its recovery database refused a
write on a disk that filled up between our check and its snapshot, say), the process neither
exits nor recovers: the main thread waits on the dead worker forever, alive to the supervisor
but processing nothing (or processing without ever completing an epoch again, when the thread
that died was the one writing snapshots). The journal source beats the watchdog from each epoch
snapshot; no snapshot for `flow.stall_exit_s` means the flow is dead or stuck, and the process
exits so the supervisor restarts it from the last snapshot, which is what makes the restart lose
nothing. A flow waiting out a full disk for that long is restarted too: it resumes the same way,
and crash-loops with the supervisor's back-off until the disk has room.
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

STALL_EXIT_STATUS = 75
"""EX_TEMPFAIL: a restart can help."""


class Progress:
    def __init__(self) -> None:
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self._last


FLOW_PROGRESS = Progress()


def start_watchdog(stall_exit_s: float, stop: threading.Event) -> threading.Thread:
    def watch() -> None:
        FLOW_PROGRESS.beat()
        while not stop.wait(min(1.0, stall_exit_s / 4)):
            silent = FLOW_PROGRESS.silent_for()
            if silent > stall_exit_s:
                log.error(
                    "the dataflow made no progress for %.0f s (a worker thread died); exiting "
                    "so that the supervisor restarts it from its last snapshot",
                    silent,
                )
                logging.shutdown()
                os._exit(STALL_EXIT_STATUS)

    thread = threading.Thread(target=watch, name="flow-watchdog", daemon=True)
    thread.start()
    return thread
