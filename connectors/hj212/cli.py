"""`carbonstream hj212 decode`: HJ 212 packets on stdin (or files), one JSON object per packet.

Each non-empty input line is one frame (`##LLLL...CCCC`, with or without its CRLF, so captures
and copied text both work). Each output line is `{"valid": bool, "error": str | null, "reason":
str | null, "line": n, ...}` with the typed packet (header, local `data_time`, fields with their
types, warnings) when valid, and the reason it was rejected otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, BinaryIO


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("hj212", help="HJ 212-2017 tools")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = sub.add_parser(
        "decode",
        help="decode packets (one frame per line) from stdin or files to JSON lines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("files", nargs="*", type=Path, metavar="FILE", help="default: stdin")
    d.add_argument(
        "--utc-offset",
        default=None,
        metavar="+HH:MM",
        help="the loggers' UTC offset: adds data_time_utc (e.g. +08:00 for China)",
    )
    d.add_argument(
        "--strict", action="store_true", help="exit with status 1 if any packet is invalid"
    )
    d.set_defaults(handler=_decode_command)


def _offset_minutes(text: str) -> int:
    import re

    m = re.fullmatch(r"([+-])(\d\d):(\d\d)", text)
    if not m or int(m[2]) > 14 or int(m[3]) > 59:
        raise SystemExit(f"carbonstream hj212 decode: --utc-offset {text!r} is not +HH:MM")
    minutes = int(m[2]) * 60 + int(m[3])
    return -minutes if m[1] == "-" else minutes


def decode_lines(stream: BinaryIO, out: Any, offset_minutes: int | None = None) -> tuple[int, int]:
    """Writes one JSON line per frame line of `stream`; returns (valid, invalid) counts."""
    from datetime import UTC, datetime, timedelta

    import orjson

    from carbonstream.core import hj212

    valid = invalid = 0
    for n, raw in enumerate(stream, start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        d: dict[str, Any] = hj212.decode(line + b"\r\n")
        record: dict[str, Any] = {
            "valid": d["valid"],
            "error": d["error"],
            "reason": d["reason"],
            "line": n,
        }
        if d["valid"]:
            valid += 1
            packet = d["packet"]
            record["crc"] = d["crc"]
            record.update(packet)
            if offset_minutes is not None and packet["data_time"]:
                local = datetime.fromisoformat(packet["data_time"]).replace(tzinfo=UTC)
                utc = local - timedelta(minutes=offset_minutes)
                record["data_time_utc"] = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            invalid += 1
            record["frame"] = line[:2048].decode("utf-8", errors="replace")
        out.write(orjson.dumps(record).decode() + "\n")
    return valid, invalid


def _decode_command(args: argparse.Namespace) -> int:
    offset = None if args.utc_offset is None else _offset_minutes(args.utc_offset)
    valid = invalid = 0
    sources = args.files or [None]
    for path in sources:
        try:
            stream = sys.stdin.buffer if path is None else path.open("rb")
        except OSError as exc:
            print(f"carbonstream hj212 decode: {path}: {exc.strerror}", file=sys.stderr)
            return 2
        with stream if path is not None else contextlib.nullcontext(stream) as s:
            v, i = decode_lines(s, sys.stdout, offset)
        valid += v
        invalid += i
    print(f"{valid} valid, {invalid} invalid packet(s)", file=sys.stderr)
    return 1 if args.strict and invalid else 0
