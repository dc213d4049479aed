"""The live dashboard: static files (HTML, CSS, ES modules; no build step) served at /dashboard/.

The page reads the public API of the same origin: /health, /v1/meters, /v1/cems, /v1/ec,
/v1/entities, and the alert stream (SSE). It loads nothing from elsewhere, which its content
security policy enforces.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static" / "dashboard"
PATH = "/dashboard"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class DashboardFiles(StaticFiles):
    """Static files with a strict content security policy, revalidated on every load (so a new
    version of the page is never mixed with a cached older module)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Serves the dashboard at /dashboard/ (/dashboard redirects there)."""
    app.mount(PATH, DashboardFiles(directory=STATIC_DIR, html=True), name="dashboard")
