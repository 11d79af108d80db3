"""`reelforge adapters`: list, promote, import and roll back a tenant's registered adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reelforge.cli.audit import record_cli_action
from reelforge.cli.console import stderr, stdout
from reelforge.settings import Settings

app = typer.Typer(
    name="adapters", help="List, promote and roll back a tenant's registered adapters.", no_args_is_help=True
)


def _adapter_name(tenant: str, adapter: str | None) -> str:
    from reelforge.jobs.adapter_registry import resolve_adapter_name

    return resolve_adapter_name(Settings.from_env(), tenant, adapter)


TenantOption = Annotated[str, typer.Option(help="The tenant whose adapters to show or move.")]
AdapterOption = Annotated[str | None, typer.Option(help="The adapter's suffix, when the tenant has several.")]


@app.command("list")
def adapters_list(
    tenant: TenantOption,
    adapter: AdapterOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the tenant's adapter versions with their aliases and eval metrics."""
    from reelforge.jobs.adapter_registry import list_versions, tenant_adapter_names

    settings = Settings.from_env()
    names = [_adapter_name(tenant, adapter)] if adapter else tenant_adapter_names(settings, tenant)
    rows = [v for name in names for v in list_versions(settings, name)]
    if as_json:
        stdout.print_json(
            json.dumps(
                [
                    {
                        "name": v.name,
                        "version": v.version,
                        "aliases": list(v.aliases),
                        "fine_tuned_model": v.fine_tuned_model,
                        "run_id": v.run_id,
                        "source": v.source,
                        "tags": v.tags,
                    }
                    for v in rows
                ]
            )
        )
        return
    table = Table(title=f"adapters of {tenant}")
    for column in ("registered model", "version", "aliases", "brand_rate", "adherence", "eval loss", "job"):
        table.add_column(column)
    for v in rows:
        table.add_row(
            v.name,
            str(v.version),
            ", ".join(v.aliases),
            v.tags.get("reelforge.eval_brand_rate", "-"),
            v.tags.get("reelforge.eval_adherence", "-"),
            v.tags.get("reelforge.eval_loss", "-"),
            v.tags.get("reelforge.job_id", "-"),
        )
    stdout.print(table if rows else f"tenant {tenant} has no registered adapters")


@app.command("promote")
def adapters_promote(
    tenant: TenantOption,
    adapter: AdapterOption = None,
    version: Annotated[int | None, typer.Option(help="Version to serve (default: the `candidate`).")] = None,
) -> None:
    """Point `production` (what serving uses) at a version."""
    from reelforge.jobs.adapter_registry import promote
    from reelforge.platform.stores.audit_log import ADAPTER_PROMOTED

    settings = Settings.from_env()
    moved = promote(settings, _adapter_name(tenant, adapter), version)
    record_cli_action(
        settings,
        tenant,
        ADAPTER_PROMOTED,
        f"{moved.name}/{moved.version}",
        adapter_sha256=moved.tags.get("reelforge.adapter_sha256"),
    )
    stderr.print(f"{moved.name}: production -> version {moved.version}")


@app.command("import")
def adapters_import(
    tenant: TenantOption,
    directory: Annotated[
        Path, typer.Argument(help="A diffusers-format LoRA directory (pytorch_lora_weights.safetensors).")
    ],
    suffix: Annotated[str, typer.Option("--suffix", help="Adapter name in the ft: id.")] = "brand",
    model: Annotated[str, typer.Option("--model", "-m", help="Base model it was trained on.")] = "reelforge-tiny",
    promote_now: Annotated[bool, typer.Option("--promote", help="Also point `production` at it.")] = False,
) -> None:
    """Register a LoRA trained elsewhere (finetrainers, diffusion-pipe ...) as a tenant adapter version."""
    from reelforge.jobs.adapter_registry import import_adapter, promote
    from reelforge.platform.stores.audit_log import ADAPTER_IMPORTED

    version = import_adapter(Settings.from_env(), tenant, suffix, model, directory)
    record_cli_action(
        Settings.from_env(),
        tenant,
        ADAPTER_IMPORTED,
        f"{version.name}/{version.version}",
        source=str(directory.resolve()),
        adapter_sha256=version.tags.get("reelforge.adapter_sha256"),
    )
    if promote_now:
        version = promote(Settings.from_env(), version.name, version.version)
    stderr.print(
        f"{version.name} version {version.version} ({version.fine_tuned_model}); aliases: {', '.join(version.aliases)}"
    )


@app.command("rollback")
def adapters_rollback(tenant: TenantOption, adapter: AdapterOption = None) -> None:
    """Move `production` back to the version it pointed at before the last promotion."""
    from reelforge.jobs.adapter_registry import rollback
    from reelforge.platform.stores.audit_log import ADAPTER_ROLLED_BACK

    settings = Settings.from_env()
    moved = rollback(settings, _adapter_name(tenant, adapter))
    record_cli_action(
        settings,
        tenant,
        ADAPTER_ROLLED_BACK,
        f"{moved.name}/{moved.version}",
        adapter_sha256=moved.tags.get("reelforge.adapter_sha256"),
    )
    stderr.print(f"{moved.name}: production -> version {moved.version} (rolled back)")
