"""What the API process opens once and shares between requests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request

from api.latest import LatestCache
from carbonstream.backends import open_journal
from carbonstream.config import Config
from carbonstream.metrics import STORAGE_REFUSED
from carbonstream.products import cems_specs, ec_flux_specs, entity_specs, meters_interval_spec
from storage.alerts import AlertStore
from storage.errors import StorageUnavailable
from storage.journal_backend import JournalBackend
from storage.layout import DataLayout
from storage.metadata import MetadataDB
from storage.tokens import TokenInfo, TokenStore
from storage.zarr_store import ProductReader, ProductStore


@dataclass
class ApiState:
    config: Config
    layout: DataLayout
    db: MetadataDB
    journal: JournalBackend
    meters: ProductReader
    entity_readers: dict[str, ProductReader]
    ec_fluxes: dict[float, ProductReader]
    """averaging period (s) -> reader of its ec/flux_<N>min product."""
    tokens: TokenStore
    alerts: AlertStore
    cems_readers: dict[str, ProductReader] = field(default_factory=dict)
    token_cache: dict[str, tuple[TokenInfo | None, float]] = field(default_factory=dict)
    started_ns: int = field(default_factory=time.time_ns)
    latest: LatestCache = field(init=False)
    _meter_ids: set[str] = field(default_factory=set)
    pid: int = field(default_factory=os.getpid)
    last_refusal: tuple[int, StorageUnavailable] | None = None
    """When (UTC ns) and why the disk last refused a write of this process, for /health."""

    @classmethod
    def open(cls, config: Config) -> ApiState:
        layout = config.storage.layout
        spec = meters_interval_spec(config)
        locks = layout.data_dir / "locks"
        return cls(
            config=config,
            layout=layout,
            db=MetadataDB(layout.metadata_db),
            tokens=TokenStore(layout.metadata_db),
            alerts=AlertStore(layout.metadata_db),
            journal=open_journal(config),
            meters=ProductReader(ProductStore(layout.zarr_store, spec, locks)),
            entity_readers={
                name: ProductReader(ProductStore(layout.zarr_store, s, locks))
                for name, s in entity_specs(config).items()
            },
            ec_fluxes={
                p: ProductReader(ProductStore(layout.zarr_store, s, locks))
                for p, s in ec_flux_specs(config).items()
            },
            cems_readers={
                name: ProductReader(ProductStore(layout.zarr_store, s, locks))
                for name, s in cems_specs(config).items()
            },
        )

    @cached_property
    def products(self) -> dict[str, ProductReader]:
        """Every product this API serves, by name (e.g. 'cems/hour'); the readers are fixed when
        the state is opened, so this is built once (hot paths such as `latest` use it)."""
        readers = [self.meters, *self.entity_readers.values(), *self.ec_fluxes.values()]
        readers += self.cems_readers.values()
        return {r.spec.name: r for r in readers}

    def products_of(self, axis: str) -> list[str]:
        return [name for name, r in self.products.items() if r.spec.axis == axis]

    def known_meters(self, wanted: Iterable[str]) -> set[str]:
        """Registered meter ids, from a cache refreshed whenever a wanted id is missing from it,
        so a meter registered a moment ago is never refused."""
        wanted = set(wanted)
        if not wanted <= self._meter_ids:
            self._meter_ids = self.db.stream_ids(self.meters.spec.axis)
        return self._meter_ids

    def __post_init__(self) -> None:
        self.latest = LatestCache(self.db)

    def note_refusal(self, exc: StorageUnavailable) -> None:
        """Counts a write the disk refused (the data was not acknowledged) and remembers it."""
        STORAGE_REFUSED.labels("api", exc.reason).inc()
        self.last_refusal = (time.time_ns(), exc)

    def close(self) -> None:
        self.db.close()
        self.tokens.close()
        self.alerts.close()
        self.journal.close()


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.carbonstream
    return state


async def get_state(request: Request) -> ApiState:
    """Async on purpose: FastAPI runs a plain function dependency in a worker thread, a cost
    every request would pay for a dict lookup."""
    return state_of(request)


State = Annotated[ApiState, Depends(get_state)]
"""The dependency every route takes to reach the shared state."""
