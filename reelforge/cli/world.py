"""The shapes world: synthetic captioned footage with exactly measurable content."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reelforge.cli.console import stderr, stdout

app = typer.Typer(
    name="world",
    help="The shapes world: synthetic captioned footage with exactly measurable content.",
    no_args_is_help=True,
)


@app.command("footage")
def world_footage(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write clip_NNNN.mp4 + clip_NNNN.txt into.")],
    count: Annotated[int, typer.Option(help="Number of clips.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same clips.")] = 0,
    brand: Annotated[
        str | None, typer.Option(help="Brand look on every frame, KIND:COLOUR, e.g. lower-third:orange.")
    ] = None,
    lang: Annotated[
        str, typer.Option(help="Caption language: en, zh, or mixed (each clip's drawn from the seed).")
    ] = "en",
) -> None:
    """Write footage as a company would upload it: H.264 MP4 clips with same-stem caption files."""
    from reelforge.models.tiny.brand_looks import parse_brand
    from reelforge.models.tiny.footage import write_footage

    look = parse_brand(brand) if brand else None
    clips = write_footage(out_dir, count, seed, look, progress=True, lang=lang)
    stderr.print(f"wrote {len(clips)} clips to {out_dir}" + (f" with brand look {look.spec}" if look else ""))


@app.command("analyze")
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
        for name, reading in (
            ("colour", analysis.colour),
            ("shape", analysis.shape),
            ("direction", analysis.direction),
            ("background", analysis.background),
        )
    ]
    looks = [f"{kind}:{b.colour}" for kind, b in analysis.brands.items() if b.present]
    stdout.print(f"{video.name}: " + " ".join(parts) + f" brand looks: {', '.join(looks) or 'none'}", soft_wrap=True)
