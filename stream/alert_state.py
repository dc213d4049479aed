"""The alert state machine of one (rule, subject), independent of Bytewax.

    inactive --breach--> pending --(for_periods breaching periods in a row)--> firing
    pending --no breach--> inactive
    firing --value past the clear level (hysteresis)--> resolved (= inactive)

Observations are (period index, period start, value) in period order; a later observation of
the same period (an open period updated) replaces the earlier one and is evaluated again. A
firing alert is not announced again while it keeps breaching (deduplication); its id derives
from the rule, the subject and the start of the first breaching period, so a replay produces the
same id and the store ignores the repeat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from storage.alert_rules import AlertRule, alert_id, breaches, subject_labels
from storage.alerts import AlertEvent

NS = 1_000_000_000


@dataclass
class RuleState:
    fingerprint: str
    values: dict[int, float] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)
    state: str = "inactive"
    since: int = 0
    since_ns: int = 0
    breaching: int = 0
    last_period: int | None = None


def _transform(rule: AlertRule, v: float) -> float:
    if rule.transform == "abs":
        return abs(v)
    if rule.transform == "bits":
        return float(int(v) & rule.mask) if math.isfinite(v) else 0.0
    return v


def budget_bounds(period_start_ns: int, span: str, offset_ns: int = 0) -> tuple[int, int]:
    """The month (year) holding a period, in the calendar `offset_ns` ahead of UTC: an entity's
    quota follows its local calendar, where the day of the 1st starts before midnight UTC."""
    t = datetime.fromtimestamp((period_start_ns + offset_ns) / NS, UTC)
    if span == "month":
        start = datetime(t.year, t.month, 1, tzinfo=UTC)
        end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=UTC)
    else:
        start = datetime(t.year, 1, 1, tzinfo=UTC)
        end = datetime(t.year + 1, 1, 1, tzinfo=UTC)
    return int(start.timestamp()) * NS - offset_ns, int(end.timestamp()) * NS - offset_ns


def _measure(
    rule: AlertRule, st: RuleState, period: int, step_ns: int, offset_ns: int
) -> float | None:
    """The quantity compared with the threshold after the latest observation, None when it
    cannot be computed yet (a rate of change without its previous period)."""
    if rule.kind == "rate_of_change":
        if period - 1 not in st.values:
            return None
        return _transform(rule, st.values[period] - st.values[period - 1])
    if rule.kind == "budget":
        b0, b1 = budget_bounds(st.starts[period], rule.budget_period, offset_ns)
        in_budget = [v for p, v in st.values.items() if b0 <= st.starts[p] < b1]
        to_date = sum(v for v in in_budget if math.isfinite(v))
        elapsed = (st.starts[period] + step_ns - b0) / (b1 - b0)
        return to_date / max(elapsed, 1e-9)
    window = [st.values[p] for p in sorted(st.values) if p > period - rule.window]
    window = [_transform(rule, v) for v in window if math.isfinite(v)]
    if not window:
        return None
    if rule.aggregate == "last":
        return window[-1]
    if rule.aggregate == "mean":
        return sum(window) / len(window)
    if rule.aggregate == "sum":
        return sum(window)
    return max(window) if rule.aggregate == "max" else min(window)


def _keep(rule: AlertRule, st: RuleState, period: int, offset_ns: int) -> None:
    """Bounded history: the rolling window, or the budget period so far."""
    if rule.kind == "budget":
        b0, _ = budget_bounds(st.starts[period], rule.budget_period, offset_ns)
        old = [p for p in st.values if st.starts[p] < b0]
    else:
        old = [p for p in st.values if p <= period - max(rule.window, 2)]
    for p in old:
        del st.values[p]
        del st.starts[p]


def observe(
    rule: AlertRule,
    subject: str,
    st: RuleState,
    period: int,
    period_start_ns: int,
    value: float,
    step_ns: int,
    calendar_offset_ns: int = 0,
) -> list[AlertEvent]:
    """Applies one observation; returns the transitions it causes (at most one). `step_ns` is
    the length of this period; `calendar_offset_ns` places budget months and years in local
    time (entity products)."""
    if st.last_period is not None and period < st.last_period:
        return []  # an older period arriving late does not rewrite what was decided
    st.values[period] = value
    st.starts[period] = period_start_ns
    new_period = st.last_period != period
    st.last_period = period
    _keep(rule, st, period, calendar_offset_ns)
    out: list[AlertEvent] = []
    # A budget alert belongs to its budget period: a new month (year) closes the old one.
    if (
        rule.kind == "budget"
        and st.state != "inactive"
        and budget_bounds(st.since_ns, rule.budget_period, calendar_offset_ns)
        != budget_bounds(period_start_ns, rule.budget_period, calendar_offset_ns)
    ):
        if st.state == "firing":
            out.append(_event(rule, subject, st, "resolved", None, period_start_ns))
        st.state, st.breaching = "inactive", 0
    x = _measure(rule, st, period, step_ns, calendar_offset_ns)
    if x is None:
        return out
    breach = breaches(rule.operator, x, rule.threshold)
    if st.state == "firing":
        if not breaches(rule.operator, x, rule.clear_level):
            out.append(_event(rule, subject, st, "resolved", x, period_start_ns))
            st.state = "inactive"
            st.breaching = 0
        return out
    if not breach:
        st.state = "inactive"
        st.breaching = 0
        return out
    if st.state == "inactive":
        st.state, st.since, st.since_ns, st.breaching = "pending", period, period_start_ns, 1
    elif new_period:
        st.breaching += 1
    if st.breaching >= rule.for_periods:
        st.state = "firing"
        out.append(_event(rule, subject, st, "firing", x, period_start_ns))
    return out


def silence(
    rule: AlertRule, subject: str, st: RuleState, now_ns: int, step_ns: int
) -> list[AlertEvent]:
    """Silence rules: fires once no period newer than `silence_periods` periods ago was seen
    (judged on the processing clock: silence is about time passing without data)."""
    if st.last_period is None:
        return []
    last_start = st.starts[st.last_period]
    silent = now_ns >= last_start + (rule.silence_periods + 1) * step_ns
    if silent and st.state != "firing":
        st.state, st.since_ns = "firing", last_start + step_ns
        return [_event(rule, subject, st, "firing", None, last_start + step_ns)]
    return []


def heard(
    rule: AlertRule, subject: str, st: RuleState, period: int, start_ns: int
) -> list[AlertEvent]:
    """Silence rules: data arrived; a firing silence resolves."""
    st.values[period] = 0.0
    st.starts[period] = start_ns
    st.last_period = max(period, st.last_period if st.last_period is not None else period)
    for p in [p for p in st.values if p < st.last_period]:
        del st.values[p]
        del st.starts[p]
    if st.state == "firing":
        st.state = "inactive"
        return [_event(rule, subject, st, "resolved", None, start_ns)]
    return []


def _event(
    rule: AlertRule, subject: str, st: RuleState, transition: str, x: float | None, period_ns: int
) -> AlertEvent:
    what = {
        "threshold": f"{rule.aggregate} {rule.variable} over {rule.window} period(s)",
        "rate_of_change": f"change of {rule.variable}",
        "budget": f"{rule.variable} projected to the end of the {rule.budget_period}",
        "silence": f"no data for {rule.silence_periods} period(s)",
    }[rule.kind]
    value = "" if x is None else f" = {x:.6g}"
    if transition == "firing":
        message = f"{subject}: {what}{value} breaches {rule.operator} {rule.threshold:g}"
    elif x is None and rule.kind == "budget":
        message = f"{subject}: budget period closed"
    else:
        back = "at or below" if rule.operator in (">", ">=") else "at or above"
        message = f"{subject}: {what}{value} is back {back} {rule.clear_level:g}"
    if rule.kind == "silence":
        message = f"{subject}: {what}" + (" (data again)" if transition == "resolved" else "")
    return AlertEvent(
        alert_id=alert_id(rule.id, subject, st.since_ns),
        transition=transition,
        rule_id=rule.id,
        subject=subject,
        severity=rule.severity,
        value=x,
        threshold=rule.threshold,
        period_ns=period_ns,
        since_ns=st.since_ns,
        message=message,
        labels=subject_labels(rule.product, subject),
    )
