"""API keys: long random tokens with a recognisable prefix (``irk_``), stored only as an Argon2
hash. A desk key acts for one desk; an admin key for every desk and for the keys themselves.

A token is ``irk_<id>_<secret>``: the id finds the row without a scan; the secret is checked
against the hash once per process, then against a SHA-256 digest kept in memory, so a request
costs no Argon2 time after the first. Revocation is read from the database on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import sessionmaker

from .tables import ApiKeyRow, utcnow

PREFIX = "irk_"
_ID_HEX = 12
_TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most this often


class KeyProblem(ValueError):
    """A key that cannot be created or changed as asked."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    desk: str | None
    is_admin: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            row.id,
            row.name,
            row.desk,
            bool(row.is_admin),
            row.created_at,
            row.last_used_at,
            row.revoked_at,
        )

    @property
    def scope(self) -> str:
        return "admin" if self.is_admin else f"desk:{self.desk}"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id inside a token of ours, or None for anything else."""
    if not token.startswith(PREFIX) or len(token) < len(PREFIX) + _ID_HEX + 2:
        return None
    key_id, separator = token[len(PREFIX) : len(PREFIX) + _ID_HEX], token[len(PREFIX) + _ID_HEX]
    if separator != "_" or any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._hasher = PasswordHasher()
        self._verified: dict[str, str] = {}  # key id -> digest of the token that verified
        self._lock = threading.Lock()

    def create(self, name: str, desk: str | None = None, admin: bool = False) -> tuple[ApiKey, str]:
        """A new key and its token; the token is shown this once and never stored."""
        name = name.strip()
        if not name:
            raise KeyProblem("a key needs a name (who or what uses it)")
        if admin == (desk is not None):
            raise KeyProblem("a key is either for one desk (--desk) or an admin key (--admin)")
        key_id = secrets.token_hex(_ID_HEX // 2)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        row = ApiKeyRow(
            id=key_id,
            name=name[:100],
            desk=desk,
            is_admin=admin,
            secret_hash=self._hasher.hash(token),
            created_at=utcnow(),
        )
        with self._sessions.begin() as session:
            session.add(row)
        return ApiKey.of(row), token

    def list(self) -> list[ApiKey]:
        with self._sessions.begin() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)).all()
            return [ApiKey.of(row) for row in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            return ApiKey.of(row) if row is not None else None

    def revoke(self, key_id: str) -> ApiKey:
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise KeyProblem(f"no key {key_id[:32]!r} (`keys list` shows the ids)")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
            return ApiKey.of(row)

    def has_admin(self) -> bool:
        with self._sessions.begin() as session:
            return (
                session.scalar(
                    select(ApiKeyRow.id).where(
                        ApiKeyRow.is_admin.is_(True), ApiKeyRow.revoked_at.is_(None)
                    )
                )
                is not None
            )

    def active(self, key_id: str) -> ApiKey | None:
        """The key with this id while it is not revoked (a signed-in page re-checks this)."""
        key = self.get(key_id)
        return key if key is not None and key.revoked_at is None else None

    def authenticate(self, token: str) -> ApiKey | None:
        """The key a token belongs to, or None: unknown, wrong secret or revoked."""
        key_id = key_id_of(token)
        if key_id is None:
            return None
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            digest = _digest(token)
            known = self._verified.get(key_id)
            if known is None or not hmac.compare_digest(known, digest):
                try:
                    self._hasher.verify(row.secret_hash, token)
                except (VerificationError, InvalidHashError):
                    return None
                with self._lock:
                    self._verified[key_id] = digest
            now = utcnow()
            if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
                session.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=now)
                )
                row.last_used_at = now
            return ApiKey.of(row)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created so, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)


def bootstrap_admin(keys: KeyStore, path: Path) -> Path | None:
    """On a first start (no admin key): create one and write it to ``path``, owner-only.
    Returns the path when it did."""
    if keys.has_admin():
        return None
    _, token = keys.create("admin (first start)", admin=True)
    write_private(path, token + "\n")
    return path
