"""Footage commands: `ingest` videos into latent shards, `decode-latents` to see what training sees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reelforge.cli.console import stderr, stdout
from reelforge.settings import Settings

app = typer.Typer()


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="Folder or .zip/.tar(.gz) of videos with captions.")],
    tenant: Annotated[str, typer.Option(help="Company the footage belongs to.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model whose VAE and text encoder encode it.")
    ] = "reelforge-tiny",
    out: Annotated[Path | None, typer.Option(help="Shards and manifest (default: under REELFORGE_HOME).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail if any file is rejected.")] = False,
    sampling: Annotated[
        str,
        typer.Option(help="Where clips come from: scene (spread over every shot, none across a cut), uniform, head."),
    ] = "scene",
    max_clips_per_video: Annotated[int, typer.Option(help="Clips taken from one video at most.")] = 8,
    max_clips: Annotated[
        int | None, typer.Option("--max-clips", help="Clips in the whole dataset at most (videos take turns).")
    ] = None,
    faces_need_consent: Annotated[
        bool,
        typer.Option(help="Refuse videos that show people's faces unless metadata.jsonl/csv declares their consent."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate footage, sample clips clear of cuts and encode them to latent shards on Ray Data (cached per video)."""
    from reelforge.jobs.ingest import IngestConfig
    from reelforge.jobs.ingest import ingest as run_ingest
    from reelforge.jobs.ray_cluster import ensure_ray

    settings = Settings.from_env()
    config = IngestConfig(
        tenant=tenant,
        model=model,
        source=source,
        out_dir=out or settings.home / "tenants" / tenant / "ingest",
        strict=strict,
        max_clips_per_video=max_clips_per_video,
        max_clips_per_dataset=max_clips,
        sampling=sampling,
        faces_need_consent=faces_need_consent,
    )
    ensure_ray(settings)
    report = run_ingest(config)
    if as_json:
        stdout.print_json(json.dumps({k: v for k, v in report.items() if k != "settings"}))
        return
    stderr.print(
        f"{len(report['accepted'])} accepted, {len(report['rejected'])} rejected, {report['clips']} clips in "
        f"{report['shards']} shards ({'cache hit' if report['cache_hit'] else str(report['encoded_videos']) + ' videos encoded'}) "
        f"-> {config.out_dir}"
    )
    for rejected in report["rejected"]:
        stderr.print(f"  rejected {rejected['file']}: {rejected['reason']}")


@app.command("decode-latents")
def decode_latents(
    ingested: Annotated[Path, typer.Argument(help="The --out folder of `reelforge ingest`.")],
    file: Annotated[str, typer.Option(help="Source video as listed in the report.")],
    clip: Annotated[int, typer.Option(help="Clip index within that video.")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="MP4 to write.")] = Path("decoded.mp4"),
) -> None:
    """Decode an ingested clip's latents back to video, to check what training will see."""
    from reelforge.jobs.ingest import decode_clip
    from reelforge.models.video_io import write_mp4

    video = decode_clip(ingested, file, clip)
    write_mp4(video, output)
    stderr.print(f"wrote {output} ({video.num_frames} frames, {video.width}x{video.height})")
