"""Schema migrations of the platform database (alembic), run at platform start and by `reelforge db upgrade`.

The revision scripts in `versions/` are the schema's history; `env.py` hands alembic the caller's
connection. Migrating is safe from many processes at once: PostgreSQL takes an advisory lock for
the transaction and SQLite a file lock, so replicas starting together migrate exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from reelforge.errors import ReelforgeError

logger = logging.getLogger(__name__)
VERSION_TABLE = "reelforge_schema_version"  # not alembic_version: MLflow may share the database
BASELINE = "0001"  # the schema of databases made before migrations existed (by create_all)
_LOCK_KEY = 0x7265656C  # "reel": the advisory lock every reelforge process migrates under


class DatabaseSchemaError(ReelforgeError):
    """The database's schema is from a newer reelforge, or its migration history is unknown here."""

    code = "database_schema_mismatch"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None for an empty database (or one made before migrations)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """For a SQLite file: hold a lock file beside it until the migration has committed."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> str:
    """Bring the database to the head revision (a no-op when it is there); returns the revision."""
    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    # The lock outlives the transaction (SQLite) or ends with it (PostgreSQL): either way the next
    # process reads the revision only after this one's migration has committed.
    with _file_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        current = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
        if current == head:
            return head
        if current is not None and current not in {r.revision for r in script.walk_revisions()}:
            raise DatabaseSchemaError(
                f"the platform database is at schema revision {current!r}, which this reelforge does not know "
                f"(its newest is {head!r}); run the newer reelforge that migrated it, or upgrade this one"
            )
        config = _config(connection)
        if current is None and inspect(connection).has_table("tenants"):
            # Made by create_all before migrations existed: that schema is the baseline revision.
            logger.info("adopting an unversioned platform database at revision %s", BASELINE)
            command.stamp(config, BASELINE)
        logger.info("migrating the platform database from %s to %s", current or "empty", head)
        command.upgrade(config, "head")
    return head
