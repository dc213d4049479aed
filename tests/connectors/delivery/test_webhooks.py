"""Webhook delivery against a real loopback receiver: order kept through failures, back-off
between attempts, filters, and signatures a receiver can verify."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connectors.delivery import webhooks
from storage.alerts import AlertEvent, AlertStore
from tests.webhook_receiver import WebhookReceiver

SECRET = "s3cret-s3cret-s3cret"


def event(n: int, site: str, transition: str = "firing") -> AlertEvent:
    return AlertEvent(
        alert_id=f"a{n}",
        transition=transition,
        rule_id="permit",
        subject=f"{site}/a05001",
        severity="critical",
        value=10.0 + n,
        threshold=9.0,
        period_ns=n * 3_600_000_000_000,
        since_ns=n * 3_600_000_000_000,
        message=f"event {n}",
        labels={"site": site},
    )


def deliver_until(store: AlertStore, done: Callable[[], bool], limit_s: float = 20) -> None:
    async def loop() -> None:
        deadline = time.monotonic() + limit_s
        async with httpx.AsyncClient(timeout=5) as client:
            while not done():
                assert time.monotonic() < deadline, "delivery did not finish"
                await webhooks.deliver_once(store, client)
                await asyncio.sleep(0.01)

    asyncio.run(loop())


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_FIRST_S", 0.05)


def test_failures_are_retried_in_order_with_growing_backoff(
    tmp_path: Path, fast_backoff: None
) -> None:
    store = AlertStore(tmp_path / "meta.db")
    store.record([event(n, "stack-a") for n in range(5)])
    seqs = [e["seq"] for e in store.events_after(0)]
    with WebhookReceiver(fail_first=3) as rx:
        store.add_webhook("h1", rx.url, SECRET, {}, 0)
        deliver_until(store, lambda: len(rx.accepted()) == 5)
        time.sleep(0.1)
        deliver_until(store, lambda: True)  # one more pass: nothing new is sent
    assert [r.event_id for r in rx.requests] == [seqs[0]] * 4 + seqs[1:], "retry, then in order"
    assert [r.event_id for r in rx.accepted()] == seqs, "each event accepted exactly once"
    (hook,) = store.webhooks()
    assert hook["delivered_seq"] == seqs[-1] and hook["failures"] == 0
    assert hook["last_error"] is None, "cleared once the receiver takes events again"
    gaps = [b.at - a.at for a, b in zip(rx.requests[:4], rx.requests[1:4], strict=False)]
    assert [round(g, 2) >= 0.05 * 2**k for k, g in enumerate(gaps)] == [True] * 3, gaps


def test_backoff_doubles_and_is_capped() -> None:
    assert [webhooks.backoff_s(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert webhooks.backoff_s(30) == webhooks.BACKOFF_MAX_S


def test_a_failing_receiver_is_not_retried_before_its_backoff(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "meta.db")
    store.record([event(0, "stack-a")])
    with WebhookReceiver(fail_first=100) as rx:
        store.add_webhook("h1", rx.url, SECRET, {}, 0)
        started = time.time_ns()
        deliver_until(store, lambda: len(rx.requests) >= 1)
        for _ in range(20):  # many passes inside the 1 s back-off: no second attempt
            deliver_until(store, lambda: True)
        assert len(rx.requests) == 1
    (hook,) = store.webhooks()
    assert hook["failures"] == 1 and hook["next_attempt_ns"] >= started + 1_000_000_000


def test_filters_skip_other_sites_and_signatures_verify(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "meta.db")
    store.record([event(n, "stack-a" if n % 2 else "stack-b") for n in range(6)])
    wanted = [e["seq"] for e in store.events_after(0) if e["labels"]["site"] == "stack-a"]
    with WebhookReceiver() as rx:
        store.add_webhook("h1", rx.url, SECRET, {"site": ["stack-a"]}, 0)
        deliver_until(store, lambda: store.webhooks()[0]["delivered_seq"] == store.last_seq())
    assert [r.event_id for r in rx.requests] == wanted
    for r in rx.requests:
        expected = hmac.new(
            SECRET.encode(), r.timestamp.encode() + b"." + r.body, hashlib.sha256
        ).hexdigest()
        assert r.signature == f"sha256={expected}"
        assert r.event["seq"] == r.event_id and r.event["labels"] == {"site": "stack-a"}
        assert abs(int(r.timestamp) - time.time()) < 60


def test_an_unreachable_receiver_counts_as_a_failure(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "meta.db")
    store.record([event(0, "stack-a")])
    with WebhookReceiver() as rx:
        dead_url = rx.url
    store.add_webhook("h1", dead_url, SECRET, {}, 0)
    deliver_until(store, lambda: store.webhooks()[0]["failures"] == 1)
    (hook,) = store.webhooks()
    assert hook["delivered_seq"] == 0 and "ConnectError" in hook["last_error"]
