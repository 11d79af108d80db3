"""`reelforge usage`: a tenant's metered usage by day."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated

import typer
from rich.table import Table

from reelforge.cli.console import ConfigOption, JsonOption, platform_settings, stdout
from reelforge.errors import UserInputError

app = typer.Typer()


@app.command("usage")
def usage_command(
    tenant: Annotated[str, typer.Option(help="Whose usage to summarise.")],
    days: Annotated[int, typer.Option(help="How many days back, today included.")] = 30,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Summarise a tenant's metered usage by day: jobs, device seconds and frames per model."""
    from reelforge.platform.stores.tenants import TenantStore
    from reelforge.platform.stores.usage import UsageMeter

    if days < 1:
        raise UserInputError(f"--days must be at least 1, got {days}")
    settings = platform_settings(config)
    TenantStore(settings.resolved_database_url).get(tenant)  # a clear error for an unknown tenant
    start = (datetime.now(timezone.utc) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    rows = UsageMeter(settings.resolved_database_url).summary(tenant, start)
    if as_json:
        stdout.print_json(json.dumps([r.to_dict() for r in rows]))
        return
    table = Table(title=f"usage of {tenant} since {start} (UTC)")
    for column in ("day", "kind", "model", "device", "jobs", "seconds", "frames"):
        table.add_column(column, justify="right" if column in ("jobs", "seconds", "frames") else "left")
    for r in rows:
        table.add_row(r.day, r.kind, r.model, r.device, str(r.jobs), f"{r.seconds:.1f}", str(r.frames))
    stdout.print(table if rows else f"no usage recorded for {tenant} since {start}")
