"""The platform's SQL database: one SQLAlchemy engine per URL, SQLite by default, PostgreSQL on a cluster.

Tenants, API keys, video and fine-tuning jobs, files, usage, audit records and rate windows live
here. The ingress and every generator replica write to it from separate processes, so SQLite runs
in WAL mode with a busy timeout: writers wait for each other instead of failing with "database is
locked". The schema is alembic's (`stores/migrations`): the first engine a process opens for a URL
brings that database up to date, so every way of starting the platform migrates it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, MappedAsDataclass, sessionmaker

from reelforge.platform.stores.migrations import upgrade

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class Base(MappedAsDataclass, DeclarativeBase, kw_only=True):
    """Declarative base of every platform table: each row class is also the dataclass callers receive.

    Sessions do not expire objects on commit, so a row read in a closed session stays readable,
    and a table's fields are written once, in its row class.
    """


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_platform_engine(url: str) -> Engine:
    """A new engine for `url`, configured for concurrent writers, without touching the schema."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(url, pool_pre_ping=True)


def engine_for(url: str) -> Engine:
    """The process-wide engine for `url`, its database migrated to this code's schema."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_platform_engine(url)
            upgrade(engine)
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
