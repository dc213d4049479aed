"""Markdown table of a pytest-benchmark JSON file: each measured function beside the reference
of its group (a test named test_*reference* or test_naive_*), and the ratio of their medians.

    python -m benchmarks.kernel_table results/kernels.json > results/kernels.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from carbonstream.bench.report import machine


def _is_reference(name: str) -> bool:
    """test_*reference*, or test_naive_* (a test comparing against a naive run is not one)."""
    return "reference" in name or name.startswith("test_naive")


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _note(b: dict[str, Any]) -> str:
    """What a row's median alone does not say: the alert latencies, or the rates of a
    time-boxed run (one round of a fixed duration, whose median is that duration)."""
    extra = b.get("extra_info") or {}
    if extra.get("ack_to_event_p99_s") is not None:
        return (
            f" (ack->event p50 {1000 * extra['ack_to_event_p50_s']:.0f} ms, "
            f"p99 {1000 * extra['ack_to_event_p99_s']:.0f} ms)"
        )
    if b["stats"]["rounds"] == 1:
        rates = [
            f"{k} {v:,.4g}"
            for k, v in extra.items()
            if isinstance(v, int | float) and (k.endswith("_per_s") or "ratio" in k)
        ][:3]
        return f" (time-boxed run{': ' + ', '.join(rates) if rates else ''})"
    return ""


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
        ref = refs[0]["stats"] if refs else None
        for b in items:
            if _is_reference(b["name"]):
                continue
            median = b["stats"]["median"]
            # A ratio of medians means something only between repeated timings of the same
            # work; time-boxed runs (one round each) report their rates instead.
            comparable = ref is not None and ref["rounds"] > 1 and b["stats"]["rounds"] > 1
            ratio = f"{ref['median'] / median:.1f}x" if comparable and ref else "-"
            lines.append(
                f"| {group} | {b['name']}{_note(b)} | {_fmt(median)} | "
                f"{'-' if ref is None else _fmt(ref['median'])} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    report = json.loads(Path(argv[0]).read_text())
    info = report.get("machine_info", {})
    print(
        f"Machine: {machine()}; Python {info.get('python_version', '?')}; "
        f"run {report.get('datetime', '')[:16]} UTC\n"
    )
    print(table(report))


if __name__ == "__main__":
    main(sys.argv[1:])
