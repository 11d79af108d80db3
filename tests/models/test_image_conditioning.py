"""The image-to-video conditioning equations and the expert switch, as pure functions."""

from __future__ import annotations

import pytest
import torch

from reelforge.models.experts import (
    HIGH_NOISE,
    LOW_NOISE,
    expert_index,
    expert_timestep_range,
    high_noise_share,
    sample_in_range,
)
from reelforge.models.image_conditioning import (
    concat_condition,
    first_frame_mask,
    first_frame_video,
    token_timesteps,
    with_first_frame,
)
from reelforge.models.objectives import sample_uniform_timesteps


def test_first_frame_mask_zeroes_only_frame_zero():
    mask = first_frame_mask(torch.zeros(2, 4, 5, 3, 3))
    assert mask.shape == (1, 1, 5, 3, 3)
    assert mask[:, :, 0].sum() == 0 and bool((mask[:, :, 1:] == 1).all())


def test_with_first_frame_replaces_frame_zero_and_keeps_the_rest():
    latent, condition = torch.randn(2, 4, 5, 3, 3), torch.randn(2, 4, 1, 3, 3)
    out = with_first_frame(latent, condition, first_frame_mask(latent))
    assert torch.equal(out[:, :, :1], condition)
    assert torch.equal(out[:, :, 1:], latent[:, :, 1:])


def test_token_timesteps_match_diffusers_expansion():
    """diffusers (pipeline_wan_i2v, expand_timesteps): (mask[0][0][:, ::2, ::2] * t).flatten() per sample."""
    latent = torch.zeros(2, 4, 3, 8, 8)
    mask = first_frame_mask(latent)
    t = torch.tensor([700.0, 300.0])
    ours = token_timesteps(mask, t, (1, 2, 2))
    theirs = torch.stack([(mask[0][0][:, ::2, ::2] * ti).flatten() for ti in t])
    assert ours.shape == (2, 3 * 4 * 4)
    assert torch.equal(ours, theirs)
    assert bool((ours[:, :16] == 0).all())  # the first frame's 16 tokens are clean


def _diffusers_mask(batch: int, num_frames: int, k: int, height: int, width: int) -> torch.Tensor:
    """pipeline_wan_i2v.prepare_latents' mask, verbatim in substance, as the reference."""
    latent_frames = (num_frames - 1) // k + 1
    mask = torch.ones(batch, 1, num_frames, height, width)
    mask[:, :, list(range(1, num_frames))] = 0
    first = torch.repeat_interleave(mask[:, :, 0:1], dim=2, repeats=k)
    mask = torch.concat([first, mask[:, :, 1:, :]], dim=2)
    return mask.view(batch, -1, k, height, width).transpose(1, 2)[:, :, :latent_frames]


@pytest.mark.parametrize("k", [2, 4])
def test_concat_condition_mask_matches_diffusers(k: int):
    frames = 3
    image_latent = torch.randn(2, 5, frames, 4, 6)
    out = concat_condition(image_latent, k)
    assert out.shape == (2, k + 5, frames, 4, 6)
    assert torch.equal(out[:, :k], _diffusers_mask(2, 1 + (frames - 1) * k, k, 4, 6))
    assert torch.equal(out[:, k:], image_latent)


def test_first_frame_video_is_the_image_then_black():
    image = torch.rand(1, 3, 4, 4)
    video = first_frame_video(image, 5)
    assert video.shape == (1, 3, 5, 4, 4)
    assert torch.equal(video[:, :, 0], image) and bool((video[:, :, 1:] == 0).all())


def test_expert_index_switches_at_the_boundary():
    t = torch.tensor([999.0, 875.0, 874.9, 0.0])
    assert expert_index(t, 875.0).tolist() == [HIGH_NOISE, HIGH_NOISE, LOW_NOISE, LOW_NOISE]
    per_token = torch.tensor([[0.0, 900.0], [0.0, 100.0]])  # a clean first frame does not pull to low noise
    assert expert_index(per_token, 875.0).tolist() == [HIGH_NOISE, LOW_NOISE]


def test_sample_in_range_stays_inside_each_experts_range():
    g = torch.Generator().manual_seed(0)
    for expert in (HIGH_NOISE, LOW_NOISE):
        low, high = expert_timestep_range(expert, 0.875)
        t = sample_in_range(sample_uniform_timesteps, 500, low, high, g)
        assert t.shape == (500,)
        assert bool(((t >= low) & (t < high)).all())
    with pytest.raises(ValueError, match="almost no mass"):
        sample_in_range(lambda n, g: torch.zeros(n), 4, 0.5, 1.0, g, max_rounds=3)


def test_high_noise_share_of_uniform_timesteps_is_the_span_above_the_boundary():
    assert high_noise_share(sample_uniform_timesteps, 0.875) == pytest.approx(0.125, abs=0.01)
    assert high_noise_share(sample_uniform_timesteps, 0.875) == high_noise_share(sample_uniform_timesteps, 0.875)


def test_first_frame_training_inputs_mix_image_and_text_samples():
    from reelforge.models.image_conditioning import first_frame_training_inputs

    x0, noisy = torch.randn(2, 4, 3, 4, 4), torch.randn(2, 4, 3, 4, 4)
    t = torch.tensor([600.0, 400.0])
    hidden, timesteps, loss_mask = first_frame_training_inputs(noisy, x0, t, torch.tensor([True, False]), (1, 2, 2))
    assert torch.equal(hidden[0, :, 0], x0[0, :, 0]) and torch.equal(hidden[0, :, 1:], noisy[0, :, 1:])
    assert torch.equal(hidden[1], noisy[1])  # the text-to-video sample is untouched
    assert timesteps.shape == (2, 3 * 2 * 2)
    assert timesteps[0, :4].tolist() == [0.0] * 4 and bool((timesteps[0, 4:] == 600).all())
    assert bool((timesteps[1] == 400).all())
    assert loss_mask[0, 0, 0].sum() == 0 and bool((loss_mask[0, 0, 1:] == 1).all()) and bool((loss_mask[1] == 1).all())


def test_expert_schedule_draws_the_same_expert_on_every_rank_in_proportion():
    from reelforge.models.experts import ExpertSchedule

    schedule = ExpertSchedule(sample_uniform_timesteps, 0.875, (HIGH_NOISE, LOW_NOISE), seed=3)
    again = ExpertSchedule(sample_uniform_timesteps, 0.875, (HIGH_NOISE, LOW_NOISE), seed=3)
    picks = [schedule.expert(step) for step in range(2000)]
    assert picks == [again.expert(step) for step in range(2000)]  # what another rank computes
    assert sum(p == HIGH_NOISE for p in picks) / len(picks) == pytest.approx(0.125, abs=0.03)
    g = torch.Generator().manual_seed(0)
    for step in range(20):
        t = schedule.sample(8, step, g)
        low, high = expert_timestep_range(schedule.expert(step), 0.875)
        assert bool(((t >= low) & (t < high)).all())
    only_low = ExpertSchedule(sample_uniform_timesteps, 0.875, (LOW_NOISE,), seed=3)
    assert {only_low.expert(step) for step in range(50)} == {LOW_NOISE}
