"""Text- and image-to-video sampling: validated settings in, decoded frames out.

The loop is ours rather than `WanPipeline.__call__` so that guidance is the tested pure function,
the conditional and unconditional passes share one batched transformer call, progress is reported
per step (the server streams it to the job), and each call gets its own scheduler, so requests on
one replica never share scheduler state.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from reelforge.errors import InvalidGenerationSettingsError
from reelforge.models.guidance import classifier_free_guidance, guidance_at, needs_unconditional
from reelforge.models.loading import VideoModel
from reelforge.models.spec import ImageInput
from reelforge.models.video_io import Video

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
MAX_PROMPT_CHARS = 2000
MAX_STEPS = 200
MAX_GUIDANCE = 30.0


@dataclass(frozen=True)
class GenerationSettings:
    """One text-to-video request; None fields take the model's defaults in `resolve_settings`."""

    prompt: str
    negative_prompt: str | None = None
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    steps: int | None = None
    guidance: float | None = None
    guidance_2: float | None = None  # the low-noise expert's scale on two-expert models (Wan 2.2 A14B)
    seed: int = 0
    fps: float | None = None
    # First frame (H, W, 3) uint8 at the request's size (`reference_image.fit_to_size`), for image models.
    image: np.ndarray | None = None


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (width, height); raises a typed error naming the expected form."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InvalidGenerationSettingsError(f"size {text!r} is not of the form WIDTHxHEIGHT, e.g. 64x64")
    return int(parts[0]), int(parts[1])


def resolve_settings(model: VideoModel, settings: GenerationSettings) -> GenerationSettings:
    """Fill defaults from the model and check every field against what it supports."""
    d = model.defaults
    s = replace(
        settings,
        negative_prompt=d.negative_prompt if settings.negative_prompt is None else settings.negative_prompt,
        num_frames=d.num_frames if settings.num_frames is None else settings.num_frames,
        height=d.height if settings.height is None else settings.height,
        width=d.width if settings.width is None else settings.width,
        steps=d.steps if settings.steps is None else settings.steps,
        guidance=d.guidance if settings.guidance is None else settings.guidance,
        guidance_2=d.guidance_2 if settings.guidance_2 is None else settings.guidance_2,
        fps=d.fps if settings.fps is None else settings.fps,
    )
    problems: list[str] = []
    if not s.prompt or not s.prompt.strip():
        problems.append("prompt is empty")
    elif len(s.prompt) > MAX_PROMPT_CHARS:
        problems.append(f"prompt has {len(s.prompt)} characters; at most {MAX_PROMPT_CHARS} are accepted")
    multiple = model.spec.size_multiple(model.pipeline)
    for field_name, value, limit in (("width", s.width, d.max_width), ("height", s.height, d.max_height)):
        if value < multiple or value % multiple or value > limit:
            problems.append(
                f"{field_name} {value} is not supported by {model.name}: it must be a multiple of {multiple} "
                f"between {multiple} and {limit} (default size {d.width}x{d.height})"
            )
    frame_error = model.spec.frame_count_error(model.pipeline, s.num_frames)
    if frame_error:
        problems.append(f"frames {s.num_frames}: {frame_error}")
    elif s.num_frames > d.max_frames:
        problems.append(f"frames {s.num_frames}: {model.name} generates at most {d.max_frames} frames")
    if not 1 <= s.steps <= MAX_STEPS:
        problems.append(f"steps {s.steps} must be between 1 and {MAX_STEPS}")
    if not (np.isfinite(s.guidance) and 0.0 <= s.guidance <= MAX_GUIDANCE):
        problems.append(f"guidance {s.guidance} must be between 0 and {MAX_GUIDANCE:g}")
    if s.guidance_2 is not None:
        if not (np.isfinite(s.guidance_2) and 0.0 <= s.guidance_2 <= MAX_GUIDANCE):
            problems.append(f"guidance_2 {s.guidance_2} must be between 0 and {MAX_GUIDANCE:g}")
        elif model.spec.boundary(model.pipeline) is None:
            problems.append(f"guidance_2 needs a two-expert model; {model.name} has one transformer")
    if not (np.isfinite(s.fps) and 1.0 <= s.fps <= 120.0):
        problems.append(f"fps {s.fps} must be between 1 and 120")
    if not 0 <= s.seed < 2**63:
        problems.append(f"seed {s.seed} must be between 0 and 2^63 - 1")
    problems += _image_problems(model, s)
    if problems:
        raise InvalidGenerationSettingsError("; ".join(problems))
    return s


