"""Schemathesis over the OpenAPI of the real service: no request, however odd, is a server error.

The whole service runs on loopback (ingest, flow and API processes) with data in its directory:
simulated meters and an eddy-covariance tower stream live, and the HJ 212 simulator has sent six
hours of a stack's packets, so hourly, daily and flux queries read real products. Schemathesis
generates requests for every operation of /openapi.json (reads and writes, the writes with an
admin token). Half of the generated cases have their path parameters replaced by ids that exist
and a quarter get a valid time range, so the handlers' data paths run, not only their 404s and
400s. Each response must be below 500, and a refusal (4xx) must be application/problem+json.
The SSE stream is infinite, so its case is checked on its status and first bytes.
"""

from __future__ import annotations

import asyncio
import copy
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from carbonstream.config import load_config
from connectors.hj212.settings import CemsSimulatorSettings
from connectors.simulators.cems_stacks import run_simulator
from tests.conftest import free_port
from tests.e2e.service import Service

pytestmark = pytest.mark.e2e

STACK = "sim-stack-000"
TOWER = "sim-tower-000"
CONFIG_RULE = "config-co2-permit"
PROBLEM = "application/problem+json"
MAX_EXAMPLES = 18

CONFIG = f"""
[storage]
data_dir = "{{data_dir}}"
[journal]
partitions = 2
[recovery]
snapshot_interval_s = 0.5
[connectors.meter_simulator]
count = 10
interval_s = 1.0
[connectors.cems_simulator]
enabled = false
[ec.simulator]
count = 1
averaging_min = 0.25
batch_s = 0.5
[[cems.sites]]
id = "{STACK}"
mn = "SIMSTACK000000"
password = "123456"
[[cems.sites.fuel_meters]]
code = "f01"
[[alerts.rules]]
id = "{CONFIG_RULE}"
product = "cems/hour"
variable = "mass"
subject = "{STACK}/a05001"
threshold = 1e12
"""

# Existing ids per path parameter name (the cases that keep their generated value test the 404s).
KNOWN: dict[str, list[str]] = {
    "site_id": [STACK],
    "site": [TOWER],
    "entity_id": ["demo-city", "demo-north", "demo-ent-01"],
    "meter_id": ["sim-meter-00000", "sim-meter-00009"],
    "rule_id": [CONFIG_RULE, "api-rule"],
}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def yesterday_local_midnight() -> int:
    day, offset = 86_400, 8 * 3600
    return int((time.time() + offset) // day * day - offset - day)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    cwd: Path = tmp_path_factory.mktemp("openapi")
    config = cwd / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(cwd / "data")))
    hj212_port = free_port()
    svc = Service.start(
        cwd, free_port(), config, env={"CARBONSTREAM_CEMS__SERVER__PORT": str(hj212_port)}
    )
    try:
        svc.wait_for("the API", lambda: svc.get_json("/v1/alerts/rules")["items"] or None)
        sim = CemsSimulatorSettings(
            count=1,
            rate=3000.0,
            realtime_interval_s=30.0,
            start=iso(yesterday_local_midnight()),
            duration_s=6 * 3600,
            seed=3,
        )
        counts = asyncio.run(run_simulator(sim, "127.0.0.1", hj212_port))
        assert counts["unanswered"] == 0
        with svc.client() as c:
            rule = {"id": "api-rule", "product": "cems/hour", "variable": "mass", "threshold": 1e12}
            assert c.post("/v1/alerts/rules", json=[rule]).status_code == 201
        svc.wait_for(
            "hourly CEMS values",
            lambda: (
                svc.get_json(f"/v1/cems/{STACK}/hourly", start=iso(time.time() - 3 * 86_400))[
                    "hours"
                ]
                or None
            ),
            timeout_s=60,
        )
        svc.wait_for(
            "fluxes", lambda: svc.get_json(f"/v1/ec/{TOWER}/fluxes")["periods"] or None, 90
        )
        svc.wait_for(
            "entity intervals",
            lambda: (
                svc.get_json("/v1/entities/demo-city/emissions", resolution="interval")["periods"]
                or None
            ),
            timeout_s=90,
        )
        yield svc
    finally:
        code = svc.stop()
        assert code == 0, svc.log_tail()


@pytest.fixture(scope="module")
def admin(service: Service) -> dict[str, str]:
    return {"Authorization": f"Bearer {service.token('admin')}"}


