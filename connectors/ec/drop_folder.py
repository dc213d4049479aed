"""The drop folder: raw files (TOA5 / ICOS CSV) dropped by loggers or sync jobs -> the journal.

Layout: `<path>/<site id>/<file>`; a file is read with its site's settings (connectors/ec/
readers.py) and its rows are appended as `ec_raw` records (at most one averaging period each).

- Each file once: after its rows are durable, the file's name, size and mtime are recorded in the
  metadata database (status component `ec_drop`); a file with a known (name, size, mtime) is
  skipped, so a restart does not send it again. A file that changes afterwards (a logger
  appending to it) is read again as a whole: its rows land on the same sample positions, so the
  periods still open get the new rows and closed periods are not reopened (late samples).
- Partial files: a file is read only once its size and mtime have not changed for `settle_s`.
- A file that cannot be read (another logger program, not TOA5 or ICOS, a site that is not
  configured) is recorded with the reason, counted, and not retried until it changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from carbonstream.config import Config
from carbonstream.metrics import (
    INGEST_REJECTED,
    JOURNAL_APPENDED,
    SAMPLES_INGESTED,
    STORAGE_REFUSED,
)
from connectors.ec.readers import EcReadError, read_raw_file
from connectors.ec.settings import EcSiteSettings
from storage.errors import StorageUnavailable
from storage.journal import JournalEntry
from storage.journal_backend import JournalBackend
from storage.metadata import MetadataDB
from storage.records import EC_RAW, encode_ec_raw

log = logging.getLogger(__name__)

SOURCE = "ec-drop-folder"
STATUS = "ec_drop"
SUFFIXES = (".dat", ".csv", ".txt")


@dataclass(frozen=True)
class Seen:
    size: int
    mtime_ns: int


class DropFolder:
    def __init__(self, config: Config, journal: JournalBackend, db: MetadataDB) -> None:
        self.root = config.ec.drop_folder.path
        self.settle_ns = round(config.ec.drop_folder.settle_s * 1e9)
        self.sites = {s.id: s for s in config.ec.all_sites()}
        self.journal = journal
        self.db = db
        self._candidates: dict[Path, tuple[Seen, int]] = {}

    def _done(self) -> dict[str, Seen]:
        """Files already read, by key, in the state they were read."""
        return {
            key: Seen(int(v["size"]), int(v["mtime_ns"]))
            for (_, key), (v, _) in self.db.status(STATUS).items()
        }

    def _key(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def scan(self, now_ns: int | None = None) -> list[Path]:
        """Files ready to read: settled and not yet read in this state."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        ready: list[Path] = []
        if not self.root.is_dir():
            return ready
        done = self._done()
        for path in sorted(self.root.glob("*/*")):
            if not path.is_file() or path.suffix.lower() not in SUFFIXES:
                continue
            st = path.stat()
            seen = Seen(st.st_size, st.st_mtime_ns)
            if done.get(self._key(path)) == seen:
                continue
            prev = self._candidates.get(path)
            if prev is None or prev[0] != seen:
                self._candidates[path] = (seen, now_ns)
                if self.settle_ns > 0:
                    continue
                prev = self._candidates[path]
            if now_ns - prev[1] >= self.settle_ns:
                ready.append(path)
        return ready

    def ingest(self, path: Path) -> int:
        """Reads one file into the journal; returns the samples appended."""
        st = path.stat()
        seen = Seen(st.st_size, st.st_mtime_ns)
        site_id = path.parent.name
        site = self.sites.get(site_id)
        status: dict[str, object] = {"size": seen.size, "mtime_ns": seen.mtime_ns}
        samples = 0
        if site is None:
            status["error"] = f"site {site_id!r} (the folder name) is not configured"
        else:
            try:
                table = read_raw_file(path, site)
            except EcReadError as exc:
                status["error"] = str(exc)
            else:
                samples = self._append(site, table.ts_ns, table.columns)
                status["samples"] = samples
                status["refused"] = dict(table.errors.counts)
                for reason, n in table.errors.counts.items():
                    INGEST_REJECTED.labels(SOURCE, reason).inc(n)
        if "error" in status:
            INGEST_REJECTED.labels(SOURCE, "unreadable_file").inc()
            log.warning("ec drop folder: %s: %s", path, status["error"])
        self.db.put_status(STATUS, self._key(path), status)
        self._candidates.pop(path, None)
        return samples

    def _append(self, site: EcSiteSettings, ts, columns) -> int:  # type: ignore[no-untyped-def]
        if ts.size == 0:
            return 0
        period_ns = round(site.period_s * 1e9)
        pidx = ts // period_ns
        entries = []
        for p in sorted(set(pidx.tolist())):
            sel = pidx == p
            payload = encode_ec_raw(ts[sel], {k: v[sel] for k, v in columns.items()})
            # A file read again (its "read" mark could not be stored) appends nothing twice.
            key = hashlib.blake2b(payload, digest_size=16, person=b"ec.drop").digest()
            entries.append(JournalEntry(site.id, EC_RAW, payload, key))
        self.journal.append_routed(entries)
        JOURNAL_APPENDED.labels(SOURCE).inc(len(entries))
        SAMPLES_INGESTED.labels(SOURCE).inc(int(ts.size))
        return int(ts.size)


async def run_drop_folder(config: Config, journal: JournalBackend) -> None:
    db = MetadataDB(config.storage.layout.metadata_db)
    folder = DropFolder(config, journal, db)
    folder.root.mkdir(parents=True, exist_ok=True)
    log.info("ec drop folder: watching %s (one subfolder per site)", folder.root)
    try:
        while True:
            for path in await asyncio.to_thread(folder.scan):
                try:
                    n = await asyncio.to_thread(folder.ingest, path)
                except StorageUnavailable as exc:
                    # Not recorded as read: the file is read again at a later scan (its
                    # records carry a content key, so what did get stored is not doubled).
                    STORAGE_REFUSED.labels(SOURCE, exc.reason).inc()
                    log.warning("ec drop folder: %s: %s; retrying later", path, exc)
                    break
                log.info("ec drop folder: %s -> %d samples", path, n)
            await asyncio.sleep(config.ec.drop_folder.poll_s)
    finally:
        db.close()
