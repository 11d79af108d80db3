"""Alembic's environment: migrate on the connection `reelforge.platform.stores.migrations` hands over."""

from alembic import context

from reelforge.platform.stores.migrations import VERSION_TABLE
from reelforge.platform.stores.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite alters tables by copying them; batch mode does that for every op that needs it.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
