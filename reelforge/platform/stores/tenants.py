"""Tenants and their API keys: keys are shown once and stored only as SHA-256 hashes.

A key looks like `rf-<tenant>-<43 random url-safe characters>`. It carries 256 bits of entropy,
so a fast hash is safe to store (a slow password hash buys nothing against a random key and would
cost every request). Lookup is by hash; the tenant name in the key is only for humans.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import Float, ForeignKey, Integer, String, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, relationship

from reelforge.errors import AuthenticationError, NotFoundError, UserInputError
from reelforge.jobs.ingest import TENANT_PATTERN
from reelforge.platform.stores.database import Base, session_factory

KEY_PREFIX = "rf-"


class ApiKey(Base):
    """One API key of a tenant, stored as its hash; `display` is what listings show."""

    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63), ForeignKey("tenants.name"), index=True)
    display: Mapped[str] = mapped_column(String(80))  # prefix + last 4 characters, for listings
    created_at: Mapped[float] = mapped_column(Float, default_factory=time.time)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)


class Tenant(Base):
    """A tenant with its quotas (None: the serve config's default applies) and its active keys."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, default_factory=time.time)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    concurrent_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    # Loaded with the tenant, so a tenant read in a closed session still lists its keys.
    keys: Mapped[list[ApiKey]] = relationship(
        primaryjoin=lambda: and_(Tenant.name == ApiKey.tenant, ApiKey.revoked_at.is_(None)),
        order_by=lambda: ApiKey.created_at,
        viewonly=True,
        lazy="selectin",
        init=False,
        repr=False,
    )

    @property
    def active_keys(self) -> tuple[str, ...]:
        """The displays of the tenant's keys that still work."""
        return tuple(k.display for k in self.keys)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def masked_key(key: str, tenant: str) -> str:
    """How `tenant`'s key is shown in listings and audit records: `rf-acme-...Ulg4`.

    The tenant is passed, not parsed: both tenant names and the random part may contain '-'.
    """
    return f"{KEY_PREFIX}{tenant}-...{key[-4:]}"


def _new_key(tenant: str) -> tuple[str, str]:
    key = f"{KEY_PREFIX}{tenant}-{secrets.token_urlsafe(32)}"
    return key, masked_key(key, tenant)


class TenantStore:
    """Create, list, re-key and authenticate tenants in the platform database."""

    def __init__(self, database_url: str) -> None:
        self._session = session_factory(database_url)

    def create(
        self, name: str, requests_per_minute: int | None = None, concurrent_jobs: int | None = None
    ) -> tuple[Tenant, str]:
        """Add a tenant and its first key; returns the key in clear (the only time it is shown)."""
        if not TENANT_PATTERN.match(name):
            raise UserInputError(
                f"tenant name {name!r} must be 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
            )
        for label, value in (("requests_per_minute", requests_per_minute), ("concurrent_jobs", concurrent_jobs)):
            if value is not None and value < 1:
                raise UserInputError(f"{label} must be at least 1, got {value}")
        key, display = _new_key(name)
        now = time.time()
        try:
            with self._session.begin() as session:
                session.add(
                    Tenant(
                        name=name,
                        created_at=now,
                        requests_per_minute=requests_per_minute,
                        concurrent_jobs=concurrent_jobs,
                    )
                )
                session.flush()
                session.add(ApiKey(key_hash=hash_key(key), tenant=name, display=display, created_at=now))
        except IntegrityError as exc:
            raise UserInputError(
                f"tenant {name!r} already exists; use `reelforge tenants rotate-key {name}` for a new key"
            ) from exc
        return self.get(name), key

    def get(self, name: str) -> Tenant:
        """One tenant with its active key displays; NotFoundError if absent."""
        with self._session() as session:
            tenant = session.get(Tenant, name)
            if tenant is None:
                raise NotFoundError(f"no tenant named {name!r}")
            return tenant

    def list(self) -> list[Tenant]:
        """Every tenant, by name."""
        with self._session() as session:
            return list(session.scalars(select(Tenant).order_by(Tenant.name)).all())

    def rotate_key(self, name: str, keep_old: bool = False) -> str:
        """Issue a new key; the old ones stop working unless `keep_old` (for a hand-over period)."""
        self.get(name)
        key, display = _new_key(name)
        now = time.time()
        with self._session.begin() as session:
            if not keep_old:
                session.execute(
                    update(ApiKey).where(ApiKey.tenant == name, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
                )
            session.add(ApiKey(key_hash=hash_key(key), tenant=name, display=display, created_at=now))
        return key

    def revoke_key(self, name: str, key: str | None = None) -> int:
        """Revoke one key (given in clear) or, with none given, every key of the tenant; returns how many."""
        self.get(name)
        statement = update(ApiKey).where(ApiKey.tenant == name, ApiKey.revoked_at.is_(None))
        if key is not None:
            statement = statement.where(ApiKey.key_hash == hash_key(key))
        with self._session.begin() as session:
            count = session.execute(statement.values(revoked_at=time.time())).rowcount
        if key is not None and count == 0:
            raise NotFoundError(f"that key is not an active key of tenant {name!r}")
        return count

    def authenticate(self, authorization: str | None) -> Tenant:
        """`Bearer <key>` -> its tenant; AuthenticationError says what was wrong."""
        if not authorization:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationError("malformed Authorization header: expected 'Bearer <key>'")
        with self._session() as session:
            row = session.get(ApiKey, hash_key(key))
            if row is None:
                raise AuthenticationError("incorrect API key provided")
            if row.revoked_at is not None:
                raise AuthenticationError("this API key has been revoked")
            tenant = row.tenant
        return self.get(tenant)
