"""`reelforge audit`: the append-only audit log (export), and how CLI actions are recorded in it."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from reelforge.cli.console import ConfigOption, platform_settings, stderr
from reelforge.settings import Settings

app = typer.Typer(
    name="audit", help="The append-only audit log: generations, refusals, promotions, fine-tunes.", no_args_is_help=True
)


def record_cli_action(settings: Settings, tenant: str, action: str, subject: str, **details) -> None:
    """Append an audit record for a CLI action, in the platform database the server reads."""
    from reelforge.platform.stores.audit_log import AuditLog

    AuditLog(settings.resolved_database_url).record(tenant, f"cli:{getpass.getuser()}", action, subject, **details)


@app.command("export")
def audit_export(
    tenant: Annotated[str, typer.Option(help="Whose records to export.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON-lines file (default: stdout).")] = None,
    config: ConfigOption = None,
) -> None:
    """Export a tenant's audit records as JSON lines, oldest first."""
    from reelforge.platform.stores.audit_log import AuditLog
    from reelforge.platform.stores.tenants import TenantStore

    settings = platform_settings(config)
    TenantStore(settings.resolved_database_url).get(tenant)  # a clear error for an unknown tenant
    log = AuditLog(settings.resolved_database_url)
    if out is None:
        count = log.export_jsonl(tenant, sys.stdout)
    else:
        with out.open("w", encoding="utf-8") as handle:
            count = log.export_jsonl(tenant, handle)
    stderr.print(f"exported {count} audit records of {tenant}" + (f" to {out}" if out else ""))
