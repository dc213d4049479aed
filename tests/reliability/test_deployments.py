"""The deployment does not change the result: the same journal processed by one process, by a
2-process Bytewax cluster, and by a cluster writing Zarr to S3 (moto's server on loopback) with
its metadata and growth lock in PostgreSQL, gives the same store, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.harness import clone, fixed_input, run_flow, store_contents, write_config
from tests.servers import cluster_addresses, new_bucket, new_database


def _cluster(n: int) -> str:
    addresses = ", ".join(f'"{a}"' for a in cluster_addresses(n))
    return f"[flow.cluster]\naddresses = [{addresses}]\n"


@pytest.fixture(scope="module")
def unprocessed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("input")
    fixed_input(d)
    return d


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, unprocessed: Path) -> dict[str, object]:
    """The reference: the fixed input processed by one process."""
    d = clone(unprocessed, tmp_path_factory.mktemp("single"))
    assert run_flow(d) == 0, (d / "flow.log").read_text()[-3000:]
    out = store_contents(d)
    assert any(k.startswith("meters/interval/co2/c/") for k in out)
    assert any(k.startswith("entities/day/co2/c/") for k in out), "roll-ups stored"
    return out


def test_a_two_process_cluster_writes_the_same_store_as_one_process(
    tmp_path: Path, unprocessed: Path, single: dict[str, object]
) -> None:
    d = clone(unprocessed, tmp_path)
    write_config(d, _cluster(2))
    assert run_flow(d) == 0, (d / "flow.log").read_text()[-3000:]
    assert "process 1 of 2" in (d / "flow.log").read_text()
    got = store_contents(d)
    assert got.keys() == single.keys()
    assert not sorted(k for k in got if got[k] != single[k])


def test_a_cluster_on_s3_and_postgres_writes_the_same_store(
    tmp_path: Path, single: dict[str, object], s3_endpoint: str, postgres_server: str
) -> None:
    """Zarr in a bucket, metadata (and the array-growth lock) in PostgreSQL, 2 processes: what a
    multi-host deployment shares, here on one host."""
    bucket, db = new_bucket(s3_endpoint), new_database(postgres_server)
    d = tmp_path / "s3"
    d.mkdir()
    deployment = (
        f'[storage]\nmetadata_url = "{db}"\n'
        f'[storage.object_store]\nurl = "s3://{bucket}/products.zarr"\n'
        f'endpoint = "{s3_endpoint}"\nallow_http = true\n'
        'access_key_id = "test"\nsecret_access_key = "test"\n' + _cluster(2)
    )
    fixed_input(d, deployment=deployment)
    assert run_flow(d) == 0, (d / "flow.log").read_text()[-3000:]
    got = store_contents(d)
    assert not list((d / "data").glob("products.zarr")), "nothing on local disk"
    assert got.keys() == single.keys()
    assert not sorted(k for k in got if got[k] != single[k])
