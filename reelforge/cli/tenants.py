"""`reelforge tenants`: create tenants and manage their API keys (shown once, stored hashed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reelforge.cli.console import ConfigOption, platform_settings, stderr, stdout

app = typer.Typer(
    name="tenants", help="Create tenants and manage their API keys (shown once, stored hashed).", no_args_is_help=True
)


def _store(config: Path | None):
    # Imported here, not at the top: `reelforge --help` should not load the database layer.
    from reelforge.platform.stores.tenants import TenantStore

    return TenantStore(platform_settings(config).resolved_database_url)


@app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Tenant name (lowercase letters, digits, dashes).")],
    rpm: Annotated[int | None, typer.Option(help="Video requests per minute (default: the serve config's).")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Videos queued or running at once (default: the serve config's).")
    ] = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tenant and key as JSON.")] = False,
) -> None:
    """Create a tenant and print its first API key (shown only this once)."""
    tenant, key = _store(config).create(name, requests_per_minute=rpm, concurrent_jobs=concurrency)
    if as_json:
        stdout.print_json(json.dumps({"tenant": tenant.name, "api_key": key}))
        return
    stdout.print(key)
    stderr.print(f"created tenant {tenant.name}; store the key now, it is not shown again")


@app.command("list")
def tenants_list(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List tenants, their quotas and active keys (masked)."""
    tenants = _store(config).list()
    if as_json:
        stdout.print_json(
            json.dumps(
                [
                    {
                        "name": t.name,
                        "created_at": t.created_at,
                        "requests_per_minute": t.requests_per_minute,
                        "concurrent_jobs": t.concurrent_jobs,
                        "active_keys": list(t.active_keys),
                    }
                    for t in tenants
                ]
            )
        )
        return
    table = Table(title="reelforge tenants")
    for column in ("tenant", "requests/min", "concurrent", "active keys"):
        table.add_column(column)
    for t in tenants:
        table.add_row(
            t.name,
            str(t.requests_per_minute or "default"),
            str(t.concurrent_jobs or "default"),
            ", ".join(t.active_keys) or "none",
        )
    stdout.print(table)


@app.command("rotate-key")
def tenants_rotate_key(
    name: Annotated[str, typer.Argument(help="Tenant.")],
    keep_old: Annotated[bool, typer.Option(help="Leave the old keys working (revoke them later).")] = False,
    config: ConfigOption = None,
) -> None:
    """Issue a new key for a tenant; old keys stop working unless --keep-old."""
    key = _store(config).rotate_key(name, keep_old=keep_old)
    stdout.print(key)
    stderr.print(f"new key for {name}" + ("; old keys still work" if keep_old else "; old keys are revoked"))


@app.command("revoke-key")
def tenants_revoke_key(
    name: Annotated[str, typer.Argument(help="Tenant.")],
    key: Annotated[str | None, typer.Option(help="The key to revoke (default: all of the tenant's keys).")] = None,
    config: ConfigOption = None,
) -> None:
    """Revoke one key of a tenant, or all of them."""
    count = _store(config).revoke_key(name, key)
    stderr.print(f"revoked {count} key(s) of {name}")
