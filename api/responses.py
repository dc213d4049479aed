"""JSON responses for numeric payloads: orjson (numpy arrays natively, NaN as null)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class NumericJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=_OPTIONS)


def json_example(example: Any, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: an example body shown in the OpenAPI document."""
    return {status: {"content": {"application/json": {"example": example}}}}
