"""CEMS stacks: sites, hourly and daily values and emissions, period totals with the monitoring
vs accounting comparison, and data-quality signals. Everything is read from the cems/* products
(and the server's published counters), so answers are a pure function of stored data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import READ
from api.errors import Problem
from api.responses import NumericJSONResponse
from api.state import ApiState, State
from api.tabular import (
    FORMAT_QUERY,
    TABLE_RESPONSES,
    TableFormat,
    negotiate,
    rows_frame,
    table_response,
)
from api.timeparams import iso, time_range
from carbonstream.core import cems
from connectors.hj212.server import STATUS_COMPONENT
from connectors.hj212.settings import FLOW_CODE, SiteSettings
from connectors.hj212.sites import channel_row_id, effective_sites
from storage.cems_products import RULE_FILL, STATUS_FILL
from storage.metadata import StreamInfo
from storage.products import CEMS_AXIS

router = APIRouter(prefix="/v1/cems", tags=["cems"])

NS = 1_000_000_000
HOUR_NS = 3600 * NS
DAY_NS = 86_400 * NS
MAX_HOURS = 24 * 366
MAX_MINUTES = 7 * 1440
MAX_DAYS = 366 * 5
Codes = Annotated[list[str] | None, Query(description="HJ 212 codes (default: all of the site)")]
STATUS_NAMES = {0: "valid", 1: "invalid", 2: "not_operating"}
QUALITY_BITS = {
    1: "flatline",
    2: "jump",
    4: "calibration",
    8: "repeated_packets",
    16: "accounting_disagreement",
}


def _site(state: ApiState, site_id: str) -> SiteSettings:
    for s in effective_sites(state.config):
        if s.id == site_id:
            return s
    raise Problem(404, "Unknown site", f"CEMS site {site_id!r} is not configured")


def _variables(
    state: ApiState, site: SiteSettings, codes: Sequence[str] | None
) -> list[StreamInfo]:
    wanted = [FLOW_CODE, *(c.code for c in site.channels)]
    if codes:
        unknown = sorted(set(codes) - set(wanted))
        if unknown:
            raise Problem(
                400, "Unknown code", f"site {site.id!r} has no code {unknown[0]!r}; it has {wanted}"
            )
        wanted = [c for c in wanted if c in codes]
    ids = [channel_row_id(site.id, c) for c in wanted]
    found = {s.id: s for s in state.db.streams(CEMS_AXIS, ids)}
    return [found[i] for i in ids if i in found]


def _quality(bits: int) -> list[str]:
    return [name for bit, name in QUALITY_BITS.items() if bits & bit]


def _hour_window(state: ApiState, start_ns: int, end_ns: int) -> tuple[int, int]:
    spec = state.cems_readers["cems/hour"].spec
    slot0 = max(0, spec.slot_of(start_ns))
    slot1 = max(slot0, spec.slot_of(end_ns - 1) + 1)
    if slot1 - slot0 > MAX_HOURS:
        raise Problem(400, "Time range too long", f"at most {MAX_HOURS} hours per query")
    return slot0, slot1


def _day_window(state: ApiState, site: SiteSettings, start_ns: int, end_ns: int) -> tuple[int, int]:
    """Slots of the site's local days that overlap [start, end)."""
    spec = state.cems_readers["cems/day"].spec
    off = site.offset_minutes * 60 * NS
    day0 = spec.origin_ns // DAY_NS
    first = (start_ns + off) // DAY_NS - day0
    last = (end_ns - 1 + off) // DAY_NS - day0
    slot0, slot1 = max(0, first), max(0, last + 1)
    if slot1 - slot0 > MAX_DAYS:
        raise Problem(400, "Time range too long", f"at most {MAX_DAYS} days per query")
    return slot0, slot1


