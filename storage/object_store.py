"""Where the Zarr store lives: a local directory (default) or an S3-compatible bucket.

On S3 the one-writer-per-chunk rule is unchanged: the dataflow routes each chunk's cells to
exactly one sink partition, whichever process or host runs it, and a PUT replaces an object
whole (a reader never sees half a chunk), so chunk writes need no lock, as on local disk.

What needs serialising is the rare growth of an array: its shape lives in one metadata document
(`zarr.json`) that every writer rewrites, and the store's consolidated metadata is rewritten after
it. Locally an fcntl lock on a file in data_dir does it (storage/locks.py); a file lock cannot
span hosts, so on object storage growth takes a PostgreSQL advisory lock in the shared metadata
database (`storage.metadata_url`), keyed by the store's URL:

- it is exclusive across every session of the server, hence across processes and hosts;
- it is held by a session, not a row: if the holder dies (SIGKILL, a host lost), the server ends
  its session when the connection drops and the lock is free again, so a crash never wedges
  growth (a file lock has the same property when its process dies);
- growth is idempotent under the lock: the holder re-reads every array's shape after taking it
  and only grows (never shrinks) to the maximum of what is there and what it needs, so a
  writer that died mid-growth leaves nothing that the next one does not repair.

Without a PostgreSQL metadata database the file lock is used, which is only correct while every
writer of the store runs on one host; `carbonstream config check` is not the place that can know
the hosts, so the documentation (docs/cluster.md) says it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zarr.storage

from storage.locks import file_lock


@dataclass(frozen=True)
class ObjectStoreLocation:
    """A Zarr store under s3://bucket/prefix, with what it takes to reach it."""

    url: str
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    allow_http: bool = False
    lock_db: str | None = None
    """PostgreSQL URL whose advisory locks serialise array growth (see the module docstring)."""

    @property
    def bucket(self) -> str:
        return self.url.removeprefix("s3://").split("/", 1)[0]

    @property
    def prefix(self) -> str:
        rest = self.url.removeprefix("s3://").split("/", 1)
        return rest[1].strip("/") if len(rest) > 1 else ""

    @property
    def name(self) -> str:
        """The store's last path component (names its local lock file when there is one)."""
        return (self.prefix or self.bucket).rsplit("/", 1)[-1]

    def obstore(self) -> Any:
        from obstore.store import S3Store

        config: dict[str, Any] = {"region": self.region}
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if self.access_key_id:
            config["access_key_id"] = self.access_key_id
        if self.secret_access_key:
            config["secret_access_key"] = self.secret_access_key
        return S3Store(
            self.bucket,
            prefix=self.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options={"allow_http": self.allow_http},
        )


StoreLocation = Path | ObjectStoreLocation


def open_zarr_store(location: StoreLocation) -> Any:
    """The zarr store object of a location."""
    if isinstance(location, ObjectStoreLocation):
        return zarr.storage.ObjectStore(location.obstore())
    return zarr.storage.LocalStore(location)


@contextmanager
def growth_lock(location: StoreLocation, lock_path: Path) -> Iterator[None]:
    """Exclusive among every writer of the store (see the module docstring)."""
    if isinstance(location, ObjectStoreLocation) and location.lock_db:
        import psycopg

        key = zlib.crc32(f"zarr-grow:{location.url}".encode())
        with psycopg.connect(location.lock_db, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    else:
        with file_lock(lock_path):
            yield
