"""Fault injection for the reliability tests: kill this process, or slow it, at a named point.

`CARBONSTREAM_CRASH_AT="point:n"` makes the n-th pass through `crash_point("point")` send
SIGKILL to the process itself: no cleanup, no flush, exactly what a power cut or an OOM kill
does, but at a chosen moment (between two chunk writes, inside a snapshot, after a journal commit
and before the acknowledgement). Unset (the normal case) it costs one dictionary lookup.

`CARBONSTREAM_SLOW_AT="point:seconds"` makes every pass through `slow_point("point")` sleep that
long: a flow slower than its input (an overloaded machine, a slow disk), without changing what
it computes. With `CARBONSTREAM_SLOW_WHILE=<path>` it sleeps only while that file exists, so a
test can end the slowness. Unset it costs one comparison.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "CARBONSTREAM_CRASH_AT"
SLOW_ENV = "CARBONSTREAM_SLOW_AT"
SLOW_WHILE_ENV = "CARBONSTREAM_SLOW_WHILE"

_target: tuple[str, int] | None = None
_seen: dict[str, int] = {}


def _parse() -> tuple[str, int] | None:
    spec = os.environ.get(ENV, "")
    if not spec:
        return None
    point, _, n = spec.rpartition(":")
    return (point, int(n)) if point and n.isdigit() else None


_target = _parse()


def crash_point(point: str) -> None:
    if _target is None or _target[0] != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)


def _parse_slow() -> tuple[str, float] | None:
    point, _, seconds = os.environ.get(SLOW_ENV, "").rpartition(":")
    try:
        return (point, float(seconds)) if point else None
    except ValueError:
        return None


_slow = _parse_slow()
_slow_while = os.environ.get(SLOW_WHILE_ENV) or None


def slow_point(point: str) -> None:
    if _slow is None or _slow[0] != point:
        return
    if _slow_while is None or os.path.exists(_slow_while):
        time.sleep(_slow[1])
