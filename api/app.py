"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.routers import cems, ec, entities, factors, ingest, meters, service
from api.state import ApiState
from carbonstream import __version__
from carbonstream.config import Config


def create_app(config: Config) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ApiState.open(config)
        app.state.carbonstream = state
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="carbonstream",
        version=__version__,
        description="Real-time carbon monitoring: meters, stack CEMS, eddy-covariance fluxes.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(service.router)
    app.include_router(meters.router)
    app.include_router(entities.router)
    app.include_router(factors.router)
    app.include_router(ingest.router)
    app.include_router(ec.router)
    app.include_router(cems.router)
    return app
