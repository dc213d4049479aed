"""Authentication of API requests: bearer tokens with scopes (storage/tokens.py).

Every write, ingest and subscription needs a token with the right scope. Reads (queries) need a
`read` token too, unless `api.anonymous_read` is on (the default of the local demo, whose API
listens on 127.0.0.1 only). Verified tokens are cached briefly, so a busy endpoint does not hit
the database for every request; a revoked token stops working within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request, WebSocket

from api.errors import Problem
from api.state import ApiState, state_of
from storage.tokens import Scope, TokenInfo

CACHE_S = 5.0


def _token_from(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _verify(state: ApiState, token: str) -> TokenInfo | None:
    cached = state.token_cache.get(token)
    now = time.monotonic()
    if cached is not None and now - cached[1] < CACHE_S:
        return cached[0]
    info = state.tokens.verify(token)
    state.token_cache[token] = (info, now)
    return info


def check(
    state: ApiState, authorization: str | None, scope: Scope, anonymous_ok: bool = True
) -> TokenInfo | None:
    """The token's info if it grants `scope`; raises 401/403 otherwise. Anonymous reads pass
    (None) when the configuration allows them and the endpoint does (`anonymous_ok`)."""
    token = _token_from(authorization)
    if token is None:
        if scope == "read" and anonymous_ok and state.config.api.anonymous_read:
            return None
        raise Problem(
            401,
            "Authentication required",
            f"this endpoint needs a token with the {scope!r} scope (Authorization: Bearer ...)",
        )
    info = _verify(state, token)
    if info is None or info.revoked:
        raise Problem(401, "Invalid token", "the token is unknown or revoked")
    if not info.allows(scope):
        raise Problem(
            403,
            "Insufficient scope",
            f"this endpoint needs the {scope!r} scope; the token has {sorted(info.scopes)}",
        )
    return info


def require(
    scope: Scope, anonymous_ok: bool = True
) -> Callable[..., Coroutine[Any, Any, TokenInfo | None]]:
    async def dependency(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> TokenInfo | None:
        return check(state_of(request), authorization, scope, anonymous_ok)

    return dependency


async def authorize_ws(websocket: WebSocket, scope: Scope) -> bool:
    """Accepts the socket; closes it (4401 unauthenticated, 4403 insufficient scope) and returns
    False unless its token grants `scope`. The token comes as an Authorization header or a
    `token` query parameter (browsers cannot set headers on a WebSocket)."""
    state: ApiState = websocket.app.state.carbonstream
    header = websocket.headers.get("authorization")
    query = websocket.query_params.get("token")
    await websocket.accept()
    try:
        check(state, header or (f"Bearer {query}" if query else None), scope)
    except Problem as refused:
        await websocket.close(code=4000 + refused.status, reason=refused.detail[:120])
        return False
    return True


Read = Annotated[TokenInfo | None, Depends(require("read"))]
Ingest = Annotated[TokenInfo | None, Depends(require("ingest"))]
Admin = Annotated[TokenInfo | None, Depends(require("admin"))]


READ = Depends(require("read"))
INGEST = Depends(require("ingest"))
ADMIN = Depends(require("admin"))
SUBSCRIBER = Depends(require("read", anonymous_ok=False))
"""A token with the read scope, even where anonymous reads are allowed (a subscription that
sends data elsewhere is always accountable to a token)."""