# The OpenAPI document of the application, built without serving it (it depends on no data), so
# the operations are known when tests are collected: one test per operation.
OPENAPI: dict[str, Any] = create_app(load_config(None, environ={})).openapi()
schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI))


def test_the_served_openapi_is_the_one_tested(service: Service) -> None:
    assert service.get_json("/openapi.json") == OPENAPI


# Edge values that random generation reaches only in long runs: instants at the ends of what
# ISO 8601 parsers accept, and integers past what SQLite or int64 arithmetic holds.
EDGE_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-23:59",
    "2262-04-12T00:00:00Z",
    "1677-09-21T00:00:00Z",
    "2199-12-31T00:00:00Z",
    "1900-01-01T00:00:00Z",
]
EDGE_INTS = [2**63 - 1, 2**63, 2**64, 10**30, 2**62]
INT_PARAMS = {"limit", "offset", "after", "since", "factor_version"}
EDGE_EVENT_IDS = [b"\xb2", b"99999999999999999999999", b"-1", b"1e3", b"9223372036854775807"]


def _pick(case: Any) -> int:
    """A hash of the generated case (so a failing case reproduces), whose bits choose below."""
    return zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())


def _realistic(case: Any, pick: int) -> None:
    """Where the operation has them: path parameters become existing ids (half the cases); the
    time range becomes one with data in it (a quarter) or gets an edge instant (a quarter); an
    integer becomes an edge value (a third)."""
    ids, times, ints, k = pick & 1, (pick >> 1) & 3, (pick >> 3) % 3, pick >> 5
    if ids == 0 and case.path_parameters:
        for name in case.path_parameters:
            if name in KNOWN:
                case.path_parameters[name] = KNOWN[name][k % len(KNOWN[name])]
    names = {p.name for p in case.operation.query}
    query = dict(case.query or {})
    if times == 1 and {"start", "end"} <= names:
        now = time.time()
        query |= {"start": iso(now - 2 * 86_400), "end": iso(now)}
    elif times == 3 and names & {"start", "end"}:
        query[sorted(names & {"start", "end"})[k % 2]] = EDGE_TIMES[k % len(EDGE_TIMES)]
    if ints == 0 and names & INT_PARAMS:
        name = sorted(names & INT_PARAMS)[k % len(names & INT_PARAMS)]
        query[name] = EDGE_INTS[k % len(EDGE_INTS)]
    if query:
        case.query = query


def _check_stream(case: Any, pick: int, base_url: str, headers: dict[str, str]) -> None:
    """The SSE stream never ends: a case checks its status, its first bytes, and that it stays
    open a moment (an error inside the stream ends it abruptly)."""
    kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
    sent: dict[str, Any] = dict(kwargs.get("headers") or {})
    if pick & 1:
        sent["Last-Event-ID"] = EDGE_EVENT_IDS[(pick >> 5) % len(EDGE_EVENT_IDS)]
    with (
        httpx.Client(timeout=httpx.Timeout(10.0, read=0.3)) as client,
        client.stream("GET", kwargs["url"], params=kwargs.get("params"), headers=sent) as r,
    ):
        assert r.status_code < 500, f"{r.status_code} for {r.request.url}"
        if r.status_code != 200:
            assert r.headers["content-type"] == PROBLEM, r.headers
            return
        assert r.headers["content-type"].startswith("text/event-stream")
        chunks = r.iter_bytes()
        assert next(chunks).startswith(b"retry:")
        try:
            for _ in chunks:
                pass
        except httpx.ReadTimeout:
            return  # still open: as it should be
        raise AssertionError(f"the stream ended: {r.request.url} {sent.get('Last-Event-ID')!r}")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_with_a_server_error(
    case: Any, service: Service, admin: dict[str, str]
) -> None:
    pick = _pick(case)
    _realistic(case, pick)
    if case.path == "/v1/alerts/stream":
        _check_stream(case, pick, service.base_url, admin)
        return
    response = case.call_and_validate(
        base_url=service.base_url, headers=admin, checks=[not_a_server_error], timeout=30
    )
    if 400 <= response.status_code < 500:
        assert response.headers["content-type"] == [PROBLEM], (
            f"{case.method} {case.formatted_path}: {response.status_code} is not problem+json"
        )
