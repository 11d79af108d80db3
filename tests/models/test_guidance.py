"""Classifier-free guidance equations."""

from __future__ import annotations

import pytest
import torch

from reelforge.models.guidance import (
    classifier_free_guidance,
    guidance_at,
    needs_unconditional,
    rescale_guidance,
)


@pytest.fixture
def predictions() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 3, 5, 5, generator=g), torch.randn(2, 4, 3, 5, 5, generator=g)


def test_scale_one_returns_conditional(predictions):
    uncond, cond = predictions
    torch.testing.assert_close(classifier_free_guidance(uncond, cond, 1.0), cond)


def test_scale_zero_returns_unconditional(predictions):
    uncond, cond = predictions
    assert torch.equal(classifier_free_guidance(uncond, cond, 0.0), uncond)


def test_guidance_extrapolates_linearly(predictions):
    uncond, cond = predictions
    guided = classifier_free_guidance(uncond, cond, 5.0)
    torch.testing.assert_close(guided, uncond + 5.0 * (cond - uncond))
    torch.testing.assert_close(guided - cond, 4.0 * (cond - uncond))


def test_rescale_zero_is_identity_and_one_matches_conditional_std(predictions):
    uncond, cond = predictions
    guided = classifier_free_guidance(uncond, cond, 7.0)
    assert torch.equal(rescale_guidance(guided, cond, 0.0), guided)
    rescaled = rescale_guidance(guided, cond, 1.0)
    torch.testing.assert_close(rescaled.flatten(1).std(1), cond.flatten(1).std(1))


def test_unconditional_pass_is_skipped_only_at_scale_one():
    assert not needs_unconditional(1.0)
    assert needs_unconditional(0.0) and needs_unconditional(5.0)


def test_the_low_noise_scale_applies_below_the_boundary_only():
    assert guidance_at(900.0, 875.0, 4.0, 3.0) == 4.0  # high-noise expert
    assert guidance_at(875.0, 875.0, 4.0, 3.0) == 4.0  # the boundary belongs to the high-noise expert
    assert guidance_at(874.9, 875.0, 4.0, 3.0) == 3.0
    assert guidance_at(100.0, 875.0, 4.0, None) == 4.0  # no second scale: one scale throughout
    assert guidance_at(100.0, None, 4.0, 3.0) == 4.0  # one expert: no boundary
