"""The DAU poller against a simulated unit: a real pymodbus TCP server on loopback serving the
registers the test sets, the real poller and connector, the real journal. What was journaled is
read back and decoded as the CEMS flow decodes it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.reference import hj212 as ref212
from connectors.clock import NS_PER_S, ScaledClock
from connectors.hj212.settings import ChannelSettings, SiteSettings
from connectors.modbus.dau_config import DauGatewaySettings, DauRegister, DauSettings
from connectors.modbus.dau_connector import PollJournal
from connectors.modbus.dau_map import Block, plan_blocks
from connectors.modbus.dau_poller import DauPoller, UnitPoll, health_id
from connectors.simulators.cems_dau import DauServer, SimDau
from storage.journal import Journal
from storage.records import HJ212_PACKETS, decode_hj212_packets

T0_NS = 1_800_000_000 * NS_PER_S  # 2027-01-15T08:00:00Z
RATE = 10.0

SITE = SiteSettings(
    id="unit-1",
    mn="MN0001",
    password="123456",
    utc_offset="+08:00",
    channels=[
        ChannelSettings(code="a05001", unit="%"),
        ChannelSettings(code="a21026"),
        ChannelSettings(code="a19001"),
    ],
)
REGISTERS = [
    DauRegister(code="a00000", address=0),
    DauRegister(code="a05001", address=2, valid_max=25.0, flag_address=20),
    DauRegister(code="a21026", address=4, valid_min=0.0, valid_max=2000.0),
    DauRegister(code="a19001", function="input", address=0, data_type="int16", scale=0.1),
]


def gateway(port: int, interval_s: float = 2.0, **kw: object) -> DauGatewaySettings:
    unit = DauSettings(
        site="unit-1", unit_id=5, interval_s=interval_s, phase_s=0.5, registers=REGISTERS
    )
    args = {"host": "127.0.0.1", "port": port, "timeout_s": 1.0, "retries": 1, "backoff_s": 0.2}
    return DauGatewaySettings(units=[unit], **{**args, **kw})  # type: ignore[arg-type]


def set_normal(dau: SimDau) -> None:
    dau.set_value(0, 52.5)  # flow m3/s
    dau.set_value(2, 11.25)  # CO2 %
    dau.set_value(4, 35.5)  # SO2 mg/m3
    dau.set_value(0, 62, "int16", function="input")  # O2 6.2 %
    dau.set_word("holding", 20, 0)  # state N


Step = Callable[[SimDau, ScaledClock], Awaitable[None]]


def run(
    tmp_path: Path, sim_s: float, step: Step | None = None, **gw: object
) -> tuple[list[tuple[str, bytes]], DauPoller, SimDau]:
    """Polls a simulated unit for `sim_s` simulated seconds; returns the journaled (peer, frame)."""
    journal = Journal(tmp_path / "journal", 2, "os")
    dau = SimDau(unit_id=5)
    set_normal(dau)

    async def main() -> DauPoller:
        server = DauServer([dau])
        port = await server.start()
        clock = ScaledClock(T0_NS, rate=RATE)
        sink = PollJournal(journal, {"unit-1": SITE}, {"unit-1": [r.code for r in REGISTERS]})
        poller = DauPoller([gateway(port, **gw)], clock, sink)
        task = asyncio.create_task(poller.run())
        try:
            if step is not None:
                await step(dau, clock)
            await clock.sleep_until(T0_NS + round(sim_s * NS_PER_S))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.stop()
        return poller

    poller = asyncio.run(main())
    out: list[tuple[str, bytes]] = []
    for p in range(2):
        reader = journal.reader(p)
        records = reader.read(0, 10_000)
        reader.close()
        for rec in records:
            assert rec.kind == HJ212_PACKETS and rec.stream == "unit-1"
            frame = decode_hj212_packets(rec.payload)
            assert frame["site"].to_list() == ["unit-1"] and frame["cn"].to_list() == [2011]
            out.append((frame["peer"][0], frame["frame"][0]))
    journal.close()
    return out, poller, dau


def decoded(frame: bytes) -> ref212.Packet:
    p = ref212.decode(frame)  # checks the CRC and the length too
    assert p.cn == 2011 and p.header["MN"] == "MN0001" and p.header["PW"] == "123456"
    return p


def test_each_poll_is_a_realtime_packet_with_the_register_values(tmp_path: Path) -> None:
    frames, poller, _ = run(tmp_path, 20.0)
    # Polls at x.5 s every 2 s over 20 s: 10, give or take the one at each end.
    assert 9 <= len(frames) <= 11, len(frames)
    times = []
    for peer, f in frames:
        assert peer.startswith("modbus:127.0.0.1:") and peer.endswith("/5")
        p = decoded(f)
        assert p.number("a00000", "Rtd") == 52.5
        assert p.number("a05001", "Rtd") == 11.25
        assert p.number("a21026", "Rtd") == 35.5
        assert p.number("a19001", "Rtd") == 6.2
        assert {p.flag(c) for c in ("a00000", "a05001", "a21026", "a19001")} == {"N"}
        assert p.data_time is not None
        times.append(p.data_time)
    assert times == sorted(set(times)), "one packet per second at most, in order"
    # DataTime is the logger clock's local time (+08:00) of the poll.
    t0 = datetime.fromtimestamp(T0_NS / NS_PER_S, UTC).replace(tzinfo=None) + timedelta(hours=8)
    assert t0 <= times[0] and times[-1] <= t0 + timedelta(seconds=21)
    (h,) = poller.health()
    assert h.meter == health_id("unit-1") == "cems:unit-1" and h.state == "ok"
    assert h.polls_ok == len(frames) and h.total_errors == 0
    assert poller.stats().requests == 3 * len(frames), "three blocks a poll (see the plan test)"


def test_the_register_map_is_read_in_few_requests() -> None:
    assert plan_blocks(REGISTERS) == [
        Block("holding", 0, 6),
        Block("holding", 20, 1),
        Block("input", 0, 1),
    ]


def test_bad_values_are_sent_flagged_and_counted(tmp_path: Path) -> None:
    async def step(dau: SimDau, clock: ScaledClock) -> None:
        await clock.sleep_until(T0_NS + 5 * NS_PER_S)
        dau.set_value(2, math.nan)  # CO2 not a number
        dau.set_value(4, -3.0)  # SO2 below range
        await clock.sleep_until(T0_NS + 9 * NS_PER_S)
        dau.set_value(2, 30.0)  # CO2 above range
        dau.set_value(4, 35.5)
        await clock.sleep_until(T0_NS + 13 * NS_PER_S)
        dau.set_value(2, 11.25)
        dau.set_word("holding", 20, 5)  # CO2 analyser in calibration (C)
        await clock.sleep_until(T0_NS + 17 * NS_PER_S)
        dau.set_word("holding", 20, 99)  # a state the map does not know

    frames, poller, _ = run(tmp_path, 21.0, step)
    seen: dict[str, list[tuple[float | None, str | None]]] = {"a05001": [], "a21026": []}
    for _, f in frames:
        p = decoded(f)
        for code in seen:
            seen[code].append((p.number(code, "Rtd"), p.flag(code)))
        assert p.number("a00000", "Rtd") == 52.5 and p.flag("a00000") == "N"
    co2 = seen["a05001"]
    assert (None, "D") in co2, "NaN: the flag alone, no made-up number"
    assert (30.0, "T") in co2, "above valid_max: over range, value kept"
    assert (11.25, "C") in co2, "the state register's calibration"
    assert (11.25, "D") in co2, "an unknown state: fault"
    assert (-3.0, "D") in seen["a21026"], "below valid_min: fault, value kept"
    assert co2[0] == (11.25, "N") and seen["a21026"][0] == (35.5, "N")
    counts = poller.problems()["unit-1"]
    assert counts["not_a_number"] == sum(1 for v in co2 if v == (None, "D"))
    assert counts["below_range"] == sum(1 for v in seen["a21026"] if v == (-3.0, "D"))
    assert counts["above_range"] == sum(1 for v in co2 if v == (30.0, "T"))
    assert counts["unknown_flag"] == sum(1 for v in co2 if v == (11.25, "D"))
    assert all(n >= 1 for n in counts.values()) and len(counts) == 4


def test_a_unit_that_does_not_answer_is_dead_and_its_polls_are_sent_as_b(
    tmp_path: Path,
) -> None:
    async def step(dau: SimDau, clock: ScaledClock) -> None:
        await clock.sleep_until(T0_NS + 4 * NS_PER_S)
        dau.silent = True
        await clock.sleep_until(T0_NS + 30 * NS_PER_S)
        dau.silent = False

    frames, poller, _ = run(tmp_path, 40.0, step, dead_after=2, dead_probe_s=6.0)
    flags = []
    for _, f in frames:
        p = decoded(f)
        flags.append(p.flag("a05001"))
        if p.flag("a05001") == "B":
            assert all(
                p.flag(c) == "B" and p.number(c, "Rtd") is None for c in ("a00000", "a19001")
            )
    # ok polls, then failed ones (B), fewer while dead (probes every 6 s), then ok again.
    assert flags[0] == "N" and flags[-1] == "N" and "B" in flags
    first_b, last_b = flags.index("B"), len(flags) - 1 - flags[::-1].index("B")
    assert set(flags[first_b : last_b + 1]) == {"B"}
    silent_polls = last_b - first_b + 1
    assert 3 <= silent_polls <= 8, f"2 s polls until dead, then 6 s probes: {flags}"
    (h,) = poller.health()
    assert h.state == "ok" and h.total_errors == silent_polls
    assert h.last_error is not None and "no response" in h.last_error
    assert poller.stats().polls_skipped_dead > 0


def test_a_failed_poll_in_the_same_second_is_moved_to_the_next(tmp_path: Path) -> None:
    sink = PollJournal(Journal(tmp_path / "j", 1, "os"), {"unit-1": SITE}, {"unit-1": ["a00000"]})
    t = T0_NS + 400_000_000
    a = sink.frame(UnitPoll("unit-1", "gw", 5, t, None, "x"))
    b = sink.frame(UnitPoll("unit-1", "gw", 5, t + 300_000_000, None, "x"))
    assert b[0] - a[0] == NS_PER_S
    assert decoded(b[1]).flag("a00000") == "B"
    sink.journal.close()


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_floats_are_not_numbers(tmp_path: Path, value: float) -> None:
    async def step(dau: SimDau, clock: ScaledClock) -> None:
        dau.set_value(0, value)

    frames, poller, _ = run(tmp_path, 6.0, step)
    assert frames and all(decoded(f).flag("a00000") == "D" for _, f in frames)
    assert all(decoded(f).number("a00000", "Rtd") is None for _, f in frames)
    assert poller.problems()["unit-1"]["not_a_number"] == len(frames)


def test_a_gateway_without_units_idles_instead_of_ending(tmp_path: Path) -> None:
    """The ingest role ends when one of its connectors returns: an empty gateway must not."""

    async def main() -> bool:
        sink = PollJournal(Journal(tmp_path / "j", 1, "os"), {}, {})
        empty = DauGatewaySettings(host="127.0.0.1", port=1)
        task = asyncio.create_task(DauPoller([empty], ScaledClock(T0_NS), sink).run())
        await asyncio.sleep(0.3)
        running = not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sink.journal.close()
        return running

    assert asyncio.run(main())
