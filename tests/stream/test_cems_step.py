"""The CEMS step's logic on its own (no Bytewax run): packets split over PNUM/PNO parts give the
same cells as whole packets, a packet sent twice counts once, and the minute-data source."""

from __future__ import annotations

import numpy as np
import pytest

from carbonstream.config import Config, load_config
from carbonstream.core import hj212
from carbonstream.products import cems_specs
from connectors.hj212.packets import data_time_text, qn_text
from stream.cems import CemsStepSettings, SiteBatch, StackIntegration
from stream.items import CellBatch

NS = 10**9
START = 1_772_366_400 * NS  # 2026-03-01T20:00+08:00
CHANNELS = ("a05001", "a21026")


def config(tmp_path: object, minutes_from: str) -> Config:
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.toml"
    path.write_text(
        f"""
[cems.server]
enabled = false
[connectors.cems_simulator]
enabled = false
[[cems.sites]]
id = "s"
mn = "M"
password = "p"
minutes_from = "{minutes_from}"
flatline_minutes = 0
[[cems.sites.channels]]
code = "a05001"
unit = "%"
[[cems.sites.channels]]
code = "a21026"
[[cems.sites.fuel_meters]]
code = "f01"
"""
    )
    return load_config(path, environ={})


def step(c: Config) -> StackIntegration:
    specs = cems_specs(c)
    settings = CemsStepSettings(
        specs["cems/minute"], specs["cems/hour"], specs["cems/day"], 300_000, {}
    )
    return StackIntegration(settings, c.cems.sites[0], np.array([0, 1, 2]), None)


def frame(cn: int, t_ns: int, groups: list[str], part: tuple[int, int] | None = None) -> bytes:
    qn = qn_text(t_ns, 480)
    split = f"Flag=7;PNUM={part[1]};PNO={part[0]}" if part else "Flag=5"
    cp = ";".join([f"DataTime={data_time_text(t_ns, 480)}", *groups])
    return hj212.encode_frame(f"QN={qn};ST=31;CN={cn};PW=p;MN=M;{split};CP=&&{cp}&&")


def readings(cn: int, i: int) -> list[str]:
    suffix = "Rtd" if cn == 2011 else "Avg"
    return [
        f"a00000-{suffix}={40 + i % 7},a00000-Flag=N",
        f"a05001-{suffix}={10 + (i % 5) / 10},a05001-Flag=N",
        f"a21026-{suffix}={30 + i % 3},a21026-Flag=N",
    ]


def packets(cn: int, split: bool) -> list[bytes]:
    """Two hours of minute (or one-per-minute real-time) packets, then the hourly packets."""
    out = []
    for i in range(120):
        g = readings(cn, i)
        t = START + i * 60 * NS
        if split and i % 10 == 3:
            out += [frame(cn, t, g[:1], (1, 2)), frame(cn, t, g[1:], (2, 2))]
        else:
            out.append(frame(cn, t, g))
    for h in range(2):
        t = START + h * 3600 * NS
        co2 = f"a05001-Cou={20000 + h},a05001-Flag=N"
        fuel = f"f01-Cou={9000 + h},f01-Flag=N"
        if split:
            out += [frame(2061, t, [co2], (1, 2)), frame(2061, t, [fuel], (2, 2))]
        else:
            out.append(frame(2061, t, [co2, fuel]))
    return out


def run(
    s: StackIntegration, frames: list[bytes]
) -> dict[str, dict[str, dict[tuple[int, int], float]]]:
    batches = [
        SiteBatch("s", 0, k, START + 10 * 86_400 * NS, list(range(len(part))), part)
        for k, part in enumerate(frames[i : i + 25] for i in range(0, len(frames), 25))
    ]
    cells: dict[str, list[CellBatch]] = {}
    for b in batches:
        out, _ = s.on_batch([b])
        for item in out:
            assert isinstance(item, CellBatch), item
            cells.setdefault(item.product, []).append(item)
    # The store's view: later writes of a cell win.
    store: dict[str, dict[str, dict[tuple[int, int], float]]] = {}
    for product, items in cells.items():
        grid = store.setdefault(product, {})
        for it in items:
            for var, v in it.values.items():
                cellmap = grid.setdefault(var, {})
                for r, t, x in zip(it.rows.tolist(), it.slots.tolist(), v.tolist(), strict=True):
                    cellmap[(r, t)] = x
    return store


def same(a: dict[tuple[int, int], float], b: dict[tuple[int, int], float], what: str) -> None:
    assert a.keys() == b.keys(), what
    keys = sorted(a)
    np.testing.assert_array_equal([a[k] for k in keys], [b[k] for k in keys], err_msg=what)


def finite(cells: dict[tuple[int, int], float], row: int) -> int:
    return sum(1 for (r, _), v in cells.items() if r == row and np.isfinite(v))


