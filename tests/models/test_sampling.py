"""Text-to-video sampling: determinism, equivalence with diffusers' WanPipeline, settings validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reelforge.errors import InvalidGenerationSettingsError
from reelforge.models.loading import VideoModel
from reelforge.models.sampling import (
    GenerationSettings,
    denoise,
    generate,
    parse_size,
    resolve_settings,
)

PROMPT = "a red circle moving left on a white background"


def test_same_seed_gives_identical_frames_and_another_seed_does_not(tiny_model: VideoModel):
    a = generate(tiny_model, GenerationSettings(PROMPT, seed=7))
    b = generate(tiny_model, GenerationSettings(PROMPT, seed=7))
    c = generate(tiny_model, GenerationSettings(PROMPT, seed=8))
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)


def test_output_has_requested_frames_size_and_fps(tiny_model: VideoModel):
    video = generate(tiny_model, GenerationSettings(PROMPT, num_frames=13, height=24, width=40, steps=2, fps=12))
    assert video.frames.shape == (13, 24, 40, 3)
    assert video.fps == 12


@pytest.mark.parametrize("guidance", [1.0, 4.5])
def test_matches_diffusers_wan_pipeline(tiny_model: VideoModel, guidance: float):
    """Our loop (batched CFG, own scheduler copy) integrates to the same latent as WanPipeline.__call__."""
    settings = resolve_settings(tiny_model, GenerationSettings(PROMPT, seed=3, steps=5, guidance=guidance))
    ours = denoise(tiny_model, settings)
    theirs = tiny_model.pipeline(
        prompt=PROMPT,
        negative_prompt="",
        height=settings.height,
        width=settings.width,
        num_frames=settings.num_frames,
        num_inference_steps=settings.steps,
        guidance_scale=guidance,
        generator=torch.Generator("cpu").manual_seed(settings.seed),
        output_type="latent",
        max_sequence_length=tiny_model.defaults.max_text_tokens,
    ).frames
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_prompt_changes_the_video(tiny_model: VideoModel):
    a = generate(tiny_model, GenerationSettings(PROMPT, seed=1))
    b = generate(tiny_model, GenerationSettings("a blue square moving up on a black background", seed=1))
    assert not np.array_equal(a.frames, b.frames)


def test_progress_reports_every_step(tiny_model: VideoModel):
    seen: list[tuple[int, int]] = []
    generate(tiny_model, GenerationSettings(PROMPT, steps=3), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_defaults_come_from_the_model(tiny_model: VideoModel):
    s = resolve_settings(tiny_model, GenerationSettings(PROMPT))
    d = tiny_model.defaults
    assert (s.height, s.width, s.num_frames, s.steps, s.guidance, s.fps) == (
        d.height,
        d.width,
        d.num_frames,
        d.steps,
        d.guidance,
        d.fps,
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"width": 36}, "width 36 .* multiple of 8"),
        ({"height": 4096}, "height 4096 .* between 8 and 128"),
        ({"num_frames": 16}, "frames 16: frame count must be 4k\\+1"),
        ({"num_frames": 0}, "frames 0"),
        ({"num_frames": 101}, "at most 33 frames"),
        ({"steps": 0}, "steps 0 must be between"),
        ({"guidance": -1.0}, "guidance -1.0"),
        ({"guidance": float("nan")}, "guidance nan"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 5000}, "5000 characters"),
        ({"seed": -1}, "seed -1"),
    ],
)
def test_invalid_settings_name_the_field(tiny_model: VideoModel, overrides: dict, expected: str):
    fields = {"prompt": PROMPT, **overrides}
    with pytest.raises(InvalidGenerationSettingsError, match=expected):
        resolve_settings(tiny_model, GenerationSettings(**fields))


def test_all_problems_are_reported_at_once(tiny_model: VideoModel):
    with pytest.raises(InvalidGenerationSettingsError) as info:
        resolve_settings(tiny_model, GenerationSettings(PROMPT, width=30, num_frames=10))
    assert "width 30" in str(info.value) and "frames 10" in str(info.value)


def test_parse_size():
    assert parse_size("64x32") == (64, 32)
    assert parse_size("832X480") == (832, 480)
    for bad in ("64", "64x", "axb", "64x32x2", "-64x32"):
        with pytest.raises(InvalidGenerationSettingsError, match="WIDTHxHEIGHT"):
            parse_size(bad)


def test_negative_prompt_changes_the_guided_video(tiny_model: VideoModel):
    """A negative prompt is the unconditional branch of guidance: it must change what is sampled."""
    plain = generate(tiny_model, GenerationSettings(PROMPT, seed=1, steps=3))
    steered = generate(tiny_model, GenerationSettings(PROMPT, seed=1, steps=3, negative_prompt="a blue square"))
    assert not np.array_equal(plain.frames, steered.frames)
