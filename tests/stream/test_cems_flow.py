"""The CEMS step on real Bytewax runs: journaled HJ 212 packets -> cems/minute, /hour, /day.

Two simulated stacks send 17 hours (20:00 to 13:00 local, across a local midnight) of real-time,
minute and hourly packets; stack 1 has an SO2 fault from 10:00 to 12:00 (substituted hours) and
both report the gas they burn (the accounting method). One packet of each kind of bad input is
journaled beside them. The stored hourly CO2 must equal an independent numpy computation from
the frames (decoded by the pure-Python reference decoder), the substituted hours must follow
HJ 75, days must add up, and a stop-and-resume under two workers must give the same store.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from bytewax.recovery import RecoveryConfig
from bytewax.testing import cluster_main, run_main

from benchmarks.reference import hj212 as ref212
from benchmarks.reference.cems import hourly_mass, minute_means
from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config, load_config
from carbonstream.core import cems, hj212
from carbonstream.products import cems_specs
from connectors.hj212.packets import journal_frames
from connectors.hj212.settings import SiteSettings
from connectors.simulators.cems_stacks import GAS_CO2_KG_PER_NM3, StackLogger, StackModel
from storage.journal import Journal
from storage.metadata import MetadataDB
from storage.products import CEMS_AXIS
from storage.zarr_store import ProductReader, ProductStore
from stream.dataflow import build_dataflow

NS = 10**9
START = 1_772_366_400 * NS  # 2026-03-01T20:00+08:00 (12:00Z)
HOURS = 17
INTERVAL = 60 * NS
GAS_EF = GAS_CO2_KG_PER_NM3  # kg CO2 per Nm3

CONFIG = """
[journal]
partitions = 2
[flow]
sink_partitions = 2
[recovery]
snapshot_interval_s = 0.2
[connectors.meter_simulator]
enabled = false
[connectors.cems_simulator]
enabled = false
[cems.server]
enabled = false
[cems.products]
chunk_streams = 8
minute_chunk_time = 240
hour_chunk_time = 24
day_chunk_time = 8
[[cems.sites]]
id = "stack-a"
mn = "MN-A"
password = "pa"
flatline_minutes = 0
[[cems.sites.fuel_meters]]
code = "f01"
[[cems.sites]]
id = "stack-b"
mn = "MN-B"
password = "pb"
flatline_minutes = 10
[[cems.sites.fuel_meters]]
code = "f01"
"""


_CACHE: dict[tuple[str, int], tuple[tuple[int, bytes], ...]] = {}


def _frames(site: SiteSettings, index: int) -> tuple[tuple[int, bytes], ...]:
    key = (site.model_dump_json(), index)
    if key in _CACHE:
        return _CACHE[key]
    logger = StackLogger(StackModel(index, site, seed=3), INTERVAL)
    out: list[tuple[int, bytes]] = []
    end = START + HOURS * 3600 * NS
    for t in range(START, end + 1, INTERVAL):
        for f in logger.frames_until(t, end):
            out.append((int(f.split(b"CN=")[1][:4]), f))
    _CACHE[key] = tuple(out)
    return _CACHE[key]


def site_frames(config: Config, index: int) -> list[tuple[int, bytes]]:
    return list(_frames(config.cems.sites[index], index))


def bad_frames(good: bytes) -> dict[str, tuple[int, bytes]]:
    seg = good[6:-6].decode()
    crc_broken = good[:-6] + (b"0000" if not good.endswith(b"0000\r\n") else b"1111") + b"\r\n"
    future = seg.replace("DataTime=2026", "DataTime=2099", 1).replace("QN=2026", "QN=2099", 1)
    early = seg.replace("DataTime=2026", "DataTime=2019", 1).replace("QN=2026", "QN=2019", 1)
    return {
        "bad_frame": (2011, crc_broken),
        "future": (2011, hj212.encode_frame(future)),
        "before_origin": (2011, hj212.encode_frame(early)),
    }


def journal_all(
    config: Config, parts: list[list[tuple[str, str, list[tuple[int, bytes]]]]]
) -> None:
    journal = Journal(config.storage.layout.journal_dir, config.journal.partitions)
    for part in parts:
        for site, mn, frames in part:
            for k in range(0, len(frames), 40):
                journal_frames(journal, site, mn, frames[k : k + 40], "test")
    journal.close()


STUCK = (60, 80)
"""Minutes of the run in which stack b's logger repeats one real-time packet's values."""


def stuck(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The real-time packets of the STUCK minutes carry the values of the first one."""
    out, cp = [], None
    for cn, f in frames:
        seg = f[6:-6].decode()
        head, _, rest = seg.partition("CP=&&DataTime=")
        minute = (int(rest[8:10]) - 20) % 24 * 60 + int(rest[10:12])
        if cn == 2011 and STUCK[0] <= minute < STUCK[1]:
            cp = cp or rest[14:]
            f = hj212.encode_frame(f"{head}CP=&&DataTime={rest[:14]}{cp}")
        out.append((cn, f))
    return out


