"""`carbonstream bench capacity`: the largest fleet the service keeps real-time on this machine.

    carbonstream bench capacity                                 # every kind, then the mixed fleet
    carbonstream bench capacity --kinds cems --measure-s 60 --out capacity.md

Per kind (EC towers at 20 Hz, CEMS stacks at 1 Hz over HJ 212, meters at 1 min over Modbus and
push) it doubles the fleet from --start while each step stays real-time, then bisects, each kind
within --budget-s; then it runs the mixed fleet once. Every step is a fresh `carbonstream run`
measured in wall-clock time (see carbonstream/bench/capacity.py for what "real-time" means).
"""

from __future__ import annotations

import argparse
from typing import Any

KINDS = ("ec", "cems", "meters")
START = {"ec": 128, "cems": 128, "meters": 8_000}
LARGEST = {"ec": 8_192, "cems": 8_192, "meters": 400_000}


def _sizes(text: str, default: dict[str, int]) -> dict[str, int]:
    out = dict(default)
    for part in filter(None, text.split(",")):
        kind, _, n = part.partition("=")
        if kind not in KINDS or not n.isdigit() or int(n) < 1:
            raise argparse.ArgumentTypeError(f"expected kind=N with kind in {KINDS}: {part!r}")
        out[kind] = int(n)
    return out


def _mixed(text: str) -> tuple[int, int, int] | None:
    if text == "none":
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError("expected TOWERS,STACKS,METERS or 'none'")
    return int(parts[0]), int(parts[1]), int(parts[2])


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks that need the running service")
    b_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    p = b_sub.add_parser(
        "capacity",
        help="largest fleet that stays real-time, per kind and mixed; prints a Markdown table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kinds", default=",".join(KINDS), help="comma separated: ec, cems, meters")
    p.add_argument(
        "--start",
        type=lambda s: _sizes(s, START),
        default=START,
        metavar="KIND=N,...",
        help=f"first size tried (default {START})",
    )
    p.add_argument(
        "--max",
        type=lambda s: _sizes(s, LARGEST),
        default=LARGEST,
        metavar="KIND=N,...",
        help=f"largest size tried (default {LARGEST})",
    )
    p.add_argument(
        "--mixed",
        type=_mixed,
        default=(500, 500, 20_000),
        metavar="TOWERS,STACKS,METERS",
        help="mixed fleet run once ('none': skip)",
    )
    p.add_argument("--warmup-s", type=float, default=45.0, help="start-up burst left out")
    p.add_argument("--measure-s", type=float, default=90.0, help="measured window of a step")
    p.add_argument("--budget-s", type=float, default=1_800.0, help="time budget of each kind")
    p.add_argument(
        "--ec-averaging-min",
        type=float,
        default=2.0,
        help="averaging period of the simulated towers (2: the kernel runs within "
        "every step; real sites use 30)",
    )
    p.add_argument(
        "--modbus-share",
        type=float,
        default=0.5,
        help="fraction of the meters polled over Modbus (the rest push over HTTP)",
    )
    p.add_argument(
        "--durability",
        choices=("fsync", "os"),
        default="fsync",
        help="journal durability of the service (fsync: the default and what is claimed)",
    )
    p.add_argument("--workdir", default=None, help="where steps run (default: a temporary dir)")
    p.add_argument("--out", default=None, help="also write the Markdown here")
    p.set_defaults(handler=_capacity)


def _capacity(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys
    import tempfile
    from pathlib import Path

    from carbonstream.bench.capacity import StepResult, StepSettings, measured_window_s, run_step
    from carbonstream.bench.fleet import Fleet
    from carbonstream.bench.report import machine, summary, table
    from carbonstream.bench.search import largest_realtime

    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    # The alert probe's clock starts a day back and moves 1 min per push: at most ~1,400 pushes.
    if (
        unknown
        or not 0 <= args.modbus_share <= 1
        or not 10 <= args.measure_s <= 600
        or not 0 <= args.warmup_s <= 120
    ):
        print(
            "carbonstream bench capacity: kinds are ec, cems, meters; --modbus-share in "
            "[0, 1]; --measure-s in [10, 600]; --warmup-s in [0, 120]",
            file=sys.stderr,
        )
        return 2
    settings = StepSettings(
        warmup_s=args.warmup_s,
        measure_s=args.measure_s,
        ec_averaging_min=args.ec_averaging_min,
        durability=args.durability,
    )
    root = Path(args.workdir or tempfile.mkdtemp(prefix="carbonstream-capacity-"))
    all_steps: list[StepResult] = []
    counter = iter(range(1_000_000))

    def run(fleet: Fleet) -> StepResult:
        print(f"# step: {fleet.label()} ...", file=sys.stderr, flush=True)
        r = run_step(fleet, settings, root / f"step-{next(counter):03d}")
        print(
            f"#   {'real-time' if r.realtime else 'not real-time'}: rows/s "
            f"{r.rates.get('samples', 0):,.0f}, service CPU {r.service_cpu:.0f} %, lag max "
            f"{r.lag_max:.1f} s, alert {r.alert} {'; '.join(r.reasons)}",
            file=sys.stderr,
            flush=True,
        )
        all_steps.append(r)
        return r

    share = args.modbus_share
    makers = {
        "ec": lambda n: Fleet(towers=n),
        "cems": lambda n: Fleet(stacks=n),
        "meters": lambda n: Fleet(meters=n, modbus_share=share),
    }
    found: dict[str, int | None] = {}
    for kind in kinds:
        found[kind], _ = largest_realtime(
            makers[kind], run, args.start[kind], args.max[kind], args.budget_s
        )
    mixed = None
    if args.mixed is not None:
        t, s, m = args.mixed
        mixed = run(Fleet(towers=t, stacks=s, meters=m, modbus_share=share))
    with_meters = measured_window_s(Fleet(meters=1), settings.measure_s)
    text = (
        f"Machine: {machine()}. Steps: {settings.warmup_s:.0f} s warm-up, "
        f"{settings.measure_s:.0f} s measured ({with_meters:.0f} s, whole minutes, when the "
        "fleet has meters), "
        f"EC averaging {settings.ec_averaging_min:g} min, "
        f"journal durability {settings.durability}.\n\n"
        f"{table(all_steps)}\n\n{summary(found, mixed)}\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    steps = [dataclasses.asdict(r) | {"fleet": dataclasses.asdict(r.fleet)} for r in all_steps]
    (root / "steps.json").write_text(json.dumps(steps, indent=1))
    print(f"# every step's measurements: {root / 'steps.json'}", file=sys.stderr)
    return 0
