"""`carbonstream hj212 decode`, run as a command: every reference vector on stdin gives one JSON
object with `valid` and `error`; valid ones carry their values, invalid ones their reason."""

from __future__ import annotations

import subprocess
import sys

import orjson

from tests.connectors.hj212.vectors import HOURLY_STACK, INVALID, REALTIME_AIR, VALID


def run(stdin: bytes, *args: str) -> tuple[list[dict[str, object]], str, int]:
    proc = subprocess.run(
        [sys.executable, "-m", "carbonstream", "hj212", "decode", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    return (
        [orjson.loads(line) for line in proc.stdout.splitlines()],
        proc.stderr.decode(),
        proc.returncode,
    )


def test_every_vector_decodes_to_one_json_object() -> None:
    # Frames with their CRLF, one copied without it (LF only), a blank line, then the invalid.
    stdin = b"".join(VALID[:-1]) + VALID[-1].rstrip(b"\r\n") + b"\n\n" + b"".join(INVALID)
    out, err, code = run(stdin, "--utc-offset", "+08:00")
    assert code == 0, err
    assert [o["valid"] for o in out] == [True] * len(VALID) + [False] * len(INVALID)
    assert all(o["error"] is None for o in out[: len(VALID)])
    hourly = out[VALID.index(HOURLY_STACK)]
    assert (hourly["cn"], hourly["mn"], hourly["data_time"], hourly["data_time_utc"]) == (
        2061,
        "81733553216103",
        "2024-01-22T17:00:00.000",
        "2024-01-22T09:00:00Z",
    )
    fields = {f["key"]: f["value"] for f in hourly["fields"]}  # type: ignore[union-attr]
    assert fields["a00000-Cou"] == 19191.973 and fields["a24088-Avg"] == 0.933
    assert fields["a01014-Flag"] == "N"
    assert out[VALID.index(REALTIME_AIR)]["crc"] == "CC01"
    for o, reason in zip(out[len(VALID) :], INVALID.values(), strict=True):
        assert o["reason"] == reason and isinstance(o["error"], str) and o["error"]
    assert "6 valid, 2 invalid" in err


def test_strict_mode_fails_on_an_invalid_packet() -> None:
    out, _, code = run(b"not a frame\n", "--strict")
    assert code == 1
    assert out == [
        {
            "valid": False,
            "error": "bytes do not start with the `##` header",
            "reason": "no_header",
            "line": 1,
            "frame": "not a frame",
        }
    ]
