"""Service endpoints: index, health, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.health import assess
from api.responses import NumericJSONResponse
from api.state import ApiState, State
from carbonstream import __version__
from carbonstream.metrics_dir import ENV as METRICS_DIR_ENV

router = APIRouter(tags=["service"])


@router.get("/", summary="What this service is and where to go next")
def index() -> dict[str, Any]:
    return {
        "service": "carbonstream",
        "version": __version__,
        "links": {
            "dashboard": "/dashboard/",
            "health": "/health",
            "metrics": "/metrics",
            "docs": "/docs",
            "meters": "/v1/meters",
            "latest meter intervals": "/v1/meters/latest",
            "cems sites": "/v1/cems/sites",
        },
    }


@router.get(
    "/health",
    summary="Roles alive, journal lag, last write",
    responses={503: {"description": "degraded: a role is silent or the flow lags"}},
)
def health(state: State) -> Response:
    h = assess(state)
    return NumericJSONResponse(h.body, status_code=200 if h.ok else 503)


class _JournalCollector(Collector):
    """Journal positions, read at scrape time from the journal itself."""

    def __init__(self, state: ApiState) -> None:
        self._state = state

    def collect(self):  # type: ignore[no-untyped-def]
        head = GaugeMetricFamily(
            "carbonstream_journal_head_offset",
            "Last offset assigned per partition.",
            labels=["partition"],
        )
        lag = GaugeMetricFamily(
            "carbonstream_journal_lag_records",
            "Records not yet covered by the dataflow's last snapshot, per partition.",
            labels=["partition"],
        )
        for p in self._state.journal.status():
            head.add_metric([str(p.partition)], p.head)
            lag.add_metric([str(p.partition)], p.lag)
        yield head
        yield lag


@router.get("/metrics", summary="Prometheus metrics of every role", response_class=Response)
def metrics(state: State) -> Response:
    import os

    registry = CollectorRegistry()
    if os.environ.get(METRICS_DIR_ENV):
        MultiProcessCollector(registry)
    registry.register(_JournalCollector(state))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
