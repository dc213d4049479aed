"""Live push of raw EC rows over HTTP (plain and chunked) and WebSocket, and the drop folder.

The API is served by uvicorn on a loopback port (tests/live_api.py) on a real data directory;
what it acknowledges must be in the journal, decoded exactly, and every refused row or file
counted with its reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config
from connectors.ec.drop_folder import DropFolder
from connectors.push.ec import EcBodyError, parse_ec_body
from storage.journal import Journal, JournalReader
from storage.metadata import MetadataDB
from storage.records import EC_RAW, decode_ec_raw
from storage.tokens import TokenStore
from tests.live_api import live_api

S = 10**9
T0 = 1_772_323_200 * S
DATA = Path(__file__).resolve().parents[1] / "data" / "ec"

PUSH_TOML = """
[journal]
partitions = 2
[connectors.meter_simulator]
enabled = false
[ec.simulator]
enabled = false
[[ec.sites]]
id = "tower-a"
[[ec.sites]]
id = "US-toa5"
averaging_min = 15
sonic = { model = "csat3", height_m = 7.11, north_offset_deg = 33.0 }
gas = { model = "li7500", northward_separation_m = -0.06, eastward_separation_m = 0.15 }
[ec.sites.columns]
u = "Ux"
v = "Uy"
w = "Uz"
ts = "Ts"
co2 = "co2"
h2o = "h2o"
pressure = "press"
diag_sonic = "diag_csat"
[ec.sites.units]
ts = "celsius"
pressure = "kpa"
co2 = "mass_density_mg"
h2o = "mass_density_g"
"""


@pytest.fixture
def config(make_config: Callable[[str], Config]) -> Config:
    c = make_config(PUSH_TOML)
    prepare_data_dir(c)
    return c


@pytest.fixture
def token(config: Config) -> str:
    store = TokenStore(config.storage.layout.metadata_db)
    try:
        return store.create("tests", ["ingest"])
    finally:
        store.close()


@pytest.fixture
def client(config: Config, token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token}"}
    with live_api(config) as url, httpx.Client(base_url=url, timeout=30, headers=headers) as c:
        yield c


def auth(client: httpx.Client) -> dict[str, str]:
    """Only the token: the client's other default headers would spoil the WebSocket handshake."""
    return {"Authorization": client.headers["Authorization"]}


def ws_url(client: httpx.Client, path: str) -> str:
    return str(client.base_url).replace("http://", "ws://").rstrip("/") + path


