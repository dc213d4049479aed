"""Scale-out settings: each backend is chosen by configuration alone, and a wrong cluster or
backend setting is refused with its key; a cluster process started without its place exits 2."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from carbonstream.config import Config, ConfigError
from storage.object_store import ObjectStoreLocation
from stream.cluster import ClusterError, check_process_id

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_local(make_config: Callable[[str], Config]) -> None:
    c = make_config("")
    assert c.journal.kafka is None and c.flow.cluster is None
    assert isinstance(c.storage.layout.zarr_store, Path)
    assert isinstance(c.storage.layout.metadata_db, Path)


def test_backends_by_configuration(make_config: Callable[[str], Config]) -> None:
    c = make_config(
        'metadata_url = "postgresql://u@db:5432/cs"\n'
        '[storage.object_store]\nurl = "s3://bucket/a/b.zarr"\nendpoint = "http://s3:9000"\n'
        '[journal.kafka]\nbootstrap_servers = "k1:9092,k2:9092"\n'
        '[flow.cluster]\naddresses = ["h1:2101", "h2:2101"]\nrun_here = [1]\n'
    )
    layout = c.storage.layout
    assert layout.metadata_db == "postgresql://u@db:5432/cs"
    store = layout.zarr_store
    assert isinstance(store, ObjectStoreLocation)
    assert (store.bucket, store.prefix, store.name) == ("bucket", "a/b.zarr", "b.zarr")
    assert store.lock_db == "postgresql://u@db:5432/cs", "growth locked in the shared database"
    assert c.flow.cluster is not None and c.flow.cluster.local_processes == [1]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[flow.cluster]\naddresses = ["h:1", "h:1"]\n', "listed twice"),
        ('[flow.cluster]\naddresses = ["h"]\n', "expected host:port"),
        ('[flow.cluster]\naddresses = ["h:1"]\nrun_here = [1]\n', "run_here: process 1"),
        ('[journal.kafka]\nbootstrap_servers = "k"\n', "journal.kafka.bootstrap_servers"),
        ('[storage.object_store]\nurl = "gs://b/x"\n', "storage.object_store.url"),
    ],
)
def test_refused(make_config: Callable[[str], Config], toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(toml)


def test_process_id_must_fit_the_cluster(make_config: Callable[[str], Config]) -> None:
    c = make_config('[flow.cluster]\naddresses = ["h:1", "h:2"]\n')
    check_process_id(c.flow.cluster, 1)
    for bad in (None, 2):
        with pytest.raises(ClusterError):
            check_process_id(c.flow.cluster, bad)
    with pytest.raises(ClusterError):
        check_process_id(None, 0)


def test_cluster_process_without_its_place_exits_2(
    write_config: Callable[[str], Path],
) -> None:
    path = write_config(
        '[storage]\ndata_dir = "{data_dir}"\n[flow.cluster]\naddresses = ["127.0.0.1:1"]\n'
    )
    r = subprocess.run(
        [sys.executable, "-m", "carbonstream", "flow", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "--process-id" in r.stderr


def test_example_cluster_configuration_is_valid() -> None:
    from carbonstream.config import load_config

    c = load_config(ROOT / "examples" / "cluster-3-processes.toml", environ={})
    assert c.flow.cluster is not None and c.flow.cluster.processes == 3
