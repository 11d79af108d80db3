"""Fine-tuning commands: `finetune` (here or as a Ray Job), `finetune-status`, and `compare` runs."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from reelforge.cli.audit import record_cli_action
from reelforge.cli.console import stderr, stdout
from reelforge.settings import Settings

if TYPE_CHECKING:
    from reelforge.jobs.finetune import FineTuneResult

app = typer.Typer()

SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: --set lora.rank=8 (repeatable).")
]
SweepOption = Annotated[
    list[str] | None, typer.Option("--sweep", help="Run a grid: --sweep lr=1e-4,3e-4 (repeatable; axes multiply).")
]


def _meter_training(settings: Settings, tenant: str, result: FineTuneResult) -> None:
    """Record a CLI fine-tune's device time in the usage the server reports, as API jobs are."""
    from reelforge.platform.stores.usage import TRAINING, UsageMeter, usage_record

    UsageMeter(settings.resolved_database_url).record(
        usage_record(
            tenant,
            TRAINING,
            result.job_id,
            result.fine_tuned_model.split(":")[1],  # ft:<base>:<tenant>:<suffix>
            f"{result.registered_model}/{result.version}",
            result.device,
            result.device_seconds,
            0,
        )
    )


def _measured(metrics: dict[str, float], key: str, shown: str, missing: str) -> str:
    """One metric for the summary line, or why it was not measured (absent or NaN) rather than "nan"."""
    value = metrics.get(key)
    return shown.format(value) if value is not None and math.isfinite(value) else missing


