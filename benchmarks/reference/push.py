"""Push ingest as a user would write it in plain Python: csv module, per-row checks, journal."""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime

from storage.journal import Journal, JournalEntry
from storage.records import METER_READINGS, encode_meter_readings


def ingest_csv(body: bytes, known: set[str], journal: Journal) -> int:
    by_partition: dict[int, tuple[list[str], list[int], list[float]]] = {}
    accepted = 0
    for row in csv.DictReader(io.StringIO(body.decode())):
        meter, ts, value = row["meter"], row["ts"], row["value"]
        if meter not in known:
            continue
        try:
            stamp = datetime.fromisoformat(ts)
            v = float(value)
        except ValueError:
            continue
        if stamp.tzinfo is None or not math.isfinite(v) or v < 0:
            continue
        p = journal.partition_for(meter)
        ms, ts_ns, vs = by_partition.setdefault(p, ([], [], []))
        ms.append(meter)
        ts_ns.append(int(stamp.timestamp() * 1e9))
        vs.append(v)
        accepted += 1
    for p, (ms, ts_ns, vs) in by_partition.items():
        payload = encode_meter_readings(ms, ts_ns, vs)  # type: ignore[arg-type]
        journal.append(p, [JournalEntry("push", METER_READINGS, payload)])
    return accepted
