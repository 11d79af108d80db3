"""The platform's SQL database: one SQLAlchemy engine per URL, SQLite by default, PostgreSQL on a cluster.

Tenants, API keys, video jobs and rate windows live here. The ingress and every generator replica
write to it from separate processes, so SQLite runs in WAL mode with a busy timeout: writers wait
for each other instead of failing with "database is locked".
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, sessionmaker

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class Base(DeclarativeBase):
    """Declarative base of every platform table."""


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def engine_for(url: str) -> Engine:
    """The process-wide engine for `url`, with every platform table created."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _configure_sqlite)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        # Import the table modules so their classes are registered on Base before create_all.
        from reelforge.platform import (  # noqa: F401
            audit_log,
            file_store,
            fine_tune_store,
            job_store,
            rate_limits,
            tenant_store,
            usage_meter,
        )
        from reelforge.provenance import watermark_registry  # noqa: F401

        Base.metadata.create_all(engine)
        audit_log.install_append_only_guards(engine)
        _engines[url] = engine
        return engine


def session_factory(url: str) -> sessionmaker:
    """A session maker bound to `url`'s engine; objects stay readable after commit."""
    return sessionmaker(engine_for(url), expire_on_commit=False)


def dispose_engine(url: str) -> None:
    """Close and forget `url`'s engine (before its database is dropped, or at shutdown)."""
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()
