"""Where reelforge-tiny's image-to-video loses the object's shape: the eval's setting beside three probes.

    python -m bench.i2v_identity_gap [--model reelforge-tiny] [--prompts 48] [--strengths 0.3 0.6]

Every variant generates the held-out jobs of `reelforge eval --mode i2v` (same first frames, seeds
and sampler settings), round-trips each video through MP4 and reads it with the analyzer:

* `image` — the eval itself: the first frame and a prompt naming only the motion.
* `image+named` — the same, with a prompt that also names colour and shape: the shape reaches the
  transformer by text. Near the VAE ceiling, this says the transformer can *draw* the shape.
* `resume@s` — start at noise level s from the held-out clip's own latents (noised with the job's
  seed), motion-only prompt: the shape survives denoising from s when the transformer keeps what
  it is given. The noise level where it stops surviving is where the image route fails.

Reported per variant: `identity_acc` (colour and shape both read right) overall and per background;
for `image`, also the shape read frame by frame, per background, which shows where in the clip it drifts.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.report import save_result
from reelforge.models.guidance import classifier_free_guidance
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.sampling import (
    GenerationSettings,
    generate,
    image_condition,
    initial_noise,
    latents_to_video,
    resolve_settings,
)
from reelforge.models.tiny.analyzer import analyze, shape_per_frame
from reelforge.models.tiny.evaluation import EvalConfig, conditioning_frame, eval_jobs, held_out_clip
from reelforge.models.tiny.shapes_world import BACKGROUNDS, Combo, caption, motion_caption
from reelforge.models.video_io import Video, read_video, write_mp4


@torch.no_grad()
def resume_from_clip(model: VideoModel, settings: GenerationSettings, clip: Video, strength: float) -> Video:
    """Denoise the clip's own latents noised to the first sampler level at or below `strength` (SDEdit).

    `sampling.denoise` from a later start: one expert, one guidance scale, as reelforge-tiny has.
    """
    s = resolve_settings(model, settings)
    scheduler = copy.deepcopy(model.pipeline.scheduler)
    scheduler.set_timesteps(s.steps, device=model.device)
    below = torch.nonzero(scheduler.sigmas[:-1] <= strength).flatten()  # sampler levels at or below `strength`
    start = int(below[0]) if len(below) else len(scheduler.timesteps) - 1  # below every level: the last step only
    pixels = torch.from_numpy(clip.frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # (1, 3, F, H, W)
    clean = model.spec.encode_video(model.pipeline, pixels.to(model.device)).float()  # (1, C, F', H', W')
    sigma = float(scheduler.sigmas[start])
    latents = (1 - sigma) * clean + sigma * initial_noise(model, s)  # (1, C, F', H', W')
    scheduler.set_begin_index(start)
    text = model.encode_text([s.negative_prompt, s.prompt])  # (2, L, D)
    condition = image_condition(model, s)  # (1, C, 1, H', W')
    conditions = condition.expand(2, *condition.shape[1:])
    for t in scheduler.timesteps[start:]:
        prediction = model.spec.predict(
            model.denoiser, latents.repeat(2, 1, 1, 1, 1), t.expand(2), text, conditions
        ).float()  # (2, C, F', H', W')
        uncond, cond = prediction.chunk(2)
        latents = scheduler.step(classifier_free_guidance(uncond, cond, s.guidance), t, latents, return_dict=False)[0]
    return latents_to_video(model, model.spec.finish_latents(latents, condition), s.fps)


def _settings(combo: Combo, seed: int, named: bool) -> GenerationSettings:
    colour, shape, direction, background = combo
    image = conditioning_frame(combo, seed)
    prompt = caption(*combo) if named else motion_caption(direction, background)
    return GenerationSettings(prompt, seed=seed, height=image.shape[0], width=image.shape[1], image=image)


def _score(videos: list[tuple[Combo, Video]]) -> dict:
    hits: dict[str, int] = {}
    totals: dict[str, int] = {}
    for combo, video in videos:
        matches = analyze(video).matches(combo)
        hits[combo[3]] = hits.get(combo[3], 0) + (matches["colour"] and matches["shape"])
        totals[combo[3]] = totals.get(combo[3], 0) + 1
    return {
        "identity_acc": round(sum(hits.values()) / max(sum(totals.values()), 1), 3),
        "identity_acc_by_background": {b: round(hits[b] / totals[b], 3) for b in sorted(totals)},
    }


def _shape_by_frame(videos: list[tuple[Combo, Video]]) -> dict[str, list[float]]:
    """Per background, the fraction of videos whose frame i alone reads as the right shape."""
    right: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for combo, video in videos:
        shapes = shape_per_frame(video.frames, BACKGROUNDS[combo[3]])
        right[combo[3]] = right.get(combo[3], 0) + np.array([s == combo[1] for s in shapes], dtype=float)
        counts[combo[3]] = counts.get(combo[3], 0) + 1
    return {b: [round(float(v), 2) for v in right[b] / counts[b]] for b in sorted(right)}


def run(model_name: str, prompts: int, strengths: list[float]) -> dict:
    """Generate every variant on the held-out jobs and score it."""
    model = load_model(model_name)
    if not model.spec.image_input or model.spec.boundary(model.pipeline) is not None:
        raise SystemExit(f"{model_name}: this bench needs a one-expert image-to-video model (reelforge-tiny)")
    jobs = eval_jobs(EvalConfig(prompts=prompts))
    variants: dict[str, list[tuple[Combo, Video]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"

        def kept(video: Video) -> Video:
            return read_video(write_mp4(video, path))

        for combo, seed in jobs:
            variants.setdefault("image", []).append((combo, kept(generate(model, _settings(combo, seed, False)))))
            variants.setdefault("image+named", []).append((combo, kept(generate(model, _settings(combo, seed, True)))))
            clip = held_out_clip(combo, seed)
            for strength in strengths:
                video = resume_from_clip(model, _settings(combo, seed, False), clip, strength)
                variants.setdefault(f"resume@{strength:g}", []).append((combo, kept(video)))
    return {
        "bench": "i2v_identity_gap",
        "model": model.name,
        "videos_per_variant": len(jobs),
        "variants": {name: _score(videos) for name, videos in variants.items()},
        "image_shape_by_frame": _shape_by_frame(variants["image"]),
    }


def main(argv: list[str] | None = None) -> None:
    """Command line; writes bench-output/i2v_identity_gap.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="reelforge-tiny")
    parser.add_argument("--prompts", type=int, default=EvalConfig.prompts, help="held-out combinations (x2 seeds)")
    parser.add_argument("--strengths", type=float, nargs="*", default=[0.3, 0.6], help="noise levels to resume from")
    parser.add_argument("--out", type=Path, default=Path("bench-output/i2v_identity_gap.json"))
    args = parser.parse_args(argv)
    bad = [s for s in args.strengths if not 0 < s <= 1]
    if bad:
        parser.error(f"--strengths must lie in (0, 1]; got {bad}")
    save_result(run(args.model, args.prompts, args.strengths), args.out)


if __name__ == "__main__":
    main()
