"""CLI commands of the serving side: `serve`, `tenants ...`, `usage`, `audit export`, `verify` and `demo`.

Registered on the main `reelforge` app (see cli.py); errors are mapped to exit codes there.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reelforge.cli import app, stderr, stdout
from reelforge.settings import Settings

logger = logging.getLogger(__name__)
tenants_app = typer.Typer(help="Create tenants and manage their API keys (shown once, stored hashed).", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
ConfigOption = Annotated[Path | None, typer.Option("--config", help="Serve config (as for `serve deploy`); its database is used.")]


def _serve_target(config: Path | None, host: str | None, port: int | None):
    """The app config and where it listens: flags, else the file's `http_options`, else 127.0.0.1:8000."""
    from reelforge.platform.serve_config import ServeAppConfig, read_serve_file

    app_config, http_options = read_serve_file(config) if config else (ServeAppConfig(), {})
    return app_config, host or http_options.get("host", "127.0.0.1"), port or int(http_options.get("port", 8000))


@app.command("serve")
def serve_command(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default: the config's, else 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the config's, else 8000).")] = None,
) -> None:
    """Start Ray Serve with the OpenAI-compatible Videos API and the generators; Ctrl-C stops it."""
    from ray import serve

    from reelforge.jobs.ray_cluster import ensure_ray
    from reelforge.platform.serve_app import APP_NAME, build_app

    app_config, host, port = _serve_target(config, host, port)
    ensure_ray(app_config.settings(), dashboard=True)
    # After ray.init, which installs its own crash handler for SIGTERM: SIGTERM stops the server
    # like Ctrl-C, and SIGINT is restored in case a launcher left it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    serve.start(http_options={"host": host, "port": port})
    try:
        stderr.print(f"starting {len(app_config.generators)} generator deployment(s) and the API ...")
        serve.run(build_app(app_config), name=APP_NAME, route_prefix="/")
        stderr.print(f"reelforge is serving the OpenAI Videos API at http://{host}:{port}/v1 (Ctrl-C stops)")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        # No graceful drain here: accepted jobs are in the job store and resume at the next start.
        stderr.print("stopping; queued and running videos resume when the server starts again")
    finally:
        import ray

        ray.shutdown()


def _store(config: Path | None):
    from reelforge.platform.serve_config import read_serve_file
    from reelforge.platform.tenant_store import TenantStore

    settings = read_serve_file(config)[0].settings() if config else Settings.from_env()
    return TenantStore(settings.resolved_database_url)


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Tenant name (lowercase letters, digits, dashes).")],
    rpm: Annotated[int | None, typer.Option(help="Video requests per minute (default: the serve config's).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Videos queued or running at once (default: the serve config's).")] = None,
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


