"""Every rule kind: firing, resolving, hysteresis and deduplication (no repeated announcements)."""

from __future__ import annotations

import pytest

from storage.alert_rules import AlertRule, alert_id
from stream.alert_state import RuleState, heard, observe, silence

H = 3_600 * 10**9
DAY = 24 * H
T0 = 1_772_323_200 * 10**9  # 2026-03-01T00:00Z


def run(rule: AlertRule, values: list[float], step: int = H) -> list[tuple[int, str]]:
    """(period, transition) of every event while feeding one value per period."""
    st = RuleState(rule.fingerprint())
    out = []
    for p, v in enumerate(values):
        for e in observe(rule, "site-1/a05001", st, p, T0 + p * step, v, step):
            out.append((p, e.transition))
    return out


def permit(**kw: object) -> AlertRule:
    return AlertRule.model_validate(
        {"id": "co2-permit", "product": "cems/hour", "variable": "mass", "threshold": 100.0, **kw}
    )


def test_threshold_fires_once_and_resolves() -> None:
    events = run(permit(), [50, 120, 130, 140, 90, 80])
    assert events == [(1, "firing"), (4, "resolved")], "one firing while it stays high: dedup"


def test_threshold_hysteresis_keeps_firing_until_the_clear_level() -> None:
    events = run(permit(clear=80.0), [120, 95, 99, 85, 79, 120])
    assert events == [(0, "firing"), (4, "resolved"), (5, "firing")]
    flapping = run(permit(), [120, 95, 101, 99, 101])
    assert [t for _, t in flapping] == ["firing", "resolved", "firing", "resolved", "firing"]


def test_for_periods_keeps_an_alert_pending() -> None:
    assert run(permit(for_periods=3), [120, 130, 90, 120, 130, 140, 150]) == [(5, "firing")]


def test_rolling_window_mean() -> None:
    rule = permit(window=3, aggregate="mean")
    # means: 150, 125, 100 (not > 100), 70
    assert run(rule, [150, 100, 50, 60]) == [(0, "firing"), (2, "resolved")]


def test_the_same_breach_gets_the_same_id_and_a_new_breach_a_new_one() -> None:
    rule = permit()
    st = RuleState(rule.fingerprint())
    first = observe(rule, "s", st, 1, T0 + H, 150.0, H)[0]
    assert first.alert_id == alert_id("co2-permit", "s", T0 + H)
    again = observe(rule, "s", st, 1, T0 + H, 160.0, H)
    assert again == [], "an update of the same period does not announce again"
    resolved = observe(rule, "s", st, 2, T0 + 2 * H, 10.0, H)[0]
    assert resolved.alert_id == first.alert_id
    second = observe(rule, "s", st, 5, T0 + 5 * H, 150.0, H)[0]
    assert second.alert_id != first.alert_id


def test_late_periods_do_not_rewrite_decisions() -> None:
    rule = permit()
    st = RuleState(rule.fingerprint())
    observe(rule, "s", st, 5, T0 + 5 * H, 10.0, H)
    assert observe(rule, "s", st, 3, T0 + 3 * H, 500.0, H) == []


def test_rate_of_change() -> None:
    rule = AlertRule(
        id="jump",
        kind="rate_of_change",
        product="cems/minute",
        variable="value",
        threshold=5.0,
        transform="abs",
    )
    assert run(rule, [10, 11, 20, 21, 12, 12.5], step=60 * 10**9) == [
        (2, "firing"),
        (3, "resolved"),
        (4, "firing"),
        (5, "resolved"),
    ]


def test_flag_bits_and_absolute_deviation() -> None:
    calibration = AlertRule(
        id="cal",
        product="cems/hour",
        variable="quality",
        transform="bits",
        mask=4,
        operator=">",
        threshold=0,
    )
    assert run(calibration, [0, 4, 5, 1, 0]) == [(1, "firing"), (3, "resolved")]
    deviation = AlertRule(
        id="acc",
        product="cems/day",
        variable="accounting_error",
        transform="abs",
        threshold=0.10,
        clear=0.08,
    )
    assert run(deviation, [0.02, -0.12, 0.09, 0.05], step=DAY) == [(1, "firing"), (3, "resolved")]
    ec_flag = AlertRule(
        id="qc2", product="ec/flux_30min", variable="FC_SSITC_TEST", operator=">=", threshold=2
    )
    assert run(ec_flag, [0, 1, 2, 2, 0]) == [(2, "firing"), (4, "resolved")]


def test_budget_projects_the_month_to_date() -> None:
    # 31-day month, quota 3,100: on track while the daily mean stays at or under 100.
    rule = AlertRule(
        id="budget",
        kind="budget",
        product="cems/day",
        variable="mass",
        threshold=3_100.0,
        clear=3_000.0,
    )
    days = [100.0] * 5 + [160.0] * 3 + [50.0] * 10 + [40.0] * 13
    events = run(rule, days, step=DAY)
    transitions = [t for _, t in events]
    assert transitions == ["firing", "resolved"]
    (fire_day, _), (clear_day, _) = events
    assert fire_day == 5  # day 6: 660 over 6 days projects to 3,410
    to_date = sum(days[: clear_day + 1])
    assert to_date / ((clear_day + 1) / 31) <= 3_000.0 < sum(days[:clear_day]) / (clear_day / 31)


def test_budget_starts_again_each_month() -> None:
    rule = AlertRule(
        id="budget", kind="budget", product="cems/day", variable="mass", threshold=3_100.0
    )
    events = run(rule, [200.0] * 40, step=DAY)  # March is over budget, and April again
    assert [t for _, t in events] == ["firing", "resolved", "firing"]


def test_silence_fires_after_the_gap_and_resolves_on_data() -> None:
    rule = AlertRule(id="quiet", kind="silence", product="cems/minute", silence_periods=3)
    st = RuleState(rule.fingerprint())
    m = 60 * 10**9
    assert heard(rule, "s", st, 10, T0 + 10 * m) == []
    assert silence(rule, "s", st, T0 + 13 * m, m) == []
    (fired,) = silence(rule, "s", st, T0 + 14 * m, m)
    assert fired.transition == "firing"
    assert silence(rule, "s", st, T0 + 20 * m, m) == [], "announced once"
    (back,) = heard(rule, "s", st, 21, T0 + 21 * m)
    assert back.transition == "resolved" and back.alert_id == fired.alert_id


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"id": "x", "product": "p"}, "needs a variable"),
        ({"id": "x", "product": "p", "variable": "v", "transform": "bits"}, "non-zero mask"),
        ({"id": "bad id", "product": "p", "variable": "v"}, "String should match pattern"),
    ],
)
def test_rules_are_validated(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertRule.model_validate(spec)
