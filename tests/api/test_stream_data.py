"""`GET /v1/streams/{kind}/{id}/data` over real HTTP against a real data directory: which
periods it lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import numpy as np

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config
from carbonstream.products import meters_interval_spec
from storage.metadata import MetadataDB
from storage.tokens import TokenStore
from storage.zarr_store import ProductStore, ProductWriter, RegistryLabels
from tests.live_api import live_api

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_a_period_whose_presence_variable_is_not_written_yet_is_not_listed(
    make_config: Callable[[str], Config],
) -> None:
    """A flush writes a meter period's coverage (the presence variable) after its other
    variables, so a read in between sees consumption without coverage. Asked for consumption
    only, the endpoint listed that half-written period; it must wait for the coverage, the rule
    the meters' own endpoints follow."""
    config = make_config('[[streams.meters]]\nid = "m1"\n')
    prepare_data_dir(config)
    layout = config.storage.layout
    db = MetadataDB(layout.metadata_db)
    db.register_streams("meters", {"m1": {"unit": "kWh"}})
    spec = meters_interval_spec(config)
    slot = spec.slot_of(int(T0.timestamp()) * 10**9)
    writer = ProductWriter(
        ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"), RegistryLabels(db, spec)
    )
    nan = np.nan
    writer.stage(
        np.zeros(3, dtype=np.int64),
        np.arange(slot, slot + 3, dtype=np.int64),
        {
            "consumption": np.array([1.5, 2.5, nan]),
            "co2": np.array([0.9, 1.5, nan]),
            "coverage": np.array([1.0, nan, 0.0], dtype=np.float32),  # slot+1: not yet
            "reading": np.array([101.5, 104.0, nan]),
        },
    )
    writer.flush()
    tokens = TokenStore(layout.metadata_db)
    token = tokens.create("tests", ["read"])
    tokens.close()
    db.close()
    with (
        live_api(config) as url,
        httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        listed = client.get(
            "/v1/streams/meters/m1/data",
            params={
                "variable": "consumption",
                "start": T0.isoformat(),
                "end": datetime(2026, 3, 2, 11, 0, tzinfo=UTC).isoformat(),
                "format": "json",
            },
        )
    assert listed.status_code == 200, listed.text
    cells = listed.json()["cells"]
    # slot: complete; slot+1: coverage not written; slot+2: covered, but no consumption asked
    assert [(c["time"], c["consumption"]) for c in cells] == [("2026-03-02T10:00:00Z", 1.5)]
