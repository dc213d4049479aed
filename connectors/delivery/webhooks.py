"""Webhook delivery of alert events: one signed POST per event, in order, retried until taken.

Each subscription has a cursor (the last event sequence delivered or filtered out). An event is
POSTed as JSON with `X-Carbonstream-Event-Id` (its sequence: receivers deduplicate on it) and
`X-Carbonstream-Signature: sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<body>` under the
subscription's secret, with the timestamp in `X-Carbonstream-Timestamp` (so a captured request
cannot be replayed later as new). A non-2xx answer or a network error leaves the cursor where it
is and retries after an exponential back-off (1 s doubling to 5 min); later events wait, so
order is kept. Delivery is at least once: a crash between the receiver's 2xx and the cursor
update re-sends that one event (same event id).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Any

import httpx
import orjson

from carbonstream.metrics import WEBHOOK_DELIVERIES
from storage.alerts import AlertStore

log = logging.getLogger(__name__)

POLL_S = 0.5
TIMEOUT_S = 10.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _accepts(filters: dict[str, list[str] | None], e: dict[str, Any]) -> bool:
    labels = e.get("labels", {})
    for key, values in (
        ("site", filters.get("site")),
        ("entity", filters.get("entity")),
    ):
        if values is not None and labels.get(key) not in values:
            return False
    severity, rule = filters.get("severity"), filters.get("rule")
    return (severity is None or e["severity"] in severity) and (rule is None or e["rule"] in rule)


def backoff_s(failures: int) -> float:
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, failures)))


async def deliver_once(store: AlertStore, client: httpx.AsyncClient) -> int:
    """One pass over every subscription due; returns how many events were delivered."""
    delivered = 0
    now = time.time_ns()
    for hook in await asyncio.to_thread(store.webhooks):
        if hook["next_attempt_ns"] > now:
            continue
        events = await asyncio.to_thread(store.events_after, hook["delivered_seq"], 100)
        for e in events:
            if not _accepts(hook["filters"], e):
                await asyncio.to_thread(store.webhook_delivered, hook["id"], e["seq"])
                continue
            body = orjson.dumps(e)
            stamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "x-carbonstream-event-id": str(e["seq"]),
                "x-carbonstream-timestamp": stamp,
                "x-carbonstream-signature": signature(hook["secret"], stamp, body),
            }
            try:
                r = await client.post(hook["url"], content=body, headers=headers)
                ok, error = 200 <= r.status_code < 300, f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if not ok:
                retry = time.time_ns() + int(backoff_s(hook["failures"]) * 1e9)
                await asyncio.to_thread(store.webhook_failed, hook["id"], error, retry)
                WEBHOOK_DELIVERIES.labels("failed").inc()
                log.warning("webhook %s: %s; retrying", hook["id"], error)
                break  # keep the order: nothing later before this one
            await asyncio.to_thread(store.webhook_delivered, hook["id"], e["seq"])
            WEBHOOK_DELIVERIES.labels("delivered").inc()
            delivered += 1
    return delivered


async def run_webhooks(store: AlertStore) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        while True:
            try:
                await deliver_once(store, client)
            except Exception:  # a busy database: the next pass retries
                log.warning("webhook delivery pass failed", exc_info=True)
            await asyncio.sleep(POLL_S)
