"""Alert rules on entity products (a district's hourly CO2, a company's monthly quota).

Entity totals are not cells flowing through the dataflow: the roll-up materializer recomputes
them from stored meter data. So their rules are evaluated here, by the roll-up thread, after each
cycle, on the stored entity products — with the same state machines (stream.alert_state) as the
rules of the dataflow.

A period is judged once it is closed for the whole fleet: the newest meters/interval period that
was flushed before the cycle began starts at or after the period's end (so everything the fleet
sent for it is rolled up). A meter reading arriving after that changes the stored totals (and a
recomputation) but not the alert decided, as for every other rule (alerts judge closed periods).

State per (rule, subject) is kept in the metadata database. Transitions are recorded before the
state is saved: after a crash in between, the same periods are judged again, and the store
ignores the transitions it already has (alert ids are deterministic).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import orjson

from carbonstream.config import Config
from carbonstream.metrics import ALERT_TRANSITIONS
from carbonstream.products import entity_specs
from storage.alert_rules import AlertRule
from storage.alerts import AlertEvent, AlertStore
from storage.metadata import MetadataDB
from storage.products import ProductSpec
from storage.zarr_store import ProductReader, ProductStore
from stream.alert_state import RuleState, budget_bounds, observe

log = logging.getLogger(__name__)

MAX_CATCH_UP_PERIODS = 10_000
"""A rule seen for the first time looks back at most this far (its window, or its budget
period so far), so adding a rule to a long-running service does not read years of data."""


def _key(rule: AlertRule, subject: str) -> str:
    return f"{rule.id}|{subject}"


def _dump(st: RuleState) -> str:
    return orjson.dumps(asdict(st), option=orjson.OPT_NON_STR_KEYS).decode()


def _load(doc: str) -> RuleState:
    raw = orjson.loads(doc)
    raw["values"] = {int(k): float(v) for k, v in raw["values"].items()}
    raw["starts"] = {int(k): int(v) for k, v in raw["starts"].items()}
    return RuleState(**raw)


class EntityAlerts:
    """Evaluates the rules on entity products over the periods closed since the last cycle."""

    def __init__(self, config: Config) -> None:
        layout = config.storage.layout
        self._store = AlertStore(layout.metadata_db)
        self._db = MetadataDB(layout.metadata_db)
        self._specs = entity_specs(config)
        locks = layout.data_dir / "locks"
        self._readers = {
            name: ProductReader(ProductStore(layout.zarr_store, spec, locks), refresh_s=0)
            for name, spec in self._specs.items()
        }
        self._offset_ns = config.rollups.offset_ns

    def evaluate(self, closed_before_ns: int | None) -> list[AlertEvent]:
        """Judges every period ending at or before `closed_before_ns`; returns new transitions."""
        if closed_before_ns is None:
            return []
        rules = [
            r for r, _ in self._store.rules() if r.product in self._specs and r.kind != "silence"
        ]
        recorded: list[AlertEvent] = []
        for rule in rules:
            try:
                recorded += self._evaluate_rule(rule, closed_before_ns)
            except Exception:  # one bad rule (e.g. an unknown variable) must not stop the rest
                log.exception("entity alert rule %s could not be evaluated", rule.id)
        return recorded

    def _evaluate_rule(self, rule: AlertRule, closed_before_ns: int) -> list[AlertEvent]:
        spec = self._specs[rule.product]
        if rule.variable not in {v.name for v in spec.variables}:
            raise ValueError(f"{rule.product} has no variable {rule.variable!r}")
        last_closed = spec.slot_of(closed_before_ns) - 1  # the period holding it is open
        if last_closed < 0:
            return []
        subjects = [s for s in self._db.streams(spec.axis) if rule.matches(s.id)]
        stored = self._store.rule_states(f"{rule.id}|")
        fingerprint = rule.fingerprint()
        states: dict[str, RuleState] = {}
        first_needed: dict[str, int] = {}
        for s in subjects:
            key = _key(rule, s.id)
            st = _load(stored[key]) if key in stored else None
            if st is None or st.fingerprint != fingerprint:
                st = RuleState(fingerprint)
            states[s.id] = st
            if st.last_period is not None:
                first_needed[s.id] = st.last_period + 1
            else:
                first_needed[s.id] = self._first_period(rule, spec, last_closed)
        todo = [s for s in subjects if first_needed[s.id] <= last_closed]
        if not todo:
            return []
        first = min(first_needed[s.id] for s in todo)
        data = (
            self._readers[rule.product]
            .read([s.idx for s in todo], first, last_closed + 1, [rule.variable])[rule.variable]
            .astype(np.float64)
        )
        starts = spec.slot_starts(first, last_closed + 2)
        events: list[AlertEvent] = []
        for i, s in enumerate(todo):
            st = states[s.id]
            for j in range(first_needed[s.id] - first, last_closed + 1 - first):
                value = float(data[i, j])
                if not np.isfinite(value):
                    continue  # a period without a value is not an observation
                events += observe(
                    rule,
                    s.id,
                    st,
                    first + j,
                    int(starts[j]),
                    value,
                    int(starts[j + 1] - starts[j]),
                    self._offset_ns,
                )
            # Judged up to here even where the last periods had no value.
            st.last_period = max(st.last_period if st.last_period is not None else -1, last_closed)
        new = self._store.record(events)
        for e in new:
            ALERT_TRANSITIONS.labels(e.rule_id, e.transition).inc()
            log.info("alert %s: %s", e.transition, e.message)
        self._store.save_rule_states({_key(rule, s.id): _dump(states[s.id]) for s in todo})
        return new

    def _first_period(self, rule: AlertRule, spec: ProductSpec, last_closed: int) -> int:
        """Where a new rule starts: its rolling window (and `for` run) before the newest closed
        period, or the start of its budget period."""
        if rule.kind == "budget":
            start_ns, _ = budget_bounds(
                spec.slot_start_ns(last_closed), rule.budget_period, self._offset_ns
            )
            first = spec.slot_of(start_ns)
        else:
            first = last_closed - max(rule.window, rule.for_periods, 2) + 1
        return max(0, first, last_closed - MAX_CATCH_UP_PERIODS + 1)

    def close(self) -> None:
        self._store.close()
        self._db.close()
