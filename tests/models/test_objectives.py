"""The training objectives' equations (flow matching and DDPM), checked numerically."""

from __future__ import annotations

import math

import pytest
import torch

from reelforge.models import objectives as obj


def _latents(seed: int, shape=(3, 4, 2, 5, 5)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


class TestFlowMatching:
    def test_endpoints_are_data_and_noise(self):
        x0, eps = _latents(0)
        assert torch.equal(obj.flow_matching_noisy(x0, eps, torch.zeros(3)), x0)
        assert torch.equal(obj.flow_matching_noisy(x0, eps, torch.ones(3)), eps)

    def test_target_recovers_data_and_noise_exactly(self):
        x0, eps = _latents(1)
        t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
        x_t = obj.flow_matching_noisy(x0, eps, t)
        v = obj.flow_matching_target(x0, eps)
        rec_x0, rec_eps = obj.flow_matching_recover(x_t, v, t)
        torch.testing.assert_close(rec_x0, x0, rtol=0, atol=1e-12)
        torch.testing.assert_close(rec_eps, eps, rtol=0, atol=1e-12)

    def test_target_is_time_derivative_of_path(self):
        x0, eps = _latents(2)
        t, h = torch.full((3,), 0.3, dtype=torch.float64), 1e-6
        finite_difference = (obj.flow_matching_noisy(x0, eps, t + h) - obj.flow_matching_noisy(x0, eps, t)) / h
        torch.testing.assert_close(finite_difference, obj.flow_matching_target(x0, eps), rtol=0, atol=1e-6)

    def test_uniform_timesteps_are_in_unit_interval_and_seeded(self):
        a = obj.sample_uniform_timesteps(10_000, torch.Generator().manual_seed(0))
        b = obj.sample_uniform_timesteps(10_000, torch.Generator().manual_seed(0))
        assert torch.equal(a, b)
        assert a.min() >= 0 and a.max() < 1
        assert abs(a.mean().item() - 0.5) < 0.02

    def test_logit_normal_concentrates_mass_in_the_middle(self):
        t = obj.sample_logit_normal_timesteps(20_000, 0.0, 1.0, torch.Generator().manual_seed(0))
        assert t.min() > 0 and t.max() < 1
        assert abs(t.median().item() - 0.5) < 0.02
        middle = ((t > 0.25) & (t < 0.75)).float().mean().item()
        assert middle > 0.6  # uniform would put exactly half of the mass here

    def test_logit_normal_mean_shifts_the_median(self):
        t = obj.sample_logit_normal_timesteps(20_000, 1.0, 1.0, torch.Generator().manual_seed(0))
        assert abs(t.median().item() - 1 / (1 + math.exp(-1.0))) < 0.02

    def test_shift_one_is_identity_and_endpoints_are_fixed(self):
        t = torch.linspace(0, 1, 11, dtype=torch.float64)
        torch.testing.assert_close(obj.shift_timesteps(t, 1.0), t)
        shifted = obj.shift_timesteps(t, 3.0)
        assert shifted[0] == 0 and shifted[-1] == 1
        assert torch.all(shifted[1:-1] > t[1:-1])  # more time spent at high noise
        assert torch.all(shifted[1:] > shifted[:-1])  # still monotone
        assert obj.shift_timesteps(torch.tensor([0.5], dtype=torch.float64), 3.0).item() == pytest.approx(0.75)

    def test_shift_must_be_positive(self):
        with pytest.raises(ValueError, match="shift must be positive"):
            obj.shift_timesteps(torch.tensor([0.5]), 0.0)

    def test_objective_batch_scales_timesteps_for_the_transformer(self):
        x0, eps = _latents(3)
        objective = obj.FlowMatchingObjective(sampling="uniform", shift=2.0, num_train_timesteps=1000)
        t = objective.sample_timesteps(3, torch.Generator().manual_seed(0))
        raw = obj.sample_uniform_timesteps(3, torch.Generator().manual_seed(0))
        torch.testing.assert_close(t, obj.shift_timesteps(raw, 2.0))
        batch = objective.batch(x0, eps, t)
        torch.testing.assert_close(batch.model_timesteps, t * 1000)
        torch.testing.assert_close(batch.noisy, obj.flow_matching_noisy(x0, eps, t))
        torch.testing.assert_close(batch.target, eps - x0)


class TestDDPM:
    def test_alphas_cumprod_decreases_from_near_one(self):
        abar = obj.alphas_cumprod(obj.linear_beta_schedule(1000))
        assert abar[0].item() == pytest.approx(1 - 1e-4)
        assert torch.all(abar[1:] < abar[:-1])
        assert abar[-1].item() < 1e-4  # the chain ends at (nearly) pure noise

    def test_cosine_schedule_is_valid(self):
        betas = obj.cosine_beta_schedule(1000)
        assert torch.all(betas > 0) and torch.all(betas <= 0.999)
        abar = obj.alphas_cumprod(betas)
        assert torch.all(abar[1:] < abar[:-1])

    @pytest.mark.parametrize("abar_value", [0.9, 0.5, 0.05])
    def test_forward_marginal_has_stated_mean_and_variance(self, abar_value: float):
        g = torch.Generator().manual_seed(0)
        n, dim = 200_000, 3
        x0 = torch.tensor([1.5, -2.0, 0.25], dtype=torch.float64).expand(n, dim)
        eps = torch.randn(n, dim, generator=g, dtype=torch.float64)
        x_t = obj.ddpm_noisy(x0, eps, torch.full((n,), abar_value, dtype=torch.float64))
        expected_mean = math.sqrt(abar_value) * x0[0]
        torch.testing.assert_close(x_t.mean(0), expected_mean, rtol=0, atol=0.01)
        torch.testing.assert_close(
            x_t.var(0), torch.full((dim,), 1 - abar_value, dtype=torch.float64), rtol=0.02, atol=0
        )

    def test_v_target_recovers_data(self):
        x0, eps = _latents(4)
        abar = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
        x_t = obj.ddpm_noisy(x0, eps, abar)
        v = obj.ddpm_target(x0, eps, abar, "v_prediction")
        a = abar.view(3, 1, 1, 1, 1)
        torch.testing.assert_close(a.sqrt() * x_t - (1 - a).sqrt() * v, x0, rtol=0, atol=1e-12)

    def test_epsilon_target_is_the_noise_and_loss_vanishes_on_it(self):
        x0, eps = _latents(5)
        abar = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
        target = obj.ddpm_target(x0, eps, abar, "epsilon")
        assert torch.equal(target, eps)
        assert obj.diffusion_loss(target, eps).item() == 0.0
        assert obj.diffusion_loss(torch.zeros_like(eps), eps).item() == pytest.approx(eps.pow(2).mean().item())

    def test_unknown_prediction_type_is_rejected(self):
        x0, eps = _latents(6)
        with pytest.raises(ValueError, match="unknown prediction_type"):
            obj.ddpm_target(x0, eps, torch.ones(3), "sample")  # type: ignore[arg-type]

    def test_objective_batch_uses_the_schedule(self):
        x0, eps = _latents(7)
        objective = obj.DDPMObjective(prediction_type="epsilon")
        t = objective.sample_timesteps(3, torch.Generator().manual_seed(0))
        assert t.dtype == torch.int64 and t.min() >= 0 and t.max() < 1000
        batch = objective.batch(x0, eps, t)
        abar = objective.alphas_cumprod()[t]
        torch.testing.assert_close(batch.noisy, obj.ddpm_noisy(x0, eps, abar))
        assert torch.equal(batch.target, eps)


def test_weighted_loss_weights_each_sample():
    pred = torch.zeros(2, 3)
    target = torch.stack([torch.ones(3), 2 * torch.ones(3)])
    assert obj.diffusion_loss(pred, target).item() == pytest.approx((1 + 4) / 2)
    assert obj.diffusion_loss(pred, target, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)


def test_masked_loss_counts_only_the_denoised_positions():
    from reelforge.models.image_conditioning import first_frame_mask

    target = torch.zeros(2, 3, 4, 2, 2)
    prediction = torch.zeros_like(target)
    prediction[:, :, 0] = 5.0  # error only on the given first frame
    prediction[1, :, 1:] = 1.0  # and an error of 1 on sample 1's denoised frames
    mask = first_frame_mask(target)
    assert obj.diffusion_loss(prediction, target, mask=mask).item() == pytest.approx(0.5)
    assert obj.diffusion_loss(prediction, target).item() > 6.0  # unmasked, frame 0's error dominates
    per_sample_mask = torch.stack([mask[0], torch.ones_like(mask[0])])  # sample 1: text-to-video, all counts
    expected = (0.0 + (25.0 * 1 + 1.0 * 3) / 4) / 2
    assert obj.diffusion_loss(prediction, target, mask=per_sample_mask).item() == pytest.approx(expected)
