"""`reelforge db`: bring the platform database's schema up to date (also done at platform start)."""

from __future__ import annotations

import typer

from reelforge.cli.console import ConfigOption, platform_settings, stderr

app = typer.Typer(name="db", help="The platform database: schema migrations (alembic).", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply every pending migration to the platform database (safe to run again)."""
    from reelforge.platform.stores.database import create_platform_engine, engine_for
    from reelforge.platform.stores.migrations import current_revision

    url = platform_settings(config).resolved_database_url
    probe = create_platform_engine(url)
    try:
        before = current_revision(probe)
    finally:
        probe.dispose()
    after = current_revision(engine_for(url))  # the first engine of a process migrates its database
    stderr.print(
        f"database at revision {after}" + (f" (was {before or 'empty'})" if before != after else " (up to date)")
    )


@app.command("current")
def db_current(config: ConfigOption = None) -> None:
    """Print the database's schema revision ("none" for a database never migrated)."""
    from reelforge.platform.stores.database import create_platform_engine
    from reelforge.platform.stores.migrations import current_revision

    engine = create_platform_engine(platform_settings(config).resolved_database_url)
    try:
        typer.echo(current_revision(engine) or "none")
    finally:
        engine.dispose()
