"""The compiled Rust core: imported here and nowhere else (its types are in `_core.pyi`).

Callers use the submodules by the same name as the Rust module and the Python package:
`core.meters` <-> core-rs/src/meters <-> stream/meters.py; `core.ec` <-> core-rs/src/ec <->
stream/ec.py; `core.hj212` <-> core-rs/src/hj212 <-> connectors/hj212/; `core.cems` <->
core-rs/src/cems <-> stream/cems.py.
"""

from carbonstream import _core
from carbonstream._core import CoreError, InputError, StateError

meters = _core.meters
ec = _core.ec
hj212 = _core.hj212
cems = _core.cems
timestamps = _core.timestamps

__all__ = ["CoreError", "InputError", "StateError", "cems", "ec", "hj212", "meters", "timestamps"]
