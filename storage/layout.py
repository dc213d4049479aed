"""Where each piece of state lives under the data directory (the one place naming files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.database import DbLocation
from storage.object_store import ObjectStoreLocation, StoreLocation


@dataclass(frozen=True)
class DataLayout:
    """Paths of the journal, Zarr store, metadata database, recovery snapshots and metrics files."""

    data_dir: Path
    zarr_store_name: str = "products.zarr"
    metadata_db_name: str = "metadata.sqlite"
    metadata_url: str | None = None
    """A PostgreSQL URL: the metadata database is there instead of data_dir."""
    object_store: ObjectStoreLocation | None = None
    """The Zarr store is there instead of data_dir."""

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def zarr_store(self) -> StoreLocation:
        if self.object_store is not None:
            return self.object_store
        return self.data_dir / self.zarr_store_name

    @property
    def metadata_db(self) -> DbLocation:
        return self.metadata_url or self.data_dir / self.metadata_db_name

    @property
    def recovery_dir(self) -> Path:
        return self.data_dir / "recovery"

    @property
    def metrics_dir(self) -> Path:
        return self.data_dir / "metrics"

    def create(self) -> None:
        """Creates the directories (idempotent)."""
        for d in (self.data_dir, self.journal_dir, self.metrics_dir):
            d.mkdir(parents=True, exist_ok=True)