def journaled(config: Config) -> list[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    out = []
    for p in range(config.journal.partitions):
        reader = JournalReader(config.storage.layout.journal_dir / f"p{p:04d}.sqlite", p)
        for rec in reader.read(1, 10_000):
            assert rec.kind == EC_RAW
            ts, cols = decode_ec_raw(rec.payload)
            out.append((rec.stream, ts, cols))
        reader.close()
    return out


def columnar(n: int, t0: int = T0) -> dict[str, list[float] | list[int]]:
    ts = [t0 + k * S // 10 for k in range(n)]
    return {"ts_ns": ts, "u": [1.0] * n, "v": [0.5] * n, "w": [0.1] * n, "ts": [300.0] * n}


def test_http_push_is_acknowledged_once_durable(client: httpx.Client, config: Config) -> None:
    body = columnar(50)
    body["co2"] = [400.0] * 48 + ["oops", None]  # type: ignore[list-item]
    r = client.post("/v1/ingest/ec/tower-a", content=orjson.dumps(body))
    assert r.status_code == 202, r.text
    reply = r.json()
    assert reply["accepted"] == 50 and reply["non_numeric_values"] == 1
    ((site, ts, cols),) = journaled(config)
    assert site == "tower-a" and ts.tolist() == body["ts_ns"]
    assert np.isnan(cols["co2"][48:]).all() and (cols["co2"][:48] == 400.0).all()


def test_chunked_csv_and_ndjson_push(client: httpx.Client, config: Config) -> None:
    lines = ["ts_ns,u,v,w,ts"] + [f"{T0 + k * S // 10},1,2,0.1,300" for k in range(30)]
    lines.append("garbage,1,2,3,4")

    def chunks() -> Iterator[bytes]:
        for k in range(0, len(lines), 7):
            yield ("\n".join(lines[k : k + 7]) + "\n").encode()

    r = client.post("/v1/ingest/ec/tower-a", content=chunks(), headers={"content-type": "text/csv"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 30 and r.json()["rejected"][0]["index"] == 30
    nd = b"\n".join(
        orjson.dumps({"time": "2026-03-01T00:00:10Z", "u": 1, "v": 1, "w": 0, "ts": 300})
        for _ in range(1)
    )
    r = client.post(
        "/v1/ingest/ec/tower-a", content=nd, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 202 and r.json()["accepted"] == 1
    assert [len(ts) for _, ts, _ in journaled(config)] == [30, 1]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/ingest/ec/nowhere", b"{}", 404),
        ("/v1/ingest/ec/tower-a", b"{not json", 400),
        ("/v1/ingest/ec/tower-a", b'{"ts_ns": [1], "u": [1]}', 400),
        ("/v1/ingest/ec/tower-a", b'[{"u": 1, "v": 1, "w": 1, "ts": 1, "ts_ns": "x"}]', 422),
    ],
)
def test_bad_pushes_are_refused_with_a_reason(
    client: httpx.Client, path: str, body: bytes, status: int
) -> None:
    r = client.post(path, content=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_websocket_batches_are_each_acknowledged(client: httpx.Client, config: Config) -> None:
    with connect(ws_url(client, "/v1/ingest/ec/tower-a"), additional_headers=auth(client)) as ws:
        for k in range(3):
            ws.send(orjson.dumps(columnar(10, T0 + k * S)).decode())
            reply = orjson.loads(ws.recv())
            assert reply["seq"] == k + 1 and reply["accepted"] == 10
            assert reply["journal"]["offset"] >= 1
        ws.send("{broken")
        assert "error" in orjson.loads(ws.recv())
    assert sum(len(ts) for _, ts, _ in journaled(config)) == 30


def test_websocket_unknown_site_is_closed(client: httpx.Client) -> None:
    with (
        connect(ws_url(client, "/v1/ingest/ec/nowhere"), additional_headers=auth(client)) as ws,
        pytest.raises(ConnectionClosed) as exc,
    ):
        ws.recv()
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 4404


def test_body_shapes_parse_alike() -> None:
    cols = columnar(3)
    rows = [{k: cols[k][i] for k in cols} for i in range(3)]
    a = parse_ec_body(orjson.dumps(cols), "application/json")
    b = parse_ec_body(orjson.dumps(rows), "application/json")
    assert a.ts_ns.tolist() == b.ts_ns.tolist() and a.columns.keys() == b.columns.keys()
    with pytest.raises(EcBodyError, match="Content-Type"):
        parse_ec_body(b"x", "application/xml")


def test_drop_folder_reads_each_file_once(config: Config) -> None:
    root = config.storage.layout.data_dir / "drop"
    (root / "US-toa5").mkdir(parents=True)
    (root / "unknown-site").mkdir()
    src = DATA / "TOA5-open-path" / "TOA5_6843.ts_Above_2012_06_07_1245.dat"
    shutil.copy(src, root / "US-toa5" / src.name)
    (root / "US-toa5" / "other_program.dat").write_text(
        '"TOA5","1","CR1000","1","x","CPU:met.CR1","1","Met"\n'
        '"TIMESTAMP","RECORD","BattV"\n"TS","RN","V"\n"","","Smp"\n"2012-06-07 13:00:00",1,12.5\n'
    )
    (root / "unknown-site" / "x.dat").write_text("a\n")
    journal = Journal(config.storage.layout.journal_dir, config.journal.partitions)
    db = MetadataDB(config.storage.layout.metadata_db)
    folder = DropFolder(config, journal, db)
    folder.root = root
    folder.settle_ns = 5 * S
    assert folder.scan(now_ns=0) == []  # just seen: may still be written
    ready = folder.scan(now_ns=10 * S)
    assert [p.name for p in ready] == [src.name, "other_program.dat", "x.dat"]
    assert [folder.ingest(p) for p in ready] == [18_000, 0, 0]
    assert folder.scan(now_ns=100 * S) == []  # each file once
    status = {k: v for (_, k), (v, _) in db.status("ec_drop").items()}
    assert "not in this file" in status["US-toa5/other_program.dat"]["error"]
    assert "not configured" in status["unknown-site/x.dat"]["error"]
    records = journaled(config)
    assert {s for s, _, _ in records} == {"US-toa5"}
    assert sum(len(ts) for _, ts, _ in records) == 18_000
    journal.close()
    db.close()


def test_websocket_without_an_ingest_token_is_closed(client: httpx.Client, config: Config) -> None:
    for headers, code in (({}, 4401), ({"Authorization": f"Bearer {_read_token(config)}"}, 4403)):
        with (
            connect(ws_url(client, "/v1/ingest/ec/tower-a"), additional_headers=headers) as ws,
            pytest.raises(ConnectionClosed) as exc,
        ):
            ws.recv()
        assert exc.value.rcvd is not None and exc.value.rcvd.code == code


def _read_token(config: Config) -> str:
    store = TokenStore(config.storage.layout.metadata_db)
    try:
        return store.create("reader", ["read"])
    finally:
        store.close()