@app.command()
def finetune(
    tenant: Annotated[str, typer.Option(help="Whose adapter this is (lowercase letters, digits, dashes).")],
    data: Annotated[Path, typer.Option(help="Footage folder or archive, or a directory `reelforge ingest` wrote.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Base model preset or directory (default: reelforge-tiny).")
    ] = None,
    model_path: Annotated[Path | None, typer.Option(help="Local directory of the preset's checkpoint.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML job file; keys as in `--set`.")] = None,
    overrides: SetOption = None,
    sweeps: SweepOption = None,
    address: Annotated[
        str | None,
        typer.Option(help="Submit to a running Ray cluster's Jobs API (http://HEAD:8265) instead of running here."),
    ] = None,
    follow: Annotated[bool, typer.Option(help="With --address: stream the job's logs until it ends.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fine-tune a LoRA adapter on a tenant's footage (Ray Train + DeepSpeed), tracked and registered in MLflow."""
    from reelforge.jobs.adapter_registry import adapter_sha256
    from reelforge.jobs.finetune import run_finetune
    from reelforge.jobs.finetune_config import expand_sweep, read_config_file
    from reelforge.platform.stores.audit_log import FINETUNE_COMPLETED

    base = read_config_file(config) if config else {}
    base.update({"tenant": tenant, "data": str(data)})
    if model is not None:
        base["model"] = model
    configs = expand_sweep(base, overrides or [], sweeps or [])  # validates every point before anything runs
    if address:
        _submit(address, follow)
        return
    settings = Settings.from_env()
    sweep_id = None
    if len(configs) > 1:
        import secrets

        sweep_id = f"sweep-{secrets.token_hex(4)}"
        stderr.print(f"sweep {sweep_id}: {len(configs)} runs")
    results = []
    for index, job in enumerate(configs, 1):
        if sweep_id:
            stderr.print(f"[bold]run {index}/{len(configs)}[/bold]: " + " ".join(sweeps or []))
        # Ray Data prints execution stats to stdout; keep stdout for the result (--json) alone.
        with contextlib.redirect_stdout(sys.stderr):
            result = run_finetune(
                job,
                settings,
                model_path=str(model_path) if model_path else None,
                progress=not as_json,
                sweep_id=sweep_id,
            )
        results.append(result)
        record_cli_action(
            settings,
            job.tenant,
            FINETUNE_COMPLETED,
            result.job_id,
            run_id=result.run_id,
            registered=f"{result.registered_model}/{result.version}",
            fine_tuned_model=result.fine_tuned_model,
            adapter_sha256=adapter_sha256(result.adapter_dir),
        )
        _meter_training(settings, job.tenant, result)
        metrics = result.metrics
        look = (
            f"brand_rate {metrics['eval_brand_rate']:.3f}"
            if "eval_brand_rate" in metrics
            else "no look metric (the footage carries no look the analyzer knows)"
        )
        adherence = _measured(metrics, "eval_adherence", "adherence {:.3f}", "adherence not measured (no eval prompts)")
        eval_loss = _measured(metrics, "eval_loss", "eval loss {:.4f}", "eval loss not measured (no held-out clips)")
        stderr.print(
            f"{result.fine_tuned_model}: registered {result.registered_model} version {result.version} (alias candidate), "
            f"run {result.run_id}, {result.seconds:.0f}s; {look}, {adherence}, {eval_loss}"
        )
    if as_json:
        stdout.print_json(
            json.dumps(
                [
                    {
                        "job_id": r.job_id,
                        "run_id": r.run_id,
                        "registered_model": r.registered_model,
                        "version": r.version,
                        "fine_tuned_model": r.fine_tuned_model,
                        "adapter_dir": str(r.adapter_dir),
                        "metrics": r.metrics,
                        "seconds": round(r.seconds, 1),
                        "sweep_id": sweep_id,
                    }
                    for r in results
                ]
            )
        )
    elif sweep_id:
        stderr.print(f"compare them: reelforge compare --tenant {configs[0].tenant} --sweep {sweep_id}")


def _submit(address: str, follow: bool) -> None:
    """Re-submit this very command line (without --address) as a Ray Job."""
    from reelforge.jobs.ray_job_submission import (
        RayJobFailedError,
        follow_job,
        submit_finetune,
    )

    args, skip = [], False
    # Everything after the subcommand (global options such as -v may come before it). Paths in
    # them (--data, --config) are read on the cluster, so they must exist there.
    for arg in sys.argv[sys.argv.index("finetune") + 1 :]:
        if skip:
            skip = False
            continue
        if arg == "--address":
            skip = True
            continue
        if arg.startswith("--address=") or arg in ("--follow", "--no-follow"):
            continue
        args.append(arg)
    submission_id = submit_finetune(address, args)
    stderr.print(
        f"submitted Ray Job {submission_id} to {address}; status: reelforge finetune-status {submission_id} --address {address}"
    )
    if follow:
        status = follow_job(address, submission_id, on_log=lambda text: sys.stderr.write(text))
        stderr.print(f"Ray Job {submission_id}: {status}")
        if status != "SUCCEEDED":
            raise RayJobFailedError(f"Ray Job {submission_id} ended {status}")


@app.command("finetune-status")
def finetune_status(
    submission_id: Annotated[str, typer.Argument(help="The id `finetune --address` printed.")],
    address: Annotated[str, typer.Option(help="The Ray cluster's Jobs API, http://HEAD:8265.")],
) -> None:
    """Show the status of a fine-tune submitted to a Ray cluster."""
    from reelforge.jobs.ray_job_submission import job_status

    stdout.print_json(json.dumps(job_status(address, submission_id)))


@app.command()
def compare(
    tenant: Annotated[str, typer.Option(help="Whose runs to compare.")],
    sweep: Annotated[str | None, typer.Option(help="Only the runs of this sweep id.")] = None,
    png: Annotated[Path, typer.Option(help="Where to write the loss curves.")] = Path("loss-curves.png"),
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Compare a tenant's fine-tune runs: differing params, eval loss, brand rate, adherence, duration, status."""
    from reelforge.jobs.run_comparison import compare_runs, plot_loss_curves

    settings = Settings.from_env()
    rows = compare_runs(settings, tenant, sweep)
    plot_loss_curves(settings, rows, png)
    if as_json:
        stdout.print_json(
            json.dumps(
                [
                    {
                        "run_id": r.run_id,
                        "name": r.name,
                        "status": r.status,
                        "job_id": r.job_id,
                        "sweep_id": r.sweep_id,
                        "params": r.differing,
                        "eval_loss": r.metrics.get("eval/loss"),
                        "brand_rate": r.metrics.get("eval/brand_rate"),
                        "adherence": r.metrics.get("eval/adherence"),
                        "seconds": r.seconds,
                    }
                    for r in rows
                ]
                + [{"loss_curves": str(png)}]
            )
        )
        return
    table = Table(title=f"fine-tune runs of {tenant}" + (f" (sweep {sweep})" if sweep else ""))
    table.add_column("run", overflow="fold")
    table.add_column("params that differ", overflow="fold")
    for column in ("eval loss", "brand_rate", "adherence", "duration", "status"):
        table.add_column(column, no_wrap=True)

    def metric(row, key: str, digits: int) -> str:
        value = row.metrics.get(key)
        return f"{value:.{digits}f}" if value is not None else "-"

    for r in rows:
        params = "\n".join(f"{k}={v}" for k, v in r.differing.items()) or "-"
        table.add_row(
            r.name,
            params,
            metric(r, "eval/loss", 4),
            metric(r, "eval/brand_rate", 3),
            metric(r, "eval/adherence", 3),
            f"{r.seconds:.0f}s" if r.seconds else "-",
            r.status,
        )
    stdout.print(table)
    stderr.print(f"loss curves: {png}")
