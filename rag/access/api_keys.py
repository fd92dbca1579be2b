"""API keys: created once and shown once, stored as their SHA-256, scoped to collections.

Keys carry 256 bits of randomness, so a plain SHA-256 (not a slow password
hash) is the right digest: it cannot be brute-forced and costs nothing per request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from rag.collections.names import validate_collection_name
from rag.storage import database
from rag.storage.models import ApiKey, utcnow

KEY_PREFIX = "rag_"
SHOWN_PREFIX_CHARS = 12


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: an admin sees every collection, any other key only its own."""

    key_id: int | None
    name: str
    admin: bool
    collections: frozenset[str]

    @classmethod
    def unrestricted(cls) -> Principal:
        """Used when authentication is turned off (a trusted single-user setup)."""
        return cls(key_id=None, name="anonymous", admin=True, collections=frozenset())

    def can_see(self, collection: str) -> bool:
        return self.admin or collection in self.collections

    def visible(self, collections: Iterable[str]) -> list[str]:
        return [name for name in collections if self.can_see(name)]


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    admin: bool
    collections: list[str]
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class CreatedKey:
    info: KeyInfo
    key: str  # shown once; only its hash is stored


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        admin=row.admin,
        collections=list(row.collections),
        created_at=row.created_at.isoformat(),
        revoked_at=row.revoked_at.isoformat() if row.revoked_at else None,
    )


class ApiKeyStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def create(self, name: str, collections: Sequence[str], admin: bool = False) -> CreatedKey:
        names = sorted({validate_collection_name(c.strip()) for c in collections if c.strip()})
        if not admin and not names:
            raise ValueError("a key that is not --admin needs at least one collection")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            name=name,
            prefix=key[:SHOWN_PREFIX_CHARS],
            key_hash=hash_key(key),
            admin=admin,
            collections=names,
        )
        with database.session_scope(self.sessions) as session:
            session.add(row)
            session.flush()
            return CreatedKey(_info(row), key)

    def list(self) -> list[KeyInfo]:
        with database.session_scope(self.sessions) as session:
            return [_info(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    def revoke(self, key_id_or_prefix: str) -> KeyInfo | None:
        """Revoke by id or by the prefix shown in the listing; None when nothing matches."""
        with database.session_scope(self.sessions) as session:
            query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
            if key_id_or_prefix.isdigit():
                query = query.where(ApiKey.id == int(key_id_or_prefix))
            else:
                query = query.where(ApiKey.prefix == key_id_or_prefix)
            row = session.scalar(query)
            if row is None:
                return None
            row.revoked_at = utcnow()
            session.flush()
            return _info(row)

    def count(self) -> int:
        with database.session_scope(self.sessions) as session:
            return int(session.scalar(select(func.count(ApiKey.id))) or 0)

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or None for an unknown or revoked key."""
        with database.session_scope(self.sessions) as session:
            row = session.scalar(
                select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
            )
            if row is None:
                return None
            return Principal(row.id, row.name, row.admin, frozenset(row.collections))
