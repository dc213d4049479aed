"""Alerts: rules, current alerts, history, and live streams (SSE, WebSocket) that resume by id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError

from api.alert_hub import AlertHub, Event, event_filter
from api.auth import ADMIN, READ, authorize_ws
from api.errors import Problem
from api.limits import SQL_INT_MAX, parse_seq
from api.responses import NumericJSONResponse
from api.state import ApiState, State
from storage.alert_rules import AlertRule

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

HEARTBEAT_S = 15.0
BACKLOG_PAGE = 1000


def _csv(value: str | None) -> list[str] | None:
    return [v for v in value.split(",") if v] if value else None


def _filters(
    site: str | None, entity: str | None, severity: str | None, rule: str | None
) -> Callable[[Event], bool]:
    return event_filter(_csv(site), _csv(entity), _csv(severity), _csv(rule))


FILTER_DOCS = {
    "site": "only these sites (comma separated)",
    "entity": "only these entities",
    "severity": "only these severities (info, warning, critical)",
    "rule": "only these rules",
}


@router.get(
    "/rules", dependencies=[READ], summary="Alert rules (from the configuration and the API)"
)
def rules(state: State) -> dict[str, Any]:
    return {"items": [{**r.model_dump(), "source": src} for r, src in state.alerts.rules()]}


@router.post(
    "/rules",
    status_code=201,
    dependencies=[ADMIN],
    summary="Create or replace alert rules",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": [
                        {
                            "id": "unit1-co2-permit",
                            "product": "cems/hour",
                            "variable": "mass",
                            "subject": "plant-a-unit-1/a05001",
                            "threshold": 250000,
                            "clear": 230000,
                            "severity": "critical",
                            "description": "hourly CO2 above the permit (kg/h)",
                        }
                    ]
                }
            }
        }
    },
)
def put_rules(state: State, body: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        parsed = [AlertRule.model_validate(r) for r in body]
    except ValidationError as exc:
        raise Problem(422, "Invalid rule", str(exc.errors(include_url=False))) from None
    for rule in parsed:
        _check_watchable(state, rule)
    config_ids = {r.id for r, src in state.alerts.rules() if src == "config"}
    clash = sorted(r.id for r in parsed if r.id in config_ids)
    if clash:
        raise Problem(
            409, "Rule from the configuration", f"rules {clash} are declared in the configuration"
        )
    state.alerts.put_rules(parsed, "api")
    return {"rules": [r.id for r in parsed]}


def _check_watchable(state: ApiState, rule: AlertRule) -> None:
    """A rule on a product or variable that does not exist would never fire: refused."""
    reader = state.products.get(rule.product)
    if reader is None:
        raise Problem(
            422,
            "Invalid rule",
            f"rule {rule.id!r}: unknown product {rule.product!r} "
            f"(known: {', '.join(sorted(state.products))})",
        )
    names = {v.name for v in reader.spec.variables}
    if rule.kind != "silence" and rule.variable not in names:
        raise Problem(
            422,
            "Invalid rule",
            f"rule {rule.id!r}: {rule.product} has no variable {rule.variable!r} "
            f"(known: {', '.join(sorted(names))})",
        )


@router.delete(
    "/rules/{rule_id}", status_code=204, dependencies=[ADMIN], summary="Delete an API rule"
)
def delete_rule(state: State, rule_id: str) -> Response:
    sources = {r.id: src for r, src in state.alerts.rules()}
    if sources.get(rule_id) == "config":
        raise Problem(
            409, "Rule from the configuration", f"rule {rule_id!r} is declared in the configuration"
        )
    if not state.alerts.delete_rule(rule_id):
        raise Problem(404, "Unknown rule", f"no rule {rule_id!r}")
    return Response(status_code=204)


@router.get("", dependencies=[READ], summary="Current alerts (firing, or recently resolved)")
def alerts(
    state: State,
    status: str | None = Query(None, pattern="^(firing|resolved)$"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> Response:
    return NumericJSONResponse({"items": state.alerts.alerts(status, limit)})


@router.get(
    "/events", dependencies=[READ], summary="Alert history: transitions after a sequence number"
)
def events(
    state: State,
    after: int = Query(
        0, ge=0, le=SQL_INT_MAX, description="return events with a larger sequence number"
    ),
    limit: int = Query(1000, ge=1, le=10_000),
    site: str | None = Query(None, description=FILTER_DOCS["site"]),
    entity: str | None = Query(None, description=FILTER_DOCS["entity"]),
    severity: str | None = Query(None, description=FILTER_DOCS["severity"]),
    rule: str | None = Query(None, description=FILTER_DOCS["rule"]),
) -> Response:
    accepts = _filters(site, entity, severity, rule)
    got = [e for e in state.alerts.events_after(after, limit) if accepts(e)]
    return NumericJSONResponse({"items": got, "next_after": got[-1]["seq"] if got else after})


def _hub(request_app: Any) -> AlertHub:
    hub: AlertHub = request_app.state.alert_hub
    return hub


async def _stream(
    state: Any, hub: AlertHub, accepts: Callable[[Event], bool], since: int | None
) -> AsyncIterator[Event | None]:
    """Events after `since` (None: only new ones), then live ones; None is a heartbeat."""
    sub = hub.subscribe(accepts)
    try:
        last = since if since is not None else await asyncio.to_thread(state.alerts.last_seq)
        while since is not None:
            page = await asyncio.to_thread(state.alerts.events_after, last, BACKLOG_PAGE)
            for e in page:
                last = int(e["seq"])
                if accepts(e):
                    yield e
            if len(page) < BACKLOG_PAGE:
                break
        while True:
            try:
                e = await asyncio.wait_for(sub.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield None
                continue
            if e is None:
                return  # the hub closed this subscription; the client resumes by event id
            if int(e["seq"]) > last:
                last = int(e["seq"])
                yield e
    finally:
        hub.unsubscribe(sub)


@router.get(
    "/stream",
    dependencies=[READ],
    summary="Server-sent events of alert transitions; resumes after Last-Event-ID",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    state: State,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    since: int | None = Query(
        None, ge=0, le=SQL_INT_MAX, description="resume after this event id (as Last-Event-ID)"
    ),
    site: str | None = Query(None, description=FILTER_DOCS["site"]),
    entity: str | None = Query(None, description=FILTER_DOCS["entity"]),
    severity: str | None = Query(None, description=FILTER_DOCS["severity"]),
    rule: str | None = Query(None, description=FILTER_DOCS["rule"]),
) -> StreamingResponse:
    resume = since
    if last_event_id is not None:
        resume = parse_seq(last_event_id)
        if resume is None:
            raise Problem(
                400, "Bad Last-Event-ID", "Last-Event-ID must be an event sequence number"
            )
    events = _stream(state, _hub(request.app), _filters(site, entity, severity, rule), resume)

    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        async for e in events:
            if await request.is_disconnected():
                return
            if e is None:
                yield b": keep-alive\n\n"
            else:
                yield b"id: %d\nevent: alert\ndata: %s\n\n" % (e["seq"], orjson.dumps(e))

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/ws")
async def websocket(websocket: WebSocket) -> None:
    """Alert transitions as JSON messages. Query: `last_event_id` (resume), the same filters as
    the SSE stream, and `token` for clients that cannot send an Authorization header."""
    if not await authorize_ws(websocket, "read"):
        return
    q = websocket.query_params
    since = parse_seq(q.get("last_event_id"))
    accepts = _filters(q.get("site"), q.get("entity"), q.get("severity"), q.get("rule"))
    state = websocket.app.state.carbonstream
    try:
        async for e in _stream(state, _hub(websocket.app), accepts, since):
            if e is not None:
                await websocket.send_text(orjson.dumps(e).decode())
    except WebSocketDisconnect:
        return
