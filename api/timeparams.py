"""Time-range query parameters: ISO 8601 with an offset, converted to UTC epoch nanoseconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from api.errors import Problem
from storage.products import ProductSpec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Instants are int64 nanoseconds (up to 2262-04-11) in the products and their arithmetic; a
# parameter outside these years is refused, so no default span or slot computation overflows.
FIRST_YEAR, LAST_YEAR = 1900, 2199
_LOWEST = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
_HIGHEST = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)


def parse_instant(name: str, value: str | None) -> int | None:
    """Epoch ns of an ISO 8601 parameter, None when absent; a Problem (400) when unusable."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Problem(400, "Bad time", f"{name}={value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise Problem(400, "Bad time", f"{name}={value!r} needs a UTC offset (e.g. Z)")
    if not _LOWEST <= moment < _HIGHEST:
        raise Problem(
            400, "Bad time", f"{name}={value!r} is outside the years {FIRST_YEAR}-{LAST_YEAR}"
        )
    return ((moment - _EPOCH) // timedelta(microseconds=1)) * 1_000


def iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}Z" if rest else f"{stamp}Z"


def time_range(start: str | None, end: str | None, default_span_ns: int) -> tuple[int, int]:
    """[start, end) in epoch ns: end defaults to now, start to end - default_span_ns."""
    end_ns = parse_instant("end", end)
    end_ns = time.time_ns() if end_ns is None else end_ns
    start_ns = parse_instant("start", start)
    start_ns = end_ns - default_span_ns if start_ns is None else start_ns
    if end_ns <= start_ns:
        raise Problem(400, "Bad time range", "end must be after start")
    return start_ns, end_ns


def slot_window(spec: ProductSpec, start_ns: int, end_ns: int, max_slots: int) -> tuple[int, int]:
    """The product's slots overlapping [start, end), refused when more than max_slots."""
    slot0 = max(0, spec.slot_of(start_ns))
    slot1 = max(slot0, spec.slot_of(end_ns - 1) + 1)
    if slot1 - slot0 > max_slots:
        raise Problem(400, "Time range too long", f"at most {max_slots} periods per query")
    return slot0, slot1
