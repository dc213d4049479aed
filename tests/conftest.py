"""Shared fixtures: configurations in temporary data directories, free ports, the real service."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from carbonstream.config import Config, load_config

pytest_plugins = ["tests.servers"]  # PostgreSQL, Kafka and S3 servers, started on demand


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Writes TOML text (with `{data_dir}` filled in) to a file in tmp_path; returns its path."""

    def write(text: str, name: str = "carbonstream.toml") -> Path:
        path = tmp_path / name
        path.write_text(text.replace("{data_dir}", str(tmp_path / "data")))
        return path

    return write


@pytest.fixture
def make_config(write_config: Callable[[str], Path]) -> Callable[[str], Config]:
    """A validated Config from TOML text; the data directory is inside tmp_path."""

    def make(text: str = "") -> Config:
        body = '[storage]\ndata_dir = "{data_dir}"\n' + text
        return load_config(write_config(body), environ={})

    return make


SLOW_FIRST = ("reliability", "e2e")
"""Test folders run before the others: their files start real services and take 10-150 s
each. Collected last (alphabetical order), they ran in the tail of `make test` on one or two
workers while the third was idle (the last 15 % of the tests took 7.5 of 10 minutes)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schemathesis names each operation's test item `test[GET /path]` but gives them all the
    same node id; pytest-xdist (`make test` runs three workers) schedules by node id and would
    run one operation instead of every one. The label is appended to the id. Then the slow
    folders are moved first (files stay whole, in their order)."""
    items.sort(key=_slow_first_rank)
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and item.parent is not None and not item.nodeid.endswith(item.name):
            item._id = item.parent.id.child(item.name)  # what pytest computes for its own items


def _slow_first_rank(item: pytest.Item) -> int:
    parts = item.path.relative_to(Path(__file__).parent).parts
    return SLOW_FIRST.index(parts[0]) if parts[0] in SLOW_FIRST else len(SLOW_FIRST)
