"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import dashboard, errors
from api.alert_hub import AlertHub
from api.latest_fastpath import LatestFastPath
from api.limits import BodyLimit
from api.routers import (
    alerts,
    cems,
    ec,
    entities,
    factors,
    ingest,
    meters,
    service,
    sites,
    streams,
    subscriptions,
)
from api.state import ApiState
from carbonstream import __version__
from carbonstream.config import Config


def create_app(config: Config) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ApiState.open(config)
        app.state.carbonstream = state
        hub = AlertHub(state.alerts)
        app.state.alert_hub = hub
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            state.close()

    app = FastAPI(
        title="carbonstream",
        version=__version__,
        description="Real-time carbon monitoring: meters, stack CEMS, eddy-covariance fluxes.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=config.api.max_body_bytes)
    app.add_middleware(LatestFastPath, anonymous_read=config.api.anonymous_read)
    if config.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.include_router(service.router)
    app.include_router(streams.router)
    app.include_router(sites.router)
    app.include_router(meters.router)
    app.include_router(entities.router)
    app.include_router(factors.router)
    app.include_router(alerts.router)
    app.include_router(subscriptions.router)
    app.include_router(ingest.router)
    app.include_router(ec.router)
    app.include_router(cems.router)
    dashboard.install(app)
    return app
