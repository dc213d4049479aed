"""A tower's open period is rebuilt from the journal on resume (stream/ec_replay.py).

A real journal (SQLite partitions) holds 1-s records of a simulated 20-Hz tower with a 30-min
period; a `TowerLogic` places them, snapshots, and a new one resumes from that snapshot: the
rebuilt buffer must equal the original sample for sample, the snapshot must be a small fraction of
the samples it stands for, and records trimmed from the journal are counted and reported while the
rest of the period survives.
"""

from __future__ import annotations

import array
import pickle
from collections.abc import Callable

import numpy as np
import pytest

from carbonstream.backends import journal_readers
from carbonstream.bootstrap import prepare_data_dir
from carbonstream.config import Config
from carbonstream.metrics import EC_REPLAY
from connectors.simulators.ec_towers import TowerFleet
from storage.journal import Journal, JournalEntry, JournalRecord
from storage.metadata import DeadLetter
from storage.records import EC_RAW, encode_ec_raw
from stream.ec import TowerContext, TowerLogic, tower_contexts
from stream.ec_replay import JournalFetcher, OpenRecords

S = 10**9
START = 1_772_323_200 * S  # 2026-03-01T00:00Z, a period boundary

TOML = """
[journal]
partitions = 2
[connectors.meter_simulator]
enabled = false
[ec.simulator]
count = 1
sampling_hz = 20
averaging_min = 30
"""


@pytest.fixture
def config(make_config: Callable[[str], Config]) -> Config:
    c = make_config(TOML)
    prepare_data_dir(c)
    return c


def journal_records(config: Config, seconds: range) -> list[JournalRecord]:
    """1-s records of the simulated tower (the first period), journaled and read back."""
    fleet = TowerFleet(config.ec.simulator)
    (tower,) = fleet.ids
    journal = Journal(config.storage.layout.journal_dir, config.journal.partitions)
    entries = []
    for s in seconds:
        ts, cols = fleet.samples(0, START + s * S, START + (s + 1) * S)
        entries.append(JournalEntry(tower, EC_RAW, encode_ec_raw(ts, cols)))
    placed = journal.append_routed(entries)
    partition = placed[0][0]
    reader = journal.reader(partition)
    records = reader.read_offsets([offset for _, offset in placed])
    reader.close()
    journal.close()
    assert len(records) == len(entries)
    return records


def logic(config: Config, resume: dict[str, object] | None = None) -> TowerLogic:
    contexts = tower_contexts(config)

    def context(tower: str) -> TowerContext | None:
        return contexts.get(tower)

    return TowerLogic(context, JournalFetcher(journal_readers(config)), resume)


def buffer_of(t: TowerLogic) -> tuple[int | None, np.ndarray, int]:
    b = t._buffer
    assert b is not None
    return b.start_ns, b.data.copy(), b.received


def test_resume_rebuilds_the_open_period_from_a_snapshot_a_fraction_of_its_size(
    config: Config,
) -> None:
    records = journal_records(config, range(1700))  # 28 of the 30 minutes
    first = logic(config)
    out, _ = first.on_batch(records)
    assert list(out) == []  # nothing closed
    snap = first.snapshot()
    size = len(pickle.dumps(snap))
    start, data, received = buffer_of(first)
    assert received == 1700 * 20

    before = EC_REPLAY.labels("read")._value.get()
    second = logic(config, snap)
    assert EC_REPLAY.labels("read")._value.get() - before == 1700
    start2, data2, received2 = buffer_of(second)
    assert (start2, received2) == (start, received)
    np.testing.assert_array_equal(data2, data)  # NaN where nothing arrived, equal elsewhere

    samples = data[:, :received].nbytes
    print(f"snapshot {size} B for {samples / 2**20:.2f} MiB of samples ({samples / size:.0f}x)")
    assert size < samples / 100

    # Both go on: the next period's first record closes the period with the same fluxes.
    closing = journal_records(config, range(1800, 1801))
    (resumed,) = list(second.on_batch(closing)[0])
    (uninterrupted,) = list(first.on_batch(closing)[0])
    assert not isinstance(resumed, DeadLetter) and not isinstance(uninterrupted, DeadLetter)
    assert np.isfinite(resumed.values["FC"][0])
    for name, v in uninterrupted.values.items():
        np.testing.assert_array_equal(resumed.values[name], v, err_msg=name)


def test_records_trimmed_before_resume_are_counted_and_the_rest_is_kept(config: Config) -> None:
    records = journal_records(config, range(600))
    first = logic(config)
    first.on_batch(records)
    snap = first.snapshot()
    # The journal trims records the flow passed two snapshots ago once retention is over.
    partition = records[0].partition
    reader = journal_readers(config)(partition)
    reader.commit_progress("flow", records[100].offset)
    reader.commit_progress("flow", records[100].offset)
    reader.close()
    journal = Journal(config.storage.layout.journal_dir, config.journal.partitions)
    assert journal.trim(retention_ns=0) == 100
    journal.close()

    missing = EC_REPLAY.labels("missing")._value.get()
    second = logic(config, snap)
    assert EC_REPLAY.labels("missing")._value.get() - missing == 100
    start, data, received = buffer_of(second)
    assert (start, received) == (START, 500 * 20)
    assert np.isnan(data[:, : 100 * 20]).all()
    np.testing.assert_array_equal(data[:, 100 * 20 : 600 * 20], buffer_of(first)[1][:, 2000:12000])

    out, _ = second.on_batch([])
    (letter,) = list(out)
    assert isinstance(letter, DeadLetter) and letter.reason == "replay_missing"
    assert "100 of 600" in letter.detail["message"]


def test_offsets_pack_to_their_gaps_in_the_narrowest_type() -> None:
    rng = np.random.default_rng(1)
    offsets = array.array("Q", (10**9 + np.cumsum(rng.integers(1, 600, 1800))).tolist())
    packed = OpenRecords(3, offsets).pack()
    assert OpenRecords.unpack(packed) == OpenRecords(3, offsets)
    assert len(packed[3]) == 2 * (len(offsets) - 1)  # gaps < 65,536: two bytes each
    wide = array.array("Q", [1, 2, 2**40])
    assert OpenRecords.unpack(OpenRecords(0, wide).pack()) == OpenRecords(0, wide)
    assert OpenRecords.unpack(OpenRecords(None).pack()) == OpenRecords(None)


def test_a_snapshot_with_inline_samples_still_resumes(config: Config) -> None:
    """Recovery stores written before journal replay hold the samples themselves."""
    records = journal_records(config, range(300))
    first = logic(config)
    first.on_batch(records)
    assert first._buffer is not None
    old = {"tower": first._tower, "buffer": first._buffer.snapshot(), "present": ["w"]}
    second = logic(config, old)
    np.testing.assert_array_equal(buffer_of(second)[1], buffer_of(first)[1])
    assert "buffer" in second.snapshot()  # kept inline until that period closes
