"""The configuration: defaults, file and environment sources, refusals naming file/key/reason."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from carbonstream.config import Config, ConfigError, load_config, reference_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_need_no_file() -> None:
    c = load_config(None, environ={})
    assert c.api.host == "127.0.0.1" and c.api.port == 8000
    assert c.storage.layout.data_dir == Path("carbonstream-data").absolute()
    assert c.connectors.meter_simulator.enabled
    assert c.recovery.enabled


def test_file_values_and_env_overrides(write_config: Callable[[str], Path]) -> None:
    path = write_config(
        '[api]\nport = 9001\n[journal]\npartitions = 8\n[[streams.meters]]\nid = "m-1"\n'
    )
    c = load_config(
        path,
        environ={
            "CARBONSTREAM_API__PORT": "9002",
            "CARBONSTREAM_API__HOST": "0.0.0.0",
            "CARBONSTREAM_RECOVERY__ENABLED": "false",
            "CARBONSTREAM_CONFIG_UNRELATED": "ignored: no double underscore",
        },
    )
    assert c.api.port == 9002 and c.api.host == "0.0.0.0"
    assert c.journal.partitions == 8 and not c.recovery.enabled
    assert [m.id for m in c.streams.meters] == ["m-1"]
    assert c.streams.meters[0].commodity == "electricity"


def test_config_file_from_environment(write_config: Callable[[str], Path]) -> None:
    path = write_config("[api]\nport = 9100\n")
    assert load_config(None, environ={"CARBONSTREAM_CONFIG": str(path)}).api.port == 9100


def problems(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=environ or {})
    return err.value.problems


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[api]\nport = 70000\n",
            "api.port: Input should be less than or equal to 65535 (got 70000)",
        ),
        ("[api]\nprot = 8001\n", "api.prot: unknown key"),
        ("[journal]\npartitions = 'four'\n", "journal.partitions: Input should be a valid integer"),
        (
            '[[streams.meters]]\nid = "a"\n[[streams.meters]]\nid = "bad id"\n',
            "streams.meters[1].id: String should match pattern",
        ),
        (
            '[[streams.meters]]\nid = "a"\n[[streams.meters]]\nid = "a"\n',
            "streams.meters: Value error, meter id 'a' is declared twice",
        ),
        (
            "[products.meters_interval]\norigin = 2020-01-01T00:00:00\n",
            "products.meters_interval.origin: Value error, origin must be a UTC timestamp",
        ),
        (
            "[recovery]\nsnapshot_interval_s = 0\n",
            "recovery.snapshot_interval_s: Input should be greater than 0",
        ),
        (
            "[journal]\nretention_s = 600\n[ec.simulator]\ncount = 1\naveraging_min = 30\n",
            "journal.retention_s: 600 s is shorter than the longest EC averaging period (1800 s)",
        ),
    ],
)
def test_refusals_name_file_key_and_reason(
    write_config: Callable[[str], Path], toml: str, expected: str
) -> None:
    path = write_config(toml)
    found = problems(path)
    assert any(p.startswith(f"{path}: ") and expected in p for p in found), found


def test_env_refusal_names_the_variable() -> None:
    found = problems(None, {"CARBONSTREAM_API__PORT": "not-a-port"})
    assert found == [
        "environment variable CARBONSTREAM_API__PORT: api.port: Input should be a valid integer, "
        "unable to parse string as an integer (got 'not-a-port')"
    ]


def test_unreadable_files(tmp_path: Path) -> None:
    assert problems(tmp_path / "missing.toml") == [f"{tmp_path / 'missing.toml'}: file not found"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[api\nport = 1\n")
    (problem,) = problems(bad)
    assert problem.startswith(f"{bad}: invalid TOML:") and "line 1" in problem


@pytest.mark.parametrize(
    ("args", "toml", "status", "stderr_has"),
    [
        (["config", "check"], "[api]\nport = 70000\n", 2, "api.port: Input should be less than"),
        (["run"], "[flow]\nworkers = 0\n", 2, "flow.workers: Input should be greater than"),
        (["api"], "[storage]\nnope = 1\n", 2, "storage.nope: unknown key"),
        (["config", "check"], "[api]\nport = 8123\n", 0, ""),
    ],
)
def test_cli_refuses_bad_config_without_traceback(
    write_config: Callable[[str], Path], args: list[str], toml: str, status: int, stderr_has: str
) -> None:
    path = write_config(toml)
    proc = subprocess.run(
        [sys.executable, "-m", "carbonstream", *args, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    assert stderr_has in proc.stderr
    if status:
        assert str(path) in proc.stderr


def test_every_option_is_documented() -> None:
    def walk(model: type[object]) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(name)
            ann = field.annotation
            inner = getattr(ann, "__args__", (None,))[0]
            for sub in (ann, inner):
                if isinstance(sub, type) and hasattr(sub, "model_fields"):
                    missing += walk(sub)
        return missing

    assert walk(Config) == []


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference_markdown() + "\n", (
        "run: carbonstream config reference > docs/configuration.md"
    )


def test_the_example_configuration_is_valid() -> None:
    c = load_config(ROOT / "examples" / "carbonstream.toml", environ={})
    assert {m.id: m.commodity for m in c.streams.meters} == {
        "plant-a-main": "electricity",
        "plant-a-pv-ppa": "green_electricity",
        "plant-a-gas": "natural_gas",
    }
