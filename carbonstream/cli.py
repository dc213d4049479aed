"""The `carbonstream` command.

    carbonstream run [--config FILE]              all roles, supervised (what `make run` starts)
    carbonstream ingest|flow|api [--config FILE]  one role, for deployments that split them
    carbonstream config check|show|reference      validate, print the effective config, document it
    (feature commands: see FEATURE_COMMANDS)

Exit status: 0 success, 1 runtime failure, 2 configuration refused (printed without a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from carbonstream import __version__
from carbonstream.config import Config, ConfigError, load_config, reference_markdown
from carbonstream.logs import setup_logging
from carbonstream.metrics_dir import use_metrics_dir
from carbonstream.roles import ROLES

CONFIG_ERROR_EXIT = 2

FEATURE_COMMANDS: tuple[str, ...] = (
    "carbonstream.commands.meters",
    "carbonstream.commands.tokens",
    "connectors.ec.commands",
    "connectors.hj212.cli",
    "carbonstream.bench.command",
)
"""Modules adding their own subcommands: each has `register(subparsers)`, which adds a parser
with `set_defaults(handler=fn)`, fn(args) -> exit status. Such a module imports only argparse at
the top; the work it runs is imported inside the handler, so `carbonstream --help` stays fast."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carbonstream", description="Real-time carbon monitoring.")
    p.add_argument("--version", action="version", version=f"carbonstream {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            help="TOML configuration file (default: $CARBONSTREAM_CONFIG, else built-in defaults)",
        )
        return sp

    run = with_config(sub.add_parser("run", help="run ingest, flow and API under one supervisor"))
    run.add_argument(
        "--cluster",
        action="store_true",
        help="run the flow as this host's processes of [flow.cluster] (docs/cluster.md)",
    )
    for role in ROLES:
        sp = with_config(sub.add_parser(role, help=f"run only the {role} role"))
        if role == "flow":
            sp.add_argument(
                "--stop-at-end",
                action="store_true",
                help="process what the journal holds now (and the roll-ups it causes), then exit",
            )
            sp.add_argument(
                "--process-id",
                type=int,
                metavar="I",
                help="this process's place in [flow.cluster] addresses (0-based)",
            )
    cfg = sub.add_parser("config", help="check, show or document the configuration")
    cfg_sub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    with_config(
        cfg_sub.add_parser("check", help="validate and exit 0, or print problems and exit 2")
    )
    with_config(cfg_sub.add_parser("show", help="print the effective configuration as JSON"))
    cfg_sub.add_parser("reference", help="print every option as Markdown")
    for module in FEATURE_COMMANDS:
        importlib.import_module(module).register(sub)
    return p


def load_or_exit(path: Path | None) -> Config:
    """The configuration, or exit 2 with its problems printed (no traceback)."""
    return _load(path)


def _load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print("carbonstream: configuration refused:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_EXIT) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(args, "handler"):
        return int(args.handler(args))
    if args.command == "config":
        return _config_command(args)
    config = _load(args.config)
    layout = config.storage.layout
    # Before anything imports prometheus_client (see carbonstream.metrics_dir).
    use_metrics_dir(layout.metrics_dir, wipe=args.command == "run")
    setup_logging(args.command)
    if args.command == "run":
        from carbonstream.supervisor import supervise

        logging.getLogger(__name__).info(
            "carbonstream %s: data in %s, API on http://%s:%d",
            __version__,
            layout.data_dir,
            config.api.host,
            config.api.port,
        )
        if args.cluster:
            from carbonstream.supervisor import cluster_children

            if config.flow.cluster is None:
                print(
                    "carbonstream run --cluster: the configuration has no [flow.cluster] addresses",
                    file=sys.stderr,
                )
                return CONFIG_ERROR_EXIT
            return supervise(args.config, children=cluster_children(config.flow.cluster))
        return supervise(args.config)
    from carbonstream.roles import run_role

    try:
        return run_role(
            args.command,
            config,
            stop_at_end=getattr(args, "stop_at_end", False),
            process_id=getattr(args, "process_id", None),
        )
    except KeyboardInterrupt:
        return 0
    except _refusals() as exc:
        print(f"carbonstream {args.command}: {exc}", file=sys.stderr)
        return CONFIG_ERROR_EXIT


def _refusals() -> tuple[type[Exception], ...]:
    """Start-up errors that mean the configuration does not fit the data directory."""
    from bytewax.recovery import InconsistentPartitionsError

    from storage.journal import JournalConfigError
    from stream.cluster import ClusterError

    return (JournalConfigError, InconsistentPartitionsError, ClusterError)


def _config_command(args: argparse.Namespace) -> int:
    if args.action == "reference":
        print(reference_markdown())
        return 0
    config = _load(args.config)
    if args.action == "show":
        print(config.model_dump_json(indent=2))
    else:
        print(f"configuration OK ({args.config or 'built-in defaults'})")
    return 0
