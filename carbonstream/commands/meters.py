"""`carbonstream factors list|load` and `carbonstream meters report`.

carbonstream factors list                       versions of the emission-factor table
carbonstream factors load FILE --note TEXT      load a revised table as a new version
carbonstream meters report --entity ID --start ISO --end ISO [--resolution month|day]
                           [--factor-version N] [--out FILE.csv]
                                                a period's emissions, recomputed from stored
                                                consumption with a pinned factor version
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    factors = sub.add_parser("factors", help="list or load emission-factor table versions")
    f_sub = factors.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = f_sub.add_parser("list", help="list versions")
    load = f_sub.add_parser("load", help="load a CSV table as a new version")
    load.add_argument("file", type=Path)
    load.add_argument("--note", required=True, help="why this version exists (its source)")
    for p in (ls, load):
        p.add_argument("--config", type=Path, metavar="FILE")
        p.set_defaults(handler=_factors)

    meters = sub.add_parser("meters", help="meter accounting reports")
    m_sub = meters.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = m_sub.add_parser("report", help="emissions of a period with a pinned factor version")
    report.add_argument("--entity", required=True, help="entity id (all meters below it)")
    report.add_argument("--start", required=True, help="ISO 8601 with offset")
    report.add_argument("--end", required=True, help="ISO 8601 with offset")
    report.add_argument("--resolution", choices=["day", "month"], default="month")
    report.add_argument("--factor-version", type=int, help="default: the latest version")
    report.add_argument("--out", type=Path, help="CSV file (default: stdout)")
    report.add_argument("--config", type=Path, metavar="FILE")
    report.set_defaults(handler=_report)


def _factors(args: argparse.Namespace) -> int:
    from carbonstream.cli import load_or_exit
    from storage.factors import FactorTable, FactorTableError

    config = load_or_exit(args.config)
    config.storage.layout.create()
    table = FactorTable(config.storage.layout.metadata_db)
    table.ensure_seeded()
    if args.action == "list":
        for v in table.versions():
            print(f"{v.version}\t{v.created}\t{v.rows} factors\t{v.note}")
        return 0
    try:
        version = table.load(args.file.read_text(), args.note)
    except (OSError, FactorTableError) as exc:
        print(f"carbonstream factors load: {args.file}: {exc}", file=sys.stderr)
        return 1
    print(f"factor table version {version}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from datetime import datetime

    from carbonstream.cli import load_or_exit
    from storage.entities import EntityTree
    from storage.factors import FactorTable
    from storage.metadata import MetadataDB
    from stream.recompute import Recomputer

    config = load_or_exit(args.config)
    layout = config.storage.layout
    try:
        start, end = (datetime.fromisoformat(t) for t in (args.start, args.end))
    except ValueError as exc:
        print(f"carbonstream meters report: {exc}", file=sys.stderr)
        return 2
    if start.tzinfo is None or end.tzinfo is None:
        print("carbonstream meters report: --start/--end need a UTC offset", file=sys.stderr)
        return 2
    db = MetadataDB(layout.metadata_db)
    tree = EntityTree.load(db)
    if args.entity not in tree.nodes:
        print(f"carbonstream meters report: unknown entity {args.entity!r}", file=sys.stderr)
        return 2
    version = args.factor_version or FactorTable(layout.metadata_db).latest_version()
    recomputer = Recomputer(config)
    frame = recomputer.emissions(
        tree.meter_rows_below(args.entity),
        int(start.timestamp() * 1e9),
        int(end.timestamp() * 1e9),
        version,
        args.resolution,
    )
    if args.out:
        frame.write_csv(args.out)
    else:
        sys.stdout.write(frame.write_csv())
    return 0
