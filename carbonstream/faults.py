"""Fault injection for the crash tests: kill this process at a named point.

`CARBONSTREAM_CRASH_AT="point:n"` makes the n-th pass through `crash_point("point")` send
SIGKILL to the process itself: no cleanup, no flush, exactly what a power cut or an OOM kill
does, but at a chosen moment (between two chunk writes, inside a snapshot, after a journal commit
and before the acknowledgement). Unset (the normal case) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "CARBONSTREAM_CRASH_AT"

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
