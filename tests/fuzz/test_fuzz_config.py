"""Fuzzing the configuration loader (carbonstream/config.py).

An operator's file may be anything: not TOML, TOML of the wrong shape, the example with a value
changed to another type, a key deleted or misspelt. Loading it gives a valid `Config` or a
`ConfigError` whose every problem names the file (or the environment variable), then the key when
there is one, then the reason; never another exception type, which `carbonstream run` would show
as a traceback instead of its exit status 2.
"""

from __future__ import annotations

import math
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbonstream.config import Config, ConfigError, load_config
from tests.fuzz.strategies import FUZZ, mutated

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "carbonstream.toml"


def load_or_refuse(path: Path, environ: dict[str, str] | None = None) -> Config | ConfigError:
    """The Config, or the ConfigError after checking that each problem says where and why."""
    try:
        return load_config(path, environ=environ or {})
    except ConfigError as exc:
        assert exc.problems
        for p in exc.problems:
            origin, _, reason = p.partition(": ")
            assert origin == str(path) or origin.startswith("environment variable "), p
            assert reason.strip(), p
        return exc


# -- TOML text of any shape ---------------------------------------------------------------------


def toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def toml_value(v: Any) -> str:
    """Any TOML value as inline TOML (tables inline, so one line holds a whole document)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_document(d: dict[str, Any]) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in d.items())


scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "0", "-1", "+08:00", "hj75", "csat3", "a05001", "127.0.0.1", "x" * 300]),
    st.datetimes(),
    st.datetimes(timezones=st.timezones()),
    st.dates(),
    st.times(),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def paths(d: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path of a parsed document (into tables and arrays of tables)."""
    out: list[tuple[str | int, ...]] = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def edited_examples(draw: st.DrawFn) -> dict[str, Any]:
    """The example configuration with a few keys changed to any value, deleted, or added."""
    doc = example()
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths(doc)))
        parent: Any = doc
        for k in where[:-1]:
            parent = parent[k]
        last = where[-1]
        op = draw(st.sampled_from(["set", "delete", "add"]))
        if op == "delete" and isinstance(parent, dict):
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["x", "id", "port", "enabled", "unit"]))] = draw(values)
        else:
            parent[last] = draw(values)
    return doc


@FUZZ
@given(doc=edited_examples())
def test_an_edited_example_gives_a_config_or_says_what_is_wrong(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    path = tmp_path / "carbonstream.toml"
    path.write_text(toml_document(doc))
    load_or_refuse(path)


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(["api", "storage", "ec", "cems", "x"]), values))
def test_any_toml_document_gives_a_config_or_says_what_is_wrong(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    path = tmp_path / "carbonstream.toml"
    path.write_text(toml_document(doc))
    load_or_refuse(path)


@FUZZ
@given(data=st.data())
def test_a_mutated_example_file_gives_a_config_or_says_what_is_wrong(
    tmp_path: Path, data: st.DataObject
) -> None:
    path = tmp_path / "carbonstream.toml"
    path.write_bytes(data.draw(mutated(EXAMPLE.read_bytes(), max_mutations=6)))
    load_or_refuse(path)


@FUZZ
@given(
    keys=st.lists(
        st.sampled_from(["API", "PORT", "STREAMS", "METERS", "0", "ID", "", "X"]),
        min_size=1,
        max_size=4,
    ),
    raw=st.text(max_size=40) | values.map(toml_value),
)
def test_any_environment_override_gives_a_config_or_names_the_variable(
    tmp_path: Path, keys: list[str], raw: str
) -> None:
    path = tmp_path / "carbonstream.toml"
    path.write_text("")
    load_or_refuse(path, {"CARBONSTREAM_" + "__".join(keys): raw})


@pytest.mark.parametrize("nested", ["[" * 2000 + "]" * 2000, "{a = " * 2000 + "1" + "}" * 2000])
def test_deeply_nested_toml_is_refused_not_a_recursion_error(tmp_path: Path, nested: str) -> None:
    """tomllib parses nested arrays and tables by recursion: a few thousand levels raised
    RecursionError, a traceback instead of the refusal naming the file (the same in an
    environment override, which is then read as plain text)."""
    path = tmp_path / "deep.toml"
    path.write_text(f"x = {nested}\n")
    problems = load_or_refuse(path)
    assert isinstance(problems, ConfigError)
    assert problems.problems[0].startswith(f"{path}: invalid TOML")
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    refused = load_or_refuse(empty, {"CARBONSTREAM_API__PORT": nested})
    assert isinstance(refused, ConfigError)
    assert refused.problems[0].startswith("environment variable CARBONSTREAM_API__PORT: api.port")
