"""The three roles of DESIGN.md, each runnable alone (`carbonstream ingest|flow|api`) or under
`carbonstream run`. They share only the journal, the Zarr store and the metadata database."""

from __future__ import annotations

import logging
from collections.abc import Callable

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config
from carbonstream.heartbeat import Heartbeat
from storage.metadata import MetadataDB

ROLES = ("ingest", "flow", "api")

log = logging.getLogger(__name__)


def _runner(role: str) -> Callable[..., int]:
    # Imported on demand: each role loads only its own stack (the API never imports Bytewax).
    if role == "ingest":
        from connectors.ingest import run_ingest

        return run_ingest
    if role == "flow":
        from stream.runner import run_flow

        return run_flow
    if role == "api":
        from api.server import run_api

        return run_api
    raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


def run_role(
    role: str, config: Config, stop_at_end: bool = False, process_id: int | None = None
) -> int:
    """Runs one role until it is stopped (`stop_at_end`: the flow ends with the journal;
    `process_id`: the flow's place in its `[flow.cluster]`)."""
    runner = _runner(role)
    prepare_data_dir(config)
    db = MetadataDB(config.storage.layout.metadata_db)
    heartbeat = Heartbeat(db, role)
    heartbeat.start()
    log.info("%s role starting (data in %s)", role, config.storage.layout.data_dir)
    try:
        options: dict[str, object] = {"stop_at_end": True} if stop_at_end else {}
        if process_id is not None:
            options["process_id"] = process_id
        return runner(config, **options)
    finally:
        heartbeat.stop()
