"""Markdown of capacity results, and the machine they ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from carbonstream.bench.capacity import SERVICE_PROCESSES, StepResult


def machine() -> str:
    """`nproc`, CPU model and RAM, as the README quotes them."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        ram = "RAM unknown"
    return f"{os.cpu_count()} CPUs ({model}), {ram}, {platform.system()} {platform.release()}"


def _ms(x: object) -> str:
    return "-" if not isinstance(x, float) else f"{1000 * x:.0f}"


def table(steps: list[StepResult]) -> str:
    head = (
        "| towers (20 Hz) | stacks (1 Hz) | meters (1 min, Modbus/push) | rows/s | "
        "service CPU % | load-gen CPU % | service RSS MiB | lag max s | alert p50/p99 ms | "
        "real-time | why not |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---|"
    )
    lines = [head]
    for r in steps:
        f = r.fleet
        loadgen = sum(v for k, v in r.cpu_percent.items() if k not in SERVICE_PROCESSES)
        lines.append(
            f"| {f.towers:,} | {f.stacks:,} | {f.meters:,} ({f.modbus_meters:,}/{f.push_meters:,}) "
            f"| {r.rates.get('samples', 0.0):,.0f} | {r.service_cpu:.0f} | {loadgen:.0f} "
            f"| {r.service_rss / 2**20:,.0f} | {r.lag_max:.1f} "
            f"| {_ms(r.alert.get('p50_s'))}/{_ms(r.alert.get('p99_s'))} "
            f"| {'yes' if r.realtime else 'no'} | {'; '.join(r.reasons)} |"
        )
    return "\n".join(lines)


def summary(found: dict[str, int | None], mixed: StepResult | None) -> str:
    lines = []
    for kind, n in found.items():
        lines.append(f"- largest real-time {kind} fleet: {'none' if n is None else f'{n:,}'}")
    if mixed is not None:
        verdict = "real-time" if mixed.realtime else "NOT real-time"
        lines.append(f"- mixed fleet {mixed.fleet.label()}: {verdict}")
    return "\n".join(lines)
