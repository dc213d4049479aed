"""Where this process writes its Prometheus values (multiprocess mode).

Kept apart from `carbonstream.metrics` because prometheus_client reads the directory once, when it
is first imported: this must run before that import.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_metrics_dir(path: Path, wipe: bool) -> None:
    """Points this process (and the children it starts) at `path`; `wipe` at a fresh start."""
    if wipe and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(path)