@router.get(
    "/sites",
    dependencies=[READ],
    summary="CEMS sites: their variables, rules and live connection counters",
)
def list_sites(state: State) -> Response:
    status = state.db.status(STATUS_COMPONENT).get((STATUS_COMPONENT, "server"))
    server: dict[str, Any] = status[0] if status else {}
    live = server.get("sites", {})
    items = []
    for s in effective_sites(state.config):
        items.append(
            {
                "id": s.id,
                "name": s.name or s.id,
                "mn": s.mn,
                "policy": s.policy,
                "utc_offset": s.utc_offset,
                "minutes_from": s.minutes_from,
                "variables": [
                    {"code": v.attrs.get("code"), **{k: v.attrs.get(k) for k in _VAR_ATTRS}}
                    for v in _variables(state, s, None)
                ],
                "fuel_meters": [f.model_dump() for f in s.fuel_meters],
                "agreement_threshold": s.agreement_threshold,
                "server": live.get(s.id),
            }
        )
    return NumericJSONResponse(
        {
            "server": {k: server.get(k) for k in ("port", "connections", "rejected", "commits")},
            "items": items,
        }
    )


_VAR_ATTRS = ("parameter", "role", "unit", "mass_unit")


@router.get(
    "/{site_id}/minutes",
    dependencies=[READ],
    summary="A site's minute values, flags and quality signals",
    responses=TABLE_RESPONSES,
)
def minutes(
    state: State,
    request: Request,
    site_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 1 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    code: Codes = None,
    format: TableFormat | None = FORMAT_QUERY,
) -> Response:
    site = _site(state, site_id)
    start_ns, end_ns = time_range(start, end, HOUR_NS)
    variables = _variables(state, site, code)
    reader = state.cems_readers["cems/minute"]
    spec = reader.spec
    slot0 = max(0, spec.slot_of(start_ns))
    slot1 = max(slot0, spec.slot_of(end_ns - 1) + 1)
    if slot1 - slot0 > MAX_MINUTES:
        raise Problem(400, "Time range too long", f"at most {MAX_MINUTES} minutes per query")
    data = reader.read([v.idx for v in variables], slot0, slot1)
    rows: list[dict[str, Any]] = []
    for i, v in enumerate(variables):
        for j in np.flatnonzero(data["flag"][i] != 0).tolist():
            rows.append(
                {
                    "minute_start": iso(spec.slot_start_ns(slot0 + j)),
                    "code": v.attrs.get("code"),
                    "value": data["value"][i, j],
                    "unit": v.attrs.get("unit"),
                    "flag": chr(int(data["flag"][i, j])),
                    "mass": data["mass"][i, j],
                    "mass_unit": v.attrs.get("mass_unit") or None,
                    "quality": _quality(int(data["quality"][i, j])),
                }
            )
    rows.sort(key=lambda r: (r["minute_start"], r["code"]))
    return _table(rows, request, format, {"site": site.id}, "minutes")


@router.get(
    "/{site_id}/hourly",
    dependencies=[READ],
    summary="A site's hourly values and emissions",
    responses=TABLE_RESPONSES,
)
def hourly(
    state: State,
    request: Request,
    site_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    code: Codes = None,
    format: TableFormat | None = FORMAT_QUERY,
) -> Response:
    site = _site(state, site_id)
    start_ns, end_ns = time_range(start, end, DAY_NS)
    variables = _variables(state, site, code)
    reader = state.cems_readers["cems/hour"]
    slot0, slot1 = _hour_window(state, start_ns, end_ns)
    data = reader.read([v.idx for v in variables], slot0, slot1)
    rows: list[dict[str, Any]] = []
    for i, v in enumerate(variables):
        present = np.flatnonzero(data["status"][i] != STATUS_FILL)
        for j in present.tolist():
            rule = int(data["rule"][i, j])
            rows.append(
                {
                    "hour_start": iso(reader.spec.slot_start_ns(slot0 + j)),
                    "code": v.attrs.get("code"),
                    "value": data["value"][i, j],
                    "unit": v.attrs.get("unit"),
                    "status": STATUS_NAMES.get(int(data["status"][i, j])),
                    "valid_minutes": int(data["valid_minutes"][i, j]),
                    "operating_minutes": int(data["operating_minutes"][i, j]),
                    "calibration_minutes": int(data["calibration_minutes"][i, j]),
                    "flow_total": data["flow_total"][i, j],
                    "measured_mass": data["measured_mass"][i, j],
                    "mass": data["mass"][i, j],
                    "mass_unit": v.attrs.get("mass_unit") or None,
                    "rule": None if rule == RULE_FILL else cems.RULES.get(rule, str(rule)),
                    "availability_pct": data["availability"][i, j],
                    "logger_mass": data["logger_mass"][i, j],
                    "accounting_mass": data["accounting_mass"][i, j],
                    "accounting_error": data["accounting_error"][i, j],
                    "quality": _quality(int(data["quality"][i, j])),
                }
            )
    rows.sort(key=lambda r: (r["hour_start"], r["code"]))
    envelope = {
        "site": site.id,
        "policy": site.policy,
        "utc_offset": site.utc_offset,
        "start": iso(start_ns),
        "end": iso(end_ns),
    }
    return _table(rows, request, format, envelope, "hours")


