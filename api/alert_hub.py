"""Fan-out of alert events to the subscribers of this API process.

One task reads the event table for rows past the last sequence it saw (an indexed range read)
and hands each to every subscriber's queue. When it reads: on SQLite (one host) it polls every
100 ms. On PostgreSQL, where several API replicas share the database, it listens on the
`alert_events` channel that the writer of events notifies in its committing transaction
(storage/alerts.py, storage/notify.py), so every replica reads a new event as soon as it is
committed, without each polling the server ten times a second; it still reads every second
without a notification (a notification sent while the listening session was being re-opened
is lost), and falls back to polling while it cannot listen. A subscriber registers before it reads
its backlog from the store and drops live events it already got from the backlog, so a resumed
stream (Last-Event-ID) has no gap and no duplicate. A subscriber too slow to keep up is closed
rather than allowed to grow memory; it resumes from its last event id like any other client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.alerts import ALERT_CHANNEL, AlertStore
from storage.notify import Inbox, open_notifier
from storage.postgres import is_postgres_url

log = logging.getLogger(__name__)

POLL_S = 0.1
"""SQLite, or PostgreSQL while the listening session is down: read this often."""
NOTIFIED_READ_S = 1.0
"""PostgreSQL: read at least this often even without a notification."""
RELISTEN_S = 5.0
"""PostgreSQL: after the listening session failed, try to open it again this often."""
QUEUE_LIMIT = 10_000

Event = dict[str, Any]


@dataclass(eq=False)  # compared and hashed by identity: each subscriber is one entry of the set
class Subscription:
    accepts: Callable[[Event], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class AlertHub:
    def __init__(self, store: AlertStore, notified_read_s: float = NOTIFIED_READ_S) -> None:
        self._store = store
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._seen = 0
        self._listens = is_postgres_url(store.path)
        self._notified_read_s = notified_read_s
        self._inbox: Inbox | None = None
        self._listen_after = 0.0
        self.wakes = 0
        """Reads started by a notification (PostgreSQL), for tests and logs."""

    async def start(self) -> None:
        # Listen before reading where we stand: an event committed in between is notified.
        await self._relisten()
        self._seen = await asyncio.to_thread(self._store.last_seq)
        self._task = asyncio.create_task(self._poll(), name="alert-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._drop_inbox()
        for s in self._subs:
            s.queue.put_nowait(None)

    async def _relisten(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._listens or self._inbox is not None or loop.time() < self._listen_after:
            return
        try:
            notifier = open_notifier(self._store.path)
            try:
                self._inbox = await asyncio.to_thread(notifier.listen, [ALERT_CHANNEL])
            finally:
                notifier.close()
        except Exception:  # the server unreachable: poll meanwhile, try again later
            log.warning("alert hub: cannot listen for new events; polling", exc_info=True)
            self._listen_after = loop.time() + RELISTEN_S

    def _drop_inbox(self) -> None:
        if self._inbox is not None:
            with contextlib.suppress(Exception):
                self._inbox.close()
            self._inbox = None

    async def _wait(self) -> None:
        """Until a notification arrives or it is time to read anyway."""
        await self._relisten()
        inbox = self._inbox
        if inbox is None:
            await asyncio.sleep(POLL_S)
            return
        try:
            if await asyncio.to_thread(inbox.wait, self._notified_read_s):
                self.wakes += 1
        except Exception:
            log.warning("alert hub: the listening session failed; polling", exc_info=True)
            self._drop_inbox()
            self._listen_after = asyncio.get_running_loop().time() + RELISTEN_S

    def subscribe(self, accepts: Callable[[Event], bool]) -> Subscription:
        sub = Subscription(accepts)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    async def _poll(self) -> None:
        while True:
            try:
                events = await asyncio.to_thread(self._store.events_after, self._seen, 1000)
            except Exception:  # a locked or busy database: try again next tick
                log.warning("alert hub: reading events failed", exc_info=True)
                events = []
            for e in events:
                self._seen = max(self._seen, int(e["seq"]))
                for sub in list(self._subs):
                    if not sub.accepts(e):
                        continue
                    try:
                        sub.queue.put_nowait(e)
                    except asyncio.QueueFull:
                        self._subs.discard(sub)  # too slow: closed, it resumes by event id
                        with contextlib.suppress(asyncio.QueueFull):
                            sub.queue.put_nowait(None)
            if len(events) < 1000:
                await self._wait()


def event_filter(
    site: list[str] | None,
    entity: list[str] | None,
    severity: list[str] | None,
    rule: list[str] | None,
) -> Callable[[Event], bool]:
    """Matches events whose labels and rule are among the given values (None: any)."""

    def accepts(e: Event) -> bool:
        labels = e.get("labels", {})
        return (
            (site is None or labels.get("site") in site)
            and (entity is None or labels.get("entity") in entity)
            and (severity is None or e.get("severity") in severity)
            and (rule is None or e.get("rule") in rule)
        )

    return accepts
