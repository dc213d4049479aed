"""The one configuration file: TOML, validated by pydantic, with environment overrides.

Every option has a default, so no file is needed (`make run` uses none). An environment variable
`CARBONSTREAM_<SECTION>__<KEY>` (double underscore between levels) overrides a value of the file;
its value is read as TOML when it parses (`8001`, `true`, `"text"`, `[1, 2]`) and as a plain
string otherwise. A configuration that does not validate is refused at start with the file (or
variable), the key and the reason.

Every field carries a description: `carbonstream config reference` prints them all, and
docs/configuration.md is generated from it (a test keeps it current).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.ec.settings import EcSettings
from connectors.hj212.settings import CemsSettings, CemsSimulatorSettings
from connectors.modbus.config import ModbusSettings
from connectors.modbus.dau_config import check_sites
from storage.alert_rules import AlertRule
from storage.entities import EntityTreeError, check_hierarchy
from storage.layout import DataLayout
from storage.object_store import ObjectStoreLocation
from storage.scale_settings import KafkaJournalSettings, ObjectStoreSettings
from stream.cluster import ClusterSettings

ENV_PREFIX = "CARBONSTREAM_"
ENV_CONFIG_FILE = "CARBONSTREAM_CONFIG"

STREAM_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(Section):
    data_dir: Path = Field(
        Path("carbonstream-data"),
        description="Directory of the journal, Zarr store, metadata database, recovery snapshots "
        "and metrics files. A relative path is taken from the working directory.",
    )
    zarr_store: str = Field(
        "products.zarr", description="Name of the Zarr v3 store inside data_dir."
    )
    metadata_db: str = Field(
        "metadata.sqlite",
        description="Name of the SQLite metadata database (streams, status, dead letters, "
        "emission factors) inside data_dir.",
    )
    metadata_url: str | None = Field(
        None,
        pattern=r"^postgres(ql)?://",
        description="PostgreSQL URL (postgresql://user:password@host:5432/db) of a metadata "
        "database shared by several hosts (API replicas, a flow cluster); replaces "
        "metadata_db. Put the password in the environment: CARBONSTREAM_STORAGE__METADATA_URL.",
    )
    object_store: ObjectStoreSettings | None = Field(
        None,
        description="Keep the Zarr store on S3-compatible object storage instead of data_dir "
        "(array growth is then locked in the PostgreSQL metadata database when there is one).",
    )
    min_free_bytes: int = Field(
        64 << 20,
        ge=0,
        description="Free space kept in reserve on the data directory's filesystem: below it, "
        "ingest refuses new data (HTTP 503, HJ 212 without answer, so senders keep and re-send "
        "it) and /health reports the disk, while the dataflow may still use half of it to store "
        "what was already acknowledged. 0: refuse only when the disk is really full.",
    )

    @property
    def layout(self) -> DataLayout:
        o = self.object_store
        return DataLayout(
            self.data_dir.absolute(),
            self.zarr_store,
            self.metadata_db,
            metadata_url=self.metadata_url,
            object_store=None
            if o is None
            else ObjectStoreLocation(
                o.url,
                o.endpoint,
                o.region,
                o.access_key_id,
                o.secret_access_key,
                o.allow_http,
                lock_db=self.metadata_url,
            ),
        )


class JournalSettings(Section):
    partitions: int = Field(
        4,
        ge=1,
        le=1024,
        description="Journal partitions (one SQLite database each). Streams are routed by a stable "
        "hash of their id, so the count is fixed once data exists.",
    )
    durability: Literal["fsync", "os"] = Field(
        "fsync",
        description="'fsync': an append is on disk before it is acknowledged (survives power "
        "loss). "
        "'os': survives a process crash only; faster on slow disks.",
    )
    retention_s: float = Field(
        3600.0,
        ge=0,
        description="Records stay this long after every consumer has snapshotted past them "
        "(for inspection and re-processing), then are trimmed. At least the longest EC "
        "averaging period: a restarted flow rebuilds open periods from these records.",
    )
    dedupe_window_s: float = Field(
        86_400.0,
        ge=0,
        description="A pushed batch re-sent within this window (after a lost acknowledgement) is "
        "recognised by its content and not journaled twice.",
    )
    read_batch: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Most journal records one source poll hands to the dataflow.",
    )
    poll_interval_s: float = Field(
        0.05, gt=0, le=10, description="Wait before polling an idle journal partition again."
    )
    kafka: KafkaJournalSettings | None = Field(
        None,
        description="Keep the journal in a Kafka topic instead of local SQLite partitions "
        "(same offsets, durability and dedupe guarantees; see docs/cluster.md).",
    )


class RecoverySettings(Section):
    enabled: bool = Field(
        True,
        description="Snapshot dataflow state (journal offsets, open periods) so a restarted flow "
        "resumes where its last snapshot left off and replays the rest.",
    )
    snapshot_interval_s: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="Epoch length: state is snapshotted and results flushed to Zarr this often.",
    )
    backup_interval_s: float = Field(
        0.0,
        ge=0,
        description="Keep superseded snapshots this long (set it to how often you back up the "
        "recovery directory).",
    )
    partitions: int = Field(
        1, ge=1, le=256, description="Recovery database partitions (fixed once created)."
    )


class FlowSettings(Section):
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Bytewax worker threads in the flow process. Threads share the GIL: more "
        "workers help only while the Rust kernels (which release it) dominate.",
    )
    sink_partitions: int = Field(
        4,
        ge=1,
        le=4096,
        description="Zarr writer partitions. Each chunk row-block belongs to exactly one, so one "
        "writer owns each chunk.",
    )
    max_lag_s: float = Field(
        60.0,
        gt=0,
        description="/health reports the service degraded (503) when the oldest journal record "
        "the flow has not yet processed is older than this. Inputs faster than the flow are "
        "kept in the journal meanwhile (up to storage.min_free_bytes), never dropped.",
    )
    future_tolerance_s: float = Field(
        300.0,
        ge=0,
        description="Samples stamped more than this after their arrival in the journal are "
        "refused as from the future (clock trouble).",
    )
    stall_exit_s: float = Field(
        60.0,
        ge=0,
        description="The flow process exits (and is restarted from its last snapshot) when no "
        "epoch snapshot was taken for this long: a Bytewax worker thread that died leaves the "
        "process alive but stuck. 0 turns the watchdog off (it needs recovery on).",
    )
    cluster: ClusterSettings | None = Field(
        None,
        description="Run the dataflow as a Bytewax cluster of several processes "
        "(`carbonstream run --cluster`, `carbonstream flow --process-id I`; docs/cluster.md).",
    )


class ApiSettings(Section):
    host: str = Field("127.0.0.1", description="Address the HTTP API binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API.")
    max_body_bytes: int = Field(
        64 << 20, ge=1024, description="Largest accepted request body (push ingest), bytes."
    )
    anonymous_read: bool = Field(
        True,
        description="Allow queries and subscriptions without a token. Writes and ingest always "
        "need one. Turn off when the API listens beyond localhost.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS); none by default.",
    )
    webhook_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts webhook subscriptions may point at (globs, e.g. '*.example.org'); "
        "empty: any. A webhook makes this server send requests: restrict it where that matters.",
    )
    max_rows: int = Field(500_000, ge=1, description="Most readings accepted in one push request.")


class MeterProductSettings(Section):
    resolution_s: int = Field(
        60,
        ge=1,
        le=86_400,
        description="Period of meters/interval, seconds (periods labelled by start).",
    )
    origin: datetime = Field(
        datetime(2020, 1, 1, tzinfo=UTC),
        description="Start of the time grid (UTC). Samples before it are refused.",
    )
    chunk_streams: int = Field(
        256,
        ge=1,
        le=65_536,
        description="Zarr chunk size along stream; fixed when the store is created. Every flush "
        "while a minute's readings arrive rewrites one file per variable and block of this many "
        "meters: from about 50,000 meters use 1,024 (at 100,000 meters, 256 made about 2,000 "
        "fsync'd files per flush and stalled the flow at every minute).",
    )
    chunk_time: int = Field(
        240,
        ge=1,
        le=1_000_000,
        description="Zarr chunk size along time, periods; fixed when the store is created. The "
        "same flushes rewrite the whole open time chunk to add a period: from about 50,000 "
        "meters use 60 (at 100,000 meters, a flush of every row block took 1.35-1.85 s with 240 "
        "and 0.60-1.04 s with 60: medians of two runs of benchmarks/bench_meter_flush.py).",
    )
    max_gap_s: float = Field(
        900.0,
        gt=0,
        description="Longest interval between two readings of a meter that is interpolated across; "
        "longer gaps stay missing.",
    )

    @field_validator("origin")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.utcoffset() != UTC.utcoffset(None):
            raise ValueError("origin must be a UTC timestamp, e.g. 2020-01-01T00:00:00Z")
        return v


class ProductsSettings(Section):
    meters_interval: MeterProductSettings = Field(
        default_factory=MeterProductSettings, description="The meters/interval product."
    )


Commodity = Literal[
    "electricity", "green_electricity", "natural_gas", "heat", "water", "raw_coal", "diesel"
]
Basis = Literal["location", "market", "residual", "fossil", "direct"]


class MeterStream(Section):
    id: str = Field(description="Meter id, unique.", pattern=STREAM_ID)
    commodity: Commodity = Field("electricity", description="What the register counts.")
    unit: str = Field("kWh", description="Register unit; must match the factor's denominator.")
    region: str = Field("CN", description="Grid region for the emission factor (e.g. CN, CN-East).")
    basis: Basis = Field("location", description="Emission-factor basis (GHG Protocol scope 2).")
    rollover: float | None = Field(
        None, gt=0, description="Register value at which the counter wraps to zero, if it does."
    )
    entity: str | None = Field(
        None, description="Entity (enterprise, building, ...) it belongs to."
    )


class StreamsSettings(Section):
    meters: list[MeterStream] = Field(
        default_factory=list, description="Declared meters ([[streams.meters]] tables)."
    )

    @field_validator("meters")
    @classmethod
    def _unique(cls, meters: list[MeterStream]) -> list[MeterStream]:
        seen: set[str] = set()
        for m in meters:
            if m.id in seen:
                raise ValueError(f"meter id {m.id!r} is declared twice")
            seen.add(m.id)
        return meters


class ActivitySettings(Section):
    measure: str = Field(description="What intensity is computed against: floor_area, output, ...")
    value: float = Field(gt=0, description="Its value (e.g. 12000 for 12,000 m2).")
    unit: str = Field(description="Its unit (m2, t/year, ...); intensity is kg CO2 per this unit.")


class EntitySettings(Section):
    id: str = Field(description="Entity id, unique.", pattern=STREAM_ID)
    name: str | None = Field(None, description="Display name (default: the id).")
    kind: str = Field(
        "enterprise",
        description="city, district, county, park, enterprise, building, ... (free text).",
    )
    parent: str | None = Field(None, description="Id of the parent entity; none for a root.")
    activity: ActivitySettings | None = Field(
        None, description="Activity measure for intensity (floor area, output)."
    )


class RollupSettings(Section):
    enabled: bool = Field(
        True, description="Compute entity roll-ups (entities/interval, /day, /month)."
    )
    interval_s: float = Field(
        5.0, gt=0, le=3600, description="How often changed meter data is rolled up."
    )
    utc_offset: str = Field(
        "+00:00",
        pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$",
        description="Local time of day and month boundaries, e.g. +08:00 for China.",
    )
    chunk_entities: int = Field(
        64, ge=1, le=65_536, description="Zarr chunk size along the entity axis."
    )

    @property
    def offset_ns(self) -> int:
        sign = -1 if self.utc_offset[0] == "-" else 1
        hours, minutes = int(self.utc_offset[1:3]), int(self.utc_offset[4:6])
        return sign * (hours * 3600 + minutes * 60) * 1_000_000_000


class MqttSettings(Section):
    enabled: bool = Field(False, description="Publish alert events to an MQTT broker.")
    host: str = Field("127.0.0.1", description="Broker host.")
    port: int = Field(1883, ge=1, le=65_535, description="Broker port (8883 with TLS).")
    topic_prefix: str = Field(
        "carbonstream/alerts",
        pattern=r"^[^+#\x00]+$",
        description="Events go to <prefix>/<severity>/<rule>/<subject> (no + or #).",
    )
    qos: Literal[0, 1, 2] = Field(
        1, description="MQTT QoS of the events; 1 or 2 for at-least-once delivery."
    )
    client_id: str = Field("carbonstream-alerts", description="MQTT client id.")
    username: str | None = Field(None, description="Broker user name, if it needs one.")
    password: str | None = Field(None, description="Broker password (prefer the environment).")
    tls: bool = Field(False, description="Connect with TLS (system CA certificates).")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive interval.")


class AlertsSettings(Section):
    rules: list[AlertRule] = Field(
        default_factory=list,
        description="Alert rules ([[alerts.rules]] tables; more can be added through the API).",
    )
    mqtt: MqttSettings = Field(
        default_factory=MqttSettings, description="MQTT publishing of alert events (optional)."
    )

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[AlertRule]) -> list[AlertRule]:
        ids = [r.id for r in rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"alert rule id {dup[0]!r} is declared twice")
        return rules


class MeterSimulatorSettings(Section):
    enabled: bool = Field(True, description="Run the simulated meter fleet in the ingest role.")
    count: int = Field(100, ge=0, le=1_000_000, description="Number of simulated meters.")
    interval_s: float = Field(
        5.0, gt=0, le=86_400, description="Seconds between readings of a meter."
    )
    id_prefix: str = Field(
        "sim-meter-", description="Meter ids are this prefix and a 5-digit number."
    )
    region: str = Field("CN", description="Grid region of the simulated meters.")
    mean_power_kw: float = Field(20.0, gt=0, description="Mean load of a simulated meter, kW.")
    seed: int = Field(0, description="Seed of the load profiles (same seed, same fleet).")
    demo_entities: bool = Field(
        True,
        description="Place the simulated meters in a demo hierarchy (city, districts, parks, "
        "enterprises) so roll-ups have something to show.",
    )


class ConnectorsSettings(Section):
    modbus: ModbusSettings = Field(
        default_factory=ModbusSettings, description="Modbus TCP polling of meter fleets."
    )
    meter_simulator: MeterSimulatorSettings = Field(
        default_factory=MeterSimulatorSettings, description="Simulated smart-meter fleet."
    )
    cems_simulator: CemsSimulatorSettings = Field(
        default_factory=CemsSimulatorSettings,
        description="Simulated CEMS stacks speaking HJ 212 to the hj212 server.",
    )


class Config(Section):
    storage: StorageSettings = Field(
        default_factory=StorageSettings, description="Where state lives."
    )
    journal: JournalSettings = Field(
        default_factory=JournalSettings, description="The durable journal."
    )
    recovery: RecoverySettings = Field(
        default_factory=RecoverySettings, description="Dataflow recovery."
    )
    flow: FlowSettings = Field(default_factory=FlowSettings, description="The Bytewax dataflow.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="The HTTP API.")
    products: ProductsSettings = Field(
        default_factory=ProductsSettings, description="Zarr products."
    )
    streams: StreamsSettings = Field(
        default_factory=StreamsSettings, description="Declared streams."
    )
    connectors: ConnectorsSettings = Field(
        default_factory=ConnectorsSettings, description="Inputs run by the ingest role."
    )
    entities: list[EntitySettings] = Field(
        default_factory=list, description="Declared entities ([[entities]] tables)."
    )
    rollups: RollupSettings = Field(default_factory=RollupSettings, description="Entity roll-ups.")
    alerts: AlertsSettings = Field(
        default_factory=AlertsSettings, description="Emission warnings and data-quality alerts."
    )
    ec: EcSettings = Field(
        default_factory=EcSettings, description="Eddy-covariance sites, inputs and products."
    )
    cems: CemsSettings = Field(
        default_factory=CemsSettings,
        description="CEMS: the HJ 212 server, the sites (stacks) with their rules, units and fuel "
        "meters, and the cems/* products.",
    )

    @model_validator(mode="after")
    def _entities_fit(self) -> Config:
        ids = [e.id for e in self.entities]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"entities: id {dup[0]!r} is declared twice")
        try:
            check_hierarchy({e.id: e.parent for e in self.entities})
        except EntityTreeError as exc:
            raise ValueError(f"entities: {exc}") from None
        for i, m in enumerate(self.streams.meters):
            if m.entity is not None and m.entity not in ids:
                raise ValueError(
                    f"streams.meters[{i}].entity: {m.entity!r} is not declared in [[entities]]"
                )
        return self

    @model_validator(mode="after")
    def _journal_keeps_open_ec_periods(self) -> Config:
        """A tower rebuilds its open averaging period from journal records after a restart
        (stream/ec_replay.py): the journal must keep them at least one period."""
        longest = max((s.period_s for s in self.ec.all_sites()), default=0.0)
        if self.journal.retention_s < longest:
            raise ValueError(
                f"journal.retention_s: {self.journal.retention_s:g} s is shorter than the longest "
                f"EC averaging period ({longest:g} s); a restarted flow rebuilds open periods "
                "from the journal"
            )
        return self

    @model_validator(mode="after")
    def _dau_sites_fit(self) -> Config:
        check_sites(self.cems.modbus, self.cems.sites)
        return self


class ConfigError(Exception):
    """A configuration that cannot be used. `problems` are 'source: key: reason' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Reads `path` (or $CARBONSTREAM_CONFIG, or nothing), applies env overrides, validates."""
    env = os.environ if environ is None else environ
    if path is None and env.get(ENV_CONFIG_FILE):
        path = Path(env[ENV_CONFIG_FILE])
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError([f"{path}: file not found"]) from None
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}: not UTF-8 text: {exc.reason}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: invalid TOML: {exc}"]) from None
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively
            raise ConfigError(
                [f"{path}: invalid TOML: arrays or tables nested too deeply"]
            ) from None
    overrides = _env_overrides(env)
    for keys, (_, value) in overrides.items():
        _set_path(data, keys, value)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, overrides)) from None


def _env_overrides(env: Mapping[str, str]) -> dict[tuple[str, ...], tuple[str, Any]]:
    """{key path: (variable name, parsed value)} for every CARBONSTREAM_<A>__<B>... variable."""
    out = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        keys = tuple(k.lower() for k in name[len(ENV_PREFIX) :].split("__"))
        out[keys] = (name, _parse_env_value(raw))
    return out


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw


def _set_path(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for k in keys[:-1]:
        child = node.get(k)
        if not isinstance(child, dict):
            child = {}
            node[k] = child
        node = child
    node[keys[-1]] = value


def _describe(
    exc: ValidationError, source: str, overrides: Mapping[tuple[str, ...], tuple[str, Any]]
) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(x) for x in err["loc"])
        key = _format_loc(err["loc"])
        origin = source
        for keys, (var, _) in overrides.items():
            if loc[: len(keys)] == keys:
                origin = f"environment variable {var}"
        msg = err["msg"]
        if not loc and msg.startswith("Value error, "):
            # Checks across sections name their own keys (e.g. streams.meters[3].entity).
            problems.append(f"{origin}: {msg.removeprefix('Value error, ')}")
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not an option of this section)"
        elif isinstance(err.get("input"), str | int | float | bool):
            msg = f"{msg} (got {err['input']!r})"
        problems.append(f"{origin}: {key}: {msg}")
    return problems


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def reference_markdown() -> str:
    """Every option with its type, default and description (docs/configuration.md)."""
    lines = [
        "# carbonstream configuration reference",
        "",
        "Generated by `carbonstream config reference`; do not edit by hand.",
        "Any key can be overridden by the environment: `CARBONSTREAM_<SECTION>__<KEY>`, e.g. "
        "`CARBONSTREAM_API__PORT=8001`.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str) -> None:
        rows = []
        nested = []
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                nested.append((name, ann))
                continue
            origin_list = getattr(ann, "__origin__", None) is list
            inner = getattr(ann, "__args__", (None,))[0]
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                # A list of tables ([[x]]) or an optional table.
                nested.append((name + ("[]" if origin_list else ""), inner))
                continue
            default = (
                "(required)"
                if field.is_required()
                else _show_default(field.get_default(call_default_factory=True))
            )
            type_name = (
                re.sub(r"typing\.|pathlib\.|datetime\.", "", str(ann))
                .replace("<class '", "")
                .replace("'>", "")
            )
            rows.append(f"| `{name}` | `{type_name}` | `{default}` | {field.description or ''} |")
        if rows:
            lines.extend(
                [
                    f"## [{prefix}]" if prefix else "## (top level)",
                    "",
                    "| key | type | default | description |",
                    "|---|---|---|---|",
                    *rows,
                    "",
                ]
            )
        for name, sub in nested:
            walk(sub, f"{prefix}.{name}" if prefix else name)

    walk(Config, "")
    return "\n".join(lines)


def _show_default(v: Any) -> str:
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, Path):
        return str(v)
    return repr(v) if isinstance(v, str) else str(v).replace("None", "none")
