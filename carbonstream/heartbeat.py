"""Each role says it is alive every few seconds; `/health` reads it from the metadata database."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from storage.metadata import STATUS_ROLE, MetadataDB

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, db: MetadataDB, role: str, interval_s: float = 2.0) -> None:
        self._db = db
        self._role = role
        self._interval = interval_s
        self._started_ns = time.time_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{role}", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        self._db.put_status(
            STATUS_ROLE,
            self._role,
            {"pid": os.getpid(), "host": socket.gethostname(), "started_ns": self._started_ns},
        )

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception as exc:  # a busy or full database must not kill the role
                if not failing:  # once per outage, not every beat
                    log.warning("heartbeat write failed (retrying quietly): %s", exc)
                failing = True
            else:
                if failing:
                    log.warning("heartbeat written again")
                failing = False

    def stop(self) -> None:
        self._stop.set()
