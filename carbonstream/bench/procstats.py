"""CPU time and resident memory of process trees, read from /proc (Linux), so a benchmark can
say what the service (each role) and the load generators cost."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcSample:
    pid: int
    name: str
    cpu_s: float
    """user + system CPU time so far."""
    rss_bytes: int


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree(pid: int) -> list[int]:
    """The process and its descendants (those alive now)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += _children(p)
    return found


def _name(pid: int) -> str:
    """`carbonstream <role>` for the service's processes, else the command's last words."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = [a.decode(errors="replace") for a in args if a]
    if "connectors.simulators.modbus_fleet" in words:
        return "modbus-fleet"
    if "carbonstream" in words:
        i = words.index("carbonstream")
        if i + 1 < len(words):
            return words[i + 1]  # run, ingest, flow, api, or bench (this benchmark)
    return " ".join(w.rsplit("/", 1)[-1] for w in words[:2])


def sample(pid: int) -> ProcSample | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        name = _name(pid)
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": fields from 3 (state) on
    utime, stime = int(fields[11]), int(fields[12])
    return ProcSample(pid, name, (utime + stime) * TICK_S, int(statm[1]) * PAGE)


def sample_tree(pid: int) -> dict[int, ProcSample]:
    return {s.pid: s for p in tree(pid) if (s := sample(p)) is not None}


@dataclass
class CpuMeter:
    """CPU % (100 = one core) and peak RSS per process name between `start` and `stop`,
    over the trees rooted at the given pids."""

    roots: list[int]

    def __post_init__(self) -> None:
        self._first: dict[int, ProcSample] = {}
        self._last: dict[int, ProcSample] = {}
        self.peak_rss: dict[str, int] = {}
        self._t0 = self._t1 = 0.0

    def _all(self) -> dict[int, ProcSample]:
        out: dict[int, ProcSample] = {}
        for r in self.roots:
            out.update(sample_tree(r))
        return out

    def start(self, now: float) -> None:
        self._first = self._all()
        self._t0 = now
        self.poll(now)

    def poll(self, now: float) -> None:
        cur = self._all()
        self._last.update(cur)
        self._t1 = now
        by_name: dict[str, int] = {}
        for s in cur.values():
            by_name[s.name] = by_name.get(s.name, 0) + s.rss_bytes
        for name, rss in by_name.items():
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    def cpu_percent(self) -> dict[str, float]:
        """Per process name; a process started after `start` counts from zero."""
        wall = max(self._t1 - self._t0, 1e-9)
        out: dict[str, float] = {}
        for pid, last in self._last.items():
            first = self._first.get(pid)
            used = last.cpu_s - (first.cpu_s if first else 0.0)
            out[last.name] = out.get(last.name, 0.0) + 100.0 * used / wall
        return out