@tenants_app.command("list")
def tenants_list(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List tenants, their quotas and active keys (masked)."""
    tenants = _store(config).list()
    if as_json:
        stdout.print_json(json.dumps([t.__dict__ for t in tenants]))
        return
    table = Table(title="reelforge tenants")
    for column in ("tenant", "requests/min", "concurrent", "active keys"):
        table.add_column(column)
    for t in tenants:
        table.add_row(t.name, str(t.requests_per_minute or "default"), str(t.concurrent_jobs or "default"), ", ".join(t.active_keys) or "none")
    stdout.print(table)


@tenants_app.command("rotate-key")
def tenants_rotate_key(
    name: Annotated[str, typer.Argument(help="Tenant.")],
    keep_old: Annotated[bool, typer.Option(help="Leave the old keys working (revoke them later).")] = False,
    config: ConfigOption = None,
) -> None:
    """Issue a new key for a tenant; old keys stop working unless --keep-old."""
    key = _store(config).rotate_key(name, keep_old=keep_old)
    stdout.print(key)
    stderr.print(f"new key for {name}" + ("; old keys still work" if keep_old else "; old keys are revoked"))


@tenants_app.command("revoke-key")
def tenants_revoke_key(
    name: Annotated[str, typer.Argument(help="Tenant.")],
    key: Annotated[str | None, typer.Option(help="The key to revoke (default: all of the tenant's keys).")] = None,
    config: ConfigOption = None,
) -> None:
    """Revoke one key of a tenant, or all of them."""
    count = _store(config).revoke_key(name, key)
    stderr.print(f"revoked {count} key(s) of {name}")


@app.command("usage")
def usage_command(
    tenant: Annotated[str, typer.Option(help="Whose usage to summarise.")],
    days: Annotated[int, typer.Option(help="How many days back, today included.")] = 30,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Summarise a tenant's metered usage by day: jobs, device seconds and frames per model."""
    from datetime import datetime, timedelta, timezone

    from reelforge.errors import UserInputError
    from reelforge.platform.serve_config import read_serve_file
    from reelforge.platform.usage_meter import UsageMeter

    if days < 1:
        raise UserInputError(f"--days must be at least 1, got {days}")
    settings = read_serve_file(config)[0].settings() if config else Settings.from_env()
    _store(config).get(tenant)  # a clear error for an unknown tenant
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


audit_app = typer.Typer(help="The append-only audit log: generations, refusals, promotions, fine-tunes.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("export")
def audit_export(
    tenant: Annotated[str, typer.Option(help="Whose records to export.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="JSON-lines file (default: stdout).")] = None,
    config: ConfigOption = None,
) -> None:
    """Export a tenant's audit records as JSON lines, oldest first."""
    import sys

    from reelforge.platform.audit_log import AuditLog
    from reelforge.platform.serve_config import read_serve_file

    settings = read_serve_file(config)[0].settings() if config else Settings.from_env()
    _store(config).get(tenant)  # a clear error for an unknown tenant
    log = AuditLog(settings.resolved_database_url)
    if out is None:
        count = log.export_jsonl(tenant, sys.stdout)
    else:
        with out.open("w", encoding="utf-8") as handle:
            count = log.export_jsonl(tenant, handle)
    stderr.print(f"exported {count} audit records of {tenant}" + (f" to {out}" if out else ""))


@app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="An MP4 to check (as served, or re-encoded, resized, cropped).")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Check a video's C2PA manifest and invisible watermark and name the request that made it.

    Exit 0: verified (or identified by its watermark after a re-encode); 3: tampered, untrusted or unmarked.
    """
    from reelforge.errors import UserInputError, VerificationFailedError
    from reelforge.platform.serve_config import ServeAppConfig, read_serve_file
    from reelforge.provenance.stamping import verify_video

    if not file.is_file():
        raise UserInputError(f"{file} does not exist")
    app_config = read_serve_file(config)[0] if config else ServeAppConfig()
    report = verify_video(file, app_config.provenance, app_config.settings())
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
    else:
        manifest, owner = report.manifest, report.owner
        stdout.print(f"verdict: [bold]{report.verdict}[/bold]")
        if manifest.present:
            stdout.print(f"C2PA manifest: {manifest.state}; source type {manifest.digital_source_type}; "
                         f"generation {json.dumps(manifest.generation)}")
        else:
            stdout.print("C2PA manifest: none")
        if report.watermark is not None:
            found = f"id {report.watermark.payload_id}" if report.watermark.found else "none"
            stdout.print(f"watermark: {found} (pilot z {report.watermark.pilot_z:.1f})")
        if owner is not None:
            stdout.print(f"made for tenant {owner.tenant}, request {owner.video_id}")
        for reason in report.reasons:
            stdout.print(f"  - {reason}")
    if not report.ok:
        raise VerificationFailedError(f"{file}: {report.verdict}: {'; '.join(report.reasons)}")


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Where the MP4s, contact sheet and demo home go.")] = Path("demo-output"),
    clips: Annotated[int, typer.Option(help="Footage clips per tenant.")] = 16,
    steps: Annotated[int, typer.Option(help="Fine-tuning steps per tenant.")] = 300,
    eval_prompts: Annotated[int, typer.Option(help="Held-out prompts of the quality table (x 2 seeds).")] = 48,
) -> None:
    """The whole story on this machine: platform up, two tenants fine-tune through the API, generate, compare, stop."""
    import json as json_module

    from reelforge.demo import DemoConfig, run_demo
    from reelforge.errors import UserInputError

    if clips < 2 or steps < 1 or not 1 <= eval_prompts <= 168:
        raise UserInputError("--clips must be at least 2, --steps at least 1, --eval-prompts between 1 and 168")
    logging.basicConfig(level=logging.WARNING)
    result = run_demo(DemoConfig(out, clips, steps, eval_prompts), stderr)
    (out / "demo-result.json").write_text(json_module.dumps(result, indent=2) + "\n")


@app.command("up")
def up_command(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default: the config's, else 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the config's, else 8000).")] = None,
) -> None:
    """Start the local platform (`reelforge serve`) in the background and wait until its API answers."""
    from reelforge.platform_daemon import DaemonFiles, start

    app_config, host, port = _serve_target(config, host, port)
    home = app_config.settings().home
    stderr.print("starting reelforge in the background (Ray, MLflow store, Serve) ...")
    pid = start(home, config, host, port)
    stderr.print(f"reelforge is up (pid {pid}): API http://{host}:{port}/v1, Ray dashboard http://127.0.0.1:8265, "
                 f"log {DaemonFiles.under(home).log}; `reelforge down` stops it")


@app.command("down")
def down_command(config: ConfigOption = None) -> None:
    """Stop the platform `reelforge up` started (accepted jobs resume at the next start)."""
    from reelforge.platform.serve_config import ServeAppConfig, read_serve_file
    from reelforge.platform_daemon import stop

    app_config = read_serve_file(config)[0] if config else ServeAppConfig()
    pid = stop(app_config.settings().home)
    stderr.print(f"stopped reelforge (pid {pid})" if pid else "reelforge is not running")
