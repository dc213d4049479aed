# Types of the compiled module built from core-rs/src/python/ (see there for the behaviour).
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
