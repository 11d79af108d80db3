"""Model commands: `generate` a video, list the `models` this machine has, `eval` adherence and brand looks."""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelforge.cli.console import ConfigOption, stderr, stdout
from reelforge.errors import InvalidGenerationSettingsError, UserInputError
from reelforge.settings import Settings

app = typer.Typer()


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video should show.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the MP4.")] = Path("out.mp4"),
    model: Annotated[
        str, typer.Option("--model", "-m", help="Preset name (see `reelforge models`) or a diffusers model directory.")
    ] = "reelforge-tiny",
    model_path: Annotated[Path | None, typer.Option(help="Local directory of the preset's checkpoint.")] = None,
    adapter: Annotated[
        Path | None, typer.Option(help="Directory of a LoRA adapter (pytorch_lora_weights.safetensors).")
    ] = None,
    adapter_scale: Annotated[float, typer.Option(help="Strength of the adapter.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed and settings give identical frames.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (default: the model's).")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale; 1 disables it.")] = None,
    guidance_2: Annotated[
        float | None,
        typer.Option(help="Two-expert models (Wan 2.2 A14B): the low-noise expert's scale (default: the model's)."),
    ] = None,
    frames: Annotated[int | None, typer.Option(help="Frame count; Wan models need 4k+1.")] = None,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, multiples of the model's patch size.")] = None,
    fps: Annotated[float | None, typer.Option(help="Frame rate of the written MP4.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What to steer away from.")] = None,
    image: Annotated[
        Path | None,
        typer.Option(
            help="First frame for image-to-video models (PNG, JPEG or WebP); scaled to cover the size, centre-cropped."
        ),
    ] = None,
    preview: Annotated[Path | None, typer.Option(help="Also write an animated GIF preview here.")] = None,
    strip: Annotated[Path | None, typer.Option(help="Also write a PNG strip of frames here.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: a GPU if present).")] = None,
    config: ConfigOption = None,
    tenant: Annotated[str, typer.Option(help="Whose label policy applies; recorded with the watermark.")] = "local",
    unlabelled: Annotated[
        bool,
        typer.Option(
            "--unlabelled",
            help="Leave out the visible label and the AIGC metadata (only where provenance.labels.allow_unlabelled).",
        ),
    ] = False,
) -> None:
    """Generate one video from a text prompt (and, for image-to-video models, a first frame) and write it as an
    H.264 MP4, marked as the API marks its videos: the visible AI-content label and `AIGC` metadata
    (GB 45438-2025), the invisible watermark and C2PA."""
    from reelforge.models.loading import load_model
    from reelforge.models.lora import activate_adapter, load_adapter
    from reelforge.models.reference_image import reference_frame_from_file
    from reelforge.models.sampling import (
        GenerationSettings,
        parse_size,
        resolve_settings,
    )
    from reelforge.models.sampling import generate as run_generation
    from reelforge.models.video_io import write_frame_strip, write_preview
    from reelforge.platform.config import ServeAppConfig, read_serve_file
    from reelforge.provenance.manifest import GenerationClaims
    from reelforge.provenance.stamping import ProvenanceStamper

    if output.suffix.lower() != ".mp4":
        raise InvalidGenerationSettingsError(f"--output {output} must end in .mp4")
    app_config = read_serve_file(config)[0] if config else ServeAppConfig()
    if unlabelled and not app_config.provenance.labels.allow_unlabelled:
        raise UserInputError(
            "--unlabelled is refused: this config requires the AI-content labels (set "
            "provenance.labels.allow_unlabelled only where the labelling rules do not apply)",
            param="unlabelled",
        )
    width, height = parse_size(size) if size else (None, None)
    started = time.perf_counter()
    loaded = load_model(model, Settings.from_env(), model_path=model_path, device=device)
    first_frame = None
    if image is not None:
        first_frame = reference_frame_from_file(image, width or loaded.defaults.width, height or loaded.defaults.height)
    settings = resolve_settings(
        loaded,
        GenerationSettings(
            prompt=prompt,
            negative_prompt=negative_prompt,
            num_frames=frames,
            height=height,
            width=width,
            steps=steps,
            guidance=guidance,
            guidance_2=guidance_2,
            seed=seed,
            fps=fps,
            image=first_frame,
        ),
    )
    if adapter is not None:
        load_adapter(loaded, adapter, "cli")
        activate_adapter(loaded, "cli", adapter_scale)
    with Progress(
        TextColumn("[bold]denoising"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("denoise", total=settings.steps)
        video = run_generation(
            loaded, settings, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    video_id = f"video_cli_{secrets.token_hex(12)}"
    claims = GenerationClaims(video_id, tenant, model, loaded.name, str(adapter) if adapter else None, None, None)
    stamped = ProvenanceStamper(app_config.provenance, app_config.settings()).stamp(video, claims, unlabelled)
    video = stamped.video
    # Write next to the target and rename, so an interrupted run never leaves a half-written MP4.
    partial = output.with_name(f".{output.name}.partial.mp4")
    partial.write_bytes(stamped.mp4)
    os.replace(partial, output)
    if preview:
        write_preview(video, preview)
    if strip:
        write_frame_strip(video, strip)
    stderr.print(
        f"wrote {output} ({video.num_frames} frames, {video.width}x{video.height}, {video.fps:g} fps, "
        f"seed {settings.seed}) in {time.perf_counter() - started:.1f}s as {video_id}"
        + ("" if stamped.labelled else ", without the AI-content labels")
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
                "name": s.preset.name,
                "architecture": s.preset.architecture,
                "available": s.available,
                "path": str(s.path) if s.path else None,
                "detail": s.detail,
                "description": s.preset.description,
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


@app.command("eval")
def evaluate_model(
    model: Annotated[str, typer.Option("--model", "-m", help="Preset or model directory.")] = "reelforge-tiny",
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter directory to apply.")] = None,
    brand: Annotated[str | None, typer.Option(help="Brand look to measure, KIND:COLOUR.")] = None,
    prompts: Annotated[int, typer.Option(help="Held-out prompts (at least 48 for reported numbers).")] = 48,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (default: the model's).")] = None,
    guidance: Annotated[float | None, typer.Option(help="Guidance scale (default: the model's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda ...")] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="t2v: prompt adherence and brand looks; i2v: identity from a first frame, motion from text; "
            "vae: reconstruction alone (the ceiling of both)."
        ),
    ] = "t2v",
    lang: Annotated[str, typer.Option(help="Prompt language: en or zh (the same held-out combinations).")] = "en",
) -> None:
    """Measure prompt adherence and brand looks (or image-to-video identity) on held-out shapes-world prompts."""
    from reelforge.models.loading import load_model
    from reelforge.models.lora import activate_adapter, load_adapter
    from reelforge.models.tiny.brand_looks import parse_brand
    from reelforge.models.tiny.evaluation import EvalConfig, evaluate, evaluate_i2v, evaluate_vae
    from reelforge.models.tiny.shapes_world import LANGUAGES, all_combos

    if lang not in LANGUAGES:
        raise UserInputError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}", param="lang")
    if mode not in ("t2v", "i2v", "vae"):
        raise UserInputError(f"--mode must be t2v, i2v or vae, got {mode!r}", param="mode")
    if mode != "t2v" and brand:
        raise UserInputError(
            f"--brand measures text-to-video brand looks; leave it out with --mode {mode}", param="brand"
        )
    look = parse_brand(brand) if brand else None
    if not 1 <= prompts <= len(all_combos()):
        raise UserInputError(f"--prompts must be between 1 and {len(all_combos())}, got {prompts}")
    loaded = load_model(model, Settings.from_env(), device=device)
    if adapter is not None:
        # Not "eval": an adapter name becomes a module attribute and must not shadow nn.Module.eval.
        load_adapter(loaded, adapter, "evaluated")
        activate_adapter(loaded, "evaluated")
    eval_config = EvalConfig(prompts=prompts, steps=steps, guidance=guidance, lang=lang)
    if mode in ("i2v", "vae"):
        if mode == "i2v":
            result = evaluate_i2v(loaded, eval_config, progress=not as_json)
            keys = ("identity_acc", "direction_acc", "background_acc", "first_frame_psnr", "seconds_per_video")
        else:
            result = evaluate_vae(loaded, eval_config, progress=not as_json)
            keys = ("identity_acc", "shape_acc", "psnr")
        if as_json:
            stdout.print_json(json.dumps(result))
            return
        table = Table(title=f"reelforge eval --mode {mode} --lang {lang}: {result['model']} ({result['n']} videos)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key in keys:
            table.add_row(key, f"{result[key]:.3f}")
        for background, rate in result["identity_acc_by_background"].items():
            table.add_row(f"identity_acc on {background}", f"{rate:.3f}")
        stdout.print(table)
        return
    result = evaluate(loaded, eval_config, look, progress=not as_json)
    if as_json:
        stdout.print_json(json.dumps(result))
        return
    table = Table(title=f"reelforge eval --lang {lang}: {result['model']} ({result['n']} videos)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "colour_acc",
        "shape_acc",
        "direction_acc",
        "background_acc",
        "adherence",
        "brand_rate",
        "seconds_per_video",
    ):
        table.add_row(key, f"{result[key]:.3f}")
    for kind, rate in result["brand_rates"].items():
        table.add_row(f"brand_rate[{kind}]", f"{rate:.3f}")
    stdout.print(table)
