"""Log lines every process writes the same way, tagged with its role."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(role: str) -> None:
    level = os.environ.get("CARBONSTREAM_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)-7s [{role}] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
