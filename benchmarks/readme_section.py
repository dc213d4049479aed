"""Rewrites the README's "Benchmarks" tables from benchmarks/results/*.md (run by `make bench`),
so the numbers quoted are always the last run's, with the machine they ran on.

    python -m benchmarks.readme_section README.md benchmarks/results
"""

from __future__ import annotations

import sys
from pathlib import Path

START, END = "<!-- bench:results -->", "<!-- /bench:results -->"


def section(results: Path) -> str:
    parts = []
    for name, title in (("kernels.md", "Kernels"), ("capacity.md", "Capacity")):
        f = results / name
        if f.exists():
            parts.append(f"#### {title}\n\n{f.read_text().strip()}\n")
    return "\n".join(parts) or "(no results yet: run `make bench`)\n"


def rewrite(readme: Path, results: Path) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme}: markers {START} ... {END} not found")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{section(results)}{END}{tail}")


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]), Path(sys.argv[2]))
