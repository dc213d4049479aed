# Types of the compiled module built from core-rs/src/python/ (see there for the behaviour).
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

class CoreError(ValueError): ...
class InputError(CoreError): ...
class StateError(CoreError): ...

class meters:  # the `meters` submodule
    @staticmethod
    def grouped_nansum(
        values: npt.NDArray[np.float64], group_of_row: npt.NDArray[np.uint32], groups: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32]]: ...
    class IntervalIntegrator:
        def __init__(
            self, origin_ns: int, step_ns: int, max_gap_ns: int, rollover: float | None = None
        ) -> None: ...
        @staticmethod
        def restore(
            snapshot: bytes,
            origin_ns: int,
            step_ns: int,
            max_gap_ns: int,
            rollover: float | None = None,
        ) -> meters.IntervalIntegrator: ...
        def integrate(
            self,
            stream: npt.NDArray[np.uint32],
            seq: npt.NDArray[np.uint32],
            t_ns: npt.NDArray[np.int64],
            value: npt.NDArray[np.float64],
            factor: npt.NDArray[np.float64],
        ) -> tuple[
            tuple[
                npt.NDArray[np.uint32],
                npt.NDArray[np.int64],
                npt.NDArray[np.float64],
                npt.NDArray[np.float64],
                npt.NDArray[np.float32],
                npt.NDArray[np.float64],
                npt.NDArray[np.bool_],
            ],
            npt.NDArray[np.uint8],
        ]: ...
        def snapshot(self) -> bytes: ...
        def __len__(self) -> int: ...

class timestamps:  # the `timestamps` submodule
    @staticmethod
    def parse_iso8601(
        buffer: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...

class ec:  # the `ec` submodule
    class EcProcessor:
        """One measurement system: its kernel configuration and a reusable workspace."""

        def __init__(self, config: dict[str, object]) -> None: ...
        @property
        def expected_samples(self) -> int: ...
        def process(
            self, columns: dict[str, npt.NDArray[np.float32]]
        ) -> tuple[dict[str, float], list[str]]: ...

class _Extracted(TypedDict):
    cn: npt.NDArray[np.uint16]
    pno: npt.NDArray[np.uint16]
    t_ms: npt.NDArray[np.int64]
    status: npt.NDArray[np.uint8]
    fingerprint: npt.NDArray[np.uint64]
    rtd: npt.NDArray[np.float64]
    avg: npt.NDArray[np.float64]
    cou: npt.NDArray[np.float64]
    flag: npt.NDArray[np.uint8]
    messages: dict[int, str]
    warnings: dict[int, str]

class hj212:  # the `hj212` submodule
    @staticmethod
    def crc16(data: bytes) -> int: ...
    @staticmethod
    def encode_frame(segment: str) -> bytes: ...
    @staticmethod
    def decode(frame: bytes) -> dict[str, Any]: ...
    @staticmethod
    def answer(frame: bytes, cn: int, st: int = 91, rtn: int = 1) -> bytes: ...
    @staticmethod
    def extract(frames: list[bytes], codes: list[str], utc_offset_minutes: int) -> _Extracted: ...
    @staticmethod
    def decode_count(frames: list[bytes], repeat: int) -> int: ...
    class StreamDecoder:
        def __init__(self) -> None: ...
        def feed(self, data: bytes) -> list[tuple[Any, ...]]: ...
        def pending(self) -> tuple[int, int | None] | None: ...
        def abandon(self) -> tuple[str, str, int] | None: ...
        @property
        def buffered(self) -> int: ...
        @property
        def capacity(self) -> int: ...
        def stats(self) -> dict[str, int]: ...

_Outputs = dict[str, dict[str, npt.NDArray[Any]]]
"""minutes / hours / resolved / days -> column name -> array (see core-rs/src/python/cems.rs)."""

class cems:  # the `cems` submodule
    RULES: dict[int, str]
    RULE_PENDING: int
    Q_FLATLINE: int
    Q_JUMP: int
    Q_CALIBRATION: int
    Q_REPEATED: int
    DEFAULT_AGREEMENT_THRESHOLD: float
    CO2_PER_C: float
    CO2_DENSITY_KG_M3: float
    @staticmethod
    def mass_factor(
        unit: str, molar_mass_g_mol: float | None = None, density_kg_m3: float | None = None
    ) -> float: ...
    @staticmethod
    def fuel_co2_t_per_unit(
        ncv_gj_per_unit: float, carbon_t_per_tj: float, oxidation: float
    ) -> float: ...
    @staticmethod
    def accounting_co2_t(uses: list[tuple[float, float, float, float]]) -> float: ...
    @staticmethod
    def compare(
        monitored_t: float, accounted_t: float, threshold: float = 0.1
    ) -> tuple[float, bool]: ...
    class StackSpec:
        def __init__(
            self,
            mass_factor: list[float],
            *,
            policy: str = "hj75",
            rules: dict[str, float] | None = None,
            upper_limit: list[float] | None = None,
            max_potential: list[float] | None = None,
            flow_source: str = "dry_standard",
            flow_scale: float = 3600.0,
            flow_upper_limit: float | None = None,
            atmospheric_kpa: float = 101.325,
            area_m2: float = ...,
            k_v: float = 1.0,
            conditions: tuple[int, int, int, int] = (-1, -1, -1, -1),
            utc_offset_minutes: int = 480,
            min_valid_samples: int = 1,
            flatline_minutes: int = 30,
            repeat_packets: int = 5,
            flatline_tolerance: list[float] | None = None,
            max_step_abs: list[float] | None = None,
            max_step_rel: list[float] | None = None,
        ) -> None: ...
        @property
        def channels(self) -> int: ...

    class StackPipeline:
        def __init__(self, spec: cems.StackSpec) -> None: ...
        @staticmethod
        def restore(spec: cems.StackSpec, snapshot: bytes) -> cems.StackPipeline: ...
        def push_samples(
            self,
            t_ms: npt.NDArray[np.int64],
            flow: npt.NDArray[np.float64],
            flow_flag: npt.NDArray[np.uint8],
            values: npt.NDArray[np.float64],
            flags: npt.NDArray[np.uint8],
            fingerprint: npt.NDArray[np.uint64],
        ) -> tuple[npt.NDArray[np.uint8], dict[int, str], _Outputs]: ...
        def push_minutes(
            self,
            minute: npt.NDArray[np.int64],
            flow: npt.NDArray[np.float64],
            flow_flag: npt.NDArray[np.uint8],
            values: npt.NDArray[np.float64],
            flags: npt.NDArray[np.uint8],
        ) -> tuple[npt.NDArray[np.uint8], dict[int, str], _Outputs]: ...
        def close_until(self, t_ms: int) -> _Outputs: ...
        def totals(self) -> list[dict[str, Any]]: ...
        @property
        def held_hours(self) -> int: ...
        def snapshot(self) -> bytes: ...
