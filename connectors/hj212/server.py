"""The HJ 212 TCP server: thousands of logger connections into the durable journal.

Per connection, a Rust `StreamDecoder` turns reads into frames: frames split or glued across
reads are reassembled, garbage is skipped up to the next `##` (never buffered), and every
rejected frame has a reason (counted per site and reason). A CRC-valid packet is attributed to a
site by its MN and must carry the site's password; otherwise it is counted and dropped without
an answer (a logger with a wrong password keeps sending, so the connection stays open).

Accepted packets go to a group-commit writer: all packets that arrive while one journal commit
runs are made durable together in the next (one transaction per journal partition), so the cost
of an fsync is shared by every connection. Only when `Journal.append` has returned is the answer
written (9014 for data uploads, 9011 for other requests, when the packet's Flag asks for one):
an acknowledged packet is never lost. When the disk refuses the commit (full, read-only), no
answer is written (the standard has no negative answer to data; the logger re-sends what was not
answered), the refusal is counted (`carbonstream_storage_refused_writes_total`) and the writer
pauses briefly before the next commit. If the journal falls behind (more than
`max_pending_packets` waiting), connections stop being read until it catches up (TCP pushes back
on the loggers). A connection silent for `idle_timeout_s` is closed; an unfinished frame it held
is counted as `incomplete`.

Counters per site and per connection are kept here and published to the metadata database
(status component `hj212`) for the API; Prometheus metrics carry the per-site totals.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from carbonstream.core import InputError, hj212
from carbonstream.metrics import (
    HJ212_ANSWER_SECONDS,
    HJ212_CONNECTIONS,
    HJ212_CONNECTIONS_OPENED,
    HJ212_PACKETS,
    HJ212_REJECTED,
    JOURNAL_APPENDED,
    SAMPLES_INGESTED,
    STORAGE_REFUSED,
)
from connectors.hj212.settings import Hj212ServerSettings, SiteSettings
from storage.errors import StorageUnavailable
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.records import HJ212_PACKETS as PACKETS_KIND
from storage.records import encode_hj212_packets

log = logging.getLogger(__name__)

SOURCE = "hj212"
STATUS_COMPONENT = "hj212"
LOGGED_ERRORS_PER_CONNECTION = 5
STORAGE_RETRY_S = 1.0
"""Pause after the disk refused a commit: short against a logger's answer timeout (HJ 212
loggers wait seconds before re-sending), long enough not to spin on a full disk."""


@dataclass
class SiteStats:
    packets: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    last_packet_ns: int | None = None
    last_peer: str | None = None

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


@dataclass
class _Pending:
    site: SiteSettings
    mn: str
    cn: int
    recv_ns: int
    frame: bytes
    conn: _Connection
    answer: bytes | None
    received: float


class _Connection(asyncio.Protocol):
    def __init__(self, server: Hj212Server) -> None:
        self.server = server
        self.decoder = hj212.StreamDecoder()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.site: str | None = None
        self.opened_ns = time.time_ns()
        self.last_activity = time.monotonic()
        self.packets = 0
        self.rejected = 0
        self.bytes = 0
        self.paused = False
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        HJ212_CONNECTIONS_OPENED.inc()
        if not self.server._admit(self):
            self.closed = True
            self.server.count_reject("too_many_connections", None)
            transport.abort()
            return
        HJ212_CONNECTIONS.inc()

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        self.bytes += len(data)
        for item in self.decoder.feed(data):
            if item[0] == "packet":
                self._packet(item[1], item[2], item[3], item[4], item[5], item[6])
            elif item[0] == "bad_packet":
                self._reject(item[2], item[3])
            else:
                self._reject(item[1], item[2])

    def connection_lost(self, exc: Exception | None) -> None:
        self._abandon_pending()
        if not self.closed:
            self.closed = True
            HJ212_CONNECTIONS.dec()
        self.server._forget(self)
        log.debug(
            "hj212 %s (%s) closed: %d packets, %d rejected, %d bytes",
            self.peer,
            self.site,
            self.packets,
            self.rejected,
            self.bytes,
        )

    # -- packets -----------------------------------------------------------------------------

    def _reject(self, reason: str, message: str, site: str | None = None) -> None:
        self.rejected += 1
        site = site if site is not None else self.site
        self.server.count_reject(reason, site)
        if self.rejected <= LOGGED_ERRORS_PER_CONNECTION:
            log.info("hj212 %s (%s): refused: %s", self.peer, site or "unknown site", message)

    def _packet(self, frame: bytes, mn: str, pw: str, cn: int, st: int, flag: int) -> None:
        site = self.server.sites_by_mn.get(mn)
        if site is None:
            self._reject("unknown_mn", f"MN {mn!r} is not a configured site")
            return
        if pw != site.password:
            self._reject("bad_password", f"wrong password for MN {mn!r}", site.id)
            return
        self.site = site.id
        answer = None
        if flag >= 0 and flag & 1:
            code = 9014 if 2000 <= cn < 3000 else 9011
            try:
                answer = hj212.answer(frame, code, st=self.server.settings.answer_st)
            except InputError as exc:  # a field the answer cannot echo: journal, do not answer
                self._reject("unanswerable", str(exc), site.id)
        self.server.writer.submit(
            _Pending(site, mn, cn, time.time_ns(), frame, self, answer, time.monotonic())
        )
        if self.server.writer.pending > self.server.settings.max_pending_packets:
            self.server._pause(self)

    def acknowledge(self, item: _Pending) -> None:
        """Called once the packet is durable in the journal."""
        self.packets += 1
        if item.answer is not None and self.transport is not None and not self.closed:
            self.transport.write(item.answer)
            HJ212_ANSWER_SECONDS.observe(time.monotonic() - item.received)

    def _abandon_pending(self) -> None:
        gone = self.decoder.abandon()
        if gone is not None:
            reason, message, _ = gone
            self._reject(reason, message)

    def close_idle(self) -> None:
        self._abandon_pending()
        if self.transport is not None:
            self.transport.close()

    def status(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "site": self.site,
            "opened_ns": self.opened_ns,
            "idle_s": round(time.monotonic() - self.last_activity, 3),
            "packets": self.packets,
            "rejected": self.rejected,
            "bytes": self.bytes,
            "buffered": self.decoder.buffered,
        }


class JournalWriter:
    """Group commit: packets submitted while a commit runs go together into the next one."""

    def __init__(self, journal: JournalBackend, max_batch: int, on_resume: Any) -> None:
        self._journal = journal
        self._max_batch = max_batch
        self._queue: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._on_resume = on_resume
        self._idle = asyncio.Event()
        self._idle.set()
        self.commits = 0
        self.failures = 0
        self.refusing = False
        """The last commit was refused by the disk (full, read-only)."""

    @property
    def pending(self) -> int:
        return len(self._queue)

    def submit(self, item: _Pending) -> None:
        self._queue.append(item)
        self._idle.clear()
        self._wake.set()

    async def drained(self) -> None:
        """Returns once nothing is waiting for the journal."""
        await self._idle.wait()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                n = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                try:
                    await self._commit(batch)
                except StorageUnavailable as exc:
                    # Not acknowledged: HJ 212 has no negative answer to a data upload; a logger
                    # re-sends what it got no 9014 for (after its answer timeout), which is what
                    # the disk needs. Pausing here lets the queue fill, so reading pauses too.
                    self.failures += 1
                    STORAGE_REFUSED.labels(SOURCE, exc.reason).inc()
                    if not self.refusing:
                        log.warning("hj212: %s; packets are not acknowledged until it passes", exc)
                    self.refusing = True
                    await asyncio.sleep(STORAGE_RETRY_S)
                    continue
                except Exception:
                    # Not acknowledged: the loggers resend what they got no answer for.
                    self.failures += 1
                    log.exception("hj212: journal append failed; %d packets not acknowledged", n)
                    continue
                if self.refusing:
                    log.warning("hj212: the journal stores packets again")
                    self.refusing = False
                self.commits += 1
                for item in batch:
                    HJ212_PACKETS.labels(item.site.id, str(item.cn)).inc()
                    stats = item.conn.server.site_stats(item.site.id)
                    stats.packets += 1
                    stats.bytes += len(item.frame)
                    stats.last_packet_ns = item.recv_ns
                    stats.last_peer = item.conn.peer
                    item.conn.acknowledge(item)
                self._on_resume()
            self._idle.set()

    async def _commit(self, batch: Sequence[_Pending]) -> None:
        by_partition: dict[int, list[_Pending]] = {}
        for item in batch:
            p = self._journal.partition_for(item.site.id)
            by_partition.setdefault(p, []).append(item)
        entries = {p: _entry(items) for p, items in by_partition.items()}
        await asyncio.gather(
            *(asyncio.to_thread(self._journal.append, p, [e]) for p, e in entries.items())
        )
        JOURNAL_APPENDED.labels(SOURCE).inc(len(entries))
        SAMPLES_INGESTED.labels(SOURCE).inc(len(batch))


def _entry(items: Sequence[_Pending]) -> JournalEntry:
    sites = {i.site.id for i in items}
    payload = encode_hj212_packets(
        [i.site.id for i in items],
        [i.mn for i in items],
        [i.cn for i in items],
        [i.recv_ns for i in items],
        [i.conn.peer for i in items],
        [i.frame for i in items],
    )
    stream = next(iter(sites)) if len(sites) == 1 else SOURCE
    return JournalEntry(stream, PACKETS_KIND, payload)


class Hj212Server:
    """`await start()`, then `port` is bound; `serve_forever()` runs until cancelled."""

    def __init__(
        self, settings: Hj212ServerSettings, sites: Sequence[SiteSettings], journal: JournalBackend
    ) -> None:
        self.settings = settings
        self.sites_by_mn = {s.mn: s for s in sites}
        self.journal = journal
        self.writer = JournalWriter(journal, settings.batch_max_packets, self._resume_all)
        self._connections: set[_Connection] = set()
        self._paused: set[_Connection] = set()
        self._site_stats: dict[str, SiteStats] = {}
        self.rejected: dict[str, int] = {}
        self.pauses = 0
        """Times a connection stopped being read because the journal was behind."""
        """Everything refused, by reason (also before any site is known)."""
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            self.settings.host,
            self.settings.port,
            backlog=4096,
            reuse_address=True,
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self._tasks = [
            asyncio.create_task(self.writer.run(), name="hj212-journal-writer"),
            asyncio.create_task(self._sweep_idle(), name="hj212-idle"),
        ]
        log.info(
            "hj212 server on %s:%d, %d site(s)",
            self.settings.host,
            self.port,
            len(self.sites_by_mn),
        )
        return self.port

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stops accepting, closes connections, and lets the journal writer finish."""
        if self._server is not None:
            self._server.close()
        for c in list(self._connections):
            if c.transport is not None:
                c.transport.close()
        if self.writer.refusing:  # the disk refuses: waiting would only delay the stop
            log.warning(
                "hj212: %d packets not stored (storage refusing); the loggers send them again",
                self.writer.pending,
            )
        else:
            try:
                await asyncio.wait_for(self.writer.drained(), timeout=10)
            except TimeoutError:
                log.warning("hj212: %d packets still waiting for the journal", self.writer.pending)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- connections -------------------------------------------------------------------------

    def _admit(self, conn: _Connection) -> bool:
        if len(self._connections) >= self.settings.max_connections:
            return False
        self._connections.add(conn)
        return True

    def _forget(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        self._paused.discard(conn)

    def _pause(self, conn: _Connection) -> None:
        if conn.transport is not None and not conn.paused:
            self.pauses += 1
            conn.transport.pause_reading()
            conn.paused = True
            self._paused.add(conn)

    def _resume_all(self) -> None:
        if not self._paused or self.writer.pending > self.settings.max_pending_packets // 2:
            return
        for c in self._paused:
            c.paused = False
            if c.transport is not None and not c.closed:
                c.transport.resume_reading()
        self._paused.clear()

    async def _sweep_idle(self) -> None:
        timeout = self.settings.idle_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.monotonic()
            for c in [c for c in self._connections if now - c.last_activity > timeout]:
                # A paused connection is silent because of us, not the logger.
                if not c.paused:
                    c.close_idle()

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- status ------------------------------------------------------------------------------

    def count_reject(self, reason: str, site: str | None) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        HJ212_REJECTED.labels(site or "", reason).inc()
        if site is not None:
            self.site_stats(site).reject(reason)

    def site_stats(self, site: str) -> SiteStats:
        s = self._site_stats.get(site)
        if s is None:
            s = self._site_stats[site] = SiteStats()
        return s

    def status(self) -> dict[str, Any]:
        """Per-site and per-connection counters (published for the API)."""
        connected: dict[str, int] = {}
        for c in self._connections:
            if c.site is not None:
                connected[c.site] = connected.get(c.site, 0) + 1
        return {
            "port": self.port,
            "connections": len(self._connections),
            "pending_packets": self.writer.pending,
            "commits": self.writer.commits,
            "failed_commits": self.writer.failures,
            "storage_refusing": self.writer.refusing,
            "pauses": self.pauses,
            "rejected": dict(self.rejected),
            "sites": {
                site: {
                    "connections": connected.get(site, 0),
                    "packets": s.packets,
                    "rejected": dict(s.rejected),
                    "bytes": s.bytes,
                    "last_packet_ns": s.last_packet_ns,
                    "last_peer": s.last_peer,
                }
                for site, s in sorted(self._site_stats.items())
            },
            "connection_list": [c.status() for c in self._connections],
        }