def scenario(
    config: Config,
) -> tuple[list[tuple[str, str, list[tuple[int, bytes]]]], dict[str, list[bytes]]]:
    """Journal writes in order, and the valid frames sent per site."""
    a, b = site_frames(config, 0), site_frames(config, 1)
    b = stuck(b)
    bad = bad_frames(a[5][1])
    # A text value where a number belongs: a warning, the reading is missing, the packet used.
    k = next(i for i in range(7, 20) if a[i][0] == 2011)
    text = hj212.encode_frame(a[k][1][6:-6].decode().replace("a21026-Rtd=", "a21026-Rtd=abc", 1))
    writes = [
        ("stack-a", "MN-A", a[:k]),
        ("stack-a", "MN-A", [(2011, text)]),
        ("stack-a", "MN-A", [*a[k + 1 : 300], a[100], *bad.values()]),  # duplicate, bad input
        ("stack-b", "MN-B", b[:500]),
        ("ghost", "MN-X", a[:2]),
        ("stack-a", "MN-A", a[300:]),
        ("stack-b", "MN-B", b[500:]),
    ]
    sent = {"stack-a": [f for _, f in a], "stack-b": [f for _, f in b]}
    return writes, sent


def run_flow(config: Config, workers: int) -> None:
    flow = build_dataflow(config, stop_at_end=True)
    recovery = RecoveryConfig(str(config.storage.layout.recovery_dir))
    epoch = timedelta(seconds=config.recovery.snapshot_interval_s)
    if workers == 1:
        run_main(flow, epoch_interval=epoch, recovery_config=recovery)
    else:
        cluster_main(
            flow,
            [],
            0,
            epoch_interval=epoch,
            recovery_config=recovery,
            worker_count_per_proc=workers,
        )


def read(
    config: Config, product: str, row_ids: list[str], start_ns: int, n: int
) -> dict[str, np.ndarray]:
    layout = config.storage.layout
    spec = cems_specs(config)[product]
    db = MetadataDB(layout.metadata_db)
    rows = {s.id: s.idx for s in db.streams(CEMS_AXIS)}
    db.close()
    reader = ProductReader(ProductStore(layout.zarr_store, spec, layout.data_dir / "locks"))
    slot = spec.slot_of(start_ns)
    return reader.read([rows[r] for r in row_ids], slot, slot + n)


def reference_hours(frames: list[bytes], code: str, k: float) -> tuple[np.ndarray, np.ndarray]:
    """(hour index, mass) of one channel from the real-time packets, independently."""
    t, q, qf, c, cf = [], [], [], [], []
    for f in frames:
        p = ref212.decode(f, verify_crc=False)
        if p.cn != 2011:
            continue
        assert p.data_time is not None
        t.append(int((p.data_time.timestamp() - 8 * 3600 + _local_shift()) * 1000))
        q.append(p.number("a00000", "Rtd") * 3600)
        qf.append(ord(p.flag("a00000") or "N"))
        v = p.number(code, "Rtd")
        c.append(np.nan if v is None else v)
        cf.append(ord(p.flag(code) or "N"))
    t_ms = np.array(t, np.int64)
    minutes, qm = minute_means(t_ms, np.array(q), np.array(qf, np.uint8))
    _, cm = minute_means(t_ms, np.array(c), np.array(cf, np.uint8))
    h = hourly_mass(minutes, qm, cm, k)
    return h.hour, np.where(h.valid, h.mass, np.nan)


