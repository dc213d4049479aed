"""The HJ 212 server on loopback, with a real journal: answers only after the journal has the
packet, and every kind of bad input of the issue (wrong CRC, wrong length, unknown codes, text
values, absurd timestamps, unknown MN or password, half a frame then silence, 1 MB without `##`,
10,000 connections opening and closing) leaves it up, counted, and loses nothing valid."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carbonstream.core import hj212
from connectors.hj212.packets import data_frame
from connectors.hj212.server import Hj212Server
from connectors.hj212.settings import Hj212ServerSettings, SiteSettings
from storage.journal import Journal
from storage.records import HJ212_PACKETS, decode_hj212_packets
from tests.connectors.hj212.vectors import BAD_CRC, BAD_LENGTH

pytestmark = pytest.mark.anyio

NS = 10**9
T0 = 1_772_366_400 * NS
SITES = [
    SiteSettings(id="stack-1", mn="MN-0001", password="secret"),
    SiteSettings(id="stack-2", mn="MN-0002", password="other"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def packet(
    i: int, mn: str = "MN-0001", pw: str = "secret", **extra: dict[str, float | str]
) -> bytes:
    readings: dict[str, dict[str, float | str]] = {
        "a00000": {"Rtd": 50.0 + i, "Flag": "N"},
        "a05001": {"Rtd": 10.5, "Flag": "N"},
        **extra,
    }
    return data_frame(
        cn=2011, mn=mn, pw=pw, t_ns=T0 + i * 10 * NS, offset_minutes=480, readings=readings
    )


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **settings: object) -> AsyncIterator[Hj212Server]:
    journal = Journal(tmp_path / "journal", 2, durability="os")
    server = Hj212Server(
        Hj212ServerSettings(port=0, **settings),  # type: ignore[arg-type]
        SITES,
        journal,
    )
    await server.start()
    task = asyncio.create_task(server.serve_forever())
    try:
        yield server
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        journal.close()


def journaled(server: Hj212Server) -> list[bytes]:
    out: list[bytes] = []
    for p in range(server.journal.partitions):
        reader = server.journal.reader(p)
        for rec in reader.read(1, 1_000_000):
            assert rec.kind == HJ212_PACKETS
            out.extend(decode_hj212_packets(rec.payload)["frame"].to_list())
        reader.close()
    return out


class Logger:
    """A client connection that reads answers as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = hj212.StreamDecoder()
        self.answers: list[dict[str, object]] = []

    @classmethod
    async def connect(cls, server: Hj212Server) -> Logger:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def expect_answers(self, n: int, timeout: float = 5.0) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while len(self.answers) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                break
            if not data:
                break
            for item in self.decoder.feed(data):
                assert item[0] == "packet", item
                self.answers.append(hj212.decode(item[1])["packet"])
        return self.answers

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def qn(frame: bytes) -> str:
    return str(hj212.decode(frame)["packet"]["qn"])


