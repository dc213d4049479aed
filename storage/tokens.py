"""API tokens with scopes, stored hashed.

A token reads `cst_<id>_<secret>`: the id finds the row, the secret is checked against its
SHA-256 in constant time. Secrets are 32 random bytes, so a fast hash is enough (a slow
password hash protects low-entropy secrets, which these are not). The secret is shown once, when
the token is created, and never stored.

Scopes: `read` (queries, subscriptions), `ingest` (push endpoints), `admin` (configuration
changes: entities, meters, factor tables, alert rules); admin includes the other two.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from storage.database import DbLocation, open_db

Scope = Literal["read", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "ingest", "admin")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL,  -- SHA-256 of the secret
    scopes     TEXT    NOT NULL,  -- comma separated
    created_ns INTEGER NOT NULL,
    revoked_ns INTEGER
);
"""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    scopes: frozenset[str]
    created_ns: int
    revoked: bool

    def allows(self, scope: Scope) -> bool:
        return not self.revoked and (scope in self.scopes or "admin" in self.scopes)


_COLUMNS = "id, name, hash, scopes, created_ns, revoked_ns"


class TokenError(ValueError):
    pass


class TokenStore:
    def __init__(self, location: DbLocation) -> None:
        self._conn = open_db(location)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def create(self, name: str, scopes: Iterable[str]) -> str:
        """A new token; returns it (the only time its secret is seen)."""
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in SCOPES]
        if not wanted or unknown:
            raise TokenError(f"scopes must be some of {', '.join(SCOPES)}; got {wanted}")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_tokens (id, name, hash, scopes, created_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_id, name, _digest(secret), ",".join(wanted), time.time_ns()),
            )
        return f"cst_{token_id}_{secret}"

    def verify(self, token: str) -> TokenInfo | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "cst":
            return None
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?",
                (parts[1],),
            ).fetchone()
        if row is None or not hmac.compare_digest(bytes(row[2]), _digest(parts[2])):
            return None
        return _info(row)

    def list(self) -> list[TokenInfo]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_ns"
            ).fetchall()
        return [_info(r) for r in rows]

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE api_tokens SET revoked_ns = ? WHERE id = ? AND revoked_ns IS NULL",
                (time.time_ns(), token_id),
            )
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _info(row: tuple[object, ...]) -> TokenInfo:
    return TokenInfo(
        id=str(row[0]),
        name=str(row[1]),
        scopes=frozenset(str(row[3]).split(",")),
        created_ns=int(row[4]),  # type: ignore[call-overload]
        revoked=row[5] is not None,
    )