def _local_shift() -> float:
    """naive datetime.timestamp() reads local time of this machine; undo that."""
    import time as _t

    return -_t.timezone if not _t.daylight else -_t.altzone


def fresh_config(tmp: pytest.TempPathFactory) -> Config:
    data = tmp.mktemp("data")
    path = tmp.mktemp("config") / "carbonstream.toml"
    path.write_text(f'[storage]\ndata_dir = "{data}"\n' + CONFIG)
    config = load_config(path, environ={})
    prepare_data_dir(config)
    return config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """One run of the whole scenario, shared by the checks that only read the store."""
    c = fresh_config(tmp_path_factory)
    writes, _ = scenario(c)
    journal_all(c, [writes])
    run_flow(c, workers=1)
    return c


def test_hourly_co2_equals_the_independent_computation(config: Config) -> None:
    _, sent = scenario(config)
    k_co2 = cems.mass_factor("%")
    hour0 = START // NS // 3600
    for site in ("stack-a", "stack-b"):
        hours, want = reference_hours(sent[site], "a05001", k_co2)
        got = read(config, "cems/hour", [f"{site}/a05001"], START, HOURS)
        sel = hours - hour0
        assert got["status"][0, sel].tolist() == [0] * HOURS
        np.testing.assert_allclose(got["measured_mass"][0, sel], want, rtol=1e-9)
        # Measured hours keep their mass; the calibration minutes (03:xx local) are not in it.
        np.testing.assert_allclose(got["mass"][0, sel], want, rtol=1e-9)
        assert set(got["rule"][0].tolist()) == {0}
        # Accounting: the simulated gas is the monitored CO2 x (1 + bias) of the stack.
        bias = (0.03, -0.05)[0 if site == "stack-a" else 1]
        # (Stack b's stuck hour reports values its gas use did not follow: left out.)
        hours_checked = [h for h in range(HOURS) if not (site == "stack-b" and h == 1)]
        np.testing.assert_allclose(
            got["accounting_error"][0, hours_checked], 1 / (1 + bias) - 1, rtol=0, atol=2e-3
        )
        # The logger's own hourly CO2 total agrees with ours (its minutes are the same means).
        np.testing.assert_allclose(
            got["logger_mass"][0, hours_checked], got["mass"][0, hours_checked], rtol=2e-3
        )
    # Minutes: 60 per hour, flagged; calibration minutes carry the C flag and quality bit.
    m = read(config, "cems/minute", ["stack-a/a05001"], START, HOURS * 60)
    assert np.isfinite(m["value"][0]).sum() == HOURS * 60
    cal = m["flag"][0] == ord("C")
    assert cal.sum() == 10 and (m["quality"][0][cal] & cems.Q_CALIBRATION).all()
    assert np.isnan(m["mass"][0][cal]).all()


def test_a_fault_is_substituted_and_days_add_up(config: Config) -> None:
    got = read(config, "cems/hour", ["stack-b/a21026"], START, HOURS)
    # Stack b's SO2 analyser is in fault (D) 10:00-12:00 local = hours 14 and 15 of the run.
    assert got["status"][0].tolist() == [0] * 14 + [1, 1, 0]
    assert got["rule"][0].tolist() == [0] * 14 + [10, 10, 0]
    assert cems.RULES[10] == "hj75_short_gap"
    assert np.isnan(got["measured_mass"][0, 14:16]).all()
    # HJ 75, capture >= 90 %, gap <= 24 h: the largest of the previous valid hours (<= 180).
    assert got["mass"][0, 14] == got["mass"][0, 15] == np.max(got["mass"][0, :14])
    assert got["fault_minutes"][0, 14] == 60
    # The first local day (20:00-24:00, 4 hours) closed when midnight passed; its mass is the
    # sum of its hours, and it is not valid (4 of 24 hours).
    day = read(config, "cems/day", ["stack-b/a21026", "stack-b/a05001"], START, 1)
    assert day["status"][:, 0].tolist() == [1, 1]
    hourly_co2 = read(config, "cems/hour", ["stack-b/a05001"], START, 4)["mass"][0]
    assert day["mass"][1, 0] == pytest.approx(hourly_co2.sum(), rel=1e-12)
    assert day["measured_hours"][:, 0].tolist() == [4, 4]
    assert day["missing_hours"][:, 0].tolist() == [20, 20]
    assert day["accounting_error"][1, 0] == pytest.approx(1 / 0.95 - 1, abs=2e-3)


