"""Webhook subscriptions to alert events (delivered by the ingest role, see
connectors/delivery/webhooks.py). SSE and WebSocket streams need no subscription: see alerts."""

from __future__ import annotations

import fnmatch
import secrets
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import SUBSCRIBER
from api.errors import Problem
from api.state import State

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Where events are POSTed (http or https).")
    secret: str | None = Field(
        None, min_length=16, description="HMAC key; generated when omitted (returned once)."
    )
    site: list[str] | None = Field(None, description="Only alerts of these sites.")
    entity: list[str] | None = Field(None, description="Only alerts of these entities.")
    severity: list[str] | None = Field(None, description="Only these severities.")
    rule: list[str] | None = Field(None, description="Only these rules.")
    since: int | None = Field(
        None, ge=0, description="Deliver events after this sequence; default: only new ones."
    )


@router.post("/webhooks", status_code=201, dependencies=[SUBSCRIBER], summary="Subscribe a webhook")
def create_webhook(state: State, body: WebhookRequest) -> dict[str, Any]:
    parts = urlsplit(body.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Problem(422, "Invalid URL", "the webhook URL must be http(s)://host/...")
    allowed = state.config.api.webhook_hosts
    if allowed and not any(fnmatch.fnmatch(parts.hostname, pattern) for pattern in allowed):
        raise Problem(403, "Host not allowed", f"{parts.hostname} is not in api.webhook_hosts")
    hook_id = secrets.token_hex(8)
    secret = body.secret or secrets.token_urlsafe(32)
    since = state.alerts.last_seq() if body.since is None else body.since
    filters = {
        "site": body.site,
        "entity": body.entity,
        "severity": body.severity,
        "rule": body.rule,
    }
    state.alerts.add_webhook(hook_id, body.url, secret, filters, since)
    return {"id": hook_id, "secret": secret, "delivered_seq": since}


@router.get(
    "/webhooks", dependencies=[SUBSCRIBER], summary="Webhook subscriptions and their delivery state"
)
def list_webhooks(state: State) -> dict[str, Any]:
    return {
        "items": [{k: v for k, v in h.items() if k != "secret"} for h in state.alerts.webhooks()]
    }


@router.delete(
    "/webhooks/{hook_id}", status_code=204, dependencies=[SUBSCRIBER], summary="Unsubscribe"
)
def delete_webhook(state: State, hook_id: str) -> Response:
    if not state.alerts.delete_webhook(hook_id):
        raise Problem(404, "Unknown subscription", f"no webhook {hook_id!r}")
    return Response(status_code=204)