def _image_problems(model: VideoModel, s: GenerationSettings) -> list[str]:
    takes = model.spec.image_input
    if s.image is None:
        if takes is ImageInput.REQUIRED:
            return [f"{model.name} is an image-to-video model: give a first-frame image (input_reference)"]
        return []
    if takes is ImageInput.NONE:
        return [f"{model.name} is a text-to-video model and takes no image (input_reference)"]
    if s.image.shape != (s.height, s.width, 3) or s.image.dtype != np.uint8:
        return [f"image is {s.image.shape} {s.image.dtype}; expected ({s.height}, {s.width}, 3) uint8"]
    return []


def image_condition(model: VideoModel, s: GenerationSettings) -> torch.Tensor | None:
    """The model's conditioning latent for the settings' first frame, or None without one."""
    if s.image is None:
        return None
    pixels = torch.from_numpy(s.image).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # (1, 3, H, W) in [-1, 1]
    return model.spec.encode_image(model.pipeline, pixels.to(model.device), s.num_frames).to(model.dtype)


def initial_noise(model: VideoModel, s: GenerationSettings) -> torch.Tensor:
    """Seeded starting noise (1, C, F', H', W'), drawn on the CPU so every device gives the same video."""
    shape = (1, *model.spec.latent_shape(model.pipeline, s.num_frames, s.height, s.width))
    generator = torch.Generator("cpu").manual_seed(s.seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(model.device)


@torch.no_grad()
def denoise(model: VideoModel, settings: GenerationSettings, progress: ProgressCallback | None = None) -> torch.Tensor:
    """Integrate from noise to a clean latent (1, C, F', H', W'); `settings` must be resolved."""
    s = settings
    scheduler = copy.deepcopy(model.pipeline.scheduler)
    scheduler.set_timesteps(s.steps, device=model.device)
    boundary = model.spec.boundary(model.pipeline)  # None: one expert
    scales = [guidance_at(float(t), boundary, s.guidance, s.guidance_2) for t in scheduler.timesteps]
    guided = any(needs_unconditional(scale) for scale in scales)
    prompts = [s.negative_prompt, s.prompt] if guided else [s.prompt]
    text = model.encode_text(prompts)  # (2 or 1, L, D): [uncond, cond]
    latents = initial_noise(model, s)  # (1, C, F', H', W')
    condition = image_condition(model, s)  # None, (1, C, 1, H', W') or (1, k + C, F', H', W')
    conditions = None if condition is None else condition.expand(len(prompts), *condition.shape[1:])
    total = len(scheduler.timesteps)
    for i, t in enumerate(scheduler.timesteps):
        model_input = latents.repeat(len(prompts), 1, 1, 1, 1)  # (2 or 1, C, F', H', W'): contiguous for conv
        timestep = t.expand(len(prompts)).to(model.device)
        # Two-expert models route by `timestep` inside the denoiser: high noise first, then low noise.
        prediction = model.spec.predict(model.denoiser, model_input, timestep, text, conditions).float()
        if guided:
            uncond, cond = prediction.chunk(2)
            prediction = classifier_free_guidance(uncond, cond, scales[i])
        latents = scheduler.step(prediction, t, latents, return_dict=False)[0]
        if progress is not None:
            progress(i + 1, total)
    return model.spec.finish_latents(latents, condition)


@torch.no_grad()
def latents_to_video(model: VideoModel, latents: torch.Tensor, fps: float) -> Video:
    """Decode a latent (1, C, F', H', W') to uint8 frames."""
    pixels = model.spec.decode_latents(model.pipeline, latents)  # (1, 3, F, H, W) in [-1, 1]
    frames = ((pixels[0].float().permute(1, 2, 3, 0) + 1.0) * 127.5).round().clamp(0, 255)  # (F, H, W, 3)
    return Video(frames.to(torch.uint8).cpu().numpy(), fps)


def generate(model: VideoModel, settings: GenerationSettings, progress: ProgressCallback | None = None) -> Video:
    """Validate `settings`, sample, decode: the whole text-to-video call."""
    resolved = resolve_settings(model, settings)
    logger.info(
        "generating %dx%d, %d frames, %d steps, guidance %.2f, seed %d with %s",
        resolved.width,
        resolved.height,
        resolved.num_frames,
        resolved.steps,
        resolved.guidance,
        resolved.seed,
        model.name,
    )
    latents = denoise(model, resolved, progress)
    return latents_to_video(model, latents, resolved.fps)