async def test_a_packet_is_answered_after_it_is_in_the_journal(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        lg = await Logger.connect(server)
        frame = packet(0)
        await lg.send(frame)
        (answer,) = await lg.expect_answers(1)
        # By the time the answer arrives the frame is durable, exactly as received.
        assert journaled(server) == [frame]
        assert (answer["cn"], answer["qn"], answer["mn"], answer["pw"]) == (
            9014,
            qn(frame),
            "MN-0001",
            "secret",
        )
        assert server.status()["sites"]["stack-1"]["packets"] == 1
        await lg.close()


async def test_bad_input_is_counted_and_nothing_valid_next_to_it_is_lost(tmp_path: Path) -> None:
    good = [packet(i) for i in range(8)]
    # A month 13 DataTime cannot be placed in time: refused by the parser (bad_time).
    absurd = hj212.encode_frame(
        "QN=20260301200000000;ST=31;CN=2011;PW=secret;MN=MN-0001;Flag=5;"
        "CP=&&DataTime=20261301200000;a05001-Rtd=10.5&&"
    )
    unknown_codes = packet(20, zz999={"Rtd": 1.0, "Foo": "bar"})
    text_value = packet(21, a21026={"Rtd": "abc", "Flag": "N"})
    stream = (
        good[0]
        + BAD_CRC
        + good[1]
        + BAD_LENGTH
        + good[2]
        + packet(3, mn="MN-9999")  # unknown MN
        + good[3]
        + packet(4, pw="guess")  # wrong password
        + good[4]
        + absurd
        + b"\x00\xff line noise #\r\n"
        + good[5]
        + unknown_codes
        + text_value
        + good[6]
        + good[7]
    )
    async with running(tmp_path) as server:
        lg = await Logger.connect(server)
        for i in range(0, len(stream), 97):  # frames split and glued across reads
            await lg.send(stream[i : i + 97])
        answers = await lg.expect_answers(10)
        want = [*good[:6], unknown_codes, text_value, good[6], good[7]]
        assert [a["qn"] for a in answers] == [qn(f) for f in want]
        assert sorted(journaled(server)) == sorted(want)
        rejected = server.status()["rejected"]
        assert rejected["crc_mismatch"] == 1
        assert rejected["length_mismatch"] == 1
        assert rejected["unknown_mn"] == 1
        assert rejected["bad_password"] == 1
        assert rejected["bad_time"] == 1
        assert rejected["garbage"] >= 1
        assert server.status()["sites"]["stack-1"]["rejected"]["bad_password"] == 1
        await lg.close()


async def test_half_a_frame_then_silence_is_dropped_at_the_idle_timeout(tmp_path: Path) -> None:
    async with running(tmp_path, idle_timeout_s=0.3) as server:
        lg = await Logger.connect(server)
        await lg.send(packet(0) + packet(1)[:150])
        assert len(await lg.expect_answers(1)) == 1
        # The connection goes silent: closed by the server, the half frame counted.
        assert await asyncio.wait_for(lg.reader.read(), 3.0) == b""
        assert server.rejected["incomplete"] == 1
        assert server.connection_count == 0
        # The logger reconnects and sends the packet again: accepted.
        lg2 = await Logger.connect(server)
        await lg2.send(packet(1))
        assert len(await lg2.expect_answers(1)) == 1
        assert len(journaled(server)) == 2
        await lg2.close()


async def test_a_megabyte_without_a_header_is_skipped_unbuffered(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        lg = await Logger.connect(server)
        for _ in range(16):
            await lg.send(b"A" * 65_536)
        await lg.send(packet(0))
        assert len(await lg.expect_answers(1)) == 1
        (conn,) = server.status()["connection_list"]
        assert conn["buffered"] == 0 and conn["bytes"] > 1_000_000
        assert server.rejected["garbage"] >= 1
        await lg.close()


async def test_ten_thousand_connections_opening_and_closing(tmp_path: Path) -> None:
    async with running(tmp_path) as server:

        async def one(i: int) -> None:
            _, w = await asyncio.open_connection("127.0.0.1", server.port)
            if i % 10 == 0:
                w.write(packet(i)[:50])  # some leave half a frame behind
            w.close()
            with contextlib.suppress(ConnectionError):
                await w.wait_closed()

        for start in range(0, 10_000, 250):
            await asyncio.gather(*(one(i) for i in range(start, start + 250)))
        deadline = time.monotonic() + 10
        while server.connection_count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert server.connection_count == 0
        assert server.rejected.get("incomplete") == 1_000
        # Still up and serving.
        lg = await Logger.connect(server)
        await lg.send(packet(0))
        assert len(await lg.expect_answers(1)) == 1
        await lg.close()


async def test_many_loggers_at_once_are_all_answered_once_each(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        loggers = [await Logger.connect(server) for _ in range(50)]
        frames = [
            [packet(100 * k + i, mn=SITES[k % 2].mn, pw=SITES[k % 2].password) for i in range(20)]
            for k in range(50)
        ]
        await asyncio.gather(*(lg.send(b"".join(f)) for lg, f in zip(loggers, frames, strict=True)))
        got = await asyncio.gather(*(lg.expect_answers(20) for lg in loggers))
        for answers, sent in zip(got, frames, strict=True):
            assert [a["qn"] for a in answers] == [qn(f) for f in sent]
        assert len(journaled(server)) == 1000
        # Fewer commits than packets: they were grouped.
        assert server.writer.commits < 1000
        for lg in loggers:
            await lg.close()


async def test_packets_without_answer_flag_are_journaled_silently(tmp_path: Path) -> None:
    frame = data_frame(
        cn=2051,
        mn="MN-0002",
        pw="other",
        t_ns=T0,
        offset_minutes=480,
        readings={"a05001": {"Avg": 10.0, "Flag": "N"}},
        answer=False,
    )
    async with running(tmp_path) as server:
        lg = await Logger.connect(server)
        await lg.send(frame + packet(1))
        answers = await lg.expect_answers(2, timeout=1.0)
        assert [a["qn"] for a in answers] == [qn(packet(1))]
        assert sorted(journaled(server)) == sorted([frame, packet(1)])
        await lg.close()


async def test_back_pressure_pauses_readers_and_loses_nothing(tmp_path: Path) -> None:
    # At most 5 packets may wait for the journal: readers are paused, then resumed.
    async with running(tmp_path, max_pending_packets=5, batch_max_packets=3) as server:
        loggers = [await Logger.connect(server) for _ in range(4)]
        sent = [[packet(1000 * k + i) for i in range(50)] for k in range(4)]
        await asyncio.gather(*(lg.send(b"".join(f)) for lg, f in zip(loggers, sent, strict=True)))
        got = await asyncio.gather(*(lg.expect_answers(50, timeout=20) for lg in loggers))
        for answers, frames in zip(got, sent, strict=True):
            assert [a["qn"] for a in answers] == [qn(f) for f in frames]
        assert len(journaled(server)) == 200 and server.writer.commits >= 200 // 3
        assert server.pauses > 0 and not server._paused
        for lg in loggers:
            await lg.close()
