"""`carbonstream ec process FILE... --metadata META [--period MIN] --out OUT.csv`

Processes raw eddy-covariance files (Campbell TOA5 or ICOS CSV) with the settings of an EddyPro
`.metadata` or ICOS `*_ecmd.csv` file and writes the FLUXNET half-hour table (TIMESTAMP_START,
TIMESTAMP_END as YYYYMMDDHHMM, -9999 for missing). Rows and cells that cannot be read are counted
by reason on stderr; a file that cannot be read at all is reported and skipped (exit status 1),
the others are still processed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    ec = sub.add_parser("ec", help="eddy-covariance tools")
    ec_sub = ec.add_subparsers(dest="ec_action", required=True, metavar="ACTION")
    p = ec_sub.add_parser(
        "process",
        help="raw TOA5/ICOS files -> FLUXNET table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="raw data files")
    p.add_argument(
        "--metadata",
        required=True,
        type=Path,
        metavar="META",
        help="EddyPro .metadata or ICOS *_ecmd.csv",
    )
    p.add_argument("--period", type=float, metavar="MIN", help="averaging period, minutes")
    p.add_argument("--out", required=True, type=Path, metavar="OUT.csv", help="FLUXNET CSV")
    p.add_argument(
        "--planar-fit", type=Path, metavar="FILE", help="EddyPro planar_fit.txt (planar fit)"
    )
    p.add_argument(
        "--spectral-assessment",
        type=Path,
        metavar="FILE",
        help="EddyPro spectral_assessment.txt (Ibrom et al. 2007 in-situ correction)",
    )
    p.add_argument(
        "--random-uncertainty", action="store_true", help="Finkelstein & Sims (2001) random error"
    )
    p.set_defaults(handler=_process)


def _process(args: argparse.Namespace) -> int:
    from connectors.ec.processing import ProcessError, process_files

    try:
        result = process_files(
            args.files,
            args.metadata,
            period_min=args.period,
            planar_fit=args.planar_fit,
            spectral_assessment=args.spectral_assessment,
            random_uncertainty=args.random_uncertainty,
        )
    except ProcessError as exc:
        print(f"carbonstream ec process: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(result.fluxnet_csv())
    for line in result.report():
        print(line, file=sys.stderr)
    return 1 if result.refused_files else 0
