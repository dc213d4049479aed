"""Errors as RFC 9457 problem details (application/problem+json), the same shape everywhere."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage.errors import StorageUnavailable

MEDIA_TYPE = "application/problem+json"
STORAGE_RETRY_AFTER_S = 10
"""What a refused sender is told to wait before re-sending (Retry-After)."""


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def storage_problem(exc: StorageUnavailable) -> Problem:
    """503 for data the disk refused: nothing was stored, so nothing is acknowledged; the sender
    keeps the data and re-sends it after Retry-After (a re-sent push is not doubled)."""
    return Problem(
        503,
        exc.title.capitalize(),
        f"{exc}; nothing of this request was acknowledged, send it again later",
        reason=f"storage_{exc.reason}",
        retry_after_s=STORAGE_RETRY_AFTER_S,
    )


def _render(status: int, title: str, detail: Any, instance: str, **extra: Any) -> Response:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return _render(exc.status, exc.title, exc.detail, request.url.path, **exc.extra)

    @app.exception_handler(StorageUnavailable)
    async def _storage(request: Request, exc: StorageUnavailable) -> Response:
        request.app.state.carbonstream.note_refusal(exc)
        p = storage_problem(exc)
        response = _render(p.status, p.title, p.detail, request.url.path, **p.extra)
        response.headers["Retry-After"] = str(STORAGE_RETRY_AFTER_S)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return _render(
            422,
            "Invalid request",
            "the request does not match the API",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _render(exc.status_code, str(exc.detail), str(exc.detail), request.url.path)
