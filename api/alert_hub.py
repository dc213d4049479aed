"""Fan-out of alert events to the subscribers of this API process.

One task polls the event table for rows past the last sequence it saw (an indexed range read,
every 100 ms) and hands each to every subscriber's queue. A subscriber registers before it reads
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

from storage.alerts import AlertStore

log = logging.getLogger(__name__)

POLL_S = 0.1
QUEUE_LIMIT = 10_000

Event = dict[str, Any]


@dataclass(eq=False)  # compared and hashed by identity: each subscriber is one entry of the set
class Subscription:
    accepts: Callable[[Event], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class AlertHub:
    def __init__(self, store: AlertStore) -> None:
        self._store = store
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._seen = 0

    async def start(self) -> None:
        self._seen = await asyncio.to_thread(self._store.last_seq)
        self._task = asyncio.create_task(self._poll(), name="alert-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for s in self._subs:
            s.queue.put_nowait(None)

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
                await asyncio.sleep(POLL_S)


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
