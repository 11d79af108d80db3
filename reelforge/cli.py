"""The `reelforge` command: one entry point, a subcommand per job.

Errors a user can cause (`UserInputError`) print one line and exit with code 2; this module is
the only place that maps reelforge errors to exit codes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelforge.errors import InvalidGenerationSettingsError, ReelforgeError, UserInputError
from reelforge.settings import Settings

app = typer.Typer(
    name="reelforge",
    help=(
        "Fine-tune open text-to-video diffusion transformers on your own footage with LoRA and "
        "generate videos with them.\n\nStart with `reelforge models` to see which models this machine "
        "has, then `reelforge generate \"a red circle moving left on a white background\" -o out.mp4`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True, soft_wrap=True)  # paths and errors stay on one line
stdout = Console()
logger = logging.getLogger("reelforge")


@app.callback()
def _configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    """Set up logging once for every subcommand."""
    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=stderr, show_path=False)]
    )
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    # Ray Data logs every operator's metrics; our own progress bars say what matters.
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.WARNING)
    # Third-party load bars and info chatter would interleave with ours; their errors still show.
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video should show.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the MP4.")] = Path("out.mp4"),
    model: Annotated[str, typer.Option("--model", "-m", help="Preset name (see `reelforge models`) or a diffusers model directory.")] = "reelforge-tiny",
    model_path: Annotated[Optional[Path], typer.Option(help="Local directory of the preset's checkpoint.")] = None,
    adapter: Annotated[Optional[Path], typer.Option(help="Directory of a LoRA adapter (pytorch_lora_weights.safetensors).")] = None,
    adapter_scale: Annotated[float, typer.Option(help="Strength of the adapter.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed and settings give identical frames.")] = 0,
    steps: Annotated[Optional[int], typer.Option(help="Denoising steps (default: the model's).")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Classifier-free guidance scale; 1 disables it.")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Frame count; Wan models need 4k+1.")] = None,
    size: Annotated[Optional[str], typer.Option(help="WIDTHxHEIGHT, multiples of the model's patch size.")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Frame rate of the written MP4.")] = None,
    negative_prompt: Annotated[Optional[str], typer.Option(help="What to steer away from.")] = None,
    preview: Annotated[Optional[Path], typer.Option(help="Also write an animated GIF preview here.")] = None,
    strip: Annotated[Optional[Path], typer.Option(help="Also write a PNG strip of frames here.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: a GPU if present).")] = None,
) -> None:
    """Generate one video from a text prompt and write it as an H.264 MP4."""
    from reelforge.models.loading import load_model
    from reelforge.models.lora import activate_adapter, load_adapter
    from reelforge.models.sampling import GenerationSettings, generate as run_generation, parse_size, resolve_settings
    from reelforge.models.video_io import write_frame_strip, write_mp4, write_preview

    if output.suffix.lower() != ".mp4":
        raise InvalidGenerationSettingsError(f"--output {output} must end in .mp4")
    width, height = parse_size(size) if size else (None, None)
    started = time.perf_counter()
    loaded = load_model(model, Settings.from_env(), model_path=model_path, device=device)
    settings = resolve_settings(
        loaded,
        GenerationSettings(
            prompt=prompt, negative_prompt=negative_prompt, num_frames=frames, height=height, width=width,
            steps=steps, guidance=guidance, seed=seed, fps=fps,
        ),
    )
    if adapter is not None:
        load_adapter(loaded, adapter, "cli")
        activate_adapter(loaded, "cli", adapter_scale)
    with Progress(
        TextColumn("[bold]denoising"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(), console=stderr, transient=True,
    ) as bar:
        task = bar.add_task("denoise", total=settings.steps)
        video = run_generation(loaded, settings, progress=lambda done, total: bar.update(task, completed=done, total=total))
    # Write next to the target and rename, so an interrupted run never leaves a half-written MP4.
    partial = output.with_name(f".{output.name}.partial.mp4")
    write_mp4(video, partial)
    os.replace(partial, output)
    if preview:
        write_preview(video, preview)
    if strip:
        write_frame_strip(video, strip)
    stderr.print(
        f"wrote {output} ({video.num_frames} frames, {video.width}x{video.height}, {video.fps:g} fps, "
        f"seed {settings.seed}) in {time.perf_counter() - started:.1f}s"
    )


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the model presets and whether each is available on this machine."""
    from reelforge.models.presets import preset_statuses

    statuses = preset_statuses(Settings.from_env())
    if as_json:
        rows = [
            {
                "name": s.preset.name, "architecture": s.preset.architecture, "available": s.available,
                "path": str(s.path) if s.path else None, "detail": s.detail, "description": s.preset.description,
            }
            for s in statuses
        ]
        stdout.print_json(json.dumps(rows))
        return
    table = Table(title="reelforge models")
    table.add_column("name", no_wrap=True)
    table.add_column("available")
    table.add_column("where / how to get it")
    for s in statuses:
        where = str(s.path) if s.path else s.detail
        table.add_row(s.preset.name, "yes" if s.available else "no", where)
    stdout.print(table)


world = typer.Typer(help="The shapes world: synthetic captioned footage with exactly measurable content.", no_args_is_help=True)
app.add_typer(world, name="world")


