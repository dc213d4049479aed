"""HJ 212 through the Python binding: every reference vector decodes to the values it carries,
through each input path (one frame, a TCP stream split and glued every way, the dataflow's
column extraction); invalid ones come back rejected with the reason. (The protocol itself is
tested in core-rs/tests/hj212_*.rs.)"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from carbonstream.core import InputError, hj212
from tests.connectors.hj212.vectors import (
    BAD_CRC,
    BAD_LENGTH,
    HOURLY_STACK,
    INVALID,
    MINUTE_AIR,
    QN_RETURN,
    REALTIME_AIR,
    REALTIME_WATER,
    SET_INTERVAL,
    VALID,
)

# Per vector: header fields, local DataTime, and (code, suffix, value) triples it must carry.
EXPECTED: dict[bytes, dict[str, Any]] = {
    SET_INTERVAL: {
        "header": {"st": 32, "cn": 1062, "pw": "100000", "mn": "010000A8900016F000169DC0"},
        "flag": 5,
        "data_time": None,
        "values": [("RtdInterval", "", 30.0)],
    },
    REALTIME_WATER: {
        "header": {"st": 22, "cn": 2011, "pw": "123456", "mn": "010000A8900016F000169DC0"},
        "flag": 5,
        "data_time": "2023-10-08T12:33:40.000",
        "values": [("w01008", "Rtd", 123.456)],
    },
    QN_RETURN: {
        "header": {"st": 22, "cn": 9011, "pw": "123456", "mn": "010000A8900016F000169DC0"},
        "flag": 4,
        "data_time": None,
        "values": [("QnRtn", "", 1.0)],
    },
    MINUTE_AIR: {
        "header": {"st": 22, "cn": 2051, "pw": "123456", "mn": "JLYP01_AIR01_0001"},
        "flag": 4,
        "data_time": "2022-05-13T16:26:00.000",
        "values": [
            ("a21004", "Avg", 4.0),
            ("a05024", "Avg", 63.0),
            ("a21026", "Avg", 6.0),
            ("a21005", "Avg", 0.427),
            ("a34004", "Avg", 14.0),
            ("a34002", "Avg", 31.0),
            ("a01007", "Avg", 1.0),
            ("a01008", "Avg", 11.0),
            ("a01001", "Avg", 17.0),
            ("a01002", "Avg", 85.0),
            ("a01006", "Avg", 95.0),
        ],
    },
    HOURLY_STACK: {
        "header": {"st": 31, "cn": 2061, "pw": "123456", "mn": "81733553216103"},
        "flag": 4,
        "data_time": "2024-01-22T17:00:00.000",
        "values": [
            ("a00000", "Cou", 19191.973),
            ("a00000", "Min", 5.051),
            ("a00000", "Avg", 5.331),
            ("a00000", "Max", 5.617),
            ("a01011", "Avg", 7.029),
            ("a01013", "Min", -0.041),
            ("a01013", "Avg", -0.026),
            ("a01012", "Max", 8.789),
            ("a24088", "Cou", 0.018),
            ("a24088", "Avg", 0.933),
            ("a05002", "Cou", 0.0),
            ("a01014", "Avg", 1.040),
        ],
    },
    REALTIME_AIR: {
        "header": {"st": 22, "cn": 2011, "pw": "123456", "mn": "Y80110010000010"},
        "flag": 4,
        "data_time": "2019-10-12T13:37:10.000",
        "values": [
            ("a21005", "Rtd", 0.0),
            ("a21004", "Rtd", 0.0),
            ("a21007", "Rtd", 0.033),
            ("a21006", "Rtd", 0.036),
            ("a21001", "Rtd", 25.40),
            ("a21003", "Rtd", 101.94),
            ("a21002", "Rtd", 49.20),
        ],
    },
}


@pytest.mark.parametrize("frame", VALID, ids=lambda f: f[6:40].decode())
def test_valid_vectors_decode_to_their_values(frame: bytes) -> None:
    exp = EXPECTED[frame]
    d = hj212.decode(frame)
    assert d["valid"] and d["error"] is None and d["reason"] is None
    p = d["packet"]
    assert {k: p[k] for k in exp["header"]} == exp["header"]
    assert p["flag"] == exp["flag"]
    assert p["answer_requested"] == (exp["flag"] & 1 == 1)
    assert p["data_time"] == exp["data_time"]
    assert p["warnings"] == []
    got = {(f["code"], f["suffix"]): f["value"] for f in p["fields"]}
    for code, suffix, value in exp["values"]:
        assert got[(code, suffix)] == value, (code, suffix)
    # Every data flag of a data packet is typed N.
    assert all(f["value"] == "N" for f in p["fields"] if f["suffix"] == "Flag")
    assert d["crc"] == frame[-6:-2].decode().upper()


def test_the_standards_example_crc_is_1c80() -> None:
    assert hj212.crc16(SET_INTERVAL[6:-6]) == 0x1C80


@pytest.mark.parametrize(("frame", "reason"), INVALID.items())
def test_invalid_vectors_are_rejected_with_the_reason(frame: bytes, reason: str) -> None:
    d = hj212.decode(frame)
    assert not d["valid"] and d["packet"] is None
    assert d["reason"] == reason
    if frame is BAD_CRC:
        assert "CC01" in d["error"] and "CC02" in d["error"]
    if frame is BAD_LENGTH:
        assert "95" in d["error"] and "94" in d["error"]


def _stream(chunks: list[bytes]) -> list[tuple[Any, ...]]:
    dec = hj212.StreamDecoder()
    out: list[tuple[Any, ...]] = []
    for c in chunks:
        out.extend(dec.feed(c))
    return out


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_a_stream_of_all_vectors_split_anywhere_gives_every_packet(chunk: int) -> None:
    data = b"".join(VALID) + BAD_CRC + b"noise##noise" + b"".join(VALID)
    items = _stream([data[i : i + chunk] for i in range(0, len(data), chunk)])
    packets = [i for i in items if i[0] == "packet"]
    assert [p[1] for p in packets] == list(VALID) * 2
    for p in packets:
        exp = EXPECTED[p[1]]["header"]
        assert (p[2], p[3], p[4], p[5]) == (exp["mn"], exp["pw"], exp["cn"], exp["st"])
    errors = [i[1] for i in items if i[0] == "error"]
    assert "crc_mismatch" in errors and "garbage" in errors


def test_the_stream_keeps_the_frame_exactly_as_sent() -> None:
    # The last vector carries a lower-case CRC: the journal must keep it as sent.
    (item,) = _stream([REALTIME_AIR])
    assert item[1] == REALTIME_AIR and item[1].endswith(b"cc01\r\n")


def test_half_a_frame_is_pending_until_abandoned() -> None:
    dec = hj212.StreamDecoder()
    assert dec.feed(HOURLY_STACK[:300]) == []
    assert dec.pending() == (300, 612)
    reason, message, size = dec.abandon() or ("", "", 0)
    assert reason == "incomplete" and size == 300 and "300" in message
    assert dec.pending() is None and dec.buffered == 0
    assert dec.feed(HOURLY_STACK)[0][0] == "packet"


def test_a_megabyte_without_header_is_never_buffered() -> None:
    dec = hj212.StreamDecoder()
    for _ in range(16):
        dec.feed(b"x" * 65_536)
    assert dec.buffered == 0 and dec.capacity < 4096
    assert dec.stats()["skipped_bytes"] >= 65_536 * 15


def test_crc_valid_bytes_that_are_not_a_packet_are_named() -> None:
    frame = hj212.encode_frame("QN=1;ST=31;CN=2011")
    ((kind, raw, reason, message),) = _stream([frame])
    assert (kind, raw, reason) == ("bad_packet", frame, "missing_cp")
    assert "CP" in message


def test_extract_gives_columns_of_configured_codes() -> None:
    frames = [HOURLY_STACK, BAD_CRC, MINUTE_AIR, REALTIME_WATER, QN_RETURN]
    x = hj212.extract(frames, ["a00000", "a24088", "a21026", "w01008"], 480)
    assert x["status"].tolist() == [0, 1, 0, 0, 3]
    assert x["cn"].tolist() == [2061, 0, 2051, 2011, 9011]
    assert x["t_ms"][0] == 1_705_914_000_000  # 2024-01-22T17:00+08:00
    assert math.isnan(x["avg"][1, 0])
    np.testing.assert_array_equal(x["avg"][0, :2], [5.331, 0.933])
    np.testing.assert_array_equal(x["cou"][0, :2], [19191.973, 0.018])
    assert x["avg"][2, 2] == 6.0 and x["rtd"][3, 3] == 123.456
    assert x["flag"][0].tolist() == [ord("N"), ord("N"), 0, 0]
    assert x["flag"][3, 3] == 0  # the water vector sends no flag
    assert set(x["messages"]) == {1, 4} and x["messages"][1].startswith("crc_mismatch")
    assert x["fingerprint"][0] != 0 and x["warnings"] == {}


def test_text_values_are_kept_as_warnings_not_numbers() -> None:
    seg = (
        "QN=20240101000000000;ST=31;CN=2011;PW=1;MN=M1;Flag=4;"
        "CP=&&DataTime=20240101000000;a21026-Rtd=abc,a21026-Flag=Q;a05001-Rtd=11.5,a05001-Flag=N&&"
    )
    frame = hj212.encode_frame(seg)
    p = hj212.decode(frame)["packet"]
    assert {w["reason"] for w in p["warnings"]} == {"not_numeric", "unknown_data_flag"}
    x = hj212.extract([frame], ["a21026", "a05001"], 480)
    assert math.isnan(x["rtd"][0, 0]) and x["rtd"][0, 1] == 11.5
    assert x["flag"][0].tolist() == [ord("D"), ord("N")]  # an unknown flag is not valid data
    assert "a21026-Rtd" in x["warnings"][0]


def test_answers_echo_qn_pw_mn_and_carry_no_answer_flag() -> None:
    ack = hj212.answer(REALTIME_WATER, 9014)
    p = hj212.decode(ack)["packet"]
    assert (p["cn"], p["st"], p["qn"], p["pw"], p["mn"]) == (
        9014,
        91,
        "20231008123340461",
        "123456",
        "010000A8900016F000169DC0",
    )
    assert p["flag"] == 4 and not p["answer_requested"]
    q = hj212.decode(hj212.answer(SET_INTERVAL, 9011, st=32, rtn=1))["packet"]
    assert (q["cn"], q["st"], q["fields"][0]["key"], q["fields"][0]["value"]) == (
        9011,
        32,
        "QnRtn",
        1.0,
    )
    with pytest.raises(InputError, match="not an answer"):
        hj212.answer(REALTIME_WATER, 2011)
    with pytest.raises(InputError, match="CRC"):
        hj212.answer(BAD_CRC, 9014)