@router.get(
    "/{site_id}/daily",
    dependencies=[READ],
    summary="A site's daily values and emissions (local days)",
    responses=TABLE_RESPONSES,
)
def daily(
    state: State,
    request: Request,
    site_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 31 days"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
    code: Codes = None,
    format: TableFormat | None = FORMAT_QUERY,
) -> Response:
    site = _site(state, site_id)
    start_ns, end_ns = time_range(start, end, 31 * DAY_NS)
    variables = _variables(state, site, code)
    reader = state.cems_readers["cems/day"]
    slot0, slot1 = _day_window(state, site, start_ns, end_ns)
    data = reader.read([v.idx for v in variables], slot0, slot1)
    rows: list[dict[str, Any]] = []
    for i, v in enumerate(variables):
        present = np.flatnonzero(data["status"][i] != STATUS_FILL)
        for j in present.tolist():
            date = np.datetime64(reader.spec.slot_start_ns(slot0 + j), "ns").astype("datetime64[D]")
            rows.append(
                {
                    "date": str(date),
                    "day_start": f"{date}T00:00:00{site.utc_offset}",
                    "code": v.attrs.get("code"),
                    "value": data["value"][i, j],
                    "unit": v.attrs.get("unit"),
                    "status": STATUS_NAMES.get(int(data["status"][i, j])),
                    "flow_total": data["flow_total"][i, j],
                    "mass": data["mass"][i, j],
                    "mass_unit": v.attrs.get("mass_unit") or None,
                    "measured_hours": int(data["measured_hours"][i, j]),
                    "substituted_hours": int(data["substituted_hours"][i, j]),
                    "not_operating_hours": int(data["not_operating_hours"][i, j]),
                    "missing_hours": int(data["missing_hours"][i, j]),
                    "accounting_mass": data["accounting_mass"][i, j],
                    "accounting_error": data["accounting_error"][i, j],
                    "quality": _quality(int(data["quality"][i, j])),
                }
            )
    rows.sort(key=lambda r: (r["date"], r["code"]))
    envelope = {"site": site.id, "utc_offset": site.utc_offset}
    return _table(rows, request, format, envelope, "days")