def test_stuck_values_are_flagged_as_flat_and_repeated(config: Config) -> None:
    m = read(config, "cems/minute", ["stack-b/a05001", "stack-b/a00000"], START, HOURS * 60)
    q = m["quality"]
    flat = np.flatnonzero(q[0] & cems.Q_FLATLINE)
    repeated = np.flatnonzero(q[0] & cems.Q_REPEATED)
    # One packet a minute: flat from the 10th identical minute, repeated from the 5th packet.
    assert flat.tolist() == list(range(STUCK[0] + 9, STUCK[1]))
    assert repeated.tolist() == list(range(STUCK[0] + 4, STUCK[1]))
    assert (q[1][repeated] & cems.Q_REPEATED).all()  # the flow too: the packet repeated
    h = read(config, "cems/hour", ["stack-b/a05001"], START, HOURS)
    assert h["quality"][0, 1] == cems.Q_FLATLINE | cems.Q_REPEATED


def test_bad_input_becomes_dead_letters_and_nothing_valid_is_lost(config: Config) -> None:
    db = MetadataDB(config.storage.layout.metadata_db)
    counts = {reason: n for (_, reason), n in db.dead_letter_counts().items()}
    db.close()
    assert counts == {
        "bad_frame": 1,
        "future": 1,
        "before_origin": 1,
        "unknown_site": 2,
        "field_warning": 1,
    }
    # The packet with a text SO2 value still gave its CO2 and flow; its SO2 reading is missing,
    # so that minute (one reading a minute here) has no valid SO2 value and is flagged D.
    m = read(config, "cems/minute", ["stack-a/a21026", "stack-a/a05001"], START, 10)
    bad_minute = int(np.flatnonzero(np.isnan(m["value"][0]))[0])
    assert np.isnan(m["value"][0]).sum() == 1 and m["flag"][0, bad_minute] == ord("D")
    assert np.isfinite(m["value"][1]).all()


def test_stop_and_resume_under_two_workers_gives_the_same_store(
    config: Config, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The journal written in two parts, the flow stopped and resumed in between under two
    workers: the store equals the one-shot run cell for cell."""
    resumed = fresh_config(tmp_path_factory)
    writes, _ = scenario(resumed)
    journal_all(resumed, [writes[:3]])
    run_flow(resumed, workers=2)
    journal_all(resumed, [writes[3:]])
    run_flow(resumed, workers=2)
    ids = [
        f"{s}/{c}" for s in ("stack-a", "stack-b") for c in ("a00000", "a05001", "a21026", "a19001")
    ]
    for product, n in (("cems/minute", HOURS * 60), ("cems/hour", HOURS), ("cems/day", 2)):
        want = read(config, product, ids, START, n)
        got = read(resumed, product, ids, START, n)
        for var, a in want.items():
            np.testing.assert_array_equal(got[var], a, err_msg=f"{product} {var}")


def test_the_products_open_in_xarray_with_codes_and_units(config: Config) -> None:
    import xarray as xr

    ds = xr.open_zarr(config.storage.layout.zarr_store, group="cems/hour")
    assert ds["mass"].dims == ("stream", "time")
    co2 = ds.sel(stream="stack-a/a05001")
    assert (str(co2["code"].values), str(co2["unit"].values), str(co2["mass_unit"].values)) == (
        "a05001",
        "%",
        "kg",
    )
    assert ds["mass"].attrs["units_coordinate"] == "mass_unit"
    first = np.datetime64(START, "ns")
    assert float(co2["mass"].sel(time=first)) > 0
