"""Alert rules: what to watch, when it breaches, when it clears.

One model serves every rule kind, declared in the configuration ([[alerts.rules]]) or through the
API, and is stored in the metadata database, so the dataflow always evaluates the same rules the
API shows.

- threshold: an aggregate of the last `window` periods of a product variable compared with
  `threshold` (e.g. hourly CO2 mass above a permit). With `transform = "abs"` it compares the
  absolute value (a monitoring-vs-accounting deviation of +/-10 %), with `transform = "bits"` it
  tests flag bits (`mask`: CEMS calibration or fault bits; an EC QC flag is `>= 2`).
- rate_of_change: the change from one period to the next compared with `threshold`.
- budget: the period-to-date sum projected to the end of the month or year, compared with a
  quota (`threshold`): on track to exceed it.
- silence: no new period for `silence_periods` periods of the product.

Hysteresis: a firing alert resolves when the value crosses `clear` (default: the threshold),
so a value hovering at the threshold does not flap. `for_periods` breaching periods in a row are
needed before firing (pending until then).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RULE_ID = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"

Operator = Literal[">", ">=", "<", "<="]


class AlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RULE_ID, description="Rule id, unique.")
    kind: Literal["threshold", "rate_of_change", "budget", "silence"] = Field(
        "threshold", description="threshold, rate_of_change, budget or silence."
    )
    product: str = Field(description="Product watched, e.g. cems/hour, ec/flux_30min.")
    variable: str = Field("", description="Variable of the product, e.g. mass, FC_SSITC_TEST.")
    subject: str = Field(
        "*", description="Stream id, or a glob over stream ids (e.g. 'plant-a-*/a05001')."
    )
    operator: Operator = Field(">", description="How the value is compared with the threshold.")
    threshold: float = Field(0.0, description="Breach threshold (a quota for budget rules).")
    clear: float | None = Field(
        None, description="Value at which a firing alert resolves (hysteresis); default threshold."
    )
    transform: Literal["none", "abs", "bits"] = Field(
        "none", description="none, abs (absolute value) or bits (value AND mask, as a flag test)."
    )
    mask: int = Field(0, ge=0, description="Bits tested when transform = bits.")
    window: int = Field(1, ge=1, le=10_000, description="Periods aggregated (rolling window).")
    aggregate: Literal["last", "mean", "sum", "max", "min"] = Field(
        "last", description="How the window is aggregated."
    )
    for_periods: int = Field(
        1, ge=1, le=10_000, description="Breaching periods in a row before firing."
    )
    budget_period: Literal["month", "year"] = Field(
        "month", description="Budget rules: the period the quota covers (UTC calendar)."
    )
    silence_periods: int = Field(
        3, ge=1, description="Silence rules: periods without data before firing."
    )
    severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="Severity carried by the alert."
    )
    description: str = Field("", description="What the rule is for (shown with its alerts).")

    @model_validator(mode="after")
    def _complete(self) -> AlertRule:
        if self.kind != "silence" and not self.variable:
            raise ValueError(f"a {self.kind} rule needs a variable")
        if self.transform == "bits" and self.mask == 0:
            raise ValueError("transform = bits needs a non-zero mask")
        return self

    @property
    def clear_level(self) -> float:
        return self.threshold if self.clear is None else self.clear

    def matches(self, stream_id: str) -> bool:
        return fnmatch.fnmatchcase(stream_id, self.subject)

    def fingerprint(self) -> str:
        """Changes whenever the rule's meaning changes (state built for another version of the
        rule is not carried over)."""
        doc = json.dumps(self.model_dump(exclude={"description"}), sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


def breaches(op: Operator, value: float, level: float) -> bool:
    if op == ">":
        return value > level
    if op == ">=":
        return value >= level
    if op == "<":
        return value < level
    return value <= level


def alert_id(rule_id: str, subject: str, since_ns: int) -> str:
    """Deterministic: the same breach gets the same id in every run and replay."""
    return hashlib.sha256(f"{rule_id}|{subject}|{since_ns}".encode()).hexdigest()[:20]


def subject_labels(product: str, subject: str) -> dict[str, str]:
    """Site and entity of an alert's subject, for subscription filters."""
    if product.startswith("entities/"):
        return {"entity": subject}
    if product.startswith(("cems/", "ec/")):
        return {"site": subject.split("/", 1)[0]}
    return {"stream": subject}