@world.command("footage")
def world_footage(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write clip_NNNN.mp4 + clip_NNNN.txt into.")],
    count: Annotated[int, typer.Option(help="Number of clips.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same clips.")] = 0,
    brand: Annotated[Optional[str], typer.Option(help="Brand look on every frame, KIND:COLOUR, e.g. lower-third:orange.")] = None,
) -> None:
    """Write footage as a company would upload it: H.264 MP4 clips with same-stem caption files."""
    from reelforge.models.tiny.brand_looks import parse_brand
    from reelforge.models.tiny.footage import write_footage

    look = parse_brand(brand) if brand else None
    clips = write_footage(out_dir, count, seed, look, progress=True)
    stderr.print(f"wrote {len(clips)} clips to {out_dir}" + (f" with brand look {look.spec}" if look else ""))


@world.command("analyze")
def world_analyze(
    video: Annotated[Path, typer.Argument(help="A shapes-world video (MP4, MOV, WebM, MKV).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Read colour, shape, direction, background and brand looks from a video."""
    from reelforge.models.tiny.analyzer import analyze
    from reelforge.models.video_io import read_video

    analysis = analyze(read_video(video))
    if as_json:
        stdout.print_json(json.dumps(analysis.to_dict()))
        return
    parts = [
        f"{name}={reading.value or '?'} ({reading.confidence:.2f})"
        for name, reading in (("colour", analysis.colour), ("shape", analysis.shape),
                              ("direction", analysis.direction), ("background", analysis.background))
    ]
    looks = [f"{kind}:{b.colour}" for kind, b in analysis.brands.items() if b.present]
    stdout.print(f"{video.name}: " + " ".join(parts) + f" brand looks: {', '.join(looks) or 'none'}", soft_wrap=True)


@app.command("eval")
def evaluate_model(
    model: Annotated[str, typer.Option("--model", "-m", help="Preset or model directory.")] = "reelforge-tiny",
    adapter: Annotated[Optional[Path], typer.Option(help="LoRA adapter directory to apply.")] = None,
    brand: Annotated[Optional[str], typer.Option(help="Brand look to measure, KIND:COLOUR.")] = None,
    prompts: Annotated[int, typer.Option(help="Held-out prompts (at least 48 for reported numbers).")] = 48,
    steps: Annotated[Optional[int], typer.Option(help="Denoising steps (default: the model's).")] = None,
    guidance: Annotated[Optional[float], typer.Option(help="Guidance scale (default: the model's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda ...")] = None,
) -> None:
    """Measure prompt adherence and brand looks on held-out shapes-world prompts, 2 seeds each."""
    from reelforge.models.loading import load_model
    from reelforge.models.lora import activate_adapter, load_adapter
    from reelforge.models.tiny.brand_looks import parse_brand
    from reelforge.models.tiny.evaluation import EvalConfig, evaluate
    from reelforge.models.tiny.shapes_world import all_combos

    look = parse_brand(brand) if brand else None
    if not 1 <= prompts <= len(all_combos()):
        raise UserInputError(f"--prompts must be between 1 and {len(all_combos())}, got {prompts}")
    loaded = load_model(model, Settings.from_env(), device=device)
    if adapter is not None:
        # Not "eval": an adapter name becomes a module attribute and must not shadow nn.Module.eval.
        load_adapter(loaded, adapter, "evaluated")
        activate_adapter(loaded, "evaluated")
    result = evaluate(loaded, EvalConfig(prompts=prompts, steps=steps, guidance=guidance), look, progress=not as_json)
    if as_json:
        stdout.print_json(json.dumps(result))
        return
    table = Table(title=f"reelforge eval: {result['model']} ({result['n']} videos)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("colour_acc", "shape_acc", "direction_acc", "background_acc", "adherence", "brand_rate", "seconds_per_video"):
        table.add_row(key, f"{result[key]:.3f}")
    for kind, rate in result["brand_rates"].items():
        table.add_row(f"brand_rate[{kind}]", f"{rate:.3f}")
    stdout.print(table)


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="Folder or .zip/.tar(.gz) of videos with captions.")],
    tenant: Annotated[str, typer.Option(help="Company the footage belongs to.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model whose VAE and text encoder encode it.")] = "reelforge-tiny",
    out: Annotated[Optional[Path], typer.Option(help="Shards and manifest (default: under REELFORGE_HOME).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail if any file is rejected.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate footage, cut clips and encode them to latent shards on Ray Data (cached per video)."""
    from reelforge.jobs.ingest import IngestConfig, ingest as run_ingest
    from reelforge.jobs.ray_cluster import ensure_ray

    settings = Settings.from_env()
    config = IngestConfig(tenant=tenant, model=model, source=source,
                          out_dir=out or settings.home / "tenants" / tenant / "ingest", strict=strict)
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


# Fine-tuning and serving commands live in their own modules; importing them registers them on `app`.
from reelforge import training_cli  # noqa: E402,F401
from reelforge import serving_cli  # noqa: E402,F401


def main() -> None:
    """Console-script entry point: run the app and map reelforge errors to exit codes."""
    try:
        app(prog_name="reelforge")
    except ReelforgeError as exc:
        stderr.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
