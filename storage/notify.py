"""Wake-ups between processes that share the metadata database: the fan-out primitive for alerts.

Several API replicas stream the same alerts to their subscribers. An alert is a row in the
metadata database (the source of truth, with its id); what crosses processes here is only the
news "channel X has new rows", so that every replica reads them at once instead of polling.

    notifier = open_notifier(location)          # the metadata database's location
    notifier.notify("alerts", alert_id)         # after the row is committed (or in its
                                                # transaction: see PgNotifier.notify_in)
    with notifier.listen(["alerts"]) as inbox:  # one per replica, on a thread or via to_thread
        for n in inbox.wait(timeout_s=5.0):     # [] on time-out: re-read anyway (cheap safety)
            ...read rows newer than the last one seen...

On PostgreSQL this is LISTEN/NOTIFY: a notification is delivered to every listening session
once the sending transaction commits, never before (so a woken reader always finds the row),
and is lost if nobody listens at that moment. Readers therefore keep their own "last id seen"
and read everything after it on each wake-up or time-out: a lost or merged notification delays a
delivery by at most one time-out, it never loses an alert. Payloads are short (< 8000 bytes):
send ids, not alerts.

On SQLite (one host, the embedded default) there is no server to carry notifications: `notify`
does nothing and `wait` just sleeps for its time-out, which turns the same reader loop into
plain polling, the right thing for one API process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from storage.database import DbLocation
from storage.postgres import is_postgres_url


@dataclass(frozen=True)
class Notification:
    channel: str
    payload: str


class Inbox(Protocol):
    def wait(self, timeout_s: float) -> list[Notification]:
        """Notifications that arrived since the last call, waiting up to `timeout_s` for one."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Inbox: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Notifier(Protocol):
    def notify(self, channel: str, payload: str = "") -> None: ...

    def listen(self, channels: Sequence[str]) -> Inbox: ...

    def close(self) -> None: ...


def open_notifier(location: DbLocation) -> Notifier:
    """LISTEN/NOTIFY on a PostgreSQL metadata database; polling on SQLite."""
    if is_postgres_url(location):
        return PgNotifier(str(location))
    return PollingNotifier()


def _check_channel(channel: str) -> str:
    if not channel.replace("_", "").isalnum() or not channel[:1].isalpha():
        raise ValueError(f"channel names are identifiers (letters, digits, _): {channel!r}")
    return channel


class _InboxBase:
    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _PollingInbox(_InboxBase):
    def wait(self, timeout_s: float) -> list[Notification]:
        time.sleep(timeout_s)
        return []


class PollingNotifier:
    """SQLite: nothing to notify through; listeners poll at their time-out."""

    def notify(self, channel: str, payload: str = "") -> None:
        _check_channel(channel)

    def listen(self, channels: Sequence[str]) -> Inbox:
        for c in channels:
            _check_channel(c)
        return _PollingInbox()

    def close(self) -> None:
        pass


class _PgInbox(_InboxBase):
    def __init__(self, url: str, channels: Sequence[str]) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        for c in channels:
            self._conn.execute(f"LISTEN {_check_channel(c)}".encode())

    def wait(self, timeout_s: float) -> list[Notification]:
        out = [
            Notification(n.channel, n.payload)
            for n in self._conn.notifies(timeout=timeout_s, stop_after=1)
        ]
        # Whatever else already arrived comes along without waiting again.
        out += [Notification(n.channel, n.payload) for n in self._conn.notifies(timeout=0.0)]
        return out

    def close(self) -> None:
        self._conn.close()


class PgNotifier:
    """PostgreSQL LISTEN/NOTIFY. `notify` commits at once; `notify_in(conn, ...)` adds the
    notification to a transaction the caller holds (delivered when it commits, with the row)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._url = url
        self._conn = psycopg.connect(url, autocommit=True)
        self._lock = threading.Lock()

    def notify(self, channel: str, payload: str = "") -> None:
        with self._lock:
            self._conn.execute("SELECT pg_notify(%s, %s)", (_check_channel(channel), payload))

    @staticmethod
    def notify_in(conn: Any, channel: str, payload: str = "") -> None:
        """Inside an open transaction of a `storage.database` connection (e.g. the one that
        inserts the alert row): `SELECT pg_notify(?, ?)`."""
        conn.execute("SELECT pg_notify(?, ?)", (_check_channel(channel), payload))

    def listen(self, channels: Sequence[str]) -> Inbox:
        return _PgInbox(self._url, channels)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