@router.get(
    "/{site_id}/totals",
    dependencies=[READ],
    summary="Emission totals of a period per mass channel, and monitoring vs accounting for CO2",
)
def totals(
    state: State,
    site_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
) -> Response:
    site = _site(state, site_id)
    start_ns, end_ns = time_range(start, end, DAY_NS)
    masses = [v for v in _variables(state, site, None) if v.attrs.get("role") == "mass"]
    slot0, slot1 = _hour_window(state, start_ns, end_ns)
    data = state.cems_readers["cems/hour"].read([v.idx for v in masses], slot0, slot1)
    items = []
    for i, v in enumerate(masses):
        rule = data["rule"][i]
        closed = data["status"][i] != STATUS_FILL
        item: dict[str, Any] = {
            "code": v.attrs.get("code"),
            "parameter": v.attrs.get("parameter"),
            "mass": float(np.nansum(data["mass"][i])),
            "mass_unit": v.attrs.get("mass_unit"),
            "measured_mass": float(np.nansum(np.where(rule == 0, data["mass"][i], np.nan))),
            "substituted_mass": float(np.nansum(np.where(rule >= 10, data["mass"][i], np.nan))),
            "hours": int(closed.sum()),
            "measured_hours": int((rule == 0).sum()),
            "substituted_hours": int(((rule >= 10) & (rule < RULE_FILL)).sum()),
            "not_operating_hours": int((rule == 1).sum()),
            "pending_hours": int((rule == cems.RULE_PENDING).sum()),
        }
        if v.attrs.get("code") == "a05001" and site.fuel_meters:
            acc = data["accounting_mass"][i]
            both = np.isfinite(acc) & np.isfinite(data["mass"][i])
            mon_t, acc_t = float(data["mass"][i][both].sum()), float(acc[both].sum())
            comparison: dict[str, Any] = {
                "hours": int(both.sum()),
                "monitored": mon_t,
                "accounted": acc_t,
                "relative_error": None,
                "threshold": site.agreement_threshold,
                "flagged": None,
            }
            if acc_t > 0:
                err, flagged = cems.compare(mon_t / 1000, acc_t / 1000, site.agreement_threshold)
                comparison |= {"relative_error": err, "flagged": flagged}
            item["accounting"] = comparison
        items.append(item)
    return NumericJSONResponse(
        {"site": site.id, "start": iso(start_ns), "end": iso(end_ns), "channels": items}
    )


@router.get(
    "/{site_id}/quality",
    dependencies=[READ],
    summary="Data-quality signals of a period, per variable",
)
def quality(
    state: State,
    site_id: str,
    start: str | None = Query(None, description="ISO 8601 with offset; default end - 24 h"),
    end: str | None = Query(None, description="ISO 8601 with offset; default now"),
) -> Response:
    site = _site(state, site_id)
    start_ns, end_ns = time_range(start, end, DAY_NS)
    variables = _variables(state, site, None)
    slot0, slot1 = _hour_window(state, start_ns, end_ns)
    reader = state.cems_readers["cems/hour"]
    data = reader.read(
        [v.idx for v in variables], slot0, slot1, ["quality", "status", "calibration_minutes"]
    )
    items = []
    for i, v in enumerate(variables):
        q = data["quality"][i].astype(np.int64)
        flagged = {
            name: [
                iso(reader.spec.slot_start_ns(slot0 + j)) for j in np.flatnonzero(q & bit).tolist()
            ]
            for bit, name in QUALITY_BITS.items()
        }
        items.append(
            {
                "code": v.attrs.get("code"),
                "hours": int((data["status"][i] != STATUS_FILL).sum()),
                "counts": {k: len(h) for k, h in flagged.items()},
                "hours_flagged": {k: h for k, h in flagged.items() if h},
                "calibration_minutes": int(data["calibration_minutes"][i].sum()),
            }
        )
    status = state.db.status(STATUS_COMPONENT).get((STATUS_COMPONENT, "server"))
    live = (status[0] if status else {}).get("sites", {}).get(site.id) or {}
    dead = state.db.dead_letter_counts()
    return NumericJSONResponse(
        {
            "site": site.id,
            "start": iso(start_ns),
            "end": iso(end_ns),
            "variables": items,
            "server_rejected": live.get("rejected", {}),
            "dead_letters": {reason: n for (src, reason), n in dead.items() if src == "flow.cems"},
        }
    )


def _table(
    rows: list[dict[str, Any]],
    request: Request,
    format: str | None,
    envelope: dict[str, Any],
    rows_key: str,
) -> Response:
    fmt = negotiate(request, format)
    if fmt == "json":  # rows as built: no detour through a frame
        return NumericJSONResponse({**envelope, rows_key: rows})
    return table_response(rows_frame(rows), fmt, envelope, rows_key)
