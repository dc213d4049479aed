"""`carbonstream tokens create|list|revoke`: API tokens with scopes (read, ingest, admin).

carbonstream tokens create --name utility-x --scopes ingest     prints the token (once)
carbonstream tokens list
carbonstream tokens revoke ID
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    tokens = sub.add_parser("tokens", help="create, list or revoke API tokens")
    t_sub = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = t_sub.add_parser("create", help="create a token and print it (shown only once)")
    create.add_argument("--name", required=True, help="who or what uses it")
    create.add_argument("--scopes", required=True, help="comma separated: read, ingest, admin")
    ls = t_sub.add_parser("list", help="list tokens (never their secrets)")
    revoke = t_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    for p in (create, ls, revoke):
        p.add_argument("--config", type=Path, metavar="FILE")
        p.set_defaults(handler=_tokens)


def _tokens(args: argparse.Namespace) -> int:
    from carbonstream.cli import load_or_exit
    from storage.tokens import TokenError, TokenStore

    config = load_or_exit(args.config)
    config.storage.layout.create()
    store = TokenStore(config.storage.layout.metadata_db)
    try:
        if args.action == "create":
            try:
                print(store.create(args.name, args.scopes.split(",")))
            except TokenError as exc:
                print(f"carbonstream tokens create: {exc}", file=sys.stderr)
                return 2
        elif args.action == "list":
            for t in store.list():
                state = "revoked" if t.revoked else "active"
                print(f"{t.id}\t{t.name}\t{','.join(sorted(t.scopes))}\t{state}")
        elif not store.revoke(args.id):
            print(f"carbonstream tokens revoke: no active token {args.id!r}", file=sys.stderr)
            return 1
    finally:
        store.close()
    return 0
