"""The compiled Rust core: imported here and nowhere else (its types are in `_core.pyi`).

Callers use the submodules by the same name as the Rust module and the Python package:
`core.meters` <-> core-rs/src/meters <-> stream/meters.py, `core.ec` <-> core-rs/src/ec <->
stream/ec.py.
"""

from carbonstream import _core
from carbonstream._core import CoreError, InputError, StateError

meters = _core.meters
ec = _core.ec
timestamps = _core.timestamps

__all__ = ["CoreError", "InputError", "StateError", "ec", "meters", "timestamps"]
