"""`reelforge review`: the operator's queue of generated videos held because they show a face."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from reelforge.cli.console import ConfigOption, JsonOption, platform_settings, stderr, stdout

app = typer.Typer(
    name="review",
    help="Approve or reject generated videos held for review because they show a face (audited).",
    no_args_is_help=True,
)


def _jobs(config: Path | None):
    # Imported here, not at the top: `reelforge --help` should not load the database layer.
    from reelforge.platform.stores.video_jobs import VideoJobStore

    return VideoJobStore(platform_settings(config).resolved_database_url)


def _video_ttl_s(config: Path | None) -> float:
    """How long an approved video stays downloadable: the serve config's `video_ttl_s`."""
    from reelforge.platform.config import ServeAppConfig, read_serve_file

    return (read_serve_file(config)[0] if config else ServeAppConfig()).video_ttl_s


@app.command("list")
def review_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's videos.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, oldest first.")] = 100,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Videos waiting for a decision, oldest first, with where the faces were seen."""
    held = _jobs(config).held(tenant, limit)
    rows = [
        {
            "id": job.id,
            "tenant": job.tenant,
            "model": job.model,
            "prompt": job.prompt,
            "completed_at": job.completed_at,
            "note": job.review_note,
        }
        for job in held
    ]
    if as_json:
        stdout.print_json(json.dumps(rows))
        return
    if not rows:
        stderr.print("no video is waiting for review")
        return
    table = Table("id", "tenant", "waiting", "prompt", "why")
    for row in rows:
        waiting = f"{(time.time() - (row['completed_at'] or time.time())) / 60:.0f} min"
        table.add_row(row["id"], row["tenant"], waiting, row["prompt"][:60], row["note"] or "")
    stdout.print(table)


def _decide(video_id: str, approve: bool, note: str, config: Path | None, as_json: bool) -> None:
    from reelforge.platform.serving.review_decisions import decide

    job = decide(_jobs(config), video_id, approve, note, f"cli:{getpass.getuser()}", _video_ttl_s(config))
    if as_json:
        stdout.print_json(json.dumps({"id": job.id, "tenant": job.tenant, "review": job.review, "note": note}))
        return
    stderr.print(f"{job.review} {job.id} of tenant {job.tenant}")


@app.command("approve")
def review_approve(
    video_id: Annotated[str, typer.Argument(help="The held video's id (see `reelforge review list`).")],
    note: Annotated[str, typer.Option(help="Why it may be released (kept in the audit log).")] = "",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Release a held video to its tenant; its retention starts now."""
    _decide(video_id, True, note, config, as_json)


@app.command("reject")
def review_reject(
    video_id: Annotated[str, typer.Argument(help="The held video's id (see `reelforge review list`).")],
    reason: Annotated[str, typer.Option(help="Why it is refused; the tenant sees it as the video's error.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refuse a held video: it fails for its tenant with the reason, and its files are removed."""
    _decide(video_id, False, reason, config, as_json)
