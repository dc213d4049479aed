"""Fuzzing the HJ 212 decoder through the Python binding and the server's connection handler.

Whatever arrives on a logger connection (line noise, a mutated packet, a valid frame glued
between garbage), the binding returns data, never raises (bad input is data here: every reject
carries a stable reason code and a message), the only exception of `answer` is `InputError`, and
a valid frame next to garbage is still decoded, journalled and counted apart from the garbage.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonstream.core import InputError, hj212
from connectors.hj212.cli import decode_lines
from connectors.hj212.server import Hj212Server, _Connection
from connectors.hj212.settings import Hj212ServerSettings, SiteSettings
from storage.journal import Journal
from tests.connectors.hj212.vectors import HOURLY_STACK, INVALID, VALID
from tests.fuzz.strategies import FUZZ, mutated, protocol_bytes

FRAME_REASONS = {
    "garbage",
    "no_header",
    "bad_length_field",
    "length_out_of_range",
    "length_mismatch",
    "too_short",
    "truncated",
    "missing_crlf",
    "bad_crc_field",
    "crc_mismatch",
    "trailing_bytes",
    "incomplete",
}
PACKET_REASONS = {
    "not_utf8",
    "missing_cp",
    "unterminated_cp",
    "bad_header_item",
    "duplicate_header",
    "missing_field",
    "bad_number",
    "bad_text",
    "bad_time",
    "bad_split",
}

valid_frames = st.sampled_from(VALID)
any_frames = st.one_of(
    protocol_bytes(1200),
    valid_frames.flatmap(mutated),
    st.sampled_from(list(INVALID)).flatmap(mutated),
)


def segment(frame: bytes) -> bytes:
    return frame[6:-6]


def reframe(seg: bytes) -> bytes:
    """`seg` framed with a correct length and CRC: a logger that checksums a malformed packet."""
    return b"##%04d" % len(seg) + seg + b"%04X\r\n" % hj212.crc16(seg)


def check_decoded(d: dict[str, Any], frame: bytes) -> None:
    """The documented shape of `decode`: valid with a packet, or a reason and a message."""
    assert set(d) == {"valid", "reason", "error", "crc", "packet"}
    if d["valid"]:
        assert d["reason"] is None and d["error"] is None
        assert int(d["crc"], 16) == hj212.crc16(segment(frame))
        packet = d["packet"]
        assert isinstance(packet["mn"], str) and packet["mn"]
        assert 0 <= packet["cn"] <= 9999 and 0 <= packet["st"] <= 9999
        for f in packet["fields"]:
            assert f["type"] in {"number", "flag", "time", "text"}
            if f["type"] == "number":
                assert np.isfinite(f["value"])
    else:
        assert d["reason"] in FRAME_REASONS | PACKET_REASONS, d
        assert isinstance(d["error"], str) and d["error"]
        assert d["packet"] is None


@FUZZ
@given(frame=any_frames)
def test_decode_returns_a_packet_or_a_reason(frame: bytes) -> None:
    check_decoded(hj212.decode(frame), frame)


@FUZZ
@given(seg=st.sampled_from(VALID).map(segment).flatmap(mutated))
def test_mutated_packets_with_a_valid_crc_parse_or_say_why(seg: bytes) -> None:
    """The CRC is recomputed over the mutated segment, so the packet parser is reached."""
    frame = reframe(seg)
    d = hj212.decode(frame)
    check_decoded(d, frame)
    if not d["valid"]:
        assert d["reason"] in PACKET_REASONS | {"length_out_of_range"}


@FUZZ
@given(frame=any_frames, cn=st.sampled_from([9011, 9012, 9014, 2011, 0]), rtn=st.integers(0, 120))
def test_answer_raises_only_input_error(frame: bytes, cn: int, rtn: int) -> None:
    """The server answers only after `decode` said valid, but `answer` must still refuse any
    bytes with the documented error type; an answer it builds is itself a valid frame."""
    try:
        out = hj212.answer(frame, cn, st=91, rtn=rtn)
    except InputError as exc:
        assert str(exc)
        return
    d = hj212.decode(out)
    assert d["valid"] and d["packet"]["cn"] == cn


@st.composite
def garbled_stream(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """(valid frame, the reads it arrives in): the frame between garbage."""
    frame = draw(valid_frames)
    data = draw(protocol_bytes(300)) + frame + draw(protocol_bytes(300))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    reads = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return frame, reads


def feed_all(decoder: hj212.StreamDecoder, reads: list[bytes]) -> list[tuple[Any, ...]]:
    items: list[tuple[Any, ...]] = []
    for r in reads:
        items += decoder.feed(r)
    gone = decoder.abandon()
    if gone is not None:
        items.append(("error", *gone))
    return items


@FUZZ
@given(case=garbled_stream())
def test_a_valid_frame_between_garbage_is_decoded_and_the_garbage_counted(
    case: tuple[bytes, list[bytes]],
) -> None:
    frame, reads = case
    decoder = hj212.StreamDecoder()
    items = feed_all(decoder, reads)
    assert ("packet", frame) in [it[:2] for it in items], "the valid frame was lost"
    for it in items:
        if it[0] == "packet":
            assert len(it) == 7 and hj212.decode(it[1])["valid"]
        elif it[0] == "bad_packet":
            assert len(it) == 4 and it[2] in PACKET_REASONS and it[3]
        else:
            assert it[0] == "error" and len(it) == 4
            assert it[1] in FRAME_REASONS and it[2] and it[3] >= 0
    stats = decoder.stats()
    assert stats["frames"] == sum(it[0] in ("packet", "bad_packet") for it in items)
    assert stats["errors"] == sum(it[0] == "error" for it in items)
    assert decoder.buffered == 0


@FUZZ
@given(frames=st.lists(any_frames | valid_frames, max_size=12))
def test_extract_keeps_the_good_frames_of_a_mixed_batch(frames: list[bytes]) -> None:
    """The dataflow's column extraction: one status per frame; rejected ones say why; the valid
    frames among them carry their values, exactly as when extracted alone."""
    codes = ["a00000", "a05001", "a21026", "w01008"]
    x = hj212.extract(frames, codes, 480)
    n = len(frames)
    assert x["status"].shape == (n,) and x["rtd"].shape == (n, len(codes))
    for i, f in enumerate(frames):
        status = int(x["status"][i])
        assert status in (0, 1, 2, 3)
        assert (status != 0) == (i in x["messages"])
        if status:
            reason = x["messages"][i].split(":")[0]
            assert reason in FRAME_REASONS | PACKET_REASONS | {"no_data_time"}
        if f in VALID:
            alone = hj212.extract([f], codes, 480)
            assert status == int(alone["status"][0])
            for col in ("rtd", "avg", "cou"):
                np.testing.assert_array_equal(x[col][i], alone[col][0])


@FUZZ
@given(lines=st.lists(any_frames | valid_frames, max_size=8), offset=st.integers(-840, 840))
def test_decode_command_writes_one_record_per_line(lines: list[bytes], offset: int) -> None:
    """`carbonstream hj212 decode --utc-offset`: every frame line gives a JSON record, counted
    valid or invalid; nothing raises (a valid DataTime shifted by the offset included)."""
    frames = [ln.replace(b"\n", b"").replace(b"\r", b"") for ln in lines]
    frames = [f for f in frames if f.strip()]
    out = io.StringIO()
    valid, invalid = decode_lines(io.BytesIO(b"\n".join(frames)), out, offset)
    assert valid + invalid == len(frames) == len(out.getvalue().splitlines())


SITE = SiteSettings(id="stack-1", mn="81733553216103", password="123456")


@FUZZ
@given(case=garbled_stream(), noise=protocol_bytes(200))
def test_the_server_journals_the_valid_packet_and_counts_the_rest(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[bytes, list[bytes]], noise: bytes
) -> None:
    """A logger connection carrying noise, then a registered site's packet between garbage: the
    packet is queued for the journal (it is data of a configured site) and every other refusal is
    counted under a known reason."""
    _, reads = case
    tmp = tmp_path_factory.mktemp("hj212")
    server = Hj212Server(Hj212ServerSettings(port=0), [SITE], Journal(tmp, 1, durability="os"))
    conn = _Connection(server)
    for r in [noise, *reads[:-1], reads[-1] + HOURLY_STACK]:
        conn.data_received(r)
    conn._abandon_pending()
    queued = [p.frame for p in server.writer._queue]
    assert HOURLY_STACK in queued
    assert all(p.site.id == SITE.id for p in server.writer._queue)
    known = FRAME_REASONS | PACKET_REASONS | {"unknown_mn", "bad_password", "unanswerable"}
    assert set(server.rejected) <= known, server.rejected
    assert sum(server.rejected.values()) == conn.rejected
