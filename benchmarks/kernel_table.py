"""Markdown table of a pytest-benchmark JSON file: each measured function beside the reference
of its group (a test named *reference* or *naive*), and the ratio of their medians.

    python -m benchmarks.kernel_table results/kernels.json > results/kernels.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REFERENCE_WORDS = ("reference", "naive")


def _is_reference(name: str) -> bool:
    return any(w in name for w in REFERENCE_WORDS)


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(report: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in report["benchmarks"]:
        groups.setdefault(b["group"] or b["fullname"], []).append(b)
    lines = [
        "| group | benchmark | median | reference median | ratio (reference / this) |",
        "|---|---|---:|---:|---:|",
    ]
    for group in sorted(groups):
        items = groups[group]
        refs = [b for b in items if _is_reference(b["name"])]
        ref = refs[0]["stats"]["median"] if refs else None
        for b in items:
            if _is_reference(b["name"]):
                continue
            median = b["stats"]["median"]
            extra = b.get("extra_info") or {}
            note = ""
            if "ack_to_event_p99_s" in extra and extra["ack_to_event_p99_s"] is not None:
                note = (
                    f" (ack->event p50 {1000 * extra['ack_to_event_p50_s']:.0f} ms, "
                    f"p99 {1000 * extra['ack_to_event_p99_s']:.0f} ms)"
                )
            lines.append(
                f"| {group} | {b['name']}{note} | {_fmt(median)} | "
                f"{'-' if ref is None else _fmt(ref)} | "
                f"{'-' if ref is None else f'{ref / median:.1f}x'} |"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    report = json.loads(Path(argv[0]).read_text())
    info = report.get("machine_info", {})
    print(
        f"Machine: {info.get('cpu', {}).get('count', '?')} CPUs "
        f"({info.get('cpu', {}).get('brand_raw', '?')}), Python {info.get('python_version', '?')}; "
        f"{report.get('datetime', '')}\n"
    )
    print(table(report))


if __name__ == "__main__":
    main(sys.argv[1:])
