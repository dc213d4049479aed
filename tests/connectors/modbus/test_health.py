"""Device health states: unknown -> ok / degraded -> dead, and back to ok on a reading."""

from __future__ import annotations

from connectors.modbus.health import HealthTracker


def test_states_follow_consecutive_failed_polls() -> None:
    h = HealthTracker("m", "gw", 7, dead_after=3)
    assert h.snapshot().state == "unknown" and h.snapshot().healthy
    h.poll_ok(1_000, 12.5)
    assert h.snapshot().state == "ok"
    for n, state in enumerate(["degraded", "degraded", "dead", "dead"], start=1):
        h.request_failed(2_000 + n, f"error {n}")
        h.poll_failed()
        s = h.snapshot()
        assert (s.state, s.consecutive_errors, s.total_errors) == (state, n, n)
    s = h.snapshot()
    assert not s.healthy and s.last_error == "error 4" and s.last_error_ns == 2_004
    assert (s.last_good_ns, s.last_value) == (1_000, 12.5)  # kept, never replaced by a zero
    h.poll_ok(3_000, 13.0)
    s = h.snapshot()
    assert (s.state, s.consecutive_errors, s.total_errors, s.polls_ok) == ("ok", 0, 4, 2)
    assert s.last_error == "error 4"  # history stays readable


def test_retried_attempts_count_as_request_errors_only() -> None:
    h = HealthTracker("m", "gw", 1, dead_after=1)
    h.request_failed(1, "timeout")
    h.poll_ok(2, 1.0)
    s = h.snapshot()
    assert (s.state, s.request_errors, s.total_errors) == ("ok", 1, 0)
    h.poll_missed(2)
    assert h.snapshot().missed == 2 and h.snapshot().state == "ok"