@pytest.mark.parametrize(("cn", "minutes_from"), [(2011, "realtime"), (2051, "minute_packets")])
def test_split_packets_give_the_cells_of_whole_packets(
    tmp_path: object, cn: int, minutes_from: str
) -> None:
    c = config(tmp_path, minutes_from)
    whole = run(step(c), packets(cn, split=False))
    parts = run(step(c), packets(cn, split=True))
    assert whole.keys() == parts.keys() == {"cems/minute", "cems/hour", "cems/day"}
    for product in whole:
        for var, a in whole[product].items():
            same(parts[product][var], a, f"{product} {var}")
    hour = whole["cems/hour"]
    # Two hours of CO2 (row 1), both closed by their hourly packets, compared with the fuel.
    assert finite(hour["mass"], 1) == 2
    assert finite(hour["accounting_mass"], 1) == 2
    assert finite(hour["logger_mass"], 1) == 2


def test_a_packet_sent_twice_counts_once(tmp_path: object) -> None:
    c = config(tmp_path, "realtime")
    frames = packets(2011, split=False)
    once = run(step(c), frames)
    twice = run(step(c), [f for f in frames for _ in (0, 1)])
    for product in once:
        for var, a in once[product].items():
            same(twice[product][var], a, f"{product} {var}")


@pytest.mark.parametrize(("cn", "minutes_from"), [(2011, "realtime"), (2051, "minute_packets")])
def test_a_step_restored_from_its_snapshot_continues_identically(
    tmp_path: object, cn: int, minutes_from: str
) -> None:
    c = config(tmp_path, minutes_from)
    frames = packets(cn, split=True)
    straight = step(c)
    want = run(straight, frames)
    first = step(c)
    cut = 63  # inside a split minute packet's parts
    got = run(first, frames[:cut])
    specs = cems_specs(c)
    settings = CemsStepSettings(
        specs["cems/minute"], specs["cems/hour"], specs["cems/day"], 300_000, {}
    )
    resumed = StackIntegration(settings, c.cems.sites[0], np.array([0, 1, 2]), first.snapshot())
    rest = run(resumed, frames[cut:])
    for product, variables in rest.items():
        for var, cellmap in variables.items():
            got.setdefault(product, {}).setdefault(var, {}).update(cellmap)
    for product in want:
        for var, a in want[product].items():
            same(got[product][var], a, f"{product} {var}")
    assert resumed.snapshot() == straight.snapshot()


def test_a_part75_site_gives_the_regulations_worked_example(tmp_path: object) -> None:
    """10.8 % CO2 wet at 5.0e7 scfh -> 5.7e-7 x 10.8 x 5.0e7 = 307.8 short ton/h (F-11)."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "p75.toml"
    path.write_text(
        """
[cems.server]
enabled = false
[connectors.cems_simulator]
enabled = false
[[cems.sites]]
id = "us"
mn = "US1"
password = "p"
utc_offset = "-05:00"
policy = "part75"
flow_unit = "scfh"
flatline_minutes = 0
repeat_packets = 0
[[cems.sites.channels]]
code = "a05001"
unit = "part75_co2"
"""
    )
    c = load_config(path, environ={})
    specs = cems_specs(c)
    settings = CemsStepSettings(
        specs["cems/minute"], specs["cems/hour"], specs["cems/day"], 300_000, {}
    )
    s = StackIntegration(settings, c.cems.sites[0], np.array([0, 1]), None)
    frames = []
    for i in range(122):  # the minute of 2 h closes once a later sample comes
        t = START + i * 60 * NS
        qn, dt = qn_text(t, -300), data_time_text(t, -300)
        cp = f"DataTime={dt};a00000-Rtd=50000000,a00000-Flag=N;a05001-Rtd=10.8,a05001-Flag=N"
        frames.append(hj212.encode_frame(f"QN={qn};ST=31;CN=2011;PW=p;MN=US1;Flag=5;CP=&&{cp}&&"))
    out, _ = s.on_batch([SiteBatch("us", 0, 0, START + 86_400 * NS, list(range(122)), frames)])
    mass = [
        v
        for b in out
        if isinstance(b, CellBatch) and b.product == "cems/hour" and "mass" in b.values
        for r, v in zip(b.rows.tolist(), b.values["mass"].tolist(), strict=True)
        if r == 1
    ]
    assert mass == [pytest.approx(307.8, rel=1e-12)] * 2


def test_a_stack_silent_for_more_than_a_year_starts_afresh(tmp_path: object) -> None:
    c = config(tmp_path, "realtime")
    s = step(c)
    later = 400 * 86_400 * NS
    frames = [frame(2011, START + i * 60 * NS, readings(2011, i)) for i in range(62)]
    frames += [frame(2011, START + later + i * 60 * NS, readings(2011, i)) for i in range(62)]
    batch = SiteBatch("s", 0, 0, START + later + 86_400 * NS, list(range(124)), frames)
    out, _ = s.on_batch([batch])
    assert all(isinstance(b, CellBatch) for b in out)
    hours = sorted(
        {t for b in out if isinstance(b, CellBatch) and b.product == "cems/hour" for t in b.slots}
    )
    spec = cems_specs(c)["cems/hour"]
    assert hours == [spec.slot_of(START), spec.slot_of(START + later)]
